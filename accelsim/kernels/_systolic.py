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

``_ws_exact_ref`` / ``_os_exact_ref`` evaluate every MAC with ``_late_mask``. ``_ws_exact`` /
``_os_exact`` give bit-identical results (output and error log) and skip work that provably
cannot produce an error: folds / outputs whose every MAC has ``theta >= 1`` become plain
integer dot products, and the MACs of the other folds are screened branch-free with early
exits 2 and 3 of ``_late_mask`` (ws: first a popcount form of exit 3 on every MAC, then the
chain bound on the few it keeps) at lower bounds of their theta before the surviving MACs are
evaluated exactly (see their docstrings). The tests compare both against each other and
against a register-level simulation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from accelsim.kernels import _u32 as U
from accelsim.kernels._mac import (
    _CMASK,
    _NBIN,
    _PMASK,
    _XMASK,
    _chain_bound,
    _chain_exit,
    _chain_params,
    _late_mask,
    _popcount_screen,
    _screen_params,
    _screen_threshold,
)

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


@njit(cache=True, inline="always")
def _log_error(
    log: np.ndarray,
    counts: np.ndarray,
    lane: int,
    m: int,
    n: int,
    k: int,
    cycle: int,
    mask: int,
    correct: int,
    latched: int,
) -> None:
    """Append an error to ``lane``'s log (:data:`LOG_FIELDS`), up to the log's capacity;
    ``counts[lane]`` counts every error."""
    j = counts[lane]
    if j < log.shape[1]:
        log[lane, j, 0] = m
        log[lane, j, 1] = n
        log[lane, j, 2] = k
        log[lane, j, 3] = cycle
        log[lane, j, 4] = mask
        log[lane, j, 5] = correct
        log[lane, j, 6] = latched
    counts[lane] = j + 1


@njit(cache=True, parallel=True)
def _ws_exact_ref(
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
                        _log_error(log, counts, n, m, n, k0 + r, t, mask, new, latched)
                        new = latched
                    prev_a[r] = a
                    prev_in[r] = psum
                    prev_out[r] = new
                    psum = new
                acc[m] = _wrap32(acc[m] + psum)
        for m in range(M):
            out[m, n] = acc[m]


@njit(cache=True, parallel=True)
def _os_exact_ref(
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
                    _log_error(log, counts, m, m, n, k, t, mask, new, latched)
                    new = latched
                prev_in = acc
                pa = a
                pw = w
                acc = new
            out[m, n] = acc


@njit(cache=True)
def _suffix_or(consts: np.ndarray, base: int) -> np.ndarray:
    """``out[i]`` = OR of the mask tables ``consts[base + j]`` for bins ``j >= i`` (int64).

    A screen with ``out[i]`` is conservative for every ``theta`` with bin ``>= i``, whether or
    not the tables shrink with theta.
    """
    out = np.zeros(_NBIN + 1, dtype=np.int64)
    for i in range(_NBIN - 1, -1, -1):
        out[i] = out[i + 1] | int(consts[base + i])
    return out


@njit(cache=True)
def _window_min(inv_g: np.ndarray, t0: int, width: int, out: np.ndarray) -> None:
    """``out[j] = min(inv_g[min(t0 + j + i, len - 1)] for i < width)`` for every ``j``.

    van Herk / Gil-Werman: prefix and suffix minima inside blocks of ``width`` cycles, so a
    window is the minimum of one suffix and one prefix (O(1) per window).
    """
    count = out.shape[0]
    n_cycles = inv_g.shape[0]
    length = count + width - 1
    pre = np.empty(length)
    suf = np.empty(length)
    for i in range(length):
        g = inv_g[min(t0 + i, n_cycles - 1)]
        pre[i] = g if i % width == 0 else min(pre[i - 1], g)
    for i in range(length - 1, -1, -1):
        g = inv_g[min(t0 + i, n_cycles - 1)]
        last = i % width == width - 1 or i == length - 1
        suf[i] = g if last else min(suf[i + 1], g)
    for j in range(count):
        out[j] = min(suf[j], pre[j + width - 1])


@njit(cache=True, inline="always")
def _exit2_bits(xn: int, xo: int, yn: int, yo: int, cmk: int, pmk: int, xmk: int) -> int:
    """Early exit 2 of ``_late_mask`` on 32-bit words: psum in ``xn`` / ``xo`` and product
    ``yn`` / ``yo`` of this and the PE's previous MAC, masks of a theta bin. Non-zero where a
    toggling output bit has a toggled cause that could be late (inlined: loops over it
    vectorize)."""
    word = 0xFFFFFFFF
    sn = (xn + yn) & word
    so = (xo + yo) & word
    dc = (sn ^ xn ^ yn) ^ (so ^ xo ^ yo)
    return (sn ^ so) & ((dc & cmk) | ((yn ^ yo) & pmk) | ((xn ^ xo) & xmk))


@njit(cache=True, inline="always")
def _ws_mac(
    A: np.ndarray,
    Ap: np.ndarray,
    m: int,
    k0: int,
    r: int,
    n: int,
    t: int,
    wcol: np.ndarray,
    pth: np.ndarray,
    inv_g: np.ndarray,
    xc: np.ndarray,
    xp: np.ndarray,
    consts: np.ndarray,
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
) -> bool:
    """One ws MAC evaluated exactly (as in :func:`_ws_exact_ref`): PE row ``r`` adds its
    product to ``xc[r]`` into ``xc[r + 1]``; a late MAC is manifested and logged. Returns
    whether it was late."""
    w = int(wcol[r])
    a = int(Ap[m + 1, k0 + r])
    psum = int(xc[r])
    new = _wrap32(psum + w * a)
    theta = pth[r] * inv_g[min(t, inv_g.shape[0] - 1)]
    mask = _late_mask(w, a, psum, w, int(Ap[m, k0 + r]), int(xp[r]), theta, consts)
    late = mask != 0
    if late:
        latched = _manifest(new, psum, int(xp[r + 1]), mask, mode)
        _log_error(log, counts, n, m, n, k0 + r, t, mask, new, latched)
        new = latched
    xc[r + 1] = new
    return late


@njit(cache=True)
def _fold_window(
    inv_g: np.ndarray, R: int, C: int, M: int, K: int, f: int, out: np.ndarray
) -> None:
    """``out[m + c]``: min of ``inv_g`` over the cycles of input row ``m`` in column ``c`` of ws
    fold ``f`` (column folds outer, row folds inner)."""
    row_folds = (K + R - 1) // R
    rows_f = min(R, K - (f % row_folds) * R)
    _window_min(inv_g, f * (2 * R + C + M - 2) + R, rows_f, out)


@njit(cache=True)
def _screen_tables(consts: np.ndarray) -> np.ndarray:
    """The suffix-OR masks of :func:`_suffix_or` for the carry, product and partial-sum tables
    (rows 0, 1, 2): exit 2 of ``_late_mask`` at a bin's lowest theta."""
    tabs = np.empty((3, _NBIN + 1), dtype=np.int64)
    tabs[0] = _suffix_or(consts, _CMASK)
    tabs[1] = _suffix_or(consts, _PMASK)
    tabs[2] = _suffix_or(consts, _XMASK)
    return tabs


@njit(cache=True)
def _with_zero_row(A: np.ndarray) -> np.ndarray:
    """``A`` with a zero row in front: row ``m`` of the result is the row streamed before row
    ``m`` of ``A``."""
    Ap = np.zeros((A.shape[0] + 1, A.shape[1]), dtype=np.int8)
    Ap[1:] = A
    return Ap


@njit(cache=True)
def _transposed_padded(A: np.ndarray) -> np.ndarray:
    """``A`` (M, K) transposed, with a zero column in front: ``At[k, m + 1] = A[m, k]``, so
    ``At[k, m]`` is the activation PE row ``k`` saw before input row ``m``."""
    M, K = A.shape
    At = np.zeros((K, M + 1), dtype=np.int8)
    for m in range(M):
        for k in range(K):
            At[k, m + 1] = A[m, k]
    return At


@njit(cache=True)
def _ws_row_tail(
    A: np.ndarray,
    Ap: np.ndarray,
    m: int,
    k0: int,
    r: int,
    rows: int,
    n: int,
    base: int,
    before: int,
    late: bool,
    wcol: np.ndarray,
    pth: np.ndarray,
    inv_g: np.ndarray,
    xc: np.ndarray,
    xp: np.ndarray,
    consts: np.ndarray,
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
    tl: float,
    cmk: int,
    pmk: int,
    xmk: int,
    cparams: tuple[int, int, int, float, float, float, float, float],
) -> int:
    """The MACs of input row ``m`` of a ws fold after PE row ``r``, one by one.

    If ``late``, the MAC at ``r`` was late and latched ``xc[r + 1]`` instead of ``before``: the
    partial sums below it move by what it changed (wrapped, as the adders do), so they are
    shifted first (and after every further late MAC). Each MAC is screened with exits 2 and 3
    at the row's lowest theta ``tl`` (masks ``cmk``, ``pmk``, ``xmk`` of its bin) and the rest
    evaluated exactly. Returns the PE row of the first late MAC after ``r``, or -1.
    """
    word = 0xFFFFFFFF
    first = -1
    while True:
        if late:
            delta = int(xc[r + 1]) - before
            for j in range(r + 2, rows + 1):
                xc[j] = _wrap32(int(xc[j]) + delta)
        r += 1
        if r >= rows:
            return first
        w = int(wcol[r])
        a = int(Ap[m + 1, k0 + r])
        pa = int(Ap[m, k0 + r])
        xn = int(xc[r]) & word
        xo = int(xp[r]) & word
        yn = (w * a) & word
        yo = (w * pa) & word
        late = False
        if _exit2_bits(xn, xo, yn, yo, cmk, pmk, xmk) == 0:
            continue
        if _chain_exit(_chain_bound(w, a, int(xc[r]), w, pa, int(xp[r]), cparams), tl):
            continue
        before = int(xc[r + 1])
        late = _ws_mac(
            A, Ap, m, k0, r, n, base + r, wcol, pth, inv_g, xc, xp, consts, mode, log, counts
        )
        if late and first < 0:
            first = r


@njit(cache=True, inline="always")
def _ws_late_then_tail(
    A: np.ndarray,
    Ap: np.ndarray,
    m: int,
    k0: int,
    r: int,
    rows: int,
    n: int,
    base: int,
    wcol: np.ndarray,
    pth: np.ndarray,
    inv_g: np.ndarray,
    xc: np.ndarray,
    xp: np.ndarray,
    consts: np.ndarray,
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
    tl: float,
    cmk: int,
    pmk: int,
    xmk: int,
    cparams: tuple[int, int, int, float, float, float, float, float],
) -> bool:
    """Evaluate the MAC at PE row ``r`` of input row ``m`` exactly (:func:`_ws_mac`); if it is
    late, the rest of the row goes to :func:`_ws_row_tail`. Returns whether it was late."""
    before = int(xc[r + 1])
    if not _ws_mac(
        A, Ap, m, k0, r, n, base + r, wcol, pth, inv_g, xc, xp, consts, mode, log, counts
    ):
        return False
    _ws_row_tail(
        A, Ap, m, k0, r, rows, n, base, before, True, wcol, pth, inv_g, xc, xp, consts, mode,
        log, counts, tl, cmk, pmk, xmk, cparams,
    )  # fmt: skip
    return True


@njit(cache=True, inline="always")
def _ws_fold_by_row(
    A: np.ndarray,
    Ap: np.ndarray,
    n: int,
    c: int,
    k0: int,
    rows: int,
    start: int,
    R: int,
    pmin: float,
    wcol: np.ndarray,
    pth: np.ndarray,
    gw: np.ndarray,
    inv_g: np.ndarray,
    consts: np.ndarray,
    tabs: np.ndarray,
    cparams: tuple[int, int, int, float, float, float, float, float],
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
    acc: np.ndarray,
    xa: np.ndarray,
    xb: np.ndarray,
    risky: np.ndarray,
    idx: np.ndarray,
    bnd: np.ndarray,
    ops: np.ndarray,
) -> None:
    """One ws fold of output column ``n``, input row by input row (for few input rows, see
    :data:`_WS_BY_ROW_M`): the running sums of the row (a scan), exit 2 over its MACs at the
    row's lowest theta (branch-free), the flagged MACs gathered and bounded by exit 3, the
    survivors evaluated exactly until one is late and :func:`_ws_row_tail` takes the rest.
    The partial sums of the row are then the previous row's for the next. Inlined into
    :func:`_ws_columns`, which owns the scratch arrays ``xa`` .. ``ops`` (LLVM then knows
    they do not alias and vectorizes the loops)."""
    M = A.shape[0]
    word = 0xFFFFFFFF
    # xp[r]: partial sum entering PE row r for the previous input row (xp[r + 1]: the value
    # PE row r latched); xc: the same for the current row
    xp = xa
    xc = xb
    for r in range(rows + 1):
        xp[r] = 0
    for m in range(M):
        s = 0
        xc[0] = 0
        for r in range(rows):
            s += wcol[r] * A[m, k0 + r]
            xc[r + 1] = s
        tl = pmin * gw[m]
        if tl < 1.0:
            b = int(tl * _NBIN)
            cmk = tabs[0, b]
            pmk = tabs[1, b]
            xmk = tabs[2, b]
            for r in range(rows):
                w = wcol[r]
                xn = xc[r] & word
                xo = xp[r] & word
                yn = (w * Ap[m + 1, k0 + r]) & word
                yo = (w * Ap[m, k0 + r]) & word
                risky[r] = _exit2_bits(xn, xo, yn, yo, cmk, pmk, xmk)
            anyr = 0
            for r in range(rows):
                anyr |= risky[r]
            if anyr != 0:
                ns = 0
                for r in range(rows):
                    idx[ns] = r
                    ns += 1 if risky[r] != 0 else 0
                if ns > 4:
                    # gather their operands: the bound loop then runs on 1-D contiguous slices
                    # and vectorizes (4-5x faster than on gathered ones)
                    for q in range(ns):
                        r = idx[q]
                        ops[0, q] = wcol[r]
                        ops[1, q] = Ap[m + 1, k0 + r]
                        ops[2, q] = xc[r]
                        ops[3, q] = Ap[m, k0 + r]
                        ops[4, q] = xp[r]
                    o0, o1, o2, o3 = ops[0, :ns], ops[1, :ns], ops[2, :ns], ops[3, :ns]
                    o4 = ops[4, :ns]
                    bq = bnd[:ns]
                    survivors = 0  # counted in the vectorized loop: most rows have none
                    for q in range(ns):
                        bv = _chain_bound(o0[q], o1[q], o2[q], o0[q], o3[q], o4[q], cparams)
                        bq[q] = bv
                        survivors += 0 if _chain_exit(bv, tl) else 1
                else:  # a few: in place (the gather costs more than it saves)
                    survivors = ns
                    for q in range(ns):
                        r = idx[q]
                        w = int(wcol[r])
                        bnd[q] = _chain_bound(
                            w, int(Ap[m + 1, k0 + r]), int(xc[r]), w, int(Ap[m, k0 + r]),
                            int(xp[r]), cparams,
                        )  # fmt: skip
                base = start + R + m + c
                for q in range(ns if survivors != 0 else 0):
                    r = idx[q]
                    if _chain_exit(bnd[q], pth[r] * gw[m]):
                        continue
                    if _ws_late_then_tail(
                        A, Ap, m, k0, r, rows, n, base, wcol, pth, inv_g, xc, xp, consts, mode,
                        log, counts, tl, cmk, pmk, xmk, cparams,
                    ):  # fmt: skip
                        break
        acc[m] = _wrap32(acc[m] + xc[rows])
        xp, xc = xc, xp


#: Below this many input rows :func:`_ws_columns` works input row by input row: the running sums
#: over input rows then have too few lanes to pay off (measured: M = 1, 1x1152x1152, 2.6 ms by
#: row vs 8-10 ms over input rows; M = 64 and up, the layout over input rows is 1.3-2.5x faster
#: at TER up to ~1e-3 and 3-8% slower at ~1e-2).
_WS_BY_ROW_M = 32
#: Flagged MACs gathered and bounded per batch in :func:`_ws_columns`.
_WS_BATCH = 1024
#: Byte ``k`` of a word of 0/1 bytes times this lands in bit ``56 + k`` (no carries reach them).
_GATHER_BITS = 0x0102040810204080


@njit(cache=True)
def _ws_columns(
    A: np.ndarray,
    Ap: np.ndarray,
    At: np.ndarray,
    B: np.ndarray,
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    gwin: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    tabs: np.ndarray,
    cparams: tuple[int, int, int, float, float, float, float, float],
    sparams: tuple[int, int, int, int, int, int, float],
    mode: int,
    out: np.ndarray,
    log: np.ndarray,
    counts: np.ndarray,
    n_lo: int,
    n_hi: int,
) -> None:
    """Output columns ``n_lo:n_hi`` of :func:`_ws_exact` (one thread's share). ``Ap``: ``A``
    with a zero row in front; ``At``: :func:`_transposed_padded`; ``gwin``: the per-fold supply
    window minima of :func:`_fold_window`; ``tabs``: the three suffix-OR mask tables;
    ``cparams`` / ``sparams``: :func:`_chain_params` / :func:`_screen_params`."""
    M, K = A.shape
    row_folds = (K + R - 1) // R
    per_fold = 2 * R + C + M - 2
    cm_tab = tabs[0]
    pm_tab = tabs[1]
    xm_tab = tabs[2]
    amask, rmask, lo, tci, pxi, tcmi, ts = sparams
    amask32, rmask32, lo32 = U.u32(amask), U.u32(rmask), U.u32(lo)
    tci32, pxi32, tcmi32 = U.u32(tci), U.u32(pxi), U.u32(tcmi)
    wcol = np.zeros(R, dtype=np.int32)
    pth = np.zeros(R)
    gw = np.zeros(M)
    # P[r, m + 1]: partial sum entering PE row r for input row m (P[r, 0] = 0: the zero row
    # streamed before the first); row r of P is the running sum over PE rows < r
    P = np.zeros((R + 1, M + 1), dtype=np.int32)
    run = np.zeros(M + 1, dtype=np.int32)
    words_per_row = (M + 7) // 8
    flags = np.zeros((R, 8 * words_per_row), dtype=np.uint8)  # padding bytes stay 0
    flag_words = flags.reshape(-1).view(np.uint64)
    gather_bits = np.uint64(_GATHER_BITS)
    # flagged MACs (PE row, input row), then the survivors of exit 3, then those by input row
    fr = np.empty(R * M, dtype=np.int32)
    fm = np.empty(R * M, dtype=np.int32)
    sr = np.empty(R * M, dtype=np.int32)
    sm = np.empty(R * M, dtype=np.int32)
    qr = np.empty(R * M, dtype=np.int32)
    qm = np.empty(R * M, dtype=np.int32)
    row_start = np.zeros(M + 1, dtype=np.int64)
    ops = np.zeros((5, _WS_BATCH), dtype=np.int64)
    tb = np.zeros(_WS_BATCH)
    # scratch of _ws_fold_by_row
    xa = np.zeros(R + 1, dtype=np.int32)
    xb = np.zeros(R + 1, dtype=np.int32)
    risky = np.zeros(R, dtype=np.int64)
    idx = np.zeros(R, dtype=np.int64)
    bnd = np.zeros(R)
    rops = np.zeros((5, R), dtype=np.int64)
    acc = np.zeros(M, dtype=np.int64)
    for n in range(n_lo, n_hi):
        cf = n // C
        c = n - cf * C
        for m in range(M):
            acc[m] = 0
        for rf in range(row_folds):
            k0 = rf * R
            rows = min(R, K - k0)
            f = cf * row_folds + rf
            start = f * per_fold
            pmin = np.inf
            for r in range(rows):
                wcol[r] = B[k0 + r, n]
                p = inv_ratio * inv_pe[r, c]
                pth[r] = p
                pmin = min(pmin, p)
            gmin = np.inf
            for m in range(M):
                g = gwin[f, m + c]
                gw[m] = g
                gmin = min(gmin, g)
            if pmin * gmin >= 1.0:
                # theta >= 1 for every MAC of the fold: no errors, a plain dot product per row
                for m in range(M):
                    arow = A[m, k0 : k0 + rows]  # a 1-D slice: the loop vectorizes
                    s = 0
                    for r in range(rows):
                        s += wcol[r] * arow[r]
                    acc[m] = _wrap32(acc[m] + s)
                continue
            if M < _WS_BY_ROW_M:
                _ws_fold_by_row(
                    A, Ap, n, c, k0, rows, start, R, pmin, wcol, pth, gw, inv_g, consts, tabs,
                    cparams, mode, log, counts, acc, xa, xb, risky, idx, bnd, rops,
                )  # fmt: skip
                continue
            # running sums of every input row at once (the loop runs over m and vectorizes;
            # exact without wrapping while no MAC failed: rows * 2**14 <= 2**30)
            for j in range(M + 1):
                run[j] = 0
            for r in range(rows):
                wr = wcol[r]
                for j in range(1, M + 1):
                    v = run[j] + wr * At[k0 + r, j]
                    run[j] = v
                    P[r + 1, j] = v
            # screen every MAC (branch-free, 32-bit lanes): exit 2 at the fold's lowest theta
            # bin, then the popcount form of exit 3 at the PE's lowest theta in the fold
            b = int(pmin * gmin * _NBIN)
            cmk = U.u32(cm_tab[b])
            pmk = U.u32(pm_tab[b])
            xmk = U.u32(xm_tab[b])
            flagged = U.u32(0)
            for r in range(rows):
                w = U.u32(wcol[r])
                thr = U.u32(_screen_threshold(pth[r] * gmin, ts))
                hit = U.u32(0)
                for j in range(M):
                    fl = _popcount_screen(
                        U.u32(P[r, j + 1]),
                        U.u32(P[r, j]),
                        w,
                        U.u32(At[k0 + r, j + 1]),
                        w,
                        U.u32(At[k0 + r, j]),
                        cmk,
                        pmk,
                        xmk,
                        amask32,
                        rmask32,
                        lo32,
                        tci32,
                        pxi32,
                        tcmi32,
                        thr,
                    )
                    flags[r, j] = fl
                    hit = U.or_(hit, fl)
                flagged = U.or_(flagged, hit)
            if flagged == 0:
                for m in range(M):
                    acc[m] = _wrap32(acc[m] + P[rows, m + 1])
                continue
            # compact the flags (few: whole zero words are skipped), in PE-row order
            nf = 0
            for r in range(rows):
                for i in range(words_per_row):
                    word8 = flag_words[r * words_per_row + i]
                    if word8 == 0:
                        continue
                    bits = (word8 * gather_bits) >> np.uint64(56)
                    while bits != 0:
                        fr[nf] = r
                        fm[nf] = 8 * i + np.int64(U.trailing_zeros64(bits))
                        nf += 1
                        bits &= bits - np.uint64(1)
            # exit 3 (chain bound) at each MAC's own lowest theta, in batches of gathered
            # operands (the bound loop then runs on contiguous arrays and vectorizes)
            ns = 0
            for q0 in range(0, nf, _WS_BATCH):
                nb = min(_WS_BATCH, nf - q0)
                for q in range(nb):
                    r = fr[q0 + q]
                    m = fm[q0 + q]
                    ops[0, q] = wcol[r]
                    ops[1, q] = At[k0 + r, m + 1]
                    ops[2, q] = P[r, m + 1]
                    ops[3, q] = At[k0 + r, m]
                    ops[4, q] = P[r, m]
                    tb[q] = pth[r] * gw[m]
                o0, o1, o2, o3, o4 = ops[0, :nb], ops[1, :nb], ops[2, :nb], ops[3, :nb], ops[4, :nb]
                t = tb[:nb]
                for q in range(nb):
                    bound = _chain_bound(o0[q], o1[q], o2[q], o0[q], o3[q], o4[q], cparams)
                    t[q] = 0.0 if _chain_exit(bound, t[q]) else 1.0
                for q in range(nb):
                    sr[ns] = fr[q0 + q]
                    sm[ns] = fm[q0 + q]
                    ns += 1 if t[q] != 0.0 else 0
            # the survivors by input row (a stable counting sort: PE rows stay in order)
            for m in range(M + 1):
                row_start[m] = 0
            for q in range(ns):
                row_start[sm[q] + 1] += 1
            for m in range(M):
                row_start[m + 1] += row_start[m]
            for q in range(ns):
                m = sm[q]
                d = row_start[m]
                qr[d] = sr[q]
                qm[d] = m
                row_start[m] = d + 1
            # evaluate them in the array's order (input rows, then PE rows). A late MAC at PE
            # row r of input row m changes the partial sums below it: the rest of row m goes
            # to _ws_row_tail, and row m + 1 (whose previous-row sums changed from r on) is
            # screened again from PE row r
            q = 0
            dirty_m = -1
            dirty_r = 0
            while q < ns or dirty_m >= 0:
                m = qm[q] if q < ns else M
                if 0 <= dirty_m <= m:
                    m = dirty_m
                if m >= M:
                    break
                stop = dirty_r if m == dirty_m else rows
                xc = P[:, m + 1]
                xp = P[:, m]
                base = start + R + m + c
                tl = pmin * gw[m]
                bin_m = int(tl * _NBIN) if tl < 1.0 else _NBIN
                late_r = -1
                while q < ns and qm[q] == m:
                    r = qr[q]
                    q += 1
                    if late_r >= 0 or r >= stop:
                        continue
                    if _ws_late_then_tail(
                        A, Ap, m, k0, r, rows, n, base, wcol, pth, inv_g, xc, xp, consts, mode,
                        log, counts, tl, cm_tab[bin_m], pm_tab[bin_m], xm_tab[bin_m], cparams,
                    ):  # fmt: skip
                        late_r = r
                if late_r < 0 and m == dirty_m:
                    late_r = _ws_row_tail(
                        A, Ap, m, k0, dirty_r - 1, rows, n, base, 0, False, wcol, pth, inv_g,
                        xc, xp, consts, mode, log, counts, tl, cm_tab[bin_m], pm_tab[bin_m],
                        xm_tab[bin_m], cparams,
                    )  # fmt: skip
                if late_r >= 0:
                    dirty_m = m + 1
                    dirty_r = late_r
                else:
                    dirty_m = -1
            for m in range(M):
                acc[m] = _wrap32(acc[m] + P[rows, m + 1])
        for m in range(M):
            out[m, n] = acc[m]


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
    """:func:`_ws_exact_ref` with the same results, skipping MACs that provably cannot fail.

    Per output column and row fold: if ``theta >= 1`` for every MAC (``min`` over the fold's
    PEs of ``inv_ratio * inv_pe`` times the ``min`` of ``inv_g`` over its cycles; rounded
    multiplication is monotone, so this is exact) the fold is a plain integer dot product.
    Otherwise:

    1. The partial sums entering every PE row for every input row are running sums without
       errors (vectorized over the input rows).
    2. Every MAC is screened branch-free in 32-bit lanes (:func:`_popcount_screen`): exit 2 of
       ``_late_mask`` at the fold's lowest theta bin, then a popcount form of exit 3 at the
       PE's lowest theta in the fold. On DNN operands about 0.7% of the MACs stay flagged.
    3. The flagged MACs are gathered and screened by exit 3 (:func:`_chain_bound`) at their
       own lowest theta; the survivors are evaluated by ``_late_mask`` with the exact theta,
       input row by input row.

    Every screen uses a lower bound of theta, so none hides a late MAC. A late MAC shifts the
    partial sums below it by what it changed and sends the rest of its row to
    :func:`_ws_row_tail`; the next input row, whose previous-row sums changed below that PE
    row, is screened again from there, MAC by MAC. With fewer than :data:`_WS_BY_ROW_M` input
    rows, folds are done input row by input row instead (:func:`_ws_fold_by_row`).
    """
    M, K = A.shape
    N = B.shape[1]
    n_folds = ((N + C - 1) // C) * ((K + R - 1) // R)
    gwin = np.empty((n_folds, M + C - 1))
    if n_folds >= 4:
        for f in prange(n_folds):
            _fold_window(inv_g, R, C, M, K, f, gwin[f])
    else:  # a few folds: not worth waking the thread pool
        for f in range(n_folds):
            _fold_window(inv_g, R, C, M, K, f, gwin[f])
    tabs = _screen_tables(consts)
    cparams = _chain_params(consts)
    sparams = _screen_params(consts)
    Ap = _with_zero_row(A)
    At = _transposed_padded(A)
    # columns in chunks of 8, or 32 with few input rows (allocating the scratch arrays per
    # column cost about a fifth of a small GEMM's time)
    width = 8 if M >= _WS_BY_ROW_M else 32
    n_chunks = (N + width - 1) // width
    for ch in prange(n_chunks):
        _ws_columns(
            A, Ap, At, B, R, C, inv_pe, inv_g, gwin, inv_ratio, consts, tabs, cparams, sparams,
            mode, out, log, counts, ch * N // n_chunks, (ch + 1) * N // n_chunks,
        )  # fmt: skip


@njit(cache=True, inline="always")
def _os_mac(
    arow: np.ndarray,
    brow: np.ndarray,
    P: np.ndarray,
    m: int,
    n: int,
    k: int,
    t: int,
    pth: float,
    inv_g: np.ndarray,
    consts: np.ndarray,
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
) -> int:
    """MAC ``k`` of os output ``(m, n)`` evaluated exactly (as in :func:`_os_exact_ref`).

    ``arow`` / ``brow`` are the output's operand rows with a zero in front (index ``k + 1`` is
    MAC ``k``, index ``k`` the PE's previous MAC), ``P`` its running sums (``P[k + 1]`` enters
    MAC ``k``, ``P[k]`` entered the one before; congruent mod 2**32 to the int32 register).
    A late MAC is manifested and logged; returns what it changed (0 if it was on time).
    """
    w = int(brow[k + 1])
    a = int(arow[k + 1])
    acc = _wrap32(P[k + 1])
    new = _wrap32(acc + w * a)
    theta = pth * inv_g[min(t, inv_g.shape[0] - 1)]
    mask = _late_mask(w, a, acc, int(brow[k]), int(arow[k]), _wrap32(P[k]), theta, consts)
    if mask == 0:
        return 0
    latched = _manifest(new, acc, acc, mask, mode)
    _log_error(log, counts, m, m, n, k, t, mask, new, latched)
    return latched - new


@njit(cache=True)
def _os_after_late(
    arow: np.ndarray,
    brow: np.ndarray,
    P: np.ndarray,
    m: int,
    n: int,
    k: int,
    delta: int,
    K: int,
    t0: int,
    pth: float,
    inv_g: np.ndarray,
    consts: np.ndarray,
    mode: int,
    log: np.ndarray,
    counts: np.ndarray,
    tl: float,
    cmk: int,
    pmk: int,
    xmk: int,
    cparams: tuple[int, int, int, float, float, float, float, float],
) -> None:
    """The rest of os output ``(m, n)`` after its MAC ``k`` was late and changed the register
    by ``delta``: the running sums after it move by as much, and the following MACs are
    screened again one by one (exits 2 and 3 at ``tl``, as the first pass; MAC ``j`` happens
    at cycle ``t0 + j``). One by one: a second vectorized pass in the caller's loop stopped
    LLVM from vectorizing the first (3x slower)."""
    word = 0xFFFFFFFF
    while True:
        if delta != 0:
            for j in range(k + 2, K + 2):
                P[j] += delta
        k += 1
        if k >= K:
            return
        delta = 0
        w = int(brow[k + 1])
        a = int(arow[k + 1])
        pw = int(brow[k])
        pa = int(arow[k])
        xn = P[k + 1] & word
        xo = P[k] & word
        yn = (w * a) & word
        yo = (pw * pa) & word
        if _exit2_bits(xn, xo, yn, yo, cmk, pmk, xmk) == 0:
            continue
        bound = _chain_bound(w, a, _wrap32(P[k + 1]), pw, pa, _wrap32(P[k]), cparams)
        if _chain_exit(bound, tl):
            continue
        delta = _os_mac(arow, brow, P, m, n, k, t0 + k, pth, inv_g, consts, mode, log, counts)


@njit(cache=True)
def _os_rows(
    Az: np.ndarray,
    BTz: np.ndarray,
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    gwin: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    tabs: np.ndarray,
    cparams: tuple[int, int, int, float, float, float, float, float],
    mode: int,
    out: np.ndarray,
    log: np.ndarray,
    counts: np.ndarray,
    m_lo: int,
    m_hi: int,
) -> None:
    """Output rows ``m_lo:m_hi`` of :func:`_os_exact` (one thread's share). ``Az`` / ``BTz``
    are ``A`` / ``B.T`` with a zero column in front, ``gwin`` the window minima of 1/g per fold
    and PE diagonal, ``tabs`` / ``cparams`` as in :func:`_ws_columns`."""
    M = Az.shape[0]
    K = Az.shape[1] - 1
    N = BTz.shape[0]
    row_folds = (M + R - 1) // R
    per_fold = K + R + C - 2
    word = 0xFFFFFFFF
    P = np.zeros(K + 2, dtype=np.int64)
    risky = np.zeros(K, dtype=np.int64)
    idx = np.zeros(K, dtype=np.int64)
    bnd = np.zeros(K)
    ops = np.zeros((6, K), dtype=np.int64)
    for m in range(m_lo, m_hi):
        rf = m // R
        r = m - rf * R
        arow = Az[m]
        for n in range(N):
            cf = n // C
            c = n - cf * C
            f = cf * row_folds + rf
            pth = inv_ratio * inv_pe[r, c]
            tl = pth * gwin[f, r + c]
            brow = BTz[n]
            s = 0
            if tl >= 1.0:
                # theta >= 1 for all K MACs: a plain dot product (1-D rows: it vectorizes)
                for k in range(1, K + 1):
                    s += arow[k] * brow[k]
                out[m, n] = _wrap32(s)
                continue
            # running sums without errors (exact in int64; the screen and the exact
            # evaluation read them mod 2**32, as the int32 register holds them)
            for k in range(1, K + 1):
                s += arow[k] * brow[k]
                P[k + 1] = s
            b = int(tl * _NBIN)
            cmk = tabs[0, b]
            pmk = tabs[1, b]
            xmk = tabs[2, b]
            t0 = f * per_fold + r + c
            for k in range(K):
                w = brow[k + 1]
                pw = brow[k]
                xn = P[k + 1] & word
                xo = P[k] & word
                yn = (w * arow[k + 1]) & word
                yo = (pw * arow[k]) & word
                risky[k] = _exit2_bits(xn, xo, yn, yo, cmk, pmk, xmk)
            ns = 0
            for k in range(K):
                idx[ns] = k
                ns += 1 if risky[k] != 0 else 0
            # gather the flagged MACs' operands: the bound loop then runs on contiguous rows
            for q in range(ns):
                k = idx[q]
                ops[0, q] = brow[k + 1]
                ops[1, q] = arow[k + 1]
                ops[2, q] = _wrap32(P[k + 1])
                ops[3, q] = brow[k]
                ops[4, q] = arow[k]
                ops[5, q] = _wrap32(P[k])
            o0, o1, o2, o3, o4, o5 = ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]
            survivors = 0
            for q in range(ns):
                bv = _chain_bound(o0[q], o1[q], o2[q], o3[q], o4[q], o5[q], cparams)
                bnd[q] = bv
                survivors += 0 if _chain_exit(bv, tl) else 1
            for q in range(ns if survivors != 0 else 0):
                if _chain_exit(bnd[q], tl):
                    continue
                k = idx[q]
                delta = _os_mac(
                    arow, brow, P, m, n, k, t0 + k, pth, inv_g, consts, mode, log, counts
                )
                if delta != 0:
                    _os_after_late(
                        arow, brow, P, m, n, k, delta, K, t0, pth, inv_g, consts, mode, log,
                        counts, tl, cmk, pmk, xmk, cparams,
                    )  # fmt: skip
                    break
            out[m, n] = _wrap32(P[K + 1])


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
    """:func:`_os_exact_ref` with the same results, skipping MACs that provably cannot fail.

    If ``theta >= 1`` for all ``K`` MACs of an output (``inv_ratio * inv_pe`` of its PE times
    the ``min`` of ``inv_g`` over its cycles; exact, rounded multiplication is monotone) the
    output is a plain integer dot product. Otherwise its running sums are computed without
    errors and its MACs screened as the ws rows of :func:`_ws_exact` (exit 2 branch-free at the
    output's lowest theta, exit 3 on the gathered flagged MACs, ``_late_mask`` at the exact
    theta on the rest); a late MAC shifts the running sums after it and the rest of the output
    is screened again (:func:`_os_after_late`).
    """
    M, K = A.shape
    N = B.shape[1]
    row_folds = (M + R - 1) // R
    col_folds = (N + C - 1) // C
    per_fold = K + R + C - 2
    n_folds = col_folds * row_folds
    # gwin[f, r + c]: min of 1/g over the K cycles of PE (r, c) in fold f
    gwin = np.empty((n_folds, R + C - 1))
    for f in prange(n_folds):
        _window_min(inv_g, f * per_fold, K, gwin[f])
    Az = np.zeros((M, K + 1), dtype=np.int8)
    Az[:, 1:] = A
    BTz = np.zeros((N, K + 1), dtype=np.int8)
    BTz[:, 1:] = B.T
    tabs = _screen_tables(consts)
    cparams = _chain_params(consts)
    n_chunks = (M + 3) // 4
    for ch in prange(n_chunks):
        _os_rows(
            Az, BTz, R, C, inv_pe, inv_g, gwin, inv_ratio, consts, tabs, cparams, mode, out, log,
            counts, ch * M // n_chunks, (ch + 1) * M // n_chunks,
        )  # fmt: skip
