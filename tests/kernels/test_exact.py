"""Exact systolic kernels: error-free equality, and bit-exact agreement with a cycle-stepped
register-transfer reference simulation of the array when errors occur."""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
import pytest

from accelsim.config import ArrayConfig
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels import _mac, _systolic
from accelsim.kernels.exact import _exact_gemm, exact_gemm
from accelsim.timing.sensitized import default_sensitized_params, kernel_constants, late_mask

CONSTS = kernel_constants(default_sensitized_params())
MODES = {"hold": 0, "flip": 1, "razor": 2, "drop": 3}


def _operands(rng, m, k, n):
    A = rng.integers(-128, 128, size=(m, k), dtype=np.int64).astype(np.int8)
    B = rng.integers(-128, 128, size=(k, n), dtype=np.int64).astype(np.int8)
    return A, B


def _reference(A, B):
    return A.astype(np.int32) @ B.astype(np.int32)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize(
    ("shape", "array"),
    [
        ((1, 1, 1), (1, 1)),
        ((17, 3, 5), (8, 8)),
        ((33, 129, 65), (8, 8)),
        ((5, 7, 3), (4, 2)),
        ((64, 200, 300), (32, 32)),
        ((3, 40, 2), (128, 128)),
    ],
)
def test_error_free_equals_matmul(dataflow, shape, array):
    rng = np.random.default_rng(hash((dataflow, shape, array)) % 2**32)
    m, k, n = shape
    A, B = _operands(rng, m, k, n)
    res = exact_gemm(A, B, ArrayConfig(array[0], array[1], dataflow), ratio=0.0, consts=CONSTS)
    np.testing.assert_array_equal(res.out, _reference(A, B))
    assert res.out.dtype == np.int32
    assert res.errors.total == 0


def test_extreme_values_and_nominal_point_have_no_errors():
    # -128 * -128 products summed over K=1024 stay exact; at the nominal ratio (0.82-0.84) with
    # an ideal chip and quiet supply no sensitized path can reach the clock edge.
    A = np.full((16, 1024), -128, dtype=np.int8)
    B = np.full((1024, 24), -128, dtype=np.int8)
    for df in ("os", "ws", "is"):
        res = exact_gemm(A, B, ArrayConfig(8, 8, df), ratio=0.84, consts=CONSTS)
        np.testing.assert_array_equal(res.out, _reference(A, B))
        assert res.errors.total == 0


# ----------------------------------------------------------------- register-level reference


def _late(w, a, p, pw, pa, pp, theta):
    args = [np.array([x], dtype=np.int64) for x in (w, a, p, pw, pa, pp)]
    return int(late_mask(*args, theta=theta, params=default_sensitized_params())[0])


def _wrap(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


def _latch(correct, p_in, prev_reg, mask, mode):
    if mask == 0:
        return correct
    if mode == 0:
        return _wrap((correct & ~mask) | (prev_reg & mask))
    if mode == 1:
        return _wrap(correct ^ (1 << (mask.bit_length() - 1)))
    if mode == 3:
        return p_in
    return correct


def _rtl_ws(A, B, R, C, inv_pe, inv_g, inv_ratio, mode):
    """Cycle-stepped weight-stationary array: every PE updates its activation and psum
    registers from its neighbours' registers of the previous cycle."""
    M, K = A.shape
    N = B.shape[1]
    rfs, cfs = -(-K // R), -(-N // C)
    per_fold = 2 * R + C + M - 2
    out = np.zeros((M, N), dtype=np.int64)
    errors = 0
    for cf in range(cfs):
        for rf in range(rfs):
            start = (cf * rfs + rf) * per_fold
            k0, n0 = rf * R, cf * C
            rows, cols = min(R, K - k0), min(C, N - n0)
            a_reg = np.zeros((R, C), dtype=np.int64)  # activation registers (move right)
            p_reg = np.zeros((R, C), dtype=np.int64)  # psum registers (move down)
            p_in_prev = np.zeros((R, C), dtype=np.int64)  # psum input seen last cycle
            for tau in range(per_fold):
                new_a = np.zeros_like(a_reg)
                new_p = np.zeros_like(p_reg)
                for r in range(rows):
                    for c in range(cols):
                        if c == 0:
                            m = tau - R - r
                            a_in = int(A[m, k0 + r]) if 0 <= m < M else 0
                        else:
                            a_in = int(a_reg[r, c - 1])
                        p_in = 0 if r == 0 else int(p_reg[r - 1, c])
                        w = int(B[k0 + r, n0 + c])
                        correct = _wrap(p_in + w * a_in)
                        t = start + tau
                        theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, inv_g.size - 1)]
                        valid = 0 <= tau - R - r - c < M  # bubbles are clock-gated: no errors
                        mask = (
                            _late(w, a_in, p_in, w, int(a_reg[r, c]), int(p_in_prev[r, c]), theta)
                            if valid
                            else 0
                        )
                        errors += mask != 0
                        new_a[r, c] = a_in
                        new_p[r, c] = _latch(correct, p_in, int(p_reg[r, c]), mask, mode)
                        p_in_prev[r, c] = p_in
                a_reg, p_reg = new_a, new_p
                for c in range(cols):
                    m = tau - R - (rows - 1) - c
                    if 0 <= m < M:
                        out[m, n0 + c] = _wrap(out[m, n0 + c] + int(p_reg[rows - 1, c]))
    return out, errors


def _rtl_os(A, B, R, C, inv_pe, inv_g, inv_ratio, mode):
    """Cycle-stepped output-stationary array: activations move right, weights move down,
    every PE accumulates in place."""
    M, K = A.shape
    N = B.shape[1]
    rfs, cfs = -(-M // R), -(-N // C)
    per_fold = K + R + C - 2
    out = np.zeros((M, N), dtype=np.int64)
    errors = 0
    for cf in range(cfs):
        for rf in range(rfs):
            start = (cf * rfs + rf) * per_fold
            m0, n0 = rf * R, cf * C
            rows, cols = min(R, M - m0), min(C, N - n0)
            a_reg = np.zeros((R, C), dtype=np.int64)
            b_reg = np.zeros((R, C), dtype=np.int64)
            acc = np.zeros((R, C), dtype=np.int64)
            acc_in_prev = np.zeros((R, C), dtype=np.int64)
            for tau in range(per_fold):
                new_a, new_b = np.zeros_like(a_reg), np.zeros_like(b_reg)
                for r in range(rows):
                    for c in range(cols):
                        k_a, k_b = tau - r, tau - c
                        a_in = (
                            (int(A[m0 + r, k_a]) if 0 <= k_a < K else 0)
                            if c == 0
                            else int(a_reg[r, c - 1])
                        )
                        b_in = (
                            (int(B[k_b, n0 + c]) if 0 <= k_b < K else 0)
                            if r == 0
                            else int(b_reg[r - 1, c])
                        )
                        new_a[r, c], new_b[r, c] = a_in, b_in
                        k = tau - r - c
                        if not 0 <= k < K:
                            continue  # bubble: the accumulator is not enabled
                        old = int(acc[r, c])
                        correct = _wrap(old + b_in * a_in)
                        theta = inv_ratio * inv_pe[r, c] * inv_g[min(start + tau, inv_g.size - 1)]
                        pa, pw = (int(a_reg[r, c]), int(b_reg[r, c])) if k > 0 else (0, 0)
                        mask = _late(b_in, a_in, old, pw, pa, int(acc_in_prev[r, c]), theta)
                        errors += mask != 0
                        acc_in_prev[r, c] = old
                        acc[r, c] = _latch(correct, old, old, mask, mode)
                a_reg, b_reg = new_a, new_b
            out[m0 : m0 + rows, n0 : n0 + cols] = acc[:rows, :cols]
    return out, errors


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_matches_register_level_reference_with_errors(dataflow, mode):
    rng = np.random.default_rng(12345)
    R, C = 3, 2
    A, B = _operands(rng, 5, 7, 4)
    inv_pe = 1.0 / rng.uniform(0.9, 1.1, size=(R, C))
    inv_g = 1.0 / rng.uniform(0.95, 1.15, size=200)
    ratio = 2.6  # deep overscaling: many late bits, so every manifestation is exercised
    res = exact_gemm(
        A,
        B,
        ArrayConfig(R, C, dataflow),
        ratio=ratio,
        consts=CONSTS,
        pe_factor=1.0 / inv_pe,
        supply_factor=1.0 / inv_g,
        manifestation=mode,
        log_capacity=1000,
    )
    if dataflow == "os":
        ref, n_err = _rtl_os(A, B, R, C, inv_pe, inv_g, 1.0 / ratio, MODES[mode])
    elif dataflow == "ws":
        ref, n_err = _rtl_ws(A, B, R, C, inv_pe, inv_g, 1.0 / ratio, MODES[mode])
    else:
        ref_t, n_err = _rtl_ws(
            np.ascontiguousarray(B.T),
            np.ascontiguousarray(A.T),
            R,
            C,
            inv_pe,
            inv_g,
            1.0 / ratio,
            MODES[mode],
        )
        ref = ref_t.T
    assert n_err > 0, "the test point must produce errors"
    assert res.errors.total == n_err
    np.testing.assert_array_equal(res.out.astype(np.int64), ref)
    if mode == "razor":
        np.testing.assert_array_equal(res.out, _reference(A, B))


def test_error_log_is_consistent():
    rng = np.random.default_rng(7)
    A, B = _operands(rng, 40, 64, 24)
    res = exact_gemm(A, B, ArrayConfig(8, 8, "ws"), ratio=2.0, consts=CONSTS, log_capacity=10_000)
    e = res.errors
    assert e.total == e.logged > 0
    # hold: only late bits differ between the correct and the latched value.
    diff = (e.correct ^ e.latched) & 0xFFFFFFFF
    assert np.all(diff & ~e.late_mask & 0xFFFFFFFF == 0)
    assert np.all((0 <= e.m) & (e.m < 40) & (0 <= e.n) & (e.n < 24) & (0 <= e.k) & (e.k < 64))
    hist = e.bit_histogram()
    assert hist.sum() >= e.total and hist[31] > 0
    small = exact_gemm(A, B, ArrayConfig(8, 8, "ws"), ratio=2.0, consts=CONSTS, log_capacity=1)
    assert small.errors.total == e.total and small.errors.logged <= 24
    np.testing.assert_array_equal(small.out, res.out)


def test_deterministic_at_any_thread_count():
    rng = np.random.default_rng(3)
    A, B = _operands(rng, 64, 96, 48)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            for df in ("ws", "os", "is"):
                r = exact_gemm(
                    A, B, ArrayConfig(16, 8, df), ratio=1.8, consts=CONSTS, log_capacity=4096
                )
                results.append((threads, df, r))
    finally:
        numba.set_num_threads(before)
    by_df: dict[str, list] = {}
    for _, df, r in results:
        by_df.setdefault(df, []).append(r)
    for runs in by_df.values():
        first = runs[0]
        assert first.errors.total > 0
        for other in runs[1:]:
            np.testing.assert_array_equal(first.out, other.out)
            np.testing.assert_array_equal(first.errors.late_mask, other.errors.late_mask)
            np.testing.assert_array_equal(first.errors.cycle, other.errors.cycle)


def test_bad_input_one_line_errors():
    A = np.zeros((4, 5), dtype=np.int8)
    B = np.zeros((5, 3), dtype=np.int8)
    arr = ArrayConfig(4, 4, "ws")
    with pytest.raises(ShapeError, match=r"^A: got dtype float64, expected int8"):
        exact_gemm(A.astype(np.float64), B, arr, ratio=1.0, consts=CONSTS)
    with pytest.raises(ShapeError, match=r"^A @ B: got A \(4, 5\) and B \(4, 3\)"):
        exact_gemm(A, B[:4], arr, ratio=1.0, consts=CONSTS)
    with pytest.raises(ShapeError, match=r"^pe_factor: got shape \(2, 2\)"):
        exact_gemm(A, B, arr, ratio=1.0, consts=CONSTS, pe_factor=np.ones((2, 2)))
    with pytest.raises(ConfigError, match=r"^supply_factor: got 0.0, expected finite positive"):
        exact_gemm(A, B, arr, ratio=1.0, consts=CONSTS, supply_factor=np.array([1.0, 0.0]))
    with pytest.raises(ConfigError, match=r"^pe_factor: got nan, expected finite positive"):
        exact_gemm(A, B, arr, ratio=1.0, consts=CONSTS, pe_factor=np.full((4, 4), np.nan))
    with pytest.raises(ConfigError, match=r"^manifestation: got 'zap'"):
        exact_gemm(A, B, arr, ratio=1.0, consts=CONSTS, manifestation="zap")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^ratio: got -1"):
        exact_gemm(A, B, arr, ratio=-1.0, consts=CONSTS)


# ------------------------------------------- fast paths (fold/row skipping, screening) vs per MAC


def _run(A, B, arr, ratio, pe, g, mode, reference):
    return _exact_gemm(
        A,
        B,
        arr,
        ratio=ratio,
        consts=CONSTS,
        pe_factor=pe,
        supply_factor=g,
        manifestation=mode,
        log_capacity=100_000,
        reference=reference,
    )


def _assert_same(fast, ref):
    np.testing.assert_array_equal(fast.out, ref.out)
    assert fast.errors.total == ref.errors.total
    for field in ("m", "n", "k", "cycle", "late_mask", "correct", "latched"):
        np.testing.assert_array_equal(getattr(fast.errors, field), getattr(ref.errors, field))


def _droop_trace(rng, n_cycles, events, depth):
    """Quiet supply (g = 1) with a few droop events of random length: only some cycles slow."""
    g = np.ones(n_cycles)
    for s in rng.integers(0, n_cycles, size=events):
        g[s : s + rng.integers(3, 40)] = depth
    return g


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("mode", ["hold", "flip", "drop"])
def test_skipping_matches_per_mac_reference_with_droop(dataflow, mode):
    # nominal ratio: theta >= 1 except in droop cycles, so most folds/rows are skipped and the
    # rest is screened; the errors, their order and the corrupted outputs must be identical.
    rng = np.random.default_rng(2024)
    m, k, n, R, C = 70, 150, 45, 32, 16
    A = np.clip(rng.exponential(25.0, size=(m, k)), 0, 127).astype(np.int8)
    B = rng.integers(-128, 128, size=(k, n), dtype=np.int64).astype(np.int8)
    pe = rng.uniform(0.95, 1.08, size=(R, C))
    g = _droop_trace(rng, 4000, events=12, depth=1.5)
    arr = ArrayConfig(R, C, dataflow)
    fast = _run(A, B, arr, 0.83, pe, g, mode, reference=False)
    ref = _run(A, B, arr, 0.83, pe, g, mode, reference=True)
    assert ref.errors.total > 0, "the test point must produce errors"
    _assert_same(fast, ref)
    # errors only in droop cycles (elsewhere theta >= 1), so the skipped regions were error-free
    theta = np.minimum(1.0 / (0.83 * pe.max() * g[np.minimum(ref.errors.cycle, g.size - 1)]), 9)
    assert np.all(theta < 1.0)
    # negative: the same trace three cycles later fails other MACs (the comparison is sensitive
    # to the cycle alignment of the skip windows)
    shifted = _run(A, B, arr, 0.83, pe, np.concatenate([np.ones(3), g]), mode, reference=False)
    macs = np.stack([shifted.errors.m, shifted.errors.n, shifted.errors.k])
    assert macs.shape[1] != ref.errors.total or not np.array_equal(
        macs, np.stack([ref.errors.m, ref.errors.n, ref.errors.k])
    )


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize(
    ("ratio", "pe_spread", "with_droop"),
    [(0.0, 0.0, False), (0.82, 0.0, False), (1.0, 0.1, True), (1.15, 0.0, False), (1.6, 0.1, True)],
)
def test_screened_paths_match_per_mac_reference(dataflow, ratio, pe_spread, with_droop):
    # from error-free (whole folds skipped) through TER ~1e-4 (every row screened) to deep
    # overscaling (many late MACs per row: the MAC-by-MAC tail after the first late one)
    rng = np.random.default_rng(int(ratio * 100) + 7 * int(with_droop))
    m, k, n, R, C = 48, 260, 40, 128, 8
    A = np.clip(np.round(rng.exponential(20.0, size=(m, k))), 0, 127).astype(np.int8)
    A[:, ::3] = 0  # post-ReLU zeros
    B = np.clip(np.round(rng.normal(0.0, 20.0, size=(k, n))), -128, 127).astype(np.int8)
    pe = rng.uniform(1.0 - pe_spread, 1.0 + pe_spread, size=(R, C))
    g = _droop_trace(rng, 3000, events=8, depth=1.3) if with_droop else None
    arr = ArrayConfig(R, C, dataflow)
    fast = _run(A, B, arr, ratio, pe, g, "hold", reference=False)
    ref = _run(A, B, arr, ratio, pe, g, "hold", reference=True)
    _assert_same(fast, ref)
    if ratio >= 1.0:
        assert ref.errors.total > 0


def test_window_min_matches_naive():
    rng = np.random.default_rng(5)
    inv_g = rng.uniform(0.5, 1.5, size=97)
    for t0, width, count in [(0, 1, 10), (3, 7, 50), (90, 5, 20), (0, 97, 3), (120, 4, 6)]:
        out = np.empty(count)
        _systolic._window_min(inv_g, t0, width, out)
        idx = np.minimum(t0 + np.arange(count)[:, None] + np.arange(width)[None, :], 96)
        np.testing.assert_array_equal(out, inv_g[idx].min(axis=1))
    # a wrong window (one cycle short) is caught
    out = np.empty(50)
    _systolic._window_min(inv_g, 3, 6, out)
    idx = np.minimum(3 + np.arange(50)[:, None] + np.arange(7)[None, :], 96)
    assert not np.array_equal(out, inv_g[idx].min(axis=1))


def test_suffix_or_covers_every_higher_bin():
    for base in (_mac._CMASK, _mac._PMASK, _mac._XMASK):
        tab = _systolic._suffix_or(CONSTS, base)
        masks = CONSTS[base : base + _mac._NBIN].astype(np.int64)
        for i in range(0, _mac._NBIN, 17):
            assert np.all(masks[i:] & ~tab[i] == 0)
            assert tab[i] == np.bitwise_or.reduce(masks[i:])
    assert _systolic._suffix_or(CONSTS, _mac._CMASK)[_mac._NBIN] == 0


def test_ws_screen_matches_per_mac_reference_on_random_problems():
    # random shapes (odd M, partial folds, R or C of 1), thresholds, manifestations, droop and a
    # narrower accumulator: the screened ws kernel must reproduce the reference bit for bit
    narrow = kernel_constants(
        replace(default_sensitized_params(), acc_bits=24, ripple_bits=20, mult_split=3)
    )
    rng = np.random.default_rng(77)
    total = 0
    for _ in range(24):
        m, k, n = (int(x) for x in rng.integers(1, [40, 200, 30]))
        R, C = (int(x) for x in rng.integers(1, 40, size=2))
        A = np.clip(np.round(rng.exponential(30.0, size=(m, k))), 0, 127).astype(np.int8)
        A[rng.random((m, k)) < 0.3] = 0
        B = rng.integers(-128, 128, size=(k, n), dtype=np.int64).astype(np.int8)
        pe = rng.uniform(1.0, 1.25, size=(R, C))
        g = _droop_trace(rng, 3000, events=10, depth=1.2) if rng.random() < 0.5 else None
        kw = dict(
            ratio=float(rng.choice([0.9, 1.0, 1.1, 1.3, 1.7])),
            consts=narrow if rng.random() < 0.3 else CONSTS,
            pe_factor=pe,
            supply_factor=g,
            manifestation=str(rng.choice(list(MODES))),
            log_capacity=int(rng.choice([1, 1000])),
        )
        arr = ArrayConfig(R, C, "ws")
        fast = _exact_gemm(A, B, arr, reference=False, **kw)
        ref = _exact_gemm(A, B, arr, reference=True, **kw)
        _assert_same(fast, ref)
        total += ref.errors.total
    assert total > 1000
