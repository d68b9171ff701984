"""W8A8 symmetric quantization and SmoothQuant smoothing."""

from __future__ import annotations

import pytest
import torch

from accelsim.errors import ConfigError
from accelsim.rng import torch_generator
from accelsim.torch.quant import (
    QuantConfig,
    SmoothingCalibrator,
    dequantize,
    quantize_cols,
    quantize_rows,
    quantize_weight,
    smoothing_factors,
)

G = torch_generator(0, "quant-tests")


def test_rows_and_cols_are_symmetric_int8_with_half_step_error():
    x = torch.randn(6, 40, generator=G) * torch.linspace(0.1, 10, 6).reshape(6, 1)
    q, s = quantize_rows(x)
    assert q.dtype == torch.int8 and s.shape == (6, 1)
    assert int(q.abs().max()) == 127 and int(q.min()) >= -127
    assert torch.all((q.float() * s - x).abs() <= s / 2 + 1e-7)
    qt, st = quantize_rows(x, per_row=False)
    assert st.shape == (1, 1)
    # per-token is finer for rows of very different ranges
    assert (q.float() * s - x).abs().mean() < (qt.float() * st - x).abs().mean()
    qc, sc = quantize_cols(x.t())
    assert sc.shape == (1, 6)
    torch.testing.assert_close(qc.t(), q)


def test_zero_rows_get_unit_scale_and_zero_codes():
    x = torch.zeros(3, 5)
    x[1] = torch.arange(5.0)
    q, s = quantize_rows(x)
    assert s[0, 0] == 1.0 and s[2, 0] == 1.0
    assert int(q[0].abs().sum()) == 0


def test_weight_and_dequantized_gemm_close_to_float():
    w = torch.randn(16, 32, generator=G)
    x = torch.randn(8, 32, generator=G)
    qw, sw = quantize_weight(w)
    assert qw.shape == (16, 32) and sw.shape == (16,)
    qx, sx = quantize_rows(x)
    acc = qx.to(torch.int32) @ qw.t().to(torch.int32)
    y = dequantize(acc, sx, sw.reshape(1, -1))
    ref = x @ w.t()
    assert float((y - ref).norm() / ref.norm()) < 0.02
    with pytest.raises(ConfigError, match="weight"):
        quantize_weight(torch.zeros(2, 3, 4))


def test_smoothing_preserves_the_product_and_balances_ranges():
    x = torch.randn(64, 8, generator=G)
    x[:, 3] *= 50.0  # an outlier channel
    w = torch.randn(4, 8, generator=G)
    s = smoothing_factors(x.abs().amax(0), w, 0.5)
    torch.testing.assert_close((x / s) @ (w * s).t(), x @ w.t(), rtol=1e-5, atol=1e-4)
    assert s[3] == s.max()
    # alpha = 0.5 equalizes the per-channel maxima of X/s and W*s
    torch.testing.assert_close((x / s).abs().amax(0), (w * s).abs().amax(0), rtol=1e-4, atol=0)
    with pytest.raises(ConfigError, match="channels"):
        smoothing_factors(torch.ones(5), w, 0.5)


def test_calibrator_collects_input_channel_maxima():
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    x1 = torch.randn(3, 4, generator=G)
    x2 = torch.randn(5, 4, generator=G) * 3
    with SmoothingCalibrator(model) as cal:
        model(x1)
        model(x2)
    assert set(cal.absmax) == {"0", "2"}
    torch.testing.assert_close(cal.absmax["0"], torch.cat([x1, x2]).abs().amax(0))
    model(x1)  # hooks removed: no more updates
    assert cal.absmax["2"].shape == (6,)


def test_config_validation():
    assert QuantConfig().float_dtype is None
    assert QuantConfig(mode="bf16").float_dtype == torch.bfloat16
    with pytest.raises(ConfigError, match=r"quant\.mode"):
        QuantConfig(mode="int4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"quant\.activations"):
        QuantConfig(activations="per-row")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="smoothing_alpha"):
        QuantConfig(smoothing_alpha=1.5)
