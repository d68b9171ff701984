import numpy as np
import pytest

from accelsim.errors import ConfigError
from accelsim.rng import rng_for, stable_key, torch_generator


def test_same_keys_same_stream_and_different_keys_differ():
    a = rng_for(3, "gemm", "blocks.0.qkv", 5).integers(0, 2**32, 8)
    b = rng_for(3, "gemm", "blocks.0.qkv", 5).integers(0, 2**32, 8)
    c = rng_for(3, "gemm", "blocks.0.qkv", 6).integers(0, 2**32, 8)
    d = rng_for(4, "gemm", "blocks.0.qkv", 5).integers(0, 2**32, 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)


def test_key_is_stable_across_processes():
    # fixed value: a change here breaks reproducibility of every stored result
    assert stable_key("x", 1) == stable_key("x", 1)
    assert stable_key("x", 1) != stable_key("x", "1")
    assert stable_key(1, "x") != stable_key("x", 1)


def test_torch_generator_reproducible():
    import torch

    x = torch.randn(4, generator=torch_generator(1, "a"))
    y = torch.randn(4, generator=torch_generator(1, "a"))
    assert torch.equal(x, y)


def test_bad_seed_is_one_line_error():
    with pytest.raises(ConfigError, match="seed: got -1"):
        rng_for(-1, "a")
