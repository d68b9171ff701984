"""Feature distance, Frechet distance (vs closed forms) and class accuracy on a small CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from accelsim.errors import ShapeError
from accelsim.quality import (
    class_accuracy,
    feature_distance,
    feature_distance_per_image,
    frechet_distance,
    frechet_feature_distance,
    frechet_from_stats,
    image_summary,
)
from accelsim.quality.features import extract_features
from accelsim.rng import torch_generator


class TinyNet(nn.Module):
    """Deterministic random CNN without biases (so features(c x) = c features(x), c > 0)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch_generator(seed, "tiny-net")
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 4 * 4, 8, bias=False)
        self.head = nn.Linear(8, 10, bias=False)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = nn.functional.avg_pool2d(h, 4).flatten(1)
        return self.fc(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _imgs(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 16, 16))


def test_feature_distance_known_values():
    net = TinyNet()
    a, b = _imgs(0), _imgs(1)
    assert feature_distance(net, a, a) == 0.0
    # scale invariance of unit-normalised features of a bias-free ReLU net
    assert feature_distance(net, a, 0.5 * a) == pytest.approx(0.0, abs=1e-10)
    d = feature_distance_per_image(net, a, b)
    fa, fb = extract_features(net, a), extract_features(net, b)
    ua = fa / np.linalg.norm(fa, axis=1, keepdims=True)
    ub = fb / np.linalg.norm(fb, axis=1, keepdims=True)
    np.testing.assert_allclose(d, np.sum((ua - ub) ** 2, axis=1), rtol=1e-12)
    # identity ||u - v||^2 = 2 - 2 cos for unit vectors, bounded by 4
    np.testing.assert_allclose(d, 2 - 2 * np.sum(ua * ub, axis=1), atol=1e-12)
    assert np.all(d > 1e-4) and np.all(d <= 4)
    # negative: a different network gives different distances
    assert not np.allclose(feature_distance_per_image(TinyNet(seed=1), a, b), d)
    # videos are fed frame by frame
    v = _imgs(2, 6).reshape(2, 3, 1, 16, 16)
    assert feature_distance_per_image(net, v, v * 1.1).shape == (6,)


def test_frechet_closed_form_diagonal_and_full():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert frechet_from_stats(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(
        expected, rel=1e-10
    )
    # full covariances against tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) via eigendecompositions
    rng = np.random.default_rng(3)
    m1, m2 = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    ref = np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    for method in ("eigh", "sqrtm"):
        got = frechet_from_stats(np.zeros(5), s1, np.zeros(5), s2, method=method)
        assert got == pytest.approx(ref, rel=1e-8)
    # negative: the formula without the cross term is far off
    assert abs(ref - (np.trace(s1) + np.trace(s2))) > 1.0
    assert frechet_from_stats(np.zeros(5), s1, np.zeros(5), s1) == pytest.approx(0.0, abs=1e-8)


def test_frechet_of_samples_converges_to_gaussian_closed_form():
    rng = np.random.default_rng(4)
    n = 40000
    x = rng.normal([0.0, 2.0], [1.0, 0.5], size=(n, 2))
    y = rng.normal([1.0, 2.0], [2.0, 0.5], size=(n, 2))
    closed = 1.0 + (1.0 - 2.0) ** 2  # |dmu|^2 + sum (s1 - s2)^2 with std devs
    fd = frechet_distance(x, y)
    assert fd == pytest.approx(closed, abs=0.05)
    # negative: the formula without the cross term would be far off
    assert abs(fd - (1.0 + 1 + 4 + 0.5)) > 1.0


def test_frechet_on_network_and_singular_features():
    net = TinyNet()
    a = _imgs(5, 20)
    assert frechet_feature_distance(net, a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_feature_distance(net, a, _imgs(6, 20) * 0.2) > 0.01
    # fewer samples than dimensions: singular covariances still give a finite value
    f = np.random.default_rng(0).standard_normal((3, 8))
    assert frechet_distance(f, f + 1.0) == pytest.approx(8.0, abs=1e-6)  # only the mean shift
    s = np.cov(f, rowvar=False)
    sq = frechet_from_stats(f.mean(0), s, f.mean(0) + 1, s, method="sqrtm")
    assert sq == pytest.approx(8.0, abs=1e-3)
    with pytest.raises(ShapeError, match="n >= 2"):
        frechet_distance(f[:1], f)


def test_class_accuracy_and_summary():
    net = TinyNet()
    imgs = _imgs(7, 10)
    pred = net(torch.tensor(imgs, dtype=torch.float32)).argmax(1).numpy()
    assert class_accuracy(net, imgs, pred) == 1.0
    wrong = (pred + 1) % 10
    wrong[:3] = pred[:3]
    assert class_accuracy(net, imgs, wrong) == pytest.approx(0.3)
    with pytest.raises(ShapeError, match="labels"):
        class_accuracy(net, imgs, pred[:5])
    s = image_summary(imgs, imgs * 0.9, net=net, labels=pred, reference=_imgs(8, 10))
    assert s["class_accuracy"] is not None and s["feature_distance"] == pytest.approx(
        0.0, abs=1e-10
    )
    assert s["frechet"] is not None and s["frechet"] > 0 and s["psnr"] is not None
