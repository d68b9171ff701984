"""vdit-digits: a small Latte-style video DiT generating a digit moving across the frame.

Latte (Ma et al. 2024, "Latte: Latent Diffusion Transformer for Video Generation", variant 1)
interleaves spatial transformer blocks (attention among the tokens of one frame) and temporal
blocks (attention among the frames at one spatial position). Here: patch 4 on 16x16 frames
(16 tokens per frame), hidden 128, 4 blocks alternating spatial / temporal (``blocks.i.kind``),
adaLN-Zero conditioning on timestep + class + motion direction, 4 heads, MLP ratio 2. Module
paths (``blocks.i.attn.qkv``, ``blocks.i.mlp.fc1`` ...) follow DiT so the interceptor infers
block and layer type.

``forward(x, t, y, d)``: ``x`` (N, F, 1, 16, 16) with ``1 <= F <= max_frames`` (8; trained on
F = 4), ``t`` int64 (N,) in ``[0, T)``, ``y`` int64 (N,) class 0..9 or 10 = null, ``d`` int64 (N,)
direction 0..3 (left, right, up, down) or 4 = null; returns predicted noise of ``x``'s shape.
Schedule / prediction conventions: :mod:`accelsim.models.diffusion_schedule`.

The clips (:func:`make_clips`) are deterministic: the 16x16 digit is average-pooled to 8x8 and
pasted on a blank (-1) 16x16 canvas; it moves ``8 // (F - 1)`` pixels per frame along the
direction, centred on the other axis.

Training (:func:`train`): every train digit in all 4 directions, AdamW lr 1e-3, batch 32,
3000 steps, 10 % dropout of class and direction (independently), Min-SNR-5 loss weighting,
EMA 0.995 saved; one torch thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelsim.errors import ConfigError, ShapeError
from accelsim.models.diffusion_schedule import (
    SCHEDULE_DEFAULTS,
    TrainSpec,
    alphas_cumprod,
    class_accuracy,
    ddim_sample,
    fit_diffusion,
    on_meta,
)
from accelsim.models.dit_digits import (
    Attention,
    FinalLayer,
    LabelEmbedder,
    Mlp,
    PatchEmbed,
    TimestepEmbedder,
    init_dit_weights,
    modulate,
    sincos_pos_embed_2d,
)
from accelsim.rng import torch_generator

TRAIN_THREADS = 1
"""torch threads while training: one thread wastes nothing on a shared, oversubscribed machine."""

NAME = "vdit-digits"
KIND = "video-diffusion"
DESCRIPTION = (
    "Latte-style video DiT (alternating spatial/temporal blocks, patch 4, hidden 128) of a "
    "digit moving left/right/up/down, 4 frames of 16x16"
)

DIRECTIONS = ("left", "right", "up", "down")
"""Direction labels 0..3; 4 is the null direction for classifier-free guidance."""

DEFAULT_CONFIG: dict[str, Any] = {
    **SCHEDULE_DEFAULTS,
    "image_size": 16,
    "in_channels": 1,
    "patch_size": 4,
    "hidden_size": 128,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "frames": 4,
    "max_frames": 8,
    "num_classes": 10,
    "null_class": 10,
    "num_directions": 4,
    "null_direction": 4,
    "p_uncond": 0.1,
    "train_steps": 3000,
    "batch_size": 32,
    "lr": 1e-3,
    "ema_decay": 0.995,
    "min_snr_gamma": 5.0,
    "eval_guidance": 3.0,
    "eval_steps": 20,
}


def make_clips(x: Tensor, y: Tensor, d: Tensor, frames: int) -> tuple[Tensor, Tensor, Tensor]:
    """Clips ``(N, frames, 1, 16, 16)`` of digit images ``x`` (N, 1, 16, 16) moving along ``d``.

    Deterministic: each digit is average-pooled 2x2 to 8x8 and pasted on a -1 canvas; along the
    motion axis it moves ``s = 8 // (frames - 1)`` pixels per frame (2 for 4 frames, 1 for 8),
    the path centred in the 8 free pixels; on the other axis it sits at offset 4 (centred).
    Direction 0 = left (column decreases), 1 = right, 2 = up (row decreases), 3 = down.
    Returns ``(clips, y, d)``.
    """
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 16, 16):
        raise ShapeError(f"x: got shape {tuple(x.shape)}, expected (N, 1, 16, 16)")
    if not 2 <= frames <= 8:
        raise ConfigError(f"frames: got {frames!r}, expected 2 <= frames <= 8")
    if d.shape != (x.shape[0],) or y.shape != (x.shape[0],):
        raise ShapeError(
            f"y, d: got shapes {tuple(y.shape)}, {tuple(d.shape)}, expected ({x.shape[0]},)"
        )
    if bool(((d < 0) | (d > 3)).any()):
        raise ConfigError(f"d: got values {sorted(set(d.tolist()))}, expected directions 0..3")
    small = F.avg_pool2d(x, 2)
    step = 8 // (frames - 1)
    start = (8 - step * (frames - 1)) // 2
    out = torch.full((x.shape[0], frames, 1, 16, 16), -1.0, dtype=x.dtype)
    for i in range(x.shape[0]):
        di = int(d[i])
        for f in range(frames):
            along = start + step * f
            if di in (0, 2):
                along = 8 - along
            r, c = (4, along) if di in (0, 1) else (along, 4)
            out[i, f, :, r : r + 8, c : c + 8] = small[i]
    return out, y.clone(), d.clone()


def centroid_direction(clips: Tensor) -> Tensor:
    """Direction (0..3) of the intensity centroid's displacement from first to last frame.

    Intensity is ``(v + 1) / 2`` (background 0); the axis with the larger absolute displacement
    decides, its sign gives the direction (same numbering as :func:`make_clips`).
    """
    w = (clips[:, :, 0] + 1.0) / 2.0
    mass = w.sum(dim=(-2, -1)).clamp_min(1e-6)
    idx = torch.arange(16, dtype=w.dtype)
    cy = (w.sum(-1) * idx).sum(-1) / mass
    cx = (w.sum(-2) * idx).sum(-1) / mass
    dy, dx = cy[:, -1] - cy[:, 0], cx[:, -1] - cx[:, 0]
    horiz = dx.abs() >= dy.abs()
    return torch.where(
        horiz,
        torch.where(dx < 0, 0, 1),
        torch.where(dy < 0, 2, 3),
    ).to(torch.int64)


def crop_digits(frames: Tensor) -> Tensor:
    """The 8x8 window around each frame's intensity centroid, upsampled to (N, 1, 16, 16).

    Lets a 16x16 digits classifier read the (8x8) moving digit; bilinear, as in ``data.py``.
    """
    w = (frames[:, 0] + 1.0) / 2.0
    mass = w.sum(dim=(-2, -1)).clamp_min(1e-6)
    idx = torch.arange(16, dtype=w.dtype)
    cy = (w.sum(-1) * idx).sum(-1) / mass
    cx = (w.sum(-2) * idx).sum(-1) / mass
    r0 = (cy - 3.5).round().clamp(0, 8).long()
    c0 = (cx - 3.5).round().clamp(0, 8).long()
    crops = torch.stack(
        [
            frames[i, :, r : r + 8, c : c + 8]
            for i, (r, c) in enumerate(zip(r0.tolist(), c0.tolist(), strict=True))
        ]
    )
    return F.interpolate(crops, size=(16, 16), mode="bilinear", align_corners=False).clamp(-1, 1)


class VDiTBlock(nn.Module):
    """adaLN-Zero block attending within a frame (``kind = "spatial"``) or across frames
    (``kind = "temporal"``) on tokens laid out as (N, F, S, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Linear(dim, 6 * dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        n, f, s, dim = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(self.act(c)).chunk(6, dim=1)
        h = modulate(self.norm1(x).reshape(n, f * s, dim), sh1, sc1)
        if self.kind == "spatial":
            a = self.attn(h.reshape(n * f, s, dim)).reshape(n, f * s, dim)
        else:
            ht = h.reshape(n, f, s, dim).transpose(1, 2).reshape(n * s, f, dim)
            a = self.attn(ht).reshape(n, s, f, dim).transpose(1, 2).reshape(n, f * s, dim)
        xf = x.reshape(n, f * s, dim) + g1.unsqueeze(1) * a
        xf = xf + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(xf), sh2, sc2))
        return xf.reshape(n, f, s, dim)


def _sincos_1d(dim: int, length: int) -> Tensor:
    pos = torch.arange(length, dtype=torch.float32)
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2))
    out = pos[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


class VDiT(nn.Module):
    """The Latte-style video DiT of this module; see the module docstring."""

    pos_embed: Tensor
    temp_embed: Tensor

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(cfg)
        size, p, ch = cfg["image_size"], cfg["patch_size"], cfg["in_channels"]
        dim = cfg["hidden_size"]
        self.patch, self.channels, self.grid = p, ch, size // p
        self.x_embedder = PatchEmbed(ch, dim, p)
        self.t_embedder = TimestepEmbedder(dim)
        self.y_embedder = LabelEmbedder(cfg["num_classes"], dim)
        self.d_embedder = LabelEmbedder(cfg["num_directions"], dim)
        self.register_buffer("pos_embed", torch.zeros(1, self.grid**2, dim), persistent=False)
        self.register_buffer("temp_embed", torch.zeros(cfg["max_frames"], 1, dim), persistent=False)
        kinds = ("spatial", "temporal")
        self.blocks = nn.ModuleList(
            VDiTBlock(dim, cfg["num_heads"], cfg["mlp_ratio"], kinds[i % 2])
            for i in range(cfg["depth"])
        )
        self.final_layer = FinalLayer(dim, p, ch)

    def reset_buffers(self) -> None:
        """Recompute the fixed spatial (2-D) and temporal (1-D) sin-cos embeddings."""
        dim = self.pos_embed.shape[-1]
        self.pos_embed.copy_(sincos_pos_embed_2d(dim, self.grid)[None])
        self.temp_embed.copy_(_sincos_1d(dim, self.temp_embed.shape[0])[:, None])

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """DiT reference init from ``generator`` with adaLN-Zero and a zero final linear."""
        init_dit_weights(self, generator)

    def forward(self, x: Tensor, t: Tensor, y: Tensor, d: Tensor) -> Tensor:
        n, f = x.shape[0], x.shape[1]
        if f > self.temp_embed.shape[0]:
            raise ShapeError(f"x: got {f} frames, expected at most {self.temp_embed.shape[0]}")
        tok = self.x_embedder(x.reshape(n * f, *x.shape[2:])) + self.pos_embed
        tok = tok.reshape(n, f, -1, tok.shape[-1]) + self.temp_embed[:f]
        c = self.t_embedder(t) + self.y_embedder(y) + self.d_embedder(d)
        for blk in self.blocks:
            tok = blk(tok, c)
        s, dim = tok.shape[2], tok.shape[3]
        out = self.final_layer(tok.reshape(n, f * s, dim), c)
        g, p, ch = self.grid, self.patch, self.channels
        out = out.reshape(n, f, g, g, p, p, ch).permute(0, 1, 6, 2, 4, 3, 5)
        return out.reshape(n, f, ch, g * p, g * p)


def _check_config(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(
            f"{NAME} config: unknown key {unknown[0]!r}, expected one of {sorted(DEFAULT_CONFIG)}"
        )
    cfg = {**DEFAULT_CONFIG, **config}
    if cfg["image_size"] % cfg["patch_size"]:
        raise ConfigError(
            f"patch_size: got {cfg['patch_size']!r}, expected a divisor of image_size={cfg['image_size']}"
        )
    if cfg["hidden_size"] % cfg["num_heads"] or cfg["hidden_size"] % 4:
        raise ConfigError(
            f"hidden_size: got {cfg['hidden_size']!r}, expected a multiple of 4 and of num_heads={cfg['num_heads']}"
        )
    if not 2 <= cfg["frames"] <= cfg["max_frames"]:
        raise ConfigError(
            f"frames: got {cfg['frames']!r}, expected 2 <= frames <= max_frames={cfg['max_frames']}"
        )
    alphas_cumprod(cfg)
    return cfg


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """The video DiT for ``config`` (missing keys take :data:`DEFAULT_CONFIG`; unknown raise).

    Weights are initialised from ``generator`` (default ``torch_generator(0, NAME, "init")``).
    """
    cfg = _check_config(config)
    model = on_meta(lambda: VDiT(cfg))
    assert isinstance(model, VDiT)
    model.init_weights(generator if generator is not None else torch_generator(0, NAME, "init"))
    return model


def example_inputs(batch: int, generator: torch.Generator) -> tuple[Tensor, ...]:
    """``(x, t, y, d)``: noise ``(batch, 4, 1, 16, 16)``, timesteps, labels 0..10, directions 0..4."""
    x = torch.randn(batch, DEFAULT_CONFIG["frames"], 1, 16, 16, generator=generator)
    t = torch.randint(0, DEFAULT_CONFIG["T"], (batch,), generator=generator)
    y = torch.randint(0, DEFAULT_CONFIG["num_classes"] + 1, (batch,), generator=generator)
    d = torch.randint(0, DEFAULT_CONFIG["num_directions"] + 1, (batch,), generator=generator)
    return x, t, y, d


def sample(
    model: nn.Module,
    y: Tensor,
    d: Tensor,
    *,
    frames: int,
    steps: int,
    guidance: float,
    generator: torch.Generator,
) -> Tensor:
    """DDIM clips ``(N, frames, 1, 16, 16)`` in ``[-1, 1]`` for classes ``y``, directions ``d``."""
    cfg = getattr(model, "config", DEFAULT_CONFIG)
    return ddim_sample(
        lambda x, t, c: model(x, t, c[0], c[1]),
        (len(y), frames, 1, 16, 16),
        (y, d),
        (cfg["null_class"], cfg["null_direction"]),
        alphas_cumprod(cfg),
        steps=steps,
        guidance=guidance,
        generator=generator,
    )


def evaluate_clips(clips: Tensor, y: Tensor, d: Tensor) -> dict[str, float]:
    """``direction_accuracy`` (centroid displacement) and ``class_accuracy`` (classifier on the
    centroid crop of every frame, majority over nothing: each frame counts) of ``clips``."""
    n, f = clips.shape[:2]
    crops = crop_digits(clips.reshape(n * f, 1, 16, 16))
    return {
        "direction_accuracy": float((centroid_direction(clips) == d).float().mean()),
        "class_accuracy": class_accuracy(crops, y.repeat_interleave(f)),
    }


def train(seed: int, out_dir: Path, quick: bool = False) -> dict[str, float]:
    """Train from ``seed`` (deterministic), write ``out_dir/vdit-digits.{pt,json}``, return metrics.

    Training clips: every train digit in all 4 directions (:func:`make_clips`, ``frames``
    frames). ``quick`` runs 10 steps at batch 8 and a 4-clip, 2-step evaluation (tests).
    """
    from accelsim.models.data import digits
    from accelsim.models.train import deterministic, save_checkpoint

    with deterministic(threads=TRAIN_THREADS):
        cfg = dict(DEFAULT_CONFIG)
        model = build(cfg, torch_generator(seed, NAME, "init"))
        x, y = digits("train")
        n = len(y)
        d = torch.arange(4).repeat_interleave(n)
        clips, yy, dd = make_clips(x.repeat(4, 1, 1, 1), y.repeat(4), d, cfg["frames"])
        spec = TrainSpec(
            steps=10 if quick else cfg["train_steps"],
            batch=8 if quick else cfg["batch_size"],
            lr=cfg["lr"],
            ema_decay=cfg["ema_decay"],
            p_uncond=cfg["p_uncond"],
            min_snr_gamma=cfg["min_snr_gamma"],
        )
        metrics = fit_diffusion(
            model,
            lambda xt, t, c: model(xt, t, c[0], c[1]),
            clips,
            (yy, dd),
            (cfg["null_class"], cfg["null_direction"]),
            alphas_cumprod(cfg),
            spec,
            torch_generator(seed, NAME, "train"),
            log_every=0 if quick else 100,
        )
        n_eval = 4 if quick else 80
        labels = torch.arange(n_eval) % 10
        dirs = (torch.arange(n_eval) // 10) % 4
        out = sample(
            model,
            labels,
            dirs,
            frames=cfg["frames"],
            steps=2 if quick else cfg["eval_steps"],
            guidance=cfg["eval_guidance"],
            generator=torch_generator(seed, NAME, "eval"),
        )
        ev = evaluate_clips(out, labels, dirs)
        metrics["sample_direction_accuracy"] = ev["direction_accuracy"]
        metrics["sample_class_accuracy"] = ev["class_accuracy"]
        metrics["params"] = float(sum(p.numel() for p in model.parameters()))
        print(f"{NAME}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        save_checkpoint(out_dir, NAME, cfg, model, metrics, seed)
    return metrics
