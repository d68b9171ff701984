"""dit-digits: a small class-conditional DiT (Peebles & Xie 2023) on 16x16 digits.

Architecture follows the DiT reference (adaLN-Zero blocks, patch embedding by a strided conv,
sinusoidal timestep MLP, label embedding with one extra null class for classifier-free guidance,
zero-initialised modulation and final layer), scaled down: patch 2 on 16x16 -> 64 tokens,
hidden 128, 4 blocks, 4 heads, MLP ratio 2. Module paths (``blocks.i.attn.qkv`` ...) follow the
reference so the interceptor can infer block and layer type.

``forward(x, t, y)``: ``x`` (N, 1, 16, 16) noisy image in [-1, 1] scale, ``t`` int64 (N,) in
``[0, T)``, ``y`` int64 (N,) class 0..9 or 10 = null; returns predicted noise (N, 1, 16, 16).
Schedule and prediction conventions: :mod:`accelsim.models.diffusion_schedule`.

Training (:func:`train`): AdamW lr 1e-3 (50-step warm-up), batch 32, 2000 steps, 10 % label
dropout, Min-SNR-5 loss weighting (Hang et al. 2023: faster convergence of ViT denoisers), EMA
0.995 of the weights is what is saved; one torch thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
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

NAME = "dit-digits"
KIND = "diffusion"
DESCRIPTION = "Class-conditional DiT (adaLN-Zero, patch 2, 4 blocks, hidden 128) on 16x16 digits"

DEFAULT_CONFIG: dict[str, Any] = {
    **SCHEDULE_DEFAULTS,
    "image_size": 16,
    "in_channels": 1,
    "patch_size": 2,
    "hidden_size": 128,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "num_classes": 10,
    "null_class": 10,
    "p_uncond": 0.1,
    "train_steps": 2000,
    "batch_size": 32,
    "lr": 1e-3,
    "ema_decay": 0.995,
    "min_snr_gamma": 5.0,
    "eval_guidance": 3.0,
    "eval_steps": 20,
}


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation ``x * (1 + scale) + shift`` broadcast over tokens (DiT Sec. 3.2)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches -> tokens via a strided conv (``proj``)."""

    def __init__(self, in_channels: int, hidden: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    """Sinusoidal frequency embedding (256 dims, as in DiT) followed by ``mlp`` (Linear-SiLU-Linear)."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))


class LabelEmbedder(nn.Module):
    """Embedding table with ``num_classes + 1`` rows; the last row is the null (CFG) class."""

    def __init__(self, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden)

    def forward(self, y: Tensor) -> Tensor:
        return self.embedding_table(y)


class Attention(nn.Module):
    """Multi-head self-attention with fused ``qkv`` and output ``proj`` Linear layers."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``fc1`` - GELU(tanh) - ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block (DiT Fig. 3): 6 modulation vectors from the condition."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Linear(dim, 6 * dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN_modulation(self.act(c)).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), sh1, sc1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sh2, sc2))


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and ``linear`` projection back to patch pixels."""

    def __init__(self, dim: int, patch: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Linear(dim, 2 * dim)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(self.act(c)).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def sincos_pos_embed_2d(dim: int, grid: int) -> Tensor:
    """Fixed 2-D sin-cos position embedding ``(grid*grid, dim)`` (as in MAE / DiT)."""
    coords = torch.arange(grid, dtype=torch.float32)
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")

    def one(pos: Tensor, d: int) -> Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float32) / (d / 2))
        out = pos.reshape(-1)[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([one(gy, dim // 2), one(gx, dim // 2)], dim=1)


def init_dit_weights(model: nn.Module, generator: torch.Generator) -> None:
    """DiT reference init of ``model`` from ``generator``: Xavier linears, N(0, 0.02) timestep
    MLP and label tables, every ``adaLN_modulation`` and ``final_layer.linear`` set to zero."""
    init_module(model, generator)
    for name, m in model.named_modules():
        if not isinstance(m, nn.Linear):
            continue
        if name.startswith("t_embedder.mlp."):
            nn.init.normal_(m.weight, std=0.02, generator=generator)
        elif name.endswith("adaLN_modulation") or name == "final_layer.linear":
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)


class DiT(nn.Module):
    """Class-conditional DiT predicting eps; see the module docstring for the interface."""

    pos_embed: Tensor

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        size, p, ch = config["image_size"], config["patch_size"], config["in_channels"]
        dim = config["hidden_size"]
        self.patch, self.channels, self.grid = p, ch, size // p
        self.num_classes = config["num_classes"]
        self.x_embedder = PatchEmbed(ch, dim, p)
        self.t_embedder = TimestepEmbedder(dim)
        self.y_embedder = LabelEmbedder(config["num_classes"], dim)
        self.register_buffer("pos_embed", torch.zeros(1, self.grid**2, dim), persistent=False)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, config["num_heads"], config["mlp_ratio"]) for _ in range(config["depth"])
        )
        self.final_layer = FinalLayer(dim, p, ch)

    def reset_buffers(self) -> None:
        """Recompute the fixed sin-cos position embedding (not saved in the state dict)."""
        self.pos_embed.copy_(sincos_pos_embed_2d(self.pos_embed.shape[-1], self.grid)[None])

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """DiT reference init from ``generator``: Xavier linears, N(0, 0.02) timestep MLP and
        label table, adaLN-Zero modulations and the final linear set to zero."""
        init_dit_weights(self, generator)

    def unpatchify(self, x: Tensor) -> Tensor:
        n, g, p, c = x.shape[0], self.grid, self.patch, self.channels
        x = x.reshape(n, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, c, g * p, g * p)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c)
        return self.unpatchify(self.final_layer(h, c))


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
    alphas_cumprod(cfg)
    return cfg


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """The DiT for ``config`` (missing keys take :data:`DEFAULT_CONFIG`; unknown keys raise).

    Weights are initialised from ``generator`` (default ``torch_generator(0, NAME, "init")``).
    """
    cfg = _check_config(config)
    model = on_meta(lambda: DiT(cfg))
    assert isinstance(model, DiT)
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
    """Train from ``seed`` (deterministic), write ``out_dir/dit-digits.{pt,json}``, return metrics.

    ``quick`` runs 10 steps at batch 8 and a 10-sample, 2-step evaluation (for tests).
    """
    from accelsim.models.data import digits
    from accelsim.models.train import deterministic, save_checkpoint

    with deterministic(threads=TRAIN_THREADS):
        return _train(seed, out_dir, quick, save_checkpoint, digits)


def _train(seed: int, out_dir: Path, quick: bool, save: Any, digits: Any) -> dict[str, float]:
    cfg = dict(DEFAULT_CONFIG)
    model = build(cfg, torch_generator(seed, NAME, "init"))
    x, y = digits("train")
    spec = TrainSpec(
        steps=10 if quick else cfg["train_steps"],
        batch=8 if quick else cfg["batch_size"],
        lr=cfg["lr"],
        ema_decay=cfg["ema_decay"],
        p_uncond=cfg["p_uncond"],
        min_snr_gamma=cfg["min_snr_gamma"],
    )
    abar = alphas_cumprod(cfg)
    metrics = fit_diffusion(
        model,
        lambda xt, t, c: model(xt, t, c[0]),
        x,
        (y,),
        (cfg["null_class"],),
        abar,
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
    save(out_dir, NAME, cfg, model, metrics, seed)
    return metrics
