"""Operand streams of timing.md section 3.2 (accelsim.timing.operands): distributions, seeds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from accelsim.errors import ConfigError
from accelsim.timing import operands as O

N = 40_000
ALPHA = 1e-3  # significance level of the distribution tests (fixed seeds: deterministic)


def test_same_seed_same_arrays_and_different_seeds_differ():
    makers: list[Callable[[int, np.random.Generator], O.OperandStream]] = [
        O.dnn_ws_stream,
        O.random_stream,
    ]
    for make in makers:
        a = make(1000, np.random.default_rng(7))
        b = make(1000, np.random.default_rng(7))
        c = make(1000, np.random.default_rng(8))
        for i in range(6):
            np.testing.assert_array_equal(a[i], b[i])
        assert any(not np.array_equal(a[i], c[i]) for i in range(6))


@pytest.mark.parametrize("make", [O.dnn_ws_stream, O.random_stream])
def test_dtypes_and_shapes(make):
    ops = make(123, np.random.default_rng(0))
    assert [o.dtype for o in ops] == [np.int8, np.int8, np.int32, np.int8, np.int8, np.int32]
    assert all(o.shape == (123,) for o in ops)
    assert all(o.shape == (0,) for o in make(0, np.random.default_rng(0)))


def test_dnn_ws_weight_is_stationary_and_normal_20():
    w, _, _, pw, _, _ = O.dnn_ws_stream(N, np.random.default_rng(1))
    np.testing.assert_array_equal(w, pw)
    # chi-square against round(N(0, 20)): P(k) = Phi((k + 1/2)/20) - Phi((k - 1/2)/20)
    ks = np.arange(-60, 61)
    edges = np.concatenate(([-np.inf], ks[1:] - 0.5, [np.inf]))
    expected = np.diff(stats.norm.cdf(edges, scale=O.DNN_WEIGHT_STD)) * N
    observed = np.histogram(w.astype(float), bins=edges)[0]
    assert stats.chisquare(observed, expected).pvalue > ALPHA
    assert w.std() == pytest.approx(20.0, rel=0.03)


def test_dnn_ws_activations_relu_exponential():
    _, a, _, _, pa, _ = O.dnn_ws_stream(N, np.random.default_rng(2))
    assert a.min() >= 0 and pa.min() >= 0 and a.max() <= 127
    zeros = int(np.sum(a == 0))
    assert stats.binomtest(zeros, N, O.DNN_ZERO_FRACTION).pvalue > ALPHA
    # non-zero values: round(Exp(mean 20)) clipped to [1, 127] (the first bin holds rint 0 and 1)
    nz = a[a > 0].astype(float)
    edges = np.concatenate(([-np.inf], np.arange(1.5, 80.5), [np.inf]))
    expected = np.diff(stats.expon.cdf(edges, scale=O.DNN_ACT_MEAN)) * nz.size
    expected *= nz.size / expected.sum()
    observed = np.histogram(nz, bins=edges)[0]
    assert stats.chisquare(observed, expected).pvalue > ALPHA
    # a and pa are independent draws
    assert stats.pearsonr(a.astype(float), pa.astype(float)).pvalue > ALPHA


def test_dnn_ws_psums_are_a_normal_mixture_and_independent():
    _, _, ps, _, _, pps = O.dnn_ws_stream(N, np.random.default_rng(3))
    k = np.arange(O.DNN_PSUM_KMAX + 1)
    sigma = np.sqrt(k[1:]) * O.DNN_PSUM_SCALE

    def mixture_cdf(x):
        x = np.asarray(x, dtype=float)[..., None]
        return (np.sum(stats.norm.cdf(x / sigma), axis=-1) + (x[..., 0] >= 0)) / k.size

    assert stats.kstest(ps.astype(float), mixture_cdf).pvalue > ALPHA
    assert stats.pearsonr(ps.astype(float), pps.astype(float)).pvalue > ALPHA


def test_dnn_ws_nonnegative_weights():
    w, *_ = O.dnn_ws_stream(N, np.random.default_rng(4), weights="nonnegative")
    assert w.min() >= 0
    # chi-square against |round(N(0, 20))|: bins k = 0..60 and > 60
    upper = np.concatenate((np.arange(0, 61) + 0.5, [np.inf]))
    cum = 2 * stats.norm.cdf(upper, scale=O.DNN_WEIGHT_STD) - 1
    expected = np.diff(np.concatenate(([0.0], cum))) * N
    observed = np.histogram(w.astype(float), bins=np.concatenate(([-0.5], upper)))[0]
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_random_stream_is_uniform():
    w, a, ps, pw, pa, pps = O.random_stream(N, np.random.default_rng(6))
    for x8 in (w, a, pw, pa):
        observed = np.bincount(x8.astype(np.int64) + 128, minlength=256)
        assert stats.chisquare(observed).pvalue > ALPHA
    lim = 2 ** (O.RANDOM_PSUM_BITS - 1)
    for x32 in (ps, pps):
        assert x32.min() >= -lim and x32.max() < lim
        assert stats.kstest(x32.astype(float), stats.uniform(-lim, 2 * lim).cdf).pvalue > ALPHA
    assert np.mean(w != pw) > 0.99  # everything changes every cycle


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1, np.random.default_rng(0)), {}, r"^n: got -1"),
        ((1.5, np.random.default_rng(0)), {}, r"^n: got 1.5"),
        ((10, 42), {}, r"^rng: got int, expected a numpy.random.Generator"),
        ((10, np.random.default_rng(0)), {"weights": "positive"}, r"^weights: got 'positive'"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, kwargs, match):
    with pytest.raises(ConfigError, match=match) as exc:
        O.dnn_ws_stream(*args, **kwargs)
    assert "\n" not in str(exc.value)
