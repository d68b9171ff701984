"""Huang-Abraham checksums for int8 x int8 -> int32 GEMMs, exact modulo 2**32.

For ``C = A @ B`` (``A`` is ``M x K`` int8, ``B`` is ``K x N`` int8, ``C`` is ``M x N`` int32)
the encoded operands are (Huang and Abraham, IEEE TC C-33(6), 1984; reference/drift.md s3):

* the *column checksum row* ``a_c = e^T A`` (length ``K``): one extra row of ``A``;
* the *row checksum column* ``b_r = B e`` (length ``K``): one extra column of ``B``;

and the array computes ``e^T C = a_c B`` (length ``N``) and ``C e = A b_r`` (length ``M``)
alongside ``C``. Verification recomputes the sums of the produced ``C`` and compares:

    col_syndrome[n] = sum_m C[m, n] - (a_c B)[n]         (one per output column)
    row_syndrome[m] = sum_n C[m, n] - (A b_r)[m]         (one per output row)

**Wrap-around.** The hardware accumulates modulo 2**32 (int32 registers wrap). Every quantity
here is therefore computed modulo 2**32 exactly: sums are taken in int64 (exact), the
checksum products in float64 BLAS when every partial sum provably stays below 2**53 (always,
unless ``M*K`` or ``N*K`` exceeds ~2**38) and otherwise in uint64, whose arithmetic wraps
modulo 2**64 (a multiple of 2**32); results are reduced to the signed int32 range. So ``C`` that itself wrapped, and checksums far beyond the int32 range, verify
exactly; an error-free GEMM always has all-zero syndromes, and an error of ``delta`` in one
element gives ``row_syndrome[m] == col_syndrome[n] == delta`` (as a signed int32), which
corrects the element exactly: ``C[m, n] -= delta`` (mod 2**32).

The checksum operands are wider than int8: ``e^T A`` needs ``8 + ceil(log2 M)`` bits and
``B e`` needs ``8 + ceil(log2 N)`` bits, at most 32 (modulo 2**32 is all the check needs);
see :func:`checksum_width`.

All functions are pure numpy and ``O(MK + KN + MN)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from accelsim.errors import ShapeError

__all__ = [
    "Checksums",
    "Location",
    "Syndromes",
    "apply_corrections",
    "checksum_width",
    "encode",
    "locate",
    "syndromes",
    "to_int32",
]

Int64Array = npt.NDArray[np.int64]
_MASK32 = np.uint64(0xFFFFFFFF)


def to_int32(x: npt.NDArray[np.uint64] | npt.NDArray[np.int64]) -> Int64Array:
    """Reduce integers modulo 2**32 to the signed int32 range ``[-2**31, 2**31)`` (as int64)."""
    u = np.asarray(x).astype(np.uint64) & _MASK32
    s = u.astype(np.int64)
    result: Int64Array = np.where(s >= 2**31, s - 2**32, s)
    return result


def _u64(x: np.ndarray) -> npt.NDArray[np.uint64]:
    """Two's-complement view of an integer array as uint64 (exact modulo 2**64)."""
    return np.asarray(x).astype(np.int64).astype(np.uint64)


def checksum_width(n: int) -> int:
    """Bits of a checksum over ``n`` int8 values: ``8 + ceil(log2 n)``, capped at 32."""
    return min(32, 8 + max(0, math.ceil(math.log2(max(1, n)))))


def check_gemm_operands(A: np.ndarray, B: np.ndarray, C: np.ndarray | None = None) -> None:
    """Raise ShapeError unless ``A`` (M x K) and ``B`` (K x N) are int8 and ``C`` is M x N int32."""
    for name, x, dtype in (("A", A, np.int8), ("B", B, np.int8)):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or 0 in x.shape:
            shape = getattr(x, "shape", type(x).__name__)
            raise ShapeError(f"abft {name}: got {shape}, expected a non-empty 2-D numpy array")
        if x.dtype != dtype:
            raise ShapeError(f"abft {name}: got dtype {x.dtype}, expected int8")
    if A.shape[1] != B.shape[0]:
        raise ShapeError(
            f"abft A @ B: got A {A.shape} and B {B.shape}, expected A's columns to equal B's rows"
        )
    if C is not None:
        want = (A.shape[0], B.shape[1])
        if not isinstance(C, np.ndarray) or C.shape != want:
            shape = getattr(C, "shape", type(C).__name__)
            raise ShapeError(f"abft C: got shape {shape}, expected {want}")
        if C.dtype != np.int32:
            raise ShapeError(f"abft C: got dtype {C.dtype}, expected int32")


@dataclass(frozen=True)
class Checksums:
    """Reference checksums of ``C = A @ B`` (signed int32 values, stored as int64).

    ``col`` is ``(e^T A) B`` (length N), ``row`` is ``A (B e)`` (length M), ``total`` is
    ``e^T A B e``; all modulo 2**32. ``a_c`` and ``b_r`` are the encoded operand row/column.
    """

    col: Int64Array
    row: Int64Array
    total: int
    a_c: Int64Array
    b_r: Int64Array


#: Float64 matrix-vector products are exact while every partial sum stays below 2**53.
_FLOAT_EXACT = 2**53


def _matvec(X: np.ndarray, v: Int64Array, vmax: int) -> Int64Array:
    """``X @ v`` for int8 ``X`` exactly modulo 2**64 (float64 BLAS when provably exact)."""
    if 128 * max(1, vmax) * X.shape[1] < _FLOAT_EXACT:
        result: Int64Array = np.rint(X.astype(np.float64) @ v.astype(np.float64)).astype(np.int64)
        return result
    wrapped: Int64Array = (_u64(X) @ _u64(v)).astype(np.int64)
    return wrapped


def encode(A: np.ndarray, B: np.ndarray) -> Checksums:
    """Checksum row of ``A``, checksum column of ``B`` and the reference output checksums."""
    check_gemm_operands(A, B)
    a_c = A.sum(axis=0, dtype=np.int64)  # e^T A, exact: |.| <= 128 M
    b_r = B.sum(axis=1, dtype=np.int64)  # B e, exact: |.| <= 128 N
    M, N = A.shape[0], B.shape[1]
    col = _matvec(B.T, a_c, 128 * M)  # (e^T A) B
    row = _matvec(A, b_r, 128 * N)  # A (B e)
    total = int((_u64(a_c) @ _u64(b_r)) & _MASK32)
    return Checksums(
        col=to_int32(col),
        row=to_int32(row),
        total=int(to_int32(np.asarray(total))),
        a_c=to_int32(a_c),
        b_r=to_int32(b_r),
    )


@dataclass(frozen=True)
class Syndromes:
    """Checksum mismatches of a produced ``C``: observed sums minus reference, signed int32."""

    row: Int64Array
    col: Int64Array

    @property
    def bad_rows(self) -> Int64Array:
        """Indices of rows whose sum mismatches."""
        return np.flatnonzero(self.row).astype(np.int64)

    @property
    def bad_cols(self) -> Int64Array:
        """Indices of columns whose sum mismatches."""
        return np.flatnonzero(self.col).astype(np.int64)

    @property
    def detected(self) -> bool:
        """True when any checksum mismatches."""
        return bool(np.any(self.row) or np.any(self.col))


def syndromes(C: np.ndarray, ref: Checksums) -> Syndromes:
    """Row and column syndromes of ``C`` against the reference checksums (mod 2**32)."""
    row_sum = C.sum(axis=1, dtype=np.int64)  # exact: |.| <= 2**31 N
    col_sum = C.sum(axis=0, dtype=np.int64)
    return Syndromes(row=to_int32(row_sum - ref.row), col=to_int32(col_sum - ref.col))


@dataclass(frozen=True)
class Location:
    """Where the errors are.

    ``located`` means every erroneous element was identified: ``m, n, delta`` list them
    (``C[m, n]`` is ``delta`` too large modulo 2**32). Otherwise ``m, n`` are empty and the
    suspects are the ``rows x cols`` intersection of the mismatching rows and columns.
    ``pattern`` names the case: ``none``, ``single``, ``row`` (several errors in one row),
    ``col`` (several in one column), ``matched`` (distinct rows and columns paired by equal
    syndrome values), ``ambiguous`` (more than one mismatching row and column that do not
    pair up uniquely) or ``inconsistent`` (mismatches on one side only, or sums that disagree:
    errors that cancel, or a faulty checksum).
    """

    located: bool
    pattern: str
    m: Int64Array
    n: Int64Array
    delta: Int64Array
    rows: Int64Array
    cols: Int64Array

    @property
    def n_errors(self) -> int:
        """Erroneous elements: exact when located, else a lower bound (max of rows, cols)."""
        if self.located:
            return int(self.m.size)
        return max(int(self.rows.size), int(self.cols.size))


def _empty() -> Int64Array:
    return np.zeros(0, dtype=np.int64)


def locate(s: Syndromes, *, match_multiple: bool = True) -> Location:
    """Locate the erroneous elements from the syndromes (see :class:`Location`).

    Assumes errors do not cancel exactly inside a row or column sum (the classical ABFT
    assumption). ``match_multiple`` pairs ``k`` mismatching rows with ``k`` mismatching
    columns when every row syndrome equals exactly one column syndrome (all values distinct):
    two errors in different rows and columns are then located and corrected. Two errors with
    the same delta, or a pattern whose sums coincide by accident, stay ``ambiguous``.
    """
    rows, cols = s.bad_rows, s.bad_cols
    if rows.size == 0 and cols.size == 0:
        return Location(True, "none", _empty(), _empty(), _empty(), rows, cols)
    rv, cv = s.row[rows], s.col[cols]
    if rows.size == 0 or cols.size == 0:
        return Location(False, "inconsistent", _empty(), _empty(), _empty(), rows, cols)
    consistent = int(to_int32(np.asarray(rv.sum() - cv.sum()))) == 0
    if rows.size == 1 and cols.size == 1:
        if rv[0] != cv[0]:
            return Location(False, "inconsistent", _empty(), _empty(), _empty(), rows, cols)
        return Location(True, "single", rows.copy(), cols.copy(), cv.copy(), rows, cols)
    if rows.size == 1:
        if not consistent:
            return Location(False, "inconsistent", _empty(), _empty(), _empty(), rows, cols)
        return Location(True, "row", np.repeat(rows, cols.size), cols.copy(), cv.copy(), rows, cols)
    if cols.size == 1:
        if not consistent:
            return Location(False, "inconsistent", _empty(), _empty(), _empty(), rows, cols)
        return Location(True, "col", rows.copy(), np.repeat(cols, rows.size), rv.copy(), rows, cols)
    if match_multiple and rows.size == cols.size:
        if np.unique(rv).size == rv.size and np.unique(cv).size == cv.size:
            order_r, order_c = np.argsort(rv, kind="stable"), np.argsort(cv, kind="stable")
            if np.array_equal(rv[order_r], cv[order_c]):
                return Location(
                    True,
                    "matched",
                    rows[order_r].copy(),
                    cols[order_c].copy(),
                    rv[order_r].copy(),
                    rows,
                    cols,
                )
    return Location(False, "ambiguous", _empty(), _empty(), _empty(), rows, cols)


def apply_corrections(C: np.ndarray, loc: Location) -> npt.NDArray[np.int32]:
    """A copy of ``C`` with every located error removed: ``C[m, n] -= delta`` modulo 2**32."""
    out: npt.NDArray[np.int32] = np.array(C, dtype=np.int32, copy=True)
    if loc.m.size:
        fixed = to_int32(_u64(out[loc.m, loc.n]) - _u64(loc.delta))
        out[loc.m, loc.n] = fixed.astype(np.int32)
    return out
