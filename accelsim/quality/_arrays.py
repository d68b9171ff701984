"""Input normalisation shared by the quality metrics (torch or numpy in, float64 numpy out)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from accelsim.errors import ConfigError, ShapeError


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested sequence) as a float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError(f"{name}: got {type(x).__name__}, expected a numeric array") from None


def images_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two image batches ``(N, C, H, W)`` or ``(N, F, C, H, W)`` of equal shape, as float64."""
    x, y = to_numpy(a, "a"), to_numpy(b, "b")
    if x.ndim not in (4, 5):
        raise ShapeError(f"a: got shape {x.shape}, expected (N, C, H, W) or (N, F, C, H, W)")
    if x.shape != y.shape:
        raise ShapeError(f"b: got shape {y.shape}, expected a's shape {x.shape}")
    if x.size == 0:
        raise ShapeError(f"a: got an empty batch {x.shape}, expected at least one image")
    return x, y


def check_data_range(data_range: float) -> float:
    """``data_range`` if it is a finite number > 0, else a ConfigError."""
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, int | float | np.floating)
        or not math.isfinite(data_range)
        or data_range <= 0
    ):
        raise ConfigError(f"data_range: got {data_range!r}, expected a finite number > 0")
    return float(data_range)


def finite_or_none(x: float | None) -> float | None:
    """``x`` as a float, or None when it is None, NaN or infinite (JSON has no inf)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
