"""Image fidelity against a golden run: PSNR and SSIM.

Images are ``(N, C, H, W)`` or videos ``(N, F, C, H, W)`` (numpy or torch), values in a range of
width ``data_range`` (default 2.0: images in [-1, 1]). Per-image functions return one value per
image (shape ``(N,)`` or ``(N, F)`` for videos: one per frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelsim.errors import ConfigError, ShapeError
from accelsim.quality._arrays import check_data_range, images_pair

#: SSIM constants of Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error
#: visibility to structural similarity", IEEE TIP 13(4), 2004 (Sec. III-C): 11x11 circular-
#: symmetric Gaussian window with sigma 1.5 (normalised to unit sum), K1 = 0.01, K2 = 0.03.
SSIM_WIN_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def mse_per_image(a: Any, b: Any) -> np.ndarray:
    """Mean squared error per image (per frame for videos)."""
    x, y = images_pair(a, b)
    return np.mean((x - y) ** 2, axis=(-3, -2, -1))


def psnr_per_image(a: Any, b: Any, data_range: float = 2.0) -> np.ndarray:
    """PSNR in dB per image, ``10 log10(data_range^2 / MSE)``; ``inf`` for identical images."""
    r = check_data_range(data_range)
    mse = mse_per_image(a, b)
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10.0 * np.log10(r * r / np.where(mse > 0, mse, 1.0)), np.inf)


def psnr(a: Any, b: Any, data_range: float = 2.0) -> float:
    """PSNR in dB of the whole batch (MSE over all pixels of all images); ``inf`` if identical.

    (The mean of :func:`psnr_per_image` is another common convention; it is ``inf`` as soon as
    one image is identical.) Use :func:`accelsim.quality.finite_or_none` for JSON output.
    """
    r = check_data_range(data_range)
    x, y = images_pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(r * r / mse))


def gaussian_window(win_size: int = SSIM_WIN_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D Gaussian of the separable SSIM window (unit sum), length ``win_size``."""
    if (
        isinstance(win_size, bool)
        or not isinstance(win_size, int)
        or win_size < 1
        or win_size % 2 == 0
    ):
        raise ConfigError(f"win_size: got {win_size!r}, expected an odd integer >= 1")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"sigma: got {sigma!r}, expected a finite number > 0")
    r = np.arange(win_size) - (win_size - 1) / 2
    g = np.exp(-(r**2) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the last two axes with the 1-D window ``g``."""
    t = sliding_window_view(x, g.size, axis=-1) @ g
    return sliding_window_view(t, g.size, axis=-2) @ g


def ssim_map(
    a: Any,
    b: Any,
    data_range: float = 2.0,
    *,
    win_size: int = SSIM_WIN_SIZE,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """Local SSIM map ``(..., C, H - win + 1, W - win + 1)`` (Wang et al. 2004, eq. 13).

    Gaussian-weighted local means, variances and covariance (population form, no
    ``n/(n-1)`` correction), computed only where the window fits inside the image ('valid',
    as the authors' ``ssim_index.m``; equal to scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``, which crops the same
    border). ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = data_range``.
    """
    r = check_data_range(data_range)
    x, y = images_pair(a, b)
    g = gaussian_window(win_size, sigma)
    if x.shape[-1] < win_size or x.shape[-2] < win_size:
        raise ShapeError(
            f"ssim: got images {x.shape[-2]}x{x.shape[-1]}, expected H, W >= win_size "
            f"{win_size} (pass a smaller odd win_size)"
        )
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mx * mx
    syy = _filter_valid(y * y, g) - my * my
    sxy = _filter_valid(x * y, g) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return num / den


def ssim_per_image(
    a: Any,
    b: Any,
    data_range: float = 2.0,
    *,
    win_size: int = SSIM_WIN_SIZE,
    sigma: float = SSIM_SIGMA,
) -> np.ndarray:
    """Mean SSIM per image (over channels and window positions; per frame for videos)."""
    m = ssim_map(a, b, data_range, win_size=win_size, sigma=sigma)
    return m.mean(axis=(-3, -2, -1))


def ssim(
    a: Any,
    b: Any,
    data_range: float = 2.0,
    *,
    win_size: int = SSIM_WIN_SIZE,
    sigma: float = SSIM_SIGMA,
) -> float:
    """Mean SSIM over all images (1.0 for identical images)."""
    return float(ssim_per_image(a, b, data_range, win_size=win_size, sigma=sigma).mean())
