"""Fast timing-error GEMM: exact error-free result, validation, determinism, and statistical
equivalence of its errors to the exact kernel's (with a deliberately biased variant that must
fail the same tests)."""

from __future__ import annotations

import functools

import numba
import numpy as np
import pytest
from scipy import stats

from accelsim.config import ArrayConfig
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels.exact import GemmResult, exact_gemm
from accelsim.kernels.fast import (
    _fast_gemm,
    exact_int_matmul,
    fast_gemm,
    pe_column_order,
    transpose_int8,
)
from accelsim.timing.sensitized import default_sensitized_params, kernel_constants

CONSTS = kernel_constants(default_sensitized_params())
ALPHA = 1e-3  # per test; the equivalence tests must pass it, the biased variant must not


def _ref(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return A.astype(np.int32) @ B.astype(np.int32)


def _dnn(rng: np.random.Generator, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 post-ReLU activations (half zero, Exp(20)) x N(0, 20) weights (timing.md s3.2)."""
    act = rng.exponential(20.0, size=(m, k)) * (rng.random((m, k)) < 0.5)
    A = np.clip(np.round(act), 0, 127).astype(np.int8)
    B = np.clip(np.round(rng.normal(0.0, 20.0, size=(k, n))), -128, 127).astype(np.int8)
    return A, B


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize(
    ("shape", "array"),
    [((1, 1, 1), (1, 1)), ((17, 3, 5), (8, 8)), ((33, 129, 65), (8, 8)), ((3, 40, 2), (128, 128))],
)
def test_error_free_equals_matmul(dataflow, shape, array):
    rng = np.random.default_rng(sum(shape) + array[0])
    m, k, n = shape
    A = rng.integers(-128, 128, size=(m, k)).astype(np.int8)
    B = rng.integers(-128, 128, size=(k, n)).astype(np.int8)
    arr = ArrayConfig(array[0], array[1], dataflow)
    for ratio in (0.0, 0.84):  # off, and the nominal point (no path can be late)
        res = fast_gemm(A, B, arr, ratio=ratio, consts=CONSTS, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(res.out, _ref(A, B))
        assert res.out.dtype == np.int32 and res.out.shape == (m, n)
        assert res.errors.total == 0 and res.errors.logged == 0


def test_exact_int_matmul_extremes_and_fallback(monkeypatch):
    A = np.full((5, 3000), -128, dtype=np.int8)
    B = np.full((3000, 4), -128, dtype=np.int8)
    want = _ref(A, B)
    np.testing.assert_array_equal(exact_int_matmul(A, B), want)
    import torch

    def broken(*_args: object) -> None:
        raise RuntimeError("no int_mm")

    monkeypatch.setattr(torch, "_int_mm", broken)
    # float32 BLAS alone is not exact here (sums of 2**24 and more); the chunked fallback is
    np.testing.assert_array_equal(exact_int_matmul(A, B), want)


def test_bad_input_one_line_errors():
    A = np.zeros((4, 5), dtype=np.int8)
    B = np.zeros((5, 3), dtype=np.int8)
    arr = ArrayConfig(4, 4, "ws")
    rng = np.random.default_rng(0)
    with pytest.raises(ShapeError, match=r"^A: got dtype float64, expected int8"):
        fast_gemm(A.astype(np.float64), B, arr, ratio=1.0, consts=CONSTS, rng=rng)
    with pytest.raises(ShapeError, match=r"^A @ B: got A \(4, 5\) and B \(4, 3\)"):
        fast_gemm(A, B[:4], arr, ratio=1.0, consts=CONSTS, rng=rng)
    with pytest.raises(ShapeError, match=r"^pe_factor: got shape \(2, 2\)"):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, pe_factor=np.ones((2, 2)), rng=rng)
    with pytest.raises(ShapeError, match=r"^supply_factor: got shape \(2, 2\)"):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, supply_factor=np.ones((2, 2)), rng=rng)
    with pytest.raises(
        ConfigError, match=r"^(pe|supply)_factor: got .*, expected finite positive delay factors"
    ):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, supply_factor=np.zeros(3), rng=rng)
    with pytest.raises(ConfigError, match=r"^manifestation: got 'zap'"):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, manifestation="zap", rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^ratio: got -1"):
        fast_gemm(A, B, arr, ratio=-1.0, consts=CONSTS, rng=rng)
    with pytest.raises(ConfigError, match=r"^rng: got int, expected a numpy.random.Generator"):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, rng=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^max_sample_macs: got 10"):
        fast_gemm(A, B, arr, ratio=1.0, consts=CONSTS, rng=rng, max_sample_macs=10)


def test_deterministic_at_any_thread_count_and_seed_dependent():
    A, B = _dnn(np.random.default_rng(3), 64, 96, 48)
    before = numba.get_num_threads()
    runs: dict[str, list[GemmResult]] = {}
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            for df in ("ws", "os", "is"):
                runs.setdefault(df, []).append(
                    fast_gemm(
                        A,
                        B,
                        ArrayConfig(16, 8, df),
                        ratio=1.6,
                        consts=CONSTS,
                        rng=np.random.default_rng(11),
                        log_capacity=64,
                    )
                )
    finally:
        numba.set_num_threads(before)
    for df, (first, other) in runs.items():
        assert first.errors.total > 20, df
        np.testing.assert_array_equal(first.out, other.out)
        for field in ("m", "n", "k", "cycle", "late_mask", "correct", "latched"):
            np.testing.assert_array_equal(
                getattr(first.errors, field), getattr(other.errors, field)
            )
        again = fast_gemm(
            A, B, ArrayConfig(16, 8, df), ratio=1.6, consts=CONSTS, rng=np.random.default_rng(12)
        )
        assert not np.array_equal(again.out, first.out)


def test_log_is_consistent_with_output():
    A, B = _dnn(np.random.default_rng(5), 40, 64, 24)
    for df in ("ws", "os", "is"):
        for mode in ("hold", "flip", "drop", "razor"):
            res = fast_gemm(
                A, B, ArrayConfig(8, 8, df), ratio=1.6, consts=CONSTS, manifestation=mode,
                log_capacity=100_000, rng=np.random.default_rng(1),
            )  # fmt: skip
            e = res.errors
            assert e.total == e.logged > 0
            assert np.all((0 <= e.m) & (e.m < 40) & (0 <= e.n) & (e.n < 24) & (e.k < 64))
            assert np.all(e.late_mask > 0) and np.all(e.late_mask < 1 << 32)
            # output error = sum of the errors of its MACs (linear propagation, int32 wrap)
            err = np.zeros((40, 24), dtype=np.int64)
            np.add.at(err, (e.m, e.n), e.latched - e.correct)
            got = (res.out.astype(np.int64) - _ref(A, B)) & 0xFFFFFFFF
            np.testing.assert_array_equal(got, err & 0xFFFFFFFF)
            if mode == "razor":
                assert not got.any()
            small = fast_gemm(
                A, B, ArrayConfig(8, 8, df), ratio=1.6, consts=CONSTS, manifestation=mode,
                log_capacity=2, rng=np.random.default_rng(1),
            )  # fmt: skip
            lanes = small.errors.n if df == "ws" else small.errors.m
            assert small.errors.total == e.total
            assert np.bincount(lanes).max() <= 2
            np.testing.assert_array_equal(small.out, res.out)


# ------------------------------------------------------------------ statistical equivalence

SHAPE = (48, 64, 40)
ARRAY = (16, 16)
SEEDS = 10
RATIO = 1.28  # ~2-5e-3 errors per MAC with the PE spread and droops below
SAMPLE = 1 << 17  # >= the 122880 MACs: a census of the GEMM (no estimation noise)


def _chip(seed: int, df: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 77])
    A, B = _dnn(rng, *SHAPE)
    pe = np.exp(rng.normal(0.0, 0.03, size=ARRAY))
    g = np.ones(2000)
    for start in rng.integers(0, 1900, size=6):  # droops: 60 cycles 6 % slower
        g[start : start + 60] = 1.06
    return A, B, pe, g


def _summary(res: GemmResult, A: np.ndarray, B: np.ndarray, g: np.ndarray, df: str) -> dict:
    e = res.errors
    assert e.total == e.logged
    counts = np.zeros(SHAPE[0] * SHAPE[2], dtype=np.int64)
    np.add.at(counts, e.m * SHAPE[2] + e.n, 1)
    pe_row = (e.m if df == "os" else e.k) % ARRAY[0]
    droop = g[np.minimum(e.cycle, g.size - 1)] > 1.0
    low = np.array([int(x & -x).bit_length() - 1 for x in e.late_mask], dtype=np.int64)
    diff = (res.out.astype(np.int64) - _ref(A, B)).ravel()
    diff = diff[diff != 0]
    return {
        "hist": np.bincount(np.minimum(counts, 3), minlength=4),
        "where": np.bincount((pe_row // 4) * 2 + droop, minlength=8),
        "lowbit": np.bincount(np.clip(low, 17, 24) - 17, minlength=8),
        "err": np.sign(diff) * np.log2(np.abs(diff)),
    }


@functools.cache
def _gather(
    df: str, mode: str, rate_scale: float = 1.0, mask_shift: int = 0, sample: int = SAMPLE
) -> tuple:
    """Summaries of exact and fast over SEEDS chips (data, PE map and supply trace each)."""
    out: dict[str, list[dict]] = {"exact": [], "fast": []}
    for seed in range(SEEDS):
        A, B, pe, g = _chip(seed, df)
        kw = dict(
            ratio=RATIO, consts=CONSTS, pe_factor=pe, supply_factor=g, manifestation=mode,
            log_capacity=100_000,
        )  # fmt: skip
        arr = ArrayConfig(ARRAY[0], ARRAY[1], df)
        out["exact"].append(_summary(exact_gemm(A, B, arr, **kw), A, B, g, df))
        fast = _fast_gemm(
            A, B, arr, **kw, rng=np.random.default_rng([seed, 5]), max_sample_macs=sample,
            rate_scale=rate_scale, mask_shift=mask_shift,
        )  # fmt: skip
        out["fast"].append(_summary(fast, A, B, g, df))
    merged = []
    for name in ("exact", "fast"):
        runs = out[name]
        merged.append(
            {
                key: (np.concatenate if key == "err" else sum)([r[key] for r in runs])
                for key in runs[0]
            }
        )
    return merged[0], merged[1]


def _pvalues(exact: dict, fast: dict) -> dict[str, float]:
    def contingency(key: str) -> float:
        table = np.stack([exact[key], fast[key]])
        table = table[:, table.sum(axis=0) > 0]
        return float(stats.chi2_contingency(table).pvalue)

    return {
        "count histogram": contingency("hist"),
        "PE row x droop": contingency("where"),
        "lowest late bit": contingency("lowbit"),
        "output error KS": float(stats.ks_2samp(exact["err"], fast["err"]).pvalue),
    }


CASES = [("ws", "hold"), ("os", "hold"), ("ws", "drop"), ("os", "flip")]


def _totals_agree(n_exact: int, n_fast: int) -> bool:
    """Error totals agree: Poisson spread of the sums (3 sigma) plus 5 % for the cascades the
    fast kernel approximates (the census makes the expected count this GEMM's own)."""
    return abs(n_fast - n_exact) < 3 * np.sqrt(2 * n_exact) + 0.05 * n_exact


@pytest.mark.parametrize(("df", "mode"), CASES)
def test_errors_statistically_equivalent_to_exact(df, mode):
    """Where errors happen (PE row x droop cycles), which bits are late, what the outputs
    suffer, and how many errors there are, pooled over chips (data, PE map, supply trace)."""
    exact, fast = _gather(df, mode)
    n_exact, n_fast = exact["where"].sum(), fast["where"].sum()
    assert n_exact > 1500, "the test point must have power"
    pvals = _pvalues(exact, fast)
    del pvals["count histogram"]  # see test_output_count_dispersion_matches
    assert min(pvals.values()) > ALPHA, (pvals, n_exact, n_fast)
    assert _totals_agree(n_exact, n_fast), (n_exact, n_fast)


@pytest.mark.parametrize(("df", "mode"), [("os", "hold"), ("os", "flip")])
def test_output_count_histogram_matches(df, mode):
    """Errors per output (0, 1, 2, 3+): the MAC classes carry the data dependence."""
    exact, fast = _gather(df, mode)
    assert _pvalues(exact, fast)["count histogram"] > ALPHA


@pytest.mark.parametrize(
    ("df", "mode"), [("ws", "hold"), ("ws", "drop"), ("ws", "flip"), ("os", "drop")]
)
def test_output_count_dispersion_matches(df, mode):
    """Per-output error counts in ws (errors down one column chain are correlated through the
    psum's magnitude: the toggled-carry-chain state classes carry it) and os drop."""
    exact, fast = _gather(df, mode)
    assert _pvalues(exact, fast)["count histogram"] > ALPHA


@pytest.mark.parametrize(("df", "mode"), [("ws", "hold"), ("os", "hold"), ("ws", "drop")])
def test_subsampled_rates_keep_locations_bits_and_totals(df, mode):
    """The production path: rates from a subsample (2**15 of the 122880 MACs, sparse cells
    pooled) instead of a census. Where errors happen, which bits are late and how many there
    are still agree; per-output counts and output-error magnitudes drift somewhat (README,
    Known limits) and are not asserted here."""
    exact, _ = _gather(df, mode)
    _, fast = _gather(df, mode, sample=1 << 15)
    pvals = _pvalues(exact, fast)
    assert min(pvals["PE row x droop"], pvals["lowest late bit"]) > ALPHA, pvals
    assert _totals_agree(exact["where"].sum(), fast["where"].sum())


@pytest.mark.parametrize(("df", "mode"), [("ws", "hold"), ("os", "hold")])
def test_biased_rate_fails(df, mode):
    """Error probabilities x1.5: the totals no longer agree."""
    exact, _ = _gather(df, mode)
    _, biased = _gather(df, mode, 1.5, 0)
    assert not _totals_agree(exact["where"].sum(), biased["where"].sum())


@pytest.mark.parametrize("failing", ["lowest late bit", "output error KS"])
def test_biased_masks_fail(failing):
    """Late masks shifted up one bit: the bit and output-error tests reject it."""
    exact, _ = _gather("ws", "hold")
    _, biased = _gather("ws", "hold", 1.0, 1)
    assert _pvalues(exact, biased)[failing] < ALPHA


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_array_larger_than_problem_with_errors(dataflow):
    A, B = _dnn(np.random.default_rng(9), 4, 8, 4)
    res = fast_gemm(
        A, B, ArrayConfig(128, 128, dataflow), ratio=2.5, consts=CONSTS,
        rng=np.random.default_rng(0), log_capacity=1000,
    )  # fmt: skip
    assert res.out.shape == (4, 4)
    diff = (res.out.astype(np.int64) - _ref(A, B)) & 0xFFFFFFFF
    err = np.zeros((4, 4), dtype=np.int64)
    np.add.at(err, (res.errors.m, res.errors.n), res.errors.latched - res.errors.correct)
    np.testing.assert_array_equal(diff, err & 0xFFFFFFFF)


def test_subsampled_rate_is_unbiased_in_mean():
    """A subsample of 2**15 of the 122880 MACs: per call the rate is noisy (~1/sqrt(donors)),
    but the mean over seeds matches the exact count (razor: no cascades)."""
    A, B, pe, g = _chip(99, "ws")
    kw = dict(ratio=RATIO, consts=CONSTS, pe_factor=pe, supply_factor=g, manifestation="razor")
    arr = ArrayConfig(ARRAY[0], ARRAY[1], "ws")
    n_exact = exact_gemm(A, B, arr, **kw).errors.total
    totals = np.array(
        [
            fast_gemm(
                A, B, arr, **kw, rng=np.random.default_rng(s), max_sample_macs=1 << 15
            ).errors.total
            for s in range(16)
        ]
    )
    assert totals.std() > 0.02 * totals.mean()  # the estimate really is a subsample
    se = totals.std(ddof=1) / np.sqrt(totals.size)
    assert abs(totals.mean() - n_exact) < 4 * se + 0.03 * n_exact, (totals, n_exact)


@pytest.mark.parametrize("dataflow", ["ws", "is", "os"])
def test_high_rate_gemm_hands_over_to_the_exact_kernel(dataflow):
    """``exact_above``: a GEMM whose sampled error rate exceeds it gets the exact kernel's result
    (output and log bit for bit); below it, or with None, the sampled one."""
    A, B, pe, g = _chip(3, dataflow)
    arr = ArrayConfig(ARRAY[0], ARRAY[1], dataflow)
    kw = dict(ratio=RATIO, consts=CONSTS, pe_factor=pe, supply_factor=g, log_capacity=10_000)
    exact = exact_gemm(A, B, arr, **kw)
    assert exact.errors.total > 100  # ~2-7e-3 per MAC
    handed = fast_gemm(A, B, arr, **kw, rng=np.random.default_rng(1), exact_above=1e-4)
    np.testing.assert_array_equal(handed.out, exact.out)
    for field in ("m", "n", "k", "cycle", "late_mask", "correct", "latched"):
        np.testing.assert_array_equal(getattr(handed.errors, field), getattr(exact.errors, field))
    for limit in (None, 0.5):
        sampled = fast_gemm(A, B, arr, **kw, rng=np.random.default_rng(1), exact_above=limit)
        assert not np.array_equal(sampled.out, exact.out)


def test_hand_over_needs_more_than_sampling_noise():
    """``_above_limit``: a count within two Poisson deviations of the limit's expectation keeps
    the sampled kernel; a count beyond them hands over (and a zero limit always does)."""
    from accelsim.kernels.fast import _above_limit

    # 32768 MACs at 1e-4: 3.3 expected, 3.3 + 2 * 1.8 = 6.9
    assert not _above_limit(4, 32768, 1e-4)
    assert not _above_limit(6, 32768, 1e-4)
    assert _above_limit(7, 32768, 1e-4)
    assert _above_limit(1, 32768, 0.0)
    assert not _above_limit(0, 32768, 0.0)
    assert not _above_limit(100, 1000, 0.5)


def test_cached_pe_order_gives_the_same_result():
    """A caller's cached ``pe_column_order`` is what the kernel computes itself; a wrong
    shape or dtype is a one-line error."""
    A, B, pe, g = _chip(5, "ws")
    array = ArrayConfig(*ARRAY, "ws")
    order = pe_column_order(pe)
    inv = 1.0 / pe
    assert order.shape == pe.shape and order.dtype == np.int64
    for r in range(pe.shape[0]):  # slowest PE first, ties by column
        keys = list(zip(inv[r, order[r]], order[r], strict=True))
        assert keys == sorted(keys)
    kwargs = dict(ratio=1.05, consts=CONSTS, pe_factor=pe, supply_factor=g)
    own = fast_gemm(A, B, array, rng=np.random.default_rng(4), **kwargs)
    cached = fast_gemm(A, B, array, rng=np.random.default_rng(4), pe_order=order, **kwargs)
    assert own.errors.total > 0
    np.testing.assert_array_equal(own.out, cached.out)
    np.testing.assert_array_equal(own.errors.latched, cached.errors.latched)
    with pytest.raises(ShapeError, match="pe_order: got int64"):
        fast_gemm(A, B, array, rng=np.random.default_rng(4), pe_order=order[:-1], **kwargs)
    with pytest.raises(ShapeError, match="pe_factor: got shape"):
        pe_column_order(np.ones(4))


def test_change_order_splits_rows_by_product_bucket():
    """``_change_order`` / ``_bucket_starts``: the rows in a PE's bucket range are exactly those
    whose product change ``|w * a - w * pa|`` falls in that ``_pbucket``, each row once, and
    in ascending row order within one operand change (a stable sort)."""
    from accelsim.kernels import _fast

    rng = np.random.default_rng(8)
    A = rng.integers(-128, 128, size=(300, 5), dtype=np.int64)
    A[::7, 1] = A[::7, 1] // 64  # small changes too
    A[:, 2] = 3  # constant column: no change after row 0
    A = A.astype(np.int8)
    order, first = _fast._change_order(A)
    starts = _fast._bucket_starts()
    Ai = A.astype(np.int64)
    prev = np.vstack([np.zeros((1, A.shape[1]), dtype=np.int64), Ai[:-1]])
    change = np.abs(Ai - prev)
    for k in range(A.shape[1]):
        np.testing.assert_array_equal(order[k], np.argsort(change[:, k], kind="stable"))
        for v in range(257):
            assert first[k, v] == np.count_nonzero(change[:, k] < v)
        for w in (0, 1, -1, 3, 7, -16, 63, 64, -128, 127):
            bucket = np.array(
                [_fast._pbucket.py_func(w * int(Ai[m, k]), w * int(prev[m, k])) for m in range(300)]
            )
            seen = []
            for dp in range(4):
                lo = first[k, starts[abs(w), dp]]
                hi = first[k, starts[abs(w), dp + 1]]
                rows = order[k, lo:hi]
                assert np.all(bucket[rows] == dp), (k, w, dp)
                assert rows.size == np.count_nonzero(bucket == dp), (k, w, dp)
                seen.extend(rows.tolist())
            assert sorted(seen) == list(range(300))


@pytest.mark.parametrize(
    "shape", [(8, 8), (64, 24), (1152, 128), (7, 16), (16, 12), (1, 1), (0, 8)]
)
def test_transpose_int8_matches_numpy(shape):
    """The 8x8-block word transpose equals ``B.T`` (and the fallback covers other shapes,
    unaligned and non-contiguous inputs)."""
    rng = np.random.default_rng(sum(shape))
    B = rng.integers(-128, 128, size=shape).astype(np.int8)
    BT = transpose_int8(B)
    assert BT.dtype == np.int8 and BT.flags.c_contiguous
    np.testing.assert_array_equal(BT, B.T)
    big = rng.integers(-128, 128, size=(33, 65)).astype(np.int8)
    for view in (big[1:17, 1:33], big[:16, ::2], big[:8, :64]):  # unaligned, strided, aligned
        np.testing.assert_array_equal(transpose_int8(view), view.T)
