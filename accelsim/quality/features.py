"""Metrics on a feature network: feature distance (LPIPS stand-in), Frechet distance, accuracy.

The network is passed in (``accelsim.models.zoo.load_model("feature-net")`` in runs, any small
module in tests); it must offer ``features(x) -> (N, D)`` and ``forward(x) -> (N, classes)``
on float32 image batches ``(N, C, H, W)``. Videos ``(N, F, C, H, W)`` are fed frame by frame.
Pass the net in eval mode (the metrics run it under ``torch.no_grad`` and never change its mode).

Real LPIPS (Zhang et al., CVPR 2018) needs pretrained AlexNet/VGG weights plus its linear
calibration layers; they are not available on this machine and accelsim never downloads at run
time, so :func:`feature_distance` is a stand-in in LPIPS's spirit: unit-normalised penultimate
features of the project's own digits network, mean squared distance (0 = same features,
maximum 4 = opposite directions; for ReLU features, which are >= 0, the maximum is 2).
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import torch

from accelsim.errors import ConfigError, ShapeError
from accelsim.quality._arrays import to_numpy


class FeatureNet(Protocol):
    """What the feature metrics need of a network."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def _images(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(to_numpy(x, name), dtype=torch.float32)
    if t.ndim == 5:
        t = t.reshape(-1, *t.shape[2:])
    if t.ndim != 4 or t.shape[0] == 0:
        raise ShapeError(
            f"{name}: got shape {tuple(t.shape)}, expected (N, C, H, W) or (N, F, C, H, W)"
        )
    return t


def _batched(fn: Any, x: torch.Tensor, batch_size: int) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            outs.append(fn(x[i : i + batch_size]).double().cpu().numpy())
    return np.concatenate(outs, axis=0)


def extract_features(net: FeatureNet, images: Any, batch_size: int = 256) -> np.ndarray:
    """``net.features`` of ``images`` as float64 ``(N, D)`` (``(N*F, D)`` for videos)."""
    f = _batched(net.features, _images(images, "images"), batch_size)
    return f.reshape(f.shape[0], -1)


def logits_of(net: FeatureNet, images: Any, batch_size: int = 256) -> np.ndarray:
    """``net(images)`` as float64 ``(N, classes)``."""
    return _batched(net, _images(images, "images"), batch_size)


def unit_normalize(f: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``f`` scaled to unit L2 norm (all-zero rows stay zero)."""
    n = np.linalg.norm(f, axis=-1, keepdims=True)
    return f / np.maximum(n, eps)


def feature_distance_per_image(
    net: FeatureNet, a: Any, b: Any, batch_size: int = 256
) -> np.ndarray:
    """Squared L2 distance of unit-normalised features, per image (per frame for videos)."""
    x, y = to_numpy(a, "a"), to_numpy(b, "b")
    if x.shape != y.shape:
        raise ShapeError(f"b: got shape {y.shape}, expected a's shape {x.shape}")
    fa = unit_normalize(extract_features(net, x, batch_size))
    fb = unit_normalize(extract_features(net, y, batch_size))
    return np.sum((fa - fb) ** 2, axis=1)


def feature_distance(net: FeatureNet, a: Any, b: Any, batch_size: int = 256) -> float:
    """Mean of :func:`feature_distance_per_image` (the LPIPS stand-in; 0 for identical images)."""
    return float(feature_distance_per_image(net, a, b, batch_size).mean())


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, ``n - 1``) of ``(n, D)`` features."""
    f = to_numpy(features, "features")
    if f.ndim != 2 or f.shape[0] < 2:
        raise ShapeError(f"features: got shape {f.shape}, expected (n >= 2, D)")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_from_stats(
    mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, method: str = "eigh", eps: float = 1e-6
) -> float:
    """Frechet distance of two Gaussians (Dowson & Landau 1982; the FID formula of Heusel et
    al. 2017): ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

    ``method="eigh"`` (default) evaluates ``tr (S1 S2)^(1/2)`` as
    ``sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))`` (similar matrices, so the same trace), which is
    real and stable for the singular covariances of few samples or dead ReLU features.
    ``method="sqrtm"`` is pytorch-fid's ``scipy.linalg.sqrtm(S1 S2)``, with ``eps`` added to both
    diagonals when that is not finite and the imaginary round-off dropped. Clipped at 0.
    """
    m1, m2 = to_numpy(mu1, "mu1").ravel(), to_numpy(mu2, "mu2").ravel()
    s1, s2 = np.atleast_2d(to_numpy(sigma1, "sigma1")), np.atleast_2d(to_numpy(sigma2, "sigma2"))
    d = m1.size
    if m2.size != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ShapeError(
            f"frechet: got mu {m1.shape}/{m2.shape} and sigma {s1.shape}/{s2.shape}, "
            f"expected (D,) means and (D, D) covariances with equal D"
        )
    diff = m1 - m2
    if method == "eigh":
        r1 = _sqrt_psd(s1)
        inner = np.linalg.eigvalsh((r1 @ s2 @ r1 + (r1 @ s2 @ r1).T) / 2)
        tr = float(np.sum(np.sqrt(np.clip(inner, 0.0, None))))
    elif method == "sqrtm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm(s1 @ s2)
            if not np.all(np.isfinite(covmean)):
                off = np.eye(d) * eps
                covmean = scipy.linalg.sqrtm((s1 + off) @ (s2 + off))
        tr = float(np.trace(np.real(covmean)))
    else:
        raise ConfigError(f"method: got {method!r}, expected eigh or sqrtm")
    return max(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr), 0.0)


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Frechet distance between the Gaussian fits of two feature sets ``(n, D)``."""
    return frechet_from_stats(*gaussian_stats(features_a), *gaussian_stats(features_b))


def frechet_feature_distance(net: FeatureNet, a: Any, b: Any, batch_size: int = 256) -> float:
    """Frechet distance of ``net``'s features of two image sets (an FID on the digits net)."""
    return frechet_distance(
        extract_features(net, a, batch_size), extract_features(net, b, batch_size)
    )


def class_accuracy(net: FeatureNet, images: Any, labels: Any, batch_size: int = 256) -> float:
    """Fraction of class-conditional samples ``net`` classifies as their requested label."""
    logits = logits_of(net, images, batch_size)
    y = to_numpy(labels, "labels").reshape(-1)
    if y.shape[0] != logits.shape[0]:
        raise ShapeError(
            f"labels: got {y.shape[0]} labels, expected one per image ({logits.shape[0]})"
        )
    return float(np.mean(logits.argmax(axis=1) == y))
