"""Fault models through the torch interceptor: the logged weight flip explains the output change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from accelsim.faults import ActivationClipping, BitFlip, SingleValue, Target
from accelsim.torch.intercept import Interceptor
from accelsim.torch.quant import QuantConfig


def _model() -> tuple[nn.Module, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 8, bias=False))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return m, torch.randn(5, 16, generator=g)


def _run(m, x, faults, mode="fp32", seed=1):
    with Interceptor(quant=QuantConfig(mode=mode), faults=faults, seed=seed) as it, torch.no_grad():
        y = m(x)
    return y, it.fault_log


def test_fp32_weight_flip_changes_output_by_x_times_delta_w():
    m, x = _model()
    y0, _ = _run(m, x, [])
    fault = BitFlip(target="weights", fmt="fp32", bits=(23,), count=1, scope=Target(modules=("0",)))
    y1, log = _run(m, x, [fault])
    (rec,) = log.records
    n, k = rec.index  # on_weights sees W as (out, in)
    assert rec.new in (2 * rec.old, rec.old / 2)  # exponent LSB: factor 2 or 1/2
    expected = y0.clone()
    expected[:, n] += x[:, k] * (rec.new - rec.old)
    torch.testing.assert_close(y1, expected, rtol=1e-5, atol=1e-6)
    # only column n of the output moved
    changed = (y1 != y0).any(dim=0).nonzero().ravel().tolist()
    assert changed == [n]


@pytest.mark.parametrize("mode", ["w8a8", "fp16", "bf16"])
def test_output_fault_lands_in_every_mode_and_clipping_profiles(mode):
    m, x = _model()
    y0, _ = _run(m, x, [], mode)
    y1, log = _run(m, x, [SingleValue(value="zero")], mode)
    (rec,) = log.records
    assert rec.target == "outputs" and rec.new == 0.0
    assert rec.fmt == ("int32" if mode == "w8a8" else mode)
    diff = (y1 != y0).nonzero().tolist()
    assert diff in ([list(rec.index)], []) and (diff or rec.old == 0.0)
    clip = ActivationClipping()
    clip.profile(lambda: _run(m, x, [clip], mode))
    assert set(clip.ranges) == {"0"}
    y2, log2 = _run(m, x, [clip], mode)
    torch.testing.assert_close(y2, y0, rtol=0, atol=0)  # clean data stays inside the ranges
    assert len(log2) == 0
    np.testing.assert_array_less(clip.ranges["0"][0], clip.ranges["0"][1])
