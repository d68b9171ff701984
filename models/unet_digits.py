"""unet-digits: a small Stable-Diffusion-style UNet (class-conditional via cross-attention).

Layout and module names follow diffusers' ``UNet2DConditionModel`` (Rombach et al. 2022, the
SD UNet) so the interceptor infers block and layer type from paths:

* a fixed, lossless 2x2 space-to-depth (``pixel_unshuffle``) turns the 16x16x1 image into an
  8x8x4 "latent" (the role of SD's VAE downsampling; the digits are 8x8 at source, so nothing is
  lost) and ``pixel_shuffle`` maps the output back;
* ``conv_in`` (4 -> 32 channels), ``time_embedding.linear_1/linear_2`` (sinusoidal 32 -> 128),
  ``class_embedding`` (11 rows: 10 classes + null) producing ``context_tokens`` context tokens of
  ``context_dim`` for cross-attention;
* ``down_blocks.0`` (8x8, 32 ch) and ``down_blocks.1`` (4x4, 64 ch), each one ResNet block
  (``resnets.0``: ``norm1``, ``conv1``, ``time_emb_proj``, ``norm2``, ``conv2``, optional
  ``conv_shortcut``), one transformer (``attentions.0``: ``norm``, ``proj_in``,
  ``transformer_blocks.0.{attn1,attn2}.{to_q,to_k,to_v,to_out}``, ``ff.fc1/fc2``, ``proj_out``)
  and a strided-conv ``downsamplers.0.conv``;
* ``mid_block`` at 2x2 (64 ch): ResNet, transformer, ResNet;
* ``up_blocks.0`` (4x4, 64 ch) and ``up_blocks.1`` (8x8, 32 ch): nearest upsample +
  ``upsamplers.0.conv``, skip concatenation, ResNet, transformer;
* ``conv_norm_out``, ``conv_out``.

``forward(x, t, y)``: ``x`` (N, 1, 16, 16), ``t`` int64 (N,) in ``[0, T)``, ``y`` int64 (N,) class
0..9 or 10 = null; returns predicted noise (N, 1, 16, 16). Schedule / prediction conventions:
:mod:`accelsim.models.diffusion_schedule`.

Training (:func:`train`): AdamW lr 1e-3 (50-step warm-up), batch 32, 1000 steps, 10 % label
dropout, plain eps-MSE, EMA 0.995 saved; one torch thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelsim.errors import ConfigError
from accelsim.models.diffusion_schedule import (
    SCHEDULE_DEFAULTS,
    TrainSpec,
    alphas_cumprod,
    class_accuracy,
    fit_diffusion,
    image_example_inputs,
    init_module,
    on_meta,
    sample_images,
    timestep_embedding,
)
from accelsim.rng import torch_generator

TRAIN_THREADS = 1
"""torch threads while training: one thread wastes nothing on a shared, oversubscribed machine."""

NAME = "unet-digits"
KIND = "diffusion"
DESCRIPTION = (
    "Class-conditional SD-style UNet (ResNet + self/cross-attention, 32/64 ch) on 16x16 digits"
)

DEFAULT_CONFIG: dict[str, Any] = {
    **SCHEDULE_DEFAULTS,
    "image_size": 16,
    "in_channels": 1,
    "channels_0": 32,
    "channels_1": 64,
    "groups": 8,
    "heads": 2,
    "context_dim": 64,
    "context_tokens": 4,
    "temb_dim": 128,
    "num_classes": 10,
    "null_class": 10,
    "p_uncond": 0.1,
    "train_steps": 1000,
    "batch_size": 32,
    "lr": 1e-3,
    "ema_decay": 0.995,
    "eval_guidance": 3.0,
    "eval_steps": 20,
}


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, + projected time embedding, GroupNorm-SiLU-conv3x3, residual."""

    def __init__(self, cin: int, cout: int, temb: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return skip + h


class CrossAttention(nn.Module):
    """Multi-head attention with separate ``to_q``, ``to_k``, ``to_v`` and ``to_out`` Linears.

    Self-attention when ``context`` is None, otherwise keys/values come from ``context``.
    """

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        ctx = x if context is None else context
        b, n, c = x.shape
        h, d = self.heads, c // self.heads
        q = self.to_q(x).reshape(b, n, h, d).transpose(1, 2)
        k = self.to_k(ctx).reshape(b, -1, h, d).transpose(1, 2)
        v = self.to_v(ctx).reshape(b, -1, h, d).transpose(1, 2)
        attn = ((q @ k.transpose(-2, -1)) * d**-0.5).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, c))


class FeedForward(nn.Module):
    """``fc1`` - GELU - ``fc2`` with a 4x hidden width (SD uses GEGLU; plain GELU here)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class BasicTransformerBlock(nn.Module):
    """Pre-LN self-attention (``attn1``), cross-attention (``attn2``) and ``ff``, residual each."""

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = CrossAttention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    """GroupNorm, ``proj_in`` to tokens, one :class:`BasicTransformerBlock`, ``proj_out``, residual."""

    def __init__(self, dim: int, context_dim: int, heads: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(dim, context_dim, heads)])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        for blk in self.transformer_blocks:
            h = blk(h, context)
        h = self.proj_out(h).transpose(1, 2).reshape(b, c, hh, ww)
        return x + h


class Downsample(nn.Module):
    """Stride-2 3x3 ``conv``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest 2x upsampling followed by a 3x3 ``conv``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """One ResNet (``resnets.0``), one transformer (``attentions.0``), ``downsamplers.0``."""

    def __init__(self, cin: int, cout: int, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin, cout, cfg["temb_dim"], cfg["groups"])])
        self.attentions = nn.ModuleList(
            [Transformer2D(cout, cfg["context_dim"], cfg["heads"], cfg["groups"])]
        )
        self.downsamplers = nn.ModuleList([Downsample(cout)])

    def forward(self, x: Tensor, temb: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (downsampled output, skip activation at the input resolution)."""
        h = self.attentions[0](self.resnets[0](x, temb), context)
        return self.downsamplers[0](h), h


class MidBlock(nn.Module):
    """ResNet (``resnets.0``), transformer (``attentions.0``), ResNet (``resnets.1``)."""

    def __init__(self, ch: int, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock(ch, ch, cfg["temb_dim"], cfg["groups"]) for _ in range(2)]
        )
        self.attentions = nn.ModuleList(
            [Transformer2D(ch, cfg["context_dim"], cfg["heads"], cfg["groups"])]
        )

    def forward(self, x: Tensor, temb: Tensor, context: Tensor) -> Tensor:
        h = self.resnets[0](x, temb)
        h = self.attentions[0](h, context)
        return self.resnets[1](h, temb)


class UpBlock(nn.Module):
    """``upsamplers.0``, concatenation with the skip, ResNet (``resnets.0``), transformer."""

    def __init__(self, cin: int, cskip: int, cout: int, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.upsamplers = nn.ModuleList([Upsample(cin)])
        self.resnets = nn.ModuleList(
            [ResnetBlock(cin + cskip, cout, cfg["temb_dim"], cfg["groups"])]
        )
        self.attentions = nn.ModuleList(
            [Transformer2D(cout, cfg["context_dim"], cfg["heads"], cfg["groups"])]
        )

    def forward(self, x: Tensor, skip: Tensor, temb: Tensor, context: Tensor) -> Tensor:
        h = torch.cat([self.upsamplers[0](x), skip], dim=1)
        return self.attentions[0](self.resnets[0](h, temb), context)


class TimestepEmbedding(nn.Module):
    """``linear_1`` - SiLU - ``linear_2`` on the sinusoidal embedding."""

    def __init__(self, cin: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class UNet(nn.Module):
    """The SD-style UNet of this module; see the module docstring."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(cfg)
        c0, c1, ch_in = cfg["channels_0"], cfg["channels_1"], 4 * cfg["in_channels"]
        self.freq_dim = c0
        self.conv_in = nn.Conv2d(ch_in, c0, 3, padding=1)
        self.time_embedding = TimestepEmbedding(c0, cfg["temb_dim"])
        self.class_embedding = nn.Embedding(
            cfg["num_classes"] + 1, cfg["context_tokens"] * cfg["context_dim"]
        )
        self.down_blocks = nn.ModuleList([DownBlock(c0, c0, cfg), DownBlock(c0, c1, cfg)])
        self.mid_block = MidBlock(c1, cfg)
        self.up_blocks = nn.ModuleList([UpBlock(c1, c1, c1, cfg), UpBlock(c1, c0, c0, cfg)])
        self.conv_norm_out = nn.GroupNorm(cfg["groups"], c0)
        self.conv_out = nn.Conv2d(c0, ch_in, 3, padding=1)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """Xavier convs/linears from ``generator``; residual-branch outputs (``conv2`` of every
        ResNet, ``proj_out`` of every transformer, ``conv_out``) start at zero (diffusers'
        ``zero_module`` convention), so every block starts as the identity."""
        init_module(self, generator)
        for m in self.modules():
            if isinstance(m, ResnetBlock):
                nn.init.zeros_(m.conv2.weight)
            elif isinstance(m, Transformer2D):
                nn.init.zeros_(m.proj_out.weight)
        nn.init.zeros_(self.conv_out.weight)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        temb = self.time_embedding(timestep_embedding(t, self.freq_dim))
        context = self.class_embedding(y).reshape(
            len(y), self.config["context_tokens"], self.config["context_dim"]
        )
        h = self.conv_in(F.pixel_unshuffle(x, 2))
        skips = []
        for down in self.down_blocks:
            h, skip = down(h, temb, context)
            skips.append(skip)
        h = self.mid_block(h, temb, context)
        for up in self.up_blocks:
            h = up(h, skips.pop(), temb, context)
        return F.pixel_shuffle(self.conv_out(F.silu(self.conv_norm_out(h))), 2)


def _check_config(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(
            f"{NAME} config: unknown key {unknown[0]!r}, expected one of {sorted(DEFAULT_CONFIG)}"
        )
    cfg = {**DEFAULT_CONFIG, **config}
    for key in ("channels_0", "channels_1"):
        if cfg[key] % cfg["groups"] or cfg[key] % cfg["heads"]:
            raise ConfigError(
                f"{key}: got {cfg[key]!r}, expected a multiple of groups={cfg['groups']} and heads={cfg['heads']}"
            )
    if cfg["image_size"] % 8:
        raise ConfigError(f"image_size: got {cfg['image_size']!r}, expected a multiple of 8")
    alphas_cumprod(cfg)
    return cfg


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """The UNet for ``config`` (missing keys take :data:`DEFAULT_CONFIG`; unknown keys raise).

    Weights are initialised from ``generator`` (default ``torch_generator(0, NAME, "init")``).
    """
    cfg = _check_config(config)
    model = on_meta(lambda: UNet(cfg))
    assert isinstance(model, UNet)
    model.init_weights(generator if generator is not None else torch_generator(0, NAME, "init"))
    return model


def example_inputs(batch: int, generator: torch.Generator) -> tuple[Tensor, ...]:
    """``(x, t, y)``: noise ``(batch, 1, 16, 16)``, timesteps in ``[0, T)``, labels in ``0..10``."""
    return image_example_inputs(batch, generator, DEFAULT_CONFIG)


def sample(
    model: nn.Module,
    y: Tensor,
    *,
    steps: int,
    guidance: float,
    generator: torch.Generator,
) -> Tensor:
    """DDIM samples ``(N, 1, 16, 16)`` in ``[-1, 1]`` for class labels ``y`` with CFG ``guidance``."""
    return sample_images(
        model, y, DEFAULT_CONFIG, steps=steps, guidance=guidance, generator=generator
    )


def train(seed: int, out_dir: Path, quick: bool = False) -> dict[str, float]:
    """Train from ``seed`` (deterministic), write ``out_dir/unet-digits.{pt,json}``, return metrics.

    ``quick`` runs 10 steps at batch 8 and a 10-sample, 2-step evaluation (for tests).
    """
    from accelsim.models.data import digits
    from accelsim.models.train import deterministic, save_checkpoint

    with deterministic(threads=TRAIN_THREADS):
        cfg = dict(DEFAULT_CONFIG)
        model = build(cfg, torch_generator(seed, NAME, "init"))
        x, y = digits("train")
        spec = TrainSpec(
            steps=10 if quick else cfg["train_steps"],
            batch=8 if quick else cfg["batch_size"],
            lr=cfg["lr"],
            ema_decay=cfg["ema_decay"],
            p_uncond=cfg["p_uncond"],
        )
        metrics = fit_diffusion(
            model,
            lambda xt, t, c: model(xt, t, c[0]),
            x,
            (y,),
            (cfg["null_class"],),
            alphas_cumprod(cfg),
            spec,
            torch_generator(seed, NAME, "train"),
            log_every=0 if quick else 100,
        )
        n_eval = 10 if quick else 100
        labels = torch.arange(n_eval) % 10
        imgs = sample(
            model,
            labels,
            steps=2 if quick else cfg["eval_steps"],
            guidance=cfg["eval_guidance"],
            generator=torch_generator(seed, NAME, "eval"),
        )
        metrics["sample_class_accuracy"] = class_accuracy(imgs, labels)
        metrics["params"] = float(sum(p.numel() for p in model.parameters()))
        print(f"{NAME}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        save_checkpoint(out_dir, NAME, cfg, model, metrics, seed)
    return metrics
