"""Huang-Abraham checksums modulo 2**32: no false alarms, single errors located and corrected
exactly, double errors detected (and located when in distinct rows and columns)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.abft.checksum import (
    apply_corrections,
    checksum_width,
    encode,
    locate,
    syndromes,
    to_int32,
)


def wrap32(x):
    """Reference int32 wrap of Python/int64 integers."""
    x = np.asarray(x, dtype=np.int64)
    return (((x + 2**31) % 2**32) - 2**31).astype(np.int64)


def gemm32(A, B):
    """Reference int32 (wrap-around) GEMM through exact int64 products."""
    return wrap32(A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)


EXTREMES = st.sampled_from([-128, 127, -1, 0, 1, -127])


@st.composite
def operands(draw, max_dim=9):
    m = draw(st.integers(1, max_dim))
    k = draw(st.integers(1, max_dim))
    n = draw(st.integers(1, max_dim))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mode = draw(st.sampled_from(["random", "extreme", "constant"]))
    if mode == "random":
        A = rng.integers(-128, 128, (m, k)).astype(np.int8)
        B = rng.integers(-128, 128, (k, n)).astype(np.int8)
    elif mode == "extreme":
        vals = np.array([-128, 127, -1, 0, 1], dtype=np.int8)
        A = rng.choice(vals, (m, k))
        B = rng.choice(vals, (k, n))
    else:
        A = np.full((m, k), draw(EXTREMES), dtype=np.int8)
        B = np.full((k, n), draw(EXTREMES), dtype=np.int8)
    return A, B


@settings(max_examples=200, deadline=None)
@given(operands())
def test_error_free_never_detects(ab):
    A, B = ab
    C = gemm32(A, B)
    s = syndromes(C, encode(A, B))
    assert not s.detected
    loc = locate(s)
    assert loc.located and loc.pattern == "none" and loc.n_errors == 0


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 3),
    n=st.integers(1, 3),
    k=st.integers(133_200, 140_000),
    a=st.sampled_from([-128, 127]),
    b=st.sampled_from([-128, 127]),
)
def test_error_free_with_int32_wraparound_of_c(m, n, k, a, b):
    # K*|a*b| > 2**31: C itself wraps (as the int32 hardware accumulator does).
    A = np.full((m, k), a, dtype=np.int8)
    B = np.full((k, n), b, dtype=np.int8)
    C = gemm32(A, B)
    exact = int(a) * int(b) * k
    assert exact != int(C[0, 0])  # the output really wrapped
    assert not syndromes(C, encode(A, B)).detected


def test_wraparound_in_checksums_only_and_naive_check_fails():
    # C fits int32 but its column sums do not (M*K*2**14 >> 2**31): a naive int64 comparison
    # of sums against the int32-wrapped checksum would raise a false alarm; mod 2**32 does not.
    A = np.full((300, 2048), -128, dtype=np.int8)
    B = np.full((2048, 4), -128, dtype=np.int8)
    C = gemm32(A, B)
    assert int(C.astype(np.int64).max()) == 2048 * 16384  # no wrap in C itself
    ref = encode(A, B)
    assert not syndromes(C, ref).detected
    naive = C.astype(np.int64).sum(axis=0) - ref.col  # wrong variant: no modular reduction
    assert np.any(naive != 0)


@settings(max_examples=200, deadline=None)
@given(
    ab=operands(),
    pos=st.tuples(st.integers(0, 100), st.integers(0, 100)),
    delta=st.one_of(
        st.integers(-(2**31), 2**31 - 1),
        st.sampled_from([1, -1, 2**30, -(2**31), 2**31 - 1, 1 << 23]),
    ),
)
def test_single_error_detected_located_corrected(ab, pos, delta):
    A, B = ab
    if delta == 0:
        delta = 1
    C = gemm32(A, B)
    m, n = pos[0] % C.shape[0], pos[1] % C.shape[1]
    F = C.copy()
    F[m, n] = wrap32(int(C[m, n]) + delta)
    s = syndromes(F, encode(A, B))
    assert s.detected
    assert list(s.bad_rows) == [m] and list(s.bad_cols) == [n]
    loc = locate(s)
    assert loc.located and loc.pattern == "single"
    assert (int(loc.m[0]), int(loc.n[0])) == (m, n)
    assert int(loc.delta[0]) == int(wrap32(delta))
    np.testing.assert_array_equal(apply_corrections(F, loc), C)


def _corrupt(C, errs):
    F = C.copy()
    for m, n, d in errs:
        F[m, n] = wrap32(int(F[m, n]) + d)
    return F


@pytest.fixture
def clean():
    rng = np.random.default_rng(7)
    A = rng.integers(-128, 128, (12, 40)).astype(np.int8)
    B = rng.integers(-128, 128, (40, 9)).astype(np.int8)
    return A, B, gemm32(A, B)


def test_double_error_distinct_rows_and_cols_located_and_corrected(clean):
    A, B, C = clean
    F = _corrupt(C, [(2, 3, 1 << 20), (7, 5, -(1 << 18))])
    loc = locate(syndromes(F, encode(A, B)))
    assert loc.located and loc.pattern == "matched" and loc.n_errors == 2
    assert {(int(m), int(n)) for m, n in zip(loc.m, loc.n, strict=True)} == {(2, 3), (7, 5)}
    np.testing.assert_array_equal(apply_corrections(F, loc), C)


@pytest.mark.parametrize(
    ("errs", "pattern"),
    [
        ([(4, 1, 100), (4, 6, -(1 << 22))], "row"),
        ([(0, 8, 5), (11, 8, 1 << 28)], "col"),
    ],
)
def test_double_error_same_row_or_column_located(clean, errs, pattern):
    A, B, C = clean
    F = _corrupt(C, errs)
    loc = locate(syndromes(F, encode(A, B)))
    assert loc.located and loc.pattern == pattern and loc.n_errors == 2
    np.testing.assert_array_equal(apply_corrections(F, loc), C)


def test_double_error_equal_deltas_detected_not_located(clean):
    A, B, C = clean
    F = _corrupt(C, [(1, 1, 1 << 20), (3, 4, 1 << 20)])
    s = syndromes(F, encode(A, B))
    assert s.detected
    loc = locate(s)
    assert not loc.located and loc.pattern == "ambiguous" and loc.n_errors == 2
    assert set(loc.rows.tolist()) == {1, 3} and set(loc.cols.tolist()) == {1, 4}
    # without value matching, distinct deltas are not located either
    G = _corrupt(C, [(1, 1, 7), (3, 4, 9)])
    assert not locate(syndromes(G, encode(A, B)), match_multiple=False).located


def test_cancelling_errors_in_a_row_are_inconsistent(clean):
    A, B, C = clean
    F = _corrupt(C, [(5, 2, 1000), (5, 7, -1000)])  # row sum unchanged
    s = syndromes(F, encode(A, B))
    assert s.detected and s.bad_rows.size == 0
    loc = locate(s)
    assert not loc.located and loc.pattern == "inconsistent"


def test_to_int32_and_width():
    np.testing.assert_array_equal(
        to_int32(np.array([2**31, 2**32 + 5, -1, -(2**31) - 1], dtype=np.int64)),
        [-(2**31), 5, -1, 2**31 - 1],
    )
    assert checksum_width(1) == 8
    assert checksum_width(1152) == 19
    assert checksum_width(2**40) == 32
