"""feature-net: a small CNN digits classifier whose penultimate features feed quality metrics.

Architecture (16x16x1 input): two conv stages of two 3x3 convs (padding 1, ReLU) each followed
by 2x2 max-pooling (16 -> 8 -> 4 pixels), then ``fc`` (flattened ``c2 * 4 * 4`` -> ``features``,
ReLU) and ``head`` (``features`` -> 10 logits). :meth:`FeatureNet.features` returns the
``fc`` output (after ReLU), ``(N, features)``: the embedding for feature distance (the
LPIPS stand-in) and the Frechet distance in :mod:`accelsim.quality`.

Training: AdamW, cosine schedule, random +-1 pixel shifts, on :func:`accelsim.models.data.digits`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from accelsim.models.train import materialize, merge_config, train_classifier

NAME = "feature-net"
KIND = "features"
DESCRIPTION = "4-conv CNN digits classifier (16x16); penultimate 128-d features for quality metrics"

#: Architecture: conv widths of the two stages, feature width.
DEFAULT_CONFIG: dict[str, int | float | str] = {"c1": 32, "c2": 64, "features": 128}
#: Training hyper-parameters (chosen by hand on the train split; 30 epochs ~ 700 steps).
TRAIN_CONFIG: dict[str, int | float] = {
    "epochs": 30,
    "batch": 64,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "max_shift": 1,
}
#: Quick mode (tests): a narrow net and 20 optimizer steps.
QUICK_CONFIG: dict[str, int | float | str] = {"c1": 4, "c2": 8, "features": 16}
QUICK_STEPS = 20


class FeatureNet(nn.Module):
    """CNN classifier with a ``features`` method (see module docstring)."""

    def __init__(self, c1: int, c2: int, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(c2 * 16, features)
        self.head = nn.Linear(features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, D)`` of images ``(N, 1, 16, 16)`` in [-1, 1]."""
        return torch.relu(self.fc(self.body(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, 10)``."""
        return self.head(self.features(x))


def build(config: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
    """A :class:`FeatureNet` for ``config`` (missing keys from DEFAULT_CONFIG)."""
    cfg = merge_config(NAME, DEFAULT_CONFIG, config)
    return materialize(
        lambda: FeatureNet(int(cfg["c1"]), int(cfg["c2"]), int(cfg["features"])), generator, NAME
    )


def example_inputs(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """One forward pass: ``batch`` random images ``(batch, 1, 16, 16)`` in [-1, 1]."""
    return (torch.rand(batch, 1, 16, 16, generator=generator) * 2.0 - 1.0,)


def train(seed: int, out_dir: Path, quick: bool = False) -> dict[str, float]:
    """Train from ``seed``, write ``out_dir/feature-net.{pt,json}``, return the metrics."""
    config = dict(QUICK_CONFIG if quick else DEFAULT_CONFIG)
    return train_classifier(
        NAME, build, config, TRAIN_CONFIG, seed, out_dir, max_steps=QUICK_STEPS if quick else None
    )
