"""The digits data set every small image model trains on (offline, deterministic).

Source: scikit-learn's bundled copy of the UCI optical-recognition digits
(``sklearn.datasets.load_digits``: 1797 images of 8x8 pixels, values 0..16, 10 classes), which
ships inside the scikit-learn wheel, so nothing is downloaded. Images are scaled to
``[-1, 1]`` (``x / 8 - 1``) and upsampled to ``size x size`` by bilinear interpolation
(``align_corners=False``; bilinear weights are convex, so values stay in ``[-1, 1]``).

The train/test split is fixed: a permutation drawn from ``rng_for(0, "digits-split")``, the
first :data:`TEST_SIZE` indices are the test set. Same split in every process and machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from accelsim.errors import ConfigError
from accelsim.rng import rng_for

__all__ = ["NUM_CLASSES", "SPLITS", "TEST_SIZE", "digits"]

#: Number of classes (digits 0..9).
NUM_CLASSES = 10
#: Images in the test split (20 % of 1797, rounded), the rest is train.
TEST_SIZE = 360
#: Allowed split names.
SPLITS = ("train", "test")
#: Pixel maximum of the raw 8x8 digits (scikit-learn docs: integers 0..16).
_RAW_MAX = 16.0


def _read_digits_csv() -> np.ndarray:
    """The (1797, 65) table of scikit-learn's ``datasets/data/digits.csv.gz`` (64 pixels + label).

    Read directly (as ``load_digits`` does, with ``np.loadtxt``) to avoid importing
    scikit-learn, whose import takes seconds; falls back to ``load_digits`` if the file moved.
    """
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as fh:
                return np.loadtxt(fh, delimiter=",")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw images (N, 8, 8) float32 in [-1, 1], labels (N,) int64, and the split permutation."""
    raw = _read_digits_csv()
    images = raw[:, :-1].reshape(-1, 8, 8).astype(np.float32) * (2.0 / _RAW_MAX) - 1.0
    labels = raw[:, -1].astype(np.int64)
    perm = rng_for(0, "digits-split").permutation(len(labels))
    return images, labels, perm


@lru_cache(maxsize=8)
def _split(split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, perm = _raw()
    idx = perm[:TEST_SIZE] if split == "test" else perm[TEST_SIZE:]
    idx = np.sort(idx)
    x = torch.from_numpy(images[idx]).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.clamp_(-1.0, 1.0).contiguous()
    return x, torch.from_numpy(labels[idx].copy())


def digits(split: str = "train", size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, size, size)`` float32 in ``[-1, 1]`` and labels ``(N,)`` int64.

    ``split`` is ``"train"`` (1437 images) or ``"test"`` (360 images); ``size`` >= 8 pixels.
    Returns fresh tensors (callers may modify them).
    """
    if split not in SPLITS:
        raise ConfigError(f"split: got {split!r}, expected one of {', '.join(SPLITS)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ConfigError(f"size: got {size!r}, expected an integer >= 8 (pixels)")
    x, y = _split(split, size)
    return x.clone(), y.clone()
