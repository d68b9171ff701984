"""Activation clipping: profiled per-layer ranges, zero / clamp, int and float tensors."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults import ActivationClipping, BitFlip, FaultLog, apply_hooks
from accelsim.rng import rng_for

A = GemmContext("blocks.0.mlp.fc1", "blocks.0", 0, "fc1", timestep=0)
B = GemmContext("blocks.0.mlp.fc2", "blocks.0", 0, "fc2", timestep=0)


def _clean_run(clip: ActivationClipping, scale: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        clip.on_output(
            (rng.standard_normal((8, 8)) * scale).astype(np.float32), A, "fp32", rng, FaultLog()
        )
        clip.on_output(
            (rng.standard_normal((8, 8)) * 100).astype(np.float32), B, "fp32", rng, FaultLog()
        )


def test_profile_records_per_layer_ranges_without_changing_tensors():
    clip = ActivationClipping()
    ranges = clip.profile(lambda: _clean_run(clip))
    assert set(ranges) == {A.module, B.module}
    lo_a, hi_a = ranges[A.module]
    lo_b, hi_b = ranges[B.module]
    assert -5 < lo_a < -1 and 1 < hi_a < 5
    assert hi_b - lo_b > 50 * (hi_a - lo_a)
    assert not clip.recording
    x = np.array([100.0], np.float32)
    assert clip.on_output(x, A, "fp32", rng_for(0), FaultLog())[0] == 0.0  # now clipping


def test_zero_and_clamp_modes_float():
    for mode, expected in (
        ("zero", [0.0, 0.5, 0.0, 0.0, 0.0]),
        ("clamp", [-1.0, 0.5, 2.0, 2.0, 0.0]),
    ):
        clip = ActivationClipping(mode=mode)
        clip.load_ranges({A.module: (-1.0, 2.0)})
        x = np.array([-7.0, 0.5, 3.0, np.inf, np.nan], np.float32)
        log = FaultLog()
        y = clip.on_output(x, A, "fp32", rng_for(0), log)
        np.testing.assert_array_equal(y, expected)
        assert [r.index for r in log.records] == [(0,), (2,), (3,), (4,)]
        assert all(r.kind == "clip" for r in log.records)
        assert np.isnan(x[4])  # input untouched


def test_int32_accumulators_and_unprofiled_layers():
    clip = ActivationClipping(mode="clamp", margin=0.1)
    clip.load_ranges({A.module: (-100, 100)})
    x = np.array([-500, 50, 119, 121, 2**31 - 1], np.int32)
    y = clip.on_output(x, A, "int32", rng_for(0), FaultLog())
    np.testing.assert_array_equal(y, [-120, 50, 119, 120, 120])
    assert y.dtype == np.int32
    z = clip.on_output(x, B, "int32", rng_for(0), FaultLog())
    assert z is x and clip.unprofiled == {B.module}


def test_clipping_removes_injected_exponent_flip():
    clip = ActivationClipping()
    clip.profile(lambda: _clean_run(clip))
    rng = np.random.default_rng(0)
    x = rng.uniform(0.25, 0.45, (8, 8)).astype(np.float16)
    log = FaultLog()
    models = [BitFlip(count=1, bits=(14,)), clip]
    y = apply_hooks(models, "outputs", x, A, "fp16", rng_for(3), log)
    kinds = [r.kind for r in log.records]
    assert kinds == ["bitflip", "clip"]
    assert log.records[1].index == log.records[0].index
    assert np.count_nonzero(y != x) == 1 and y[log.records[0].index] == 0
    # negative: without clipping the flipped value survives with factor 2^16
    y2 = apply_hooks(models[:1], "outputs", x, A, "fp16", rng_for(3), FaultLog())
    assert float(y2[log.records[0].index]) == float(x[log.records[0].index]) * 2**16


def test_granularities_and_bf16_truncation():
    clip = ActivationClipping(granularity="layer_type")
    assert clip.key(A) == "fc1"
    assert ActivationClipping(granularity="global").key(B) == "*"
    assert ActivationClipping(granularity="module-timestep").key(A) == "blocks.0.mlp.fc1@0"
    c = ActivationClipping(mode="clamp", margin=0.05)
    c.load_ranges({A.module: (-1.0, 1.0)})  # bound 1.1 is not bf16-exact
    y = c.on_output(np.array([8.0], np.float32), A, "bf16", rng_for(0), FaultLog())
    assert y.view(np.uint32)[0] & 0xFFFF == 0 and 1.0 < y[0] <= 1.1


def test_json_roundtrip_and_errors():
    clip = ActivationClipping()
    clip.load_ranges({"a": [-1, 2], "b": (0.5, 0.5)})
    other = ActivationClipping()
    other.load_ranges(clip.to_json())
    assert other.ranges == clip.ranges
    with pytest.raises(ConfigError, match="ranges"):
        other.load_ranges({"a": [3, 1]})
    with pytest.raises(ConfigError, match="mode"):
        ActivationClipping(mode="drop")
    with pytest.raises(ConfigError, match="margin"):
        ActivationClipping(margin=-1)


def test_bf16_uint16_clipping():
    x32 = np.array([0.5, 3.0, -8.0], dtype=np.float32)
    raw = (x32.view(np.uint32) >> 16).astype(np.uint16)
    clip = ActivationClipping(mode="clamp")
    clip.load_ranges({A.module: (-1.0, 1.0)})
    y = clip.on_output(raw, A, "bf16", rng_for(0), FaultLog())
    assert y.dtype == np.uint16
    np.testing.assert_array_equal((y.astype(np.uint32) << 16).view(np.float32), [0.5, 1.0, -1.0])
