"""The branch-free screen of the exact ws kernel and the fast kernel's sampler
(accelsim.kernels._mac._popcount_screen): it may only clear MACs that the model proves on time,
for every operand, threshold and model width, with the previous MAC's weight the same (ws) or
another (os)."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from accelsim.kernels import _mac, _systolic
from accelsim.kernels import _u32 as U
from accelsim.timing import sensitized as S

PARAMS = S.default_sensitized_params()
NARROW = replace(PARAMS, acc_bits=24, ripple_bits=20, mult_split=3)


@njit(cache=True)
def _screen_many(w, a, ps, pw, pa, pps, theta, shift, tabs, sparams, out):
    """``_popcount_screen`` per MAC at ``theta[i]`` (masks of its bin, threshold of
    ``theta[i] + shift``: a non-zero shift makes a deliberately wrong screen)."""
    amask, rmask, lo, tci, pxi, tcmi, ts = sparams
    for i in range(w.shape[0]):
        b = min(int(theta[i] * _mac._NBIN), _mac._NBIN)
        out[i] = _mac._popcount_screen(
            U.u32(ps[i]),
            U.u32(pps[i]),
            U.u32(w[i]),
            U.u32(a[i]),
            U.u32(pw[i]),
            U.u32(pa[i]),
            U.u32(tabs[0, b]),
            U.u32(tabs[1, b]),
            U.u32(tabs[2, b]),
            U.u32(amask),
            U.u32(rmask),
            U.u32(lo),
            U.u32(tci),
            U.u32(pxi),
            U.u32(tcmi),
            U.u32(_mac._screen_threshold(theta[i] + shift, ts)),
        )


@functools.cache
def _model(params):
    consts = S.kernel_constants(params)
    tabs = _systolic._screen_tables(consts)
    return consts, tabs, _mac._screen_params(consts), _mac._chain_params(consts)


def _check(params, w, a, ps, pw, pa, pps, theta, shift=0.0):
    """(cleared MACs that are late, cleared MACs the chain bound would keep, MACs kept)."""
    consts, tabs, sparams, cparams = _model(params)
    kept = np.zeros(w.size, dtype=np.uint32)
    _screen_many(w, a, ps, pw, pa, pps, theta, shift, tabs, sparams, kept)
    late = np.zeros(w.size, dtype=np.uint32)
    _mac._late_masks(w, a, ps, pw, pa, pps, theta, consts, late, True)
    cleared = kept == 0
    late_cleared = int(np.count_nonzero(cleared & (late != 0)))
    chain_kept = 0
    for i in np.flatnonzero(cleared):
        b = _mac._chain_bound(
            int(w[i]), int(a[i]), int(ps[i]), int(pw[i]), int(pa[i]), int(pps[i]), cparams
        )
        risky = _systolic._exit2_bits(
            int(ps[i]) & 0xFFFFFFFF,
            int(pps[i]) & 0xFFFFFFFF,
            (int(w[i]) * int(a[i])) & 0xFFFFFFFF,
            (int(pw[i]) * int(pa[i])) & 0xFFFFFFFF,
            *(int(t) for t in tabs[:, min(int(theta[i] * _mac._NBIN), _mac._NBIN)]),
        )
        chain_kept += int(risky != 0 and not _mac._chain_exit(b, theta[i]))
    return late_cleared, chain_kept, int(np.count_nonzero(kept))


def _stream(n, seed, scenario, prev_weight="same"):
    """Operands of ``scenario``; the previous MAC's weight is ``w`` (ws) or, for ``"other"``,
    another weight of the stream (os: the PE's previous MAC had the previous k)."""
    w, a, ps, _, pa, pps = S.scenario_stream(n, np.random.default_rng(seed), scenario)
    pw = w if prev_weight == "same" else np.roll(w, 1)
    theta = np.random.default_rng(seed + 1).uniform(0.0, 1.1, size=n)
    return w, a, ps, pw, pa, pps, theta


@pytest.mark.parametrize("prev_weight", ["same", "other"])
@pytest.mark.parametrize("params", [PARAMS, NARROW], ids=["acc32", "acc24"])
@pytest.mark.parametrize("scenario", ["dnn-ws", "dnn-ws-nonneg", "random"])
def test_screen_clears_only_macs_the_chain_bound_clears(params, scenario, prev_weight):
    ops = _stream(20_000, 3, scenario, prev_weight)
    late_cleared, chain_kept, kept = _check(params, *ops)
    assert late_cleared == 0
    assert chain_kept == 0
    assert 0 < kept < ops[0].size  # it both keeps and clears MACs on this stream


int8s = st.integers(-128, 127)
psums = st.one_of(
    st.integers(-(2**31), 2**31 - 1), st.integers(-3000, 3000), st.integers(-(2**23), 2**23)
)


@settings(max_examples=300, deadline=None)
@given(
    int8s, int8s, psums, int8s, int8s, psums, st.floats(0.0, 1.2, allow_nan=False), st.booleans()
)
def test_screen_is_conservative_on_any_operands(w, a, ps, pw, pa, pps, theta, narrow):
    ops = [np.array([v], dtype=np.int64) for v in (w, a, ps, pw, pa, pps)]
    late_cleared, chain_kept, _ = _check(NARROW if narrow else PARAMS, *ops, np.array([theta]))
    assert late_cleared == 0
    assert chain_kept == 0


def test_a_screen_with_a_raised_threshold_hides_late_macs():
    # negative test: the same check catches a screen whose threshold is 0.05 CP too high
    ops = _stream(20_000, 3, "dnn-ws")
    late_cleared, chain_kept, _ = _check(PARAMS, *ops, shift=0.05)
    assert late_cleared > 0
    assert chain_kept > 0


def test_screen_threshold_range():
    ts = 0.1
    assert _mac._screen_threshold(-1.0, ts) == 0
    assert _mac._screen_threshold(0.1, ts) == 0  # below t_s + margin: clears nothing
    assert _mac._screen_threshold(float("nan"), ts) == 0
    assert 0 < _mac._screen_threshold(float("inf"), ts) < 2**32
    # below the threshold of theta means at most theta - t_s - margin in fixed point
    thr = _mac._screen_threshold(0.85, ts)
    assert (thr - 1) / _mac._SCREEN_Q <= 0.85 - ts - _mac._SCREEN_MARGIN < thr / _mac._SCREEN_Q
