"""DDPM noise schedules and timestep respacing.

A model is trained on ``T`` steps with betas from ``beta_start`` to ``beta_end``; sampling with
fewer steps uses a subsequence of the training timesteps with the respaced betas
``beta_i = 1 - abar(t_i) / abar(t_{i-1})`` (Nichol & Dhariwal 2021, "Improved DDPM", s4), so
DDPM ancestral sampling and DDIM (Song et al. 2021, eq. 12) share one schedule object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from accelsim.config import check_choice, check_float, check_int
from accelsim.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class NoiseSchedule:
    """The training noise schedule: ``T`` steps, betas ``beta_start..beta_end`` (``linear``, as
    in Ho et al. 2020: 1e-4..0.02 over 1000 steps) or the ``cosine`` schedule (Nichol &
    Dhariwal 2021, s3.2, offset 0.008); the model predicts ``eps`` (the noise)."""

    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    schedule: str = "linear"
    prediction: str = "eps"

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", check_int("diffusion.T", self.T, 2, 100_000))
        object.__setattr__(
            self, "beta_start", check_float("diffusion.beta_start", self.beta_start, 0.0, 0.5)
        )
        object.__setattr__(
            self, "beta_end", check_float("diffusion.beta_end", self.beta_end, 0.0, 0.999)
        )
        check_choice("diffusion.schedule", self.schedule, SCHEDULES)
        check_choice("diffusion.prediction", self.prediction, ("eps",))
        if self.beta_end < self.beta_start:
            raise ConfigError(
                f"diffusion.beta_end: got {self.beta_end:g}, expected >= beta_start "
                f"({self.beta_start:g})"
            )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NoiseSchedule:
        """The schedule recorded in a model's config (keys ``T``, ``beta_start``, ``beta_end``,
        ``schedule``, ``prediction``; missing keys take the DDPM defaults)."""
        keys = ("T", "beta_start", "beta_end", "schedule", "prediction")
        return cls(**{k: config[k] for k in keys if k in config})

    def betas(self) -> FloatArray:
        """Training betas, shape ``(T,)``."""
        if self.schedule == "linear":
            return np.linspace(self.beta_start, self.beta_end, self.T, dtype=np.float64)
        s = 0.008
        steps = np.arange(self.T + 1, dtype=np.float64) / self.T
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        betas = np.asarray(np.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999), dtype=np.float64)
        return betas

    def alphas_cumprod(self) -> FloatArray:
        """``abar(t) = prod_{s <= t} (1 - beta_s)``, shape ``(T,)``."""
        return np.asarray(np.cumprod(1.0 - self.betas()), dtype=np.float64)

    def timesteps(self, steps: int) -> npt.NDArray[np.int64]:
        """``steps`` training timesteps to sample at, descending from ``T - 1`` to 0 (evenly
        spaced, "trailing" spacing so the first step starts from pure noise)."""
        steps = check_int("steps", steps, 1, self.T)
        ts = np.round(np.linspace(self.T - 1, 0, steps)).astype(np.int64)
        return np.asarray(ts, dtype=np.int64)
