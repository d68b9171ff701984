"""Tests of the digits data set (models/data.py) and the text corpus (models/text.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from accelsim.errors import ConfigError
from accelsim.models.data import TEST_SIZE, digits
from accelsim.models.text import VOCAB_SIZE, corpus, decode, encode, tokens


def test_digits_shapes_and_ranges() -> None:
    for split, n in (("train", 1797 - TEST_SIZE), ("test", TEST_SIZE)):
        x, y = digits(split)
        assert x.shape == (n, 1, 16, 16)
        assert x.dtype == torch.float32
        assert y.shape == (n,)
        assert y.dtype == torch.int64
        assert float(x.min()) == -1.0
        assert float(x.max()) == 1.0
        assert set(y.tolist()) == set(range(10))
    # upsampling keeps per-image mean brightness close to the raw 8x8 image
    x16, _ = digits("test", 16)
    x8, _ = digits("test", 8)
    assert torch.allclose(x16.mean(dim=(1, 2, 3)), x8.mean(dim=(1, 2, 3)), atol=0.05)


def test_digits_split_is_a_partition_of_the_dataset() -> None:
    raw = load_digits()
    expected = np.asarray(raw.images, dtype=np.float32) / 8.0 - 1.0
    x_tr, y_tr = digits("train", 8)
    x_te, y_te = digits("test", 8)
    got = torch.cat([x_tr, x_te]).numpy().reshape(-1, 64)
    labels = torch.cat([y_tr, y_te]).numpy()
    key = [row.tobytes() + bytes([lab]) for row, lab in zip(got, labels, strict=True)]
    want = [
        row.tobytes() + bytes([lab])
        for row, lab in zip(expected.reshape(-1, 64), raw.target, strict=True)
    ]
    assert sorted(key) == sorted(want)
    # the split is shuffled, not the first TEST_SIZE images
    assert not torch.equal(y_te, torch.from_numpy(raw.target[:TEST_SIZE]))


def test_digits_deterministic_and_fresh() -> None:
    x1, _ = digits("test")
    x1[:] = 0.0
    x2, y2 = digits("test")
    x3, y3 = digits("test")
    assert torch.equal(x2, x3) and torch.equal(y2, y3)
    assert not torch.equal(x1, x2)


@pytest.mark.parametrize(("split", "size"), [("valid", 16), ("train", 4), ("train", 16.0)])
def test_digits_bad_input(split: str, size: int) -> None:
    with pytest.raises(ConfigError, match=r"split|size"):
        digits(split, size)


def test_text_tokenizer_roundtrip_and_mapping() -> None:
    text = "def f(x):\n    return x ** 2  # ok ~"
    ids = encode(text)
    assert ids.dtype == torch.int64
    assert decode(ids) == text
    assert decode(encode("\u201cdon\u2019t\u201d \u2014 \u00df")) == '"don\'t" -- ?'
    assert VOCAB_SIZE == 96
    with pytest.raises(ConfigError, match="token id"):
        decode([VOCAB_SIZE])


def test_text_splits() -> None:
    train, val = tokens("train"), tokens("val")
    total = len(encode(corpus()))
    assert len(train) + len(val) == total
    assert 0.09 < len(val) / total < 0.11
    assert int(train.min()) >= 0 and int(train.max()) < VOCAB_SIZE
    assert torch.equal(tokens("val"), val)
    assert len(train) > 300_000
    with pytest.raises(ConfigError, match="split"):
        tokens("test")
