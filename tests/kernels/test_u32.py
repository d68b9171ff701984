"""32-bit intrinsics (accelsim.kernels._u32) against numpy's uint32 arithmetic."""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.kernels import _u32 as U


@njit(cache=True)
def _apply_all(a, b, out):
    for i in range(a.shape[0]):
        x = U.u32(a[i])
        y = U.u32(b[i])
        out[0, i] = U.add(x, y)
        out[1, i] = U.sub(x, y)
        out[2, i] = U.mul(x, y)
        out[3, i] = U.and_(x, y)
        out[4, i] = U.or_(x, y)
        out[5, i] = U.xor(x, y)
        out[6, i] = U.shl(x, U.and_(y, U.u32(31)))
        out[7, i] = U.popcount(x)
        out[8, i] = U.nonzero(x)
        out[9, i] = U.at_least(x, y)


@njit(cache=True)
def _casts(i8, i32, i64, out):
    for i in range(i8.shape[0]):
        out[0, i] = U.u32(i8[i])
        out[1, i] = U.u32(i32[i])
        out[2, i] = U.u32(i64[i])


@njit(cache=True)
def _tz(x, out):
    for i in range(x.shape[0]):
        out[i] = U.trailing_zeros64(x[i])


def test_arithmetic_matches_numpy_uint32():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**32, size=5000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, size=5000, dtype=np.uint64).astype(np.uint32)
    a[:50] = 0
    b[50:100] = a[50:100]  # equal operands for at_least
    a[100:110] = 0xFFFFFFFF
    out = np.zeros((10, a.size), dtype=np.uint32)
    _apply_all(a, b, out)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out[0], a + b)
        np.testing.assert_array_equal(out[1], a - b)
        np.testing.assert_array_equal(out[2], a * b)
    np.testing.assert_array_equal(out[3], a & b)
    np.testing.assert_array_equal(out[4], a | b)
    np.testing.assert_array_equal(out[5], a ^ b)
    np.testing.assert_array_equal(out[6], a << (b & np.uint32(31)))
    popcounts = np.array([bin(int(x)).count("1") for x in a], dtype=np.uint32)
    np.testing.assert_array_equal(out[7], popcounts)
    np.testing.assert_array_equal(out[8], (a != 0).astype(np.uint32))
    np.testing.assert_array_equal(out[9], (a >= b).astype(np.uint32))
    # a sign error in the comparison would be caught: at_least is unsigned
    assert out[9][100:110].all()


def test_casts_truncate_and_sign_extend_like_c():
    i8 = np.array([-128, -1, 0, 1, 127], dtype=np.int8)
    i32 = np.array([-(2**31), -1, 0, 1, 2**31 - 1], dtype=np.int32)
    i64 = np.array([-(2**40) - 5, -1, 0, 2**32 + 7, 2**63 - 1], dtype=np.int64)
    out = np.zeros((3, 5), dtype=np.uint32)
    _casts(i8, i32, i64, out)
    np.testing.assert_array_equal(out[0], i8.astype(np.int64).astype(np.uint32))
    np.testing.assert_array_equal(out[1], i32.view(np.uint32))
    np.testing.assert_array_equal(out[2], (i64 & 0xFFFFFFFF).astype(np.uint32))


def test_trailing_zeros64():
    x = np.array([1, 2, 8, 2**63, 0b101000, 2**40 + 2**41], dtype=np.uint64)
    out = np.zeros(x.size, dtype=np.uint64)
    _tz(x, out)
    np.testing.assert_array_equal(out, [0, 1, 3, 63, 3, 40])
