"""vit-digits: a small Vision Transformer classifying the 16x16 digits.

Architecture (ViT, Dosovitskiy et al. 2021, pre-norm): the 16x16 image is cut into 16
non-overlapping 4x4 patches, each embedded by ``patch_embed`` (Linear 16 -> ``dim``); a learned
class token is prepended and a learned positional embedding added (17 tokens). ``depth``
encoder blocks ``blocks.<i>`` each hold ``norm1``, ``attn`` (``attn.qkv`` Linear dim -> 3 dim,
explicit ``q k^T`` and ``p v`` matmuls per head, ``attn.proj``), ``norm2`` and ``mlp``
(``mlp.fc1``, GELU, ``mlp.fc2``). The final ``norm`` of the class token feeds ``head`` (10 logits).

The attention uses explicit ``torch.matmul`` (not ``scaled_dot_product_attention``) so an
interceptor sees the score and value products as ordinary GEMMs. :class:`Block` and
:class:`Attention` are shared with :mod:`accelsim.models.gpt_tiny`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from accelsim.models.train import materialize, merge_config, train_classifier

NAME = "vit-digits"
KIND = "classifier"
DESCRIPTION = "ViT on 16x16 digits: 4x4 patches, CLS token, 4 pre-norm encoder blocks, dim 64"

#: Architecture. ``patch`` in pixels; ``mlp`` is the hidden width of each block's MLP.
DEFAULT_CONFIG: dict[str, int | float | str] = {
    "image": 16,
    "patch": 4,
    "dim": 64,
    "depth": 4,
    "heads": 4,
    "mlp": 128,
}
#: Training hyper-parameters (chosen by hand; 100 epochs ~ 2300 AdamW steps).
TRAIN_CONFIG: dict[str, int | float] = {
    "epochs": 100,
    "batch": 64,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "max_shift": 1,
}
#: Quick mode (tests): one narrow block, 20 optimizer steps.
QUICK_CONFIG: dict[str, int | float | str] = {
    "image": 16,
    "patch": 4,
    "dim": 16,
    "depth": 1,
    "heads": 2,
    "mlp": 32,
}
QUICK_STEPS = 20


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` Linear and explicit matmuls."""

    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        if dim % heads:
            from accelsim.errors import ConfigError

            raise ConfigError(f"heads: got {heads}, expected a divisor of dim={dim}")
        self.heads = heads
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, dim) -> (B, T, dim)."""
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    """``fc1`` -> GELU -> ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., dim) -> (..., dim)."""
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1 x)``, then ``x + mlp(norm2 x)``."""

    def __init__(self, dim: int, heads: int, hidden: int, causal: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, dim) -> (B, T, dim)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Vision Transformer classifier (see module docstring)."""

    def __init__(self, image: int, patch: int, dim: int, depth: int, heads: int, mlp: int) -> None:
        super().__init__()
        if image % patch:
            from accelsim.errors import ConfigError

            raise ConfigError(f"patch: got {patch}, expected a divisor of image={image}")
        self.patch = patch
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Linear(patch * patch, dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 1, H, W)`` in [-1, 1] -> logits ``(N, 10)``."""
        n, c, h, w = x.shape
        p = self.patch
        patches = (
            x.reshape(n, c, h // p, p, w // p, p)
            .permute(0, 2, 4, 1, 3, 5)
            .reshape(n, -1, c * p * p)
        )
        z = torch.cat([self.cls_token.expand(n, -1, -1), self.patch_embed(patches)], dim=1)
        z = z + self.pos_embed
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, 0]))


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """A :class:`ViT` for ``config`` (missing keys from DEFAULT_CONFIG)."""
    cfg = merge_config(NAME, DEFAULT_CONFIG, config)
    return materialize(
        lambda: ViT(*(int(cfg[k]) for k in ("image", "patch", "dim", "depth", "heads", "mlp"))),
        generator,
        NAME,
    )


def example_inputs(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """One forward pass: ``batch`` random images ``(batch, 1, 16, 16)`` in [-1, 1]."""
    return (torch.rand(batch, 1, 16, 16, generator=generator) * 2.0 - 1.0,)


def train(seed: int, out_dir: Path, quick: bool = False) -> dict[str, float]:
    """Train from ``seed``, write ``out_dir/vit-digits.{pt,json}``, return the metrics."""
    config = dict(QUICK_CONFIG if quick else DEFAULT_CONFIG)
    return train_classifier(
        NAME, build, config, TRAIN_CONFIG, seed, out_dir, max_steps=QUICK_STEPS if quick else None
    )
