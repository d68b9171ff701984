"""Exact systolic-array GEMM kernels with per-MAC timing-error evaluation (numba).

Plain arrays in, no validation (see :mod:`accelsim.kernels.exact` for the wrapper). Each kernel
executes an int8 GEMM fold by fold in SCALE-Sim's fold order (column folds outer, row folds
inner) and, inside a fold, every MAC in its PE's true temporal order, with the global cycle at
which the MAC happens (the same schedule as :mod:`accelsim.hw.mapping`):

* **ws** (weight stationary, fold of ``R`` reduction rows x ``C`` output columns): PE ``(r, c)``
  holds ``B[k0+r, n0+c]``; input row ``m`` reaches it at cycle ``fold_start + R + m + r + c``
  (``R`` cycles of weight load first); the partial sum of output ``(m, n0+c)`` runs down column
  ``c`` from ``r = 0`` to the last used row, and is added to the output (partial sums of earlier
  row folds) below the array.
* **is** (input stationary) is ws on the transposed problem: ``C^T = B^T A^T`` maps ``(K, M)``
  onto the array and streams ``N``, exactly SCALE-Sim's is mapping; the wrapper transposes.
* **os** (output stationary, fold of ``R`` output rows x ``C`` output columns): PE ``(r, c)``
  accumulates output ``(m0+r, n0+c)`` in place; its ``k``-th MAC happens at cycle
  ``fold_start + k + r + c``.

For every MAC the error condition is evaluated: the PE's late accumulator bits at threshold
``theta = 1 / (ratio * pe[r, c] * g[cycle])`` come from the sensitized-delay model
(:func:`accelsim.kernels._mac._late_mask`) with the transition from the PE's previous cycle.
Manifestations (``mode``):

* 0 ``hold``: late bits of the PE's output register keep the previous cycle's value (in ws the
  register last held the partial sum of the previous input row; in os the accumulator's own
  previous value);
* 1 ``flip``: the highest late bit is flipped;
* 2 ``razor``: detected and replayed (no corruption; the replay count is returned);
* 3 ``drop``: the update is dropped (the register keeps ``psum_in``, TE-Drop style).

The corrupted partial sum propagates down the accumulation chain as in the array. Each error is
logged as ``(m, n, k, cycle, late_mask, correct, latched)`` into per-lane logs of fixed capacity;
counts beyond the capacity are still counted. No randomness: errors are a deterministic function
of the operands, the PE map and the supply trace, so results are identical at any thread count
(lanes are output columns / rows, each written by one thread).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from accelsim.kernels._mac import _late_mask

MODE_HOLD = 0
MODE_FLIP = 1
MODE_RAZOR = 2
MODE_DROP = 3

#: Columns of the error log: m, n, k, cycle, late mask, correct value, latched value.
LOG_FIELDS = ("m", "n", "k", "cycle", "late_mask", "correct", "latched")


@njit(cache=True, inline="always")
def _wrap32(x: int) -> int:
    """Two's-complement wrap of an integer to int32 range (as int64)."""
    x = x & 0xFFFFFFFF
    if x >= 0x80000000:
        x -= 0x100000000
    return x


@njit(cache=True, inline="always")
def _manifest(correct: int, psum_in: int, prev_reg: int, mask: int, mode: int) -> int:
    """Value latched by a register whose ``mask`` bits arrived late."""
    if mode == 0:
        u = (correct & 0xFFFFFFFF & ~mask) | (prev_reg & 0xFFFFFFFF & mask)
        return _wrap32(u)
    if mode == 1:
        top = 0
        b = mask
        while b > 1:
            b >>= 1
            top += 1
        return _wrap32((correct & 0xFFFFFFFF) ^ (1 << top))
    if mode == 3:
        return psum_in
    return correct


@njit(cache=True, parallel=True)
def _ws_exact(
    A: np.ndarray,  # int8 (M, K): streamed operand
    B: np.ndarray,  # int8 (K, N): stationary operand
    R: int,
    C: int,
    inv_pe: np.ndarray,  # float64 (R, C): 1 / PE delay factor
    inv_g: np.ndarray,  # float64 (n_cycles,): 1 / supply delay factor per cycle
    inv_ratio: float,  # 1 / (CP(V) / T(f))
    consts: np.ndarray,  # float64: sensitized-delay model constants
    mode: int,
    out: np.ndarray,  # int32 (M, N), zero on entry
    log: np.ndarray,  # int64 (N, cap, 7)
    counts: np.ndarray,  # int64 (N,): errors per output column (may exceed cap)
) -> None:
    M, K = A.shape
    N = B.shape[1]
    row_folds = (K + R - 1) // R
    per_fold = 2 * R + C + M - 2
    cap = log.shape[1]
    n_cycles = inv_g.shape[0]
    for n in prange(N):
        cf = n // C
        c = n - cf * C
        prev_a = np.zeros(R, dtype=np.int64)
        prev_in = np.zeros(R, dtype=np.int64)
        prev_out = np.zeros(R, dtype=np.int64)
        wcol = np.zeros(R, dtype=np.int64)
        acc = np.zeros(M, dtype=np.int64)
        for rf in range(row_folds):
            k0 = rf * R
            rows = min(R, K - k0)
            start = (cf * row_folds + rf) * per_fold
            for r in range(rows):
                wcol[r] = B[k0 + r, n]
                prev_a[r] = 0
                prev_in[r] = 0
                prev_out[r] = 0
            for m in range(M):
                psum = 0
                base = start + R + m + c
                for r in range(rows):
                    w = wcol[r]
                    a = int(A[m, k0 + r])
                    new = _wrap32(psum + w * a)
                    t = base + r
                    theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, n_cycles - 1)]
                    mask = _late_mask(w, a, psum, w, prev_a[r], prev_in[r], theta, consts)
                    if mask != 0:
                        latched = _manifest(new, psum, prev_out[r], mask, mode)
                        j = counts[n]
                        if j < cap:
                            log[n, j, 0] = m
                            log[n, j, 1] = n
                            log[n, j, 2] = k0 + r
                            log[n, j, 3] = t
                            log[n, j, 4] = mask
                            log[n, j, 5] = new
                            log[n, j, 6] = latched
                        counts[n] = j + 1
                        new = latched
                    prev_a[r] = a
                    prev_in[r] = psum
                    prev_out[r] = new
                    psum = new
                acc[m] = _wrap32(acc[m] + psum)
        for m in range(M):
            out[m, n] = acc[m]


@njit(cache=True, parallel=True)
def _os_exact(
    A: np.ndarray,  # int8 (M, K)
    B: np.ndarray,  # int8 (K, N)
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    mode: int,
    out: np.ndarray,  # int32 (M, N)
    log: np.ndarray,  # int64 (M, cap, 7)
    counts: np.ndarray,  # int64 (M,)
) -> None:
    M, K = A.shape
    N = B.shape[1]
    row_folds = (M + R - 1) // R
    per_fold = K + R + C - 2
    cap = log.shape[1]
    n_cycles = inv_g.shape[0]
    for m in prange(M):
        rf = m // R
        r = m - rf * R
        for n in range(N):
            cf = n // C
            c = n - cf * C
            start = (cf * row_folds + rf) * per_fold
            acc = 0
            prev_in = 0
            pa = 0
            pw = 0
            for k in range(K):
                a = int(A[m, k])
                w = int(B[k, n])
                new = _wrap32(acc + w * a)
                t = start + k + r + c
                theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, n_cycles - 1)]
                mask = _late_mask(w, a, acc, pw, pa, prev_in, theta, consts)
                if mask != 0:
                    latched = _manifest(new, acc, acc, mask, mode)
                    j = counts[m]
                    if j < cap:
                        log[m, j, 0] = m
                        log[m, j, 1] = n
                        log[m, j, 2] = k
                        log[m, j, 3] = t
                        log[m, j, 4] = mask
                        log[m, j, 5] = new
                        log[m, j, 6] = latched
                    counts[m] = j + 1
                    new = latched
                prev_in = acc
                pa = a
                pw = w
                acc = new
            out[m, n] = acc
