"""PSNR and SSIM against known values and a plain-loop SSIM reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accelsim.errors import ConfigError, ShapeError
from accelsim.quality import (
    finite_or_none,
    image_summary,
    psnr,
    psnr_per_image,
    ssim,
    ssim_per_image,
)
from accelsim.quality.images import ssim_map


def _ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float = 1.5) -> float:
    """Wang et al. 2004 SSIM of one (C, H, W) image pair by explicit loops over window positions."""
    win = 11
    r = np.arange(win) - 5
    g = np.exp(-(r**2) / (2 * sigma**2))
    w2 = np.outer(g, g)
    w2 /= w2.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - win + 1):
            for j in range(x.shape[2] - win + 1):
                px = x[c, i : i + win, j : j + win]
                py = y[c, i : i + win, j : j + win]
                mx, my = np.sum(w2 * px), np.sum(w2 * py)
                vx = np.sum(w2 * (px - mx) ** 2)
                vy = np.sum(w2 * (py - my) ** 2)
                cxy = np.sum(w2 * (px - mx) * (py - my))
                vals.append(
                    ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                )
    return float(np.mean(vals))


def _images(seed: int, shape=(3, 2, 16, 16)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape)


def test_psnr_of_known_noise():
    a = _images(0, (2, 1, 16, 16))
    sign = np.where(np.random.default_rng(1).random(a.shape) < 0.5, -1.0, 1.0)
    b = a + 0.1 * sign  # MSE exactly 0.01 per image
    expected = 10 * math.log10(4.0 / 0.01)  # data_range 2 -> 26.0206 dB
    np.testing.assert_allclose(psnr_per_image(a, b), [expected, expected], rtol=1e-12)
    assert psnr(a, b) == pytest.approx(expected, rel=1e-12)
    assert psnr(a, b, data_range=1.0) == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-12)
    assert psnr(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-6)
    # negative: twice the noise amplitude is 6.02 dB worse
    assert psnr(a, a + 0.2 * sign) == pytest.approx(expected - 20 * math.log10(2), rel=1e-12)


def test_psnr_identical_is_inf_and_none_in_json():
    a = _images(2)
    assert psnr(a, a) == math.inf
    assert np.all(np.isinf(psnr_per_image(a, a)))
    assert finite_or_none(psnr(a, a)) is None
    summary = image_summary(a, a)
    assert summary["psnr"] is None and summary["ssim"] == pytest.approx(1.0)
    b = a.copy()
    b[0, 0, 0, 0] += 0.5
    assert psnr_per_image(a, b)[1] == math.inf and np.isfinite(psnr_per_image(a, b)[0])


def test_ssim_identical_is_one_and_video_shape():
    a = _images(3)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    v = _images(4, (2, 3, 1, 16, 16))
    assert ssim_per_image(v, v + 0.01).shape == (2, 3)
    assert psnr_per_image(v, v + 0.01).shape == (2, 3)


def test_ssim_matches_loop_reference_on_16x16():
    a = _images(5)
    b = np.clip(a + 0.3 * np.random.default_rng(6).standard_normal(a.shape), -1, 1)
    per = ssim_per_image(a, b)
    for n in range(a.shape[0]):
        assert per[n] == pytest.approx(_ssim_reference(a[n], b[n], 2.0), abs=1e-12)
    assert ssim_map(a, b).shape == (3, 2, 6, 6)
    # negative: a wrong window (sigma 1.0) gives a visibly different value
    wrong = ssim_per_image(a, b, sigma=1.0)
    assert abs(wrong[0] - _ssim_reference(a[0], b[0], 2.0)) > 1e-3


def test_ssim_constant_images_closed_form():
    # constant patches: variances 0, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1)
    a = np.full((1, 1, 16, 16), 0.2)
    b = np.full((1, 1, 16, 16), -0.4)
    c1 = (0.01 * 2.0) ** 2
    expected = (2 * 0.2 * -0.4 + c1) / (0.2**2 + 0.4**2 + c1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_bad_inputs():
    a = _images(7)
    with pytest.raises(ShapeError, match="expected a's shape"):
        psnr(a, a[:2])
    with pytest.raises(ShapeError, match=r"expected \(N, C, H, W\)"):
        ssim(a[0], a[0])
    with pytest.raises(ShapeError, match="win_size 11"):
        ssim(a[..., :8, :8], a[..., :8, :8])
    assert ssim(a[..., :8, :8], a[..., :8, :8], win_size=7) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="data_range"):
        psnr(a, a, data_range=0)
    with pytest.raises(ConfigError, match="win_size"):
        ssim(a, a, win_size=4)
