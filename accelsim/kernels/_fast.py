"""numba kernels of the fast timing-error GEMM (plain arrays in, no validation).

See :mod:`accelsim.kernels.fast` for the method. Three kinds of kernels:

* ``_ws_sample`` / ``_os_sample``: the true MAC state (``w, a, psum_in`` and the PE's previous
  cycle ``pw, pa, ppsum_in``) of randomly chosen accumulation chains, their stratum x class cell
  and whether the MAC is late at the smallest threshold of the GEMM (``_mac._late_mask``).
* ``_ws_events`` / ``_os_events``: error events by thinning. Every *unit* (ws: a fold's PE
  row, its PEs and row segments in turn; os: a PE and a chain-depth stratum) runs a Bernoulli
  candidate process over its MACs by geometric skips, and accepts a candidate with
  ``p(cell, theta) / q``. One counter-based random stream per unit, so the events do not
  depend on the number of threads, and a unit run again (ws: after its event room
  overflowed; os: count, then fill) gives the same events.
* ``_ws_propagate`` / ``_os_propagate``: the sampled events with their consequences, the
  MACs whose state an error corrupted evaluated exactly (``_mac._late_mask``).
* ``_ws_correct`` / ``_os_correct``: the error-free register value of razor events.

Random numbers: splitmix64 (Steele, Lea and Flood, OOPSLA 2014) on a per-unit counter, seeded
from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from accelsim.kernels import _u32 as U
from accelsim.kernels._mac import (
    _ACC,
    _CMASK,
    _NBIN,
    _PMASK,
    _RIPPLE,
    _XMASK,
    _late_mask,
    _late_mask_tail,
    _longest_run,
    _popcount_screen,
    _screen_params,
    _screen_threshold,
)
from accelsim.kernels._systolic import _manifest, _window_min, _wrap32

#: Product classes: the change of the product ``|w*a - pw*pa|`` (0, 1-6, 7-10, >= 11 bits) x
#: whether the (new, else old) product's sign is opposite to ``psum_in``'s (carries then ripple
#: through the sign-extension region).
N_PCLASS = 8
#: State classes: the length of the MAC's longest chain of toggled accumulator carries (into
#: bits ``1..ripple-1``, linked by current propagates: the chain of ``_mac._chain_bound``),
#: <= 8, 9-10, 11-12, 13, 14, 15, 16, 17, >= 18 bits, x the sign of the new sum. The chain sets
#: the accumulator's delay (``t_s + t_c * chain``); a long one needs the sum to change sign
#: against the previous cycle with a small-magnitude psum or product (a sign-extension run),
#: a state that persists down a chain (measured on DNN-like ws data at theta ~ 1/1.28: never
#: late below 11 bits, 0.3 % at 12, 1.2 % at 14, 7 % at 16, 33 % at 18, ~45 % above). The sum's
#: sign sets the sign of a ``hold`` error (late high bits take the previous, opposite sign).
N_LANE = 18
#: Classes per stratum.
N_CLASSES = N_PCLASS * N_LANE
#: Shortest chain of each chain-length class above the first (``_lane``).
_LANE_CHAIN = (9, 11, 13, 14, 15, 16, 17, 18)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _ripple_mask(consts: np.ndarray) -> int:
    """Accumulator carries ``c_1 .. c_{ripple-1}`` (those with a delay), as a bit mask."""
    return (1 << int(min(consts[_RIPPLE], consts[_ACC]))) - 2


@njit(cache=True, inline="always")
def _lane(chain: int) -> int:
    """Chain-length class of a toggled-carry chain of ``chain`` bits (``N_LANE // 2``)."""
    lane = 0
    for lo in _LANE_CHAIN:
        if chain >= lo:
            lane += 1
    return lane


@njit(cache=True, inline="always")
def _pbucket(y: int, yp: int) -> int:
    """Product-change bucket of a MAC: ``|y - yp|`` = 0, 1-6, 7-10 or >= 11 bits (0-3)."""
    d = abs(y - yp)
    if d == 0:
        return 0
    return 1 if d < 64 else (2 if d < 1024 else 3)


@njit(cache=True, inline="always")
def _class(w: int, a: int, pw: int, pa: int, psum: int, ppsum: int, rmask: int) -> int:
    """Class of a MAC within its stratum (:data:`N_LANE` x :data:`N_PCLASS`); ``rmask`` from
    :func:`_ripple_mask`."""
    y = w * a
    yp = pw * pa
    xn = psum & 0xFFFFFFFF
    xo = ppsum & 0xFFFFFFFF
    yn = y & 0xFFFFFFFF
    yo = yp & 0xFFFFFFFF
    sn = (xn + yn) & 0xFFFFFFFF
    so = (xo + yo) & 0xFFFFFFFF
    dc = ((sn ^ xn ^ yn) ^ (so ^ xo ^ yo)) & rmask
    link = dc & ((xn ^ yn) << 1) & (dc << 1)
    chain = _longest_run(link) + (1 if dc != 0 else 0)
    lane = (2 * _lane(chain) + (1 if sn >= 0x80000000 else 0)) * N_PCLASS  # sum < 0
    dp = _pbucket(y, yp)
    if dp == 0:
        return lane
    yy = y if y != 0 else yp
    return lane + 2 * dp + (1 if (yy < 0) != (psum < 0) else 0)


@njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _seed_state(seed: np.uint64, unit: int) -> np.uint64:
    return _mix(seed ^ _mix(np.uint64(unit) * _GOLDEN + _GOLDEN))


@njit(cache=True, inline="always")
def _uniform(state: np.uint64) -> tuple[np.uint64, float]:
    """Next state and a uniform float in [0, 1)."""
    state = state + _GOLDEN
    return state, float(_mix(state) >> np.uint64(11)) * _U53


@njit(cache=True, inline="always")
def _skip(state: np.uint64, log1mq: float) -> tuple[np.uint64, int]:
    """Geometric gap (failures before the next success) of a Bernoulli(q) sequence."""
    state, u = _uniform(state)
    if log1mq == 0.0:
        return state, 1 << 62
    if log1mq == -np.inf:
        return state, 0
    g = np.floor(np.log(1.0 - u) / log1mq)
    if g > 4.0e18:
        return state, 1 << 62
    return state, int(g)


@njit(cache=True, inline="always")
def _above(s_sorted: np.ndarray, lo: int, hi: int, theta: float) -> int:
    """Number of ``s_sorted[lo:hi]`` (ascending) strictly greater than ``theta``."""
    a = lo
    b = hi
    while a < b:
        mid = (a + b) >> 1
        if s_sorted[mid] > theta:
            b = mid
        else:
            a = mid + 1
    return hi - a


# --------------------------------------------------------------------------- sampling


@njit(cache=True, inline="always")
def _note_late(
    late: np.ndarray,
    psum: np.ndarray,
    ppsum: np.ndarray,
    i: int,
    j: int,
    mask: int,
    p: int,
    pp: int,
) -> None:
    """Sample MAC ``(i, j)``: whether it is late (``mask != 0``) and, if so, its partial sums."""
    late[i, j] = 1 if mask != 0 else 0
    if mask != 0:
        psum[i, j] = p
        ppsum[i, j] = pp


@njit(cache=True, inline="always")
def _screen_masks(
    theta: float, consts: np.ndarray
) -> tuple[bool, int, int, int, int, int, int, int, int, int, int]:
    """The screen of :func:`_sample_chain` at ``theta``: ``theta < 1``, the carry, product and
    psum masks of exit 2 of ``_late_mask``, then the accumulator, ripple and split masks, the
    fixed-point delays and the threshold of :func:`_mac._popcount_screen`."""
    screen = theta < 1.0  # exit 1: nothing is late at theta >= 1
    ib = int(theta * _NBIN) if screen else 0
    amask, rmask, lo, tci, pxi, tcmi, ts = _screen_params(consts)
    return (
        screen,
        int(consts[_CMASK + ib]),
        int(consts[_PMASK + ib]),
        int(consts[_XMASK + ib]),
        amask,
        rmask,
        lo,
        tci,
        pxi,
        tcmi,
        _screen_threshold(theta, ts),
    )


@njit(cache=True, inline="always")
def _sample_chain(
    i: int,
    count: int,
    strata: np.ndarray,
    wv: np.ndarray,
    av: np.ndarray,
    pwv: np.ndarray,
    pav: np.ndarray,
    pv: np.ndarray,
    ppv: np.ndarray,
    rmask: int,
    masks: tuple[bool, int, int, int, int, int, int, int, int, int, int],
    theta: float,
    consts: np.ndarray,
    risky: np.ndarray,
    cell: np.ndarray,
    late: np.ndarray,
    psum: np.ndarray,
    ppsum: np.ndarray,
) -> None:
    """Cells and late flags of the first ``count`` MACs of sampled chain ``i`` from their
    operands (``w, a``), previous cycle's operands (``pw, pa``) and partial sums (``psum_in``
    and the previous cycle's): classes and the screen of :func:`_mac._popcount_screen` (exit 2
    of ``_late_mask`` and a looser exit 3) in branch-free loops that vectorize, then
    ``_late_mask_tail`` for the flagged MACs only (the same masks as ``_late_mask`` per MAC;
    on DNN operands the popcount screen flags 1 in 16 of the MACs exit 2 alone flags: the
    sample of 166k MACs of a 256x1152x1152 GEMM took 0.92 instead of 1.40 ms)."""
    screen, cmk, pmk, xmk, amask, rmask32, lo, tci, pxi, tcmi, thr = masks
    crow = cell[i]
    for j in range(count):
        crow[j] = strata[j] * N_CLASSES + _class(wv[j], av[j], pwv[j], pav[j], pv[j], ppv[j], rmask)
    cm, pm, xm = U.u32(cmk), U.u32(pmk), U.u32(xmk)
    am, rm, lo32 = U.u32(amask), U.u32(rmask32), U.u32(lo)
    tc, px, tcm, th = U.u32(tci), U.u32(pxi), U.u32(tcmi), U.u32(thr)
    for j in range(count):
        risky[j] = _popcount_screen(
            U.u32(pv[j]),
            U.u32(ppv[j]),
            U.u32(wv[j]),
            U.u32(av[j]),
            U.u32(pwv[j]),
            U.u32(pav[j]),
            cm,
            pm,
            xm,
            am,
            rm,
            lo32,
            tc,
            px,
            tcm,
            th,
        )
    for j in range(count):
        mask = 0
        if screen and risky[j] != 0:
            mask = _late_mask_tail(wv[j], av[j], pv[j], pwv[j], pav[j], ppv[j], theta, consts)
        _note_late(late, psum, ppsum, i, j, mask, pv[j], ppv[j])


@njit(cache=True, parallel=True)
def _ws_sample(
    A: np.ndarray,  # int8 (M, K)
    B: np.ndarray,  # int8 (K, N)
    R: int,
    lane_m: np.ndarray,  # int64 (L,)
    lane_n: np.ndarray,
    lane_rf: np.ndarray,
    theta: float,
    consts: np.ndarray,
    strata: np.ndarray,  # int64 (R,): stratum of PE row r
    cell: np.ndarray,  # int64 (L, R) out: cell, -1 past the fold's rows
    late: np.ndarray,  # uint8 (L, R) out
    psum: np.ndarray,  # int64 (L, R) out: psum_in (written where late only)
    ppsum: np.ndarray,  # int64 (L, R) out: previous input row's psum_in (where late only)
) -> None:
    """Per lane: the chain's operands and error-free partial sums first (a scan), then the
    classes and the exit-2 screen of ``_late_mask`` over the chain in branch-free loops that
    vectorize, then the rest of ``_late_mask`` (``_late_mask_tail``) for the flagged MACs only:
    the same cells and late flags as ``_late_mask`` per MAC, at about half the cost."""
    K = A.shape[1]
    D = cell.shape[1]
    L = lane_m.shape[0]
    rmask = _ripple_mask(consts)
    masks = _screen_masks(theta, consts)
    n_chunks = min(L, 16)  # lanes in chunks, each with its scratch rows
    for ch in prange(n_chunks):
        wv = np.zeros(D, dtype=np.int64)
        av = np.zeros(D, dtype=np.int64)
        pav = np.zeros(D, dtype=np.int64)
        pv = np.zeros(D, dtype=np.int64)
        ppv = np.zeros(D, dtype=np.int64)
        risky = np.zeros(D, dtype=np.uint32)
        for i in range(ch * L // n_chunks, (ch + 1) * L // n_chunks):
            m = lane_m[i]
            n = lane_n[i]
            k0 = lane_rf[i] * R
            rows = min(R, K - k0)
            p = 0
            pp = 0
            for r in range(rows):
                w = int(B[k0 + r, n])
                a = int(A[m, k0 + r])
                pa = int(A[m - 1, k0 + r]) if m > 0 else 0
                wv[r] = w
                av[r] = a
                pav[r] = pa
                pv[r] = p
                ppv[r] = pp
                p = _wrap32(p + w * a)
                pp = _wrap32(pp + w * pa) if m > 0 else 0
            for r in range(rows, D):
                cell[i, r] = -1
                late[i, r] = 0
            # ws: the PE's previous cycle had the same weight (pw = w)
            _sample_chain(
                i, rows, strata, wv, av, wv, pav, pv, ppv, rmask, masks, theta, consts, risky,
                cell, late, psum, ppsum,
            )  # fmt: skip


@njit(cache=True)
def _sample_stats(
    cell: np.ndarray, late: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Of a sample's ``cell`` / ``late`` arrays ``(L, D)``: sampled MACs per cell (float64,
    cells ``-1`` skipped), the late MACs' lane and depth indices in row-major order (as
    ``np.nonzero(late)``) and the number of sampled MACs, in one pass each."""
    counts = np.zeros(n_cells)
    n_late = 0
    sampled = 0
    L, D = cell.shape
    for i in range(L):
        for j in range(D):
            cl = cell[i, j]
            if cl >= 0:
                counts[cl] += 1.0
                sampled += 1
            n_late += late[i, j] != 0
    li = np.empty(n_late, dtype=np.int64)
    di = np.empty(n_late, dtype=np.int64)
    q = 0
    for i in range(L):
        for j in range(D):
            if late[i, j] != 0:
                li[q] = i
                di[q] = j
                q += 1
    return counts, li, di, sampled


@njit(cache=True)
def _unit_rows(buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``buf[offsets[u] : offsets[u] + rows[u]]`` of every unit ``u``, concatenated in order."""
    out = np.empty((rows.sum(), buf.shape[1]), dtype=buf.dtype)
    q = 0
    for u in range(offsets.shape[0]):
        for e in range(offsets[u], offsets[u] + rows[u]):
            out[q] = buf[e]
            q += 1
    return out


@njit(cache=True, parallel=True)
def _os_sample(
    A: np.ndarray,
    B: np.ndarray,
    lane_m: np.ndarray,
    lane_n: np.ndarray,
    theta: float,
    consts: np.ndarray,
    strata: np.ndarray,  # int64 (K,): stratum of depth k
    cell: np.ndarray,  # int64 (L, K) out
    late: np.ndarray,  # uint8 (L, K) out
    psum: np.ndarray,  # int64 (L, K) out
    ppsum: np.ndarray,
) -> None:
    """As :func:`_ws_sample` for os chains (the accumulator of output ``(m, n)`` over ``k``;
    the previous cycle is MAC ``k - 1`` of the same chain)."""
    K = A.shape[1]
    L = lane_m.shape[0]
    rmask = _ripple_mask(consts)
    masks = _screen_masks(theta, consts)
    n_chunks = min(L, 16)
    for ch in prange(n_chunks):
        wv = np.zeros(K, dtype=np.int64)
        av = np.zeros(K, dtype=np.int64)
        pwv = np.zeros(K, dtype=np.int64)
        pav = np.zeros(K, dtype=np.int64)
        pv = np.zeros(K, dtype=np.int64)
        ppv = np.zeros(K, dtype=np.int64)
        risky = np.zeros(K, dtype=np.uint32)
        for i in range(ch * L // n_chunks, (ch + 1) * L // n_chunks):
            m = lane_m[i]
            n = lane_n[i]
            acc = 0
            prev_in = 0
            pw = 0
            pa = 0
            for k in range(K):
                w = int(B[k, n])
                a = int(A[m, k])
                wv[k] = w
                av[k] = a
                pwv[k] = pw
                pav[k] = pa
                pv[k] = acc
                ppv[k] = prev_in
                prev_in = acc
                acc = _wrap32(acc + w * a)
                pw = w
                pa = a
            _sample_chain(
                i, K, strata, wv, av, pwv, pav, pv, ppv, rmask, masks, theta, consts, risky,
                cell, late, psum, ppsum,
            )  # fmt: skip


# --------------------------------------------------------------------------- transpose


@njit(cache=True, parallel=True)
def _transpose_words(bv: np.ndarray) -> np.ndarray:
    """Transpose of an int8 ``(K, N)`` matrix given as its uint64 view ``(K, N // 8)``
    (``K``, ``N`` multiples of 8), returned as the uint64 view ``(N, K // 8)`` of ``B^T``.

    Each 8x8 block of bytes is 8 words; three rounds of masked swaps (bytes, then byte
    pairs, then halves, between words 1, 2 and 4 apart) transpose it in registers: about 4x
    faster than an element-wise copy here (0.23 vs 0.8 ms for 1152x1152 on one thread)."""
    K = bv.shape[0]
    nw = bv.shape[1]
    out = np.empty((nw * 8, K // 8), dtype=np.uint64)
    m1 = np.uint64(0x00FF00FF00FF00FF)
    m2 = np.uint64(0x0000FFFF0000FFFF)
    m4 = np.uint64(0x00000000FFFFFFFF)
    s8 = np.uint64(8)
    s16 = np.uint64(16)
    s32 = np.uint64(32)
    for nb in prange(nw):
        for kb in range(K // 8):
            k = kb * 8
            r0 = bv[k, nb]
            r1 = bv[k + 1, nb]
            r2 = bv[k + 2, nb]
            r3 = bv[k + 3, nb]
            r4 = bv[k + 4, nb]
            r5 = bv[k + 5, nb]
            r6 = bv[k + 6, nb]
            r7 = bv[k + 7, nb]
            t = ((r0 >> s8) ^ r1) & m1
            r1 ^= t
            r0 ^= t << s8
            t = ((r2 >> s8) ^ r3) & m1
            r3 ^= t
            r2 ^= t << s8
            t = ((r4 >> s8) ^ r5) & m1
            r5 ^= t
            r4 ^= t << s8
            t = ((r6 >> s8) ^ r7) & m1
            r7 ^= t
            r6 ^= t << s8
            t = ((r0 >> s16) ^ r2) & m2
            r2 ^= t
            r0 ^= t << s16
            t = ((r1 >> s16) ^ r3) & m2
            r3 ^= t
            r1 ^= t << s16
            t = ((r4 >> s16) ^ r6) & m2
            r6 ^= t
            r4 ^= t << s16
            t = ((r5 >> s16) ^ r7) & m2
            r7 ^= t
            r5 ^= t << s16
            t = ((r0 >> s32) ^ r4) & m4
            r4 ^= t
            r0 ^= t << s32
            t = ((r1 >> s32) ^ r5) & m4
            r5 ^= t
            r1 ^= t << s32
            t = ((r2 >> s32) ^ r6) & m4
            r6 ^= t
            r2 ^= t << s32
            t = ((r3 >> s32) ^ r7) & m4
            r7 ^= t
            r3 ^= t << s32
            n = nb * 8
            out[n, kb] = r0
            out[n + 1, kb] = r1
            out[n + 2, kb] = r2
            out[n + 3, kb] = r3
            out[n + 4, kb] = r4
            out[n + 5, kb] = r5
            out[n + 6, kb] = r6
            out[n + 7, kb] = r7
    return out


# --------------------------------------------------------------------------- events


@njit(cache=True, inline="always")
def _dot(x: np.ndarray, i: int, y: np.ndarray, j: int, lo: int, hi: int) -> int:
    """``sum(x[i, lo:hi] * y[j, lo:hi])`` of int8 rows of contiguous matrices.

    The loop runs over 1-D row slices: LLVM vectorizes it (about 8 ns for 64 elements here),
    while the same loop over 2-D indices ``x[i, t]`` stayed scalar (about 55 ns)."""
    xr = x[i, lo:hi]
    yr = y[j, lo:hi]
    s = 0
    for t in range(yr.shape[0]):
        s += xr[t] * yr[t]
    return s


@njit(cache=True, inline="always")
def _dot2(x: np.ndarray, i: int, y: np.ndarray, j: int, lo: int, hi: int) -> tuple[int, int]:
    """``(x[i] . y[j], x[i - 1] . y[j])`` over ``lo:hi`` (0 for row -1), as :func:`_dot`."""
    s = _dot(x, i, y, j, lo, hi)
    sp = _dot(x, i - 1, y, j, lo, hi) if i > 0 else 0
    return s, sp


@njit(cache=True, inline="always")
def _accept_prob(
    cl: int,
    theta: float,
    cell_n: np.ndarray,
    cell_off: np.ndarray,
    donor_s: np.ndarray,
    scale: float,
) -> tuple[float, int]:
    """(probability, number of donors above theta) of ``cell`` at ``theta``.

    ``cell_off[cl]`` is the cell's donor range ``[lo, hi)`` (merged cells share one)."""
    lo = cell_off[cl, 0]
    hi = cell_off[cl, 1]
    if hi == lo or cell_n[cl] == 0:
        return 0.0, 0
    cnt = _above(donor_s, lo, hi, theta)
    return min(1.0, scale * cnt / cell_n[cl]), cnt


#: Threshold bins of the tabulated first-stage bounds (:func:`_bound_table`).
N_TBIN = 512


@njit(cache=True)
def _bound_table(
    theta_lo: float,
    n_strata: int,
    cell_n: np.ndarray,
    cell_off: np.ndarray,
    donor_s: np.ndarray,
    scale: float,
    tab: np.ndarray,  # float64 (n_strata, 4, N_TBIN) out
    htab: np.ndarray,  # float64 (n_strata, 4, N_TBIN) out: -log(1 - tab), inf where tab = 1
) -> None:
    """``tab[st, dp, i]``: the largest rate over the classes of stratum ``st`` whose product
    change bucket is ``dp`` (0 unchanged, 1-3 the change sizes of :func:`_class`; any state
    class, either product sign) at ``theta_i = theta_lo + i * (1 - theta_lo) / N_TBIN``.

    Rates fall with theta, so the entry of the bin *below* a MAC's threshold bounds its
    rate: the thinning's first stage then costs one lookup per candidate."""
    width = (1.0 - theta_lo) / N_TBIN
    done = np.empty(2 * N_LANE, dtype=np.int64)  # donor ranges (their lo) already swept
    for st in range(n_strata):
        for dp in range(4):
            for i in range(N_TBIN):
                tab[st, dp, i] = 0.0
            n_done = 0
            for lc in range(N_LANE):
                for opp in range(2 if dp > 0 else 1):
                    cl = st * N_CLASSES + lc * N_PCLASS + 2 * dp + opp
                    lo = cell_off[cl, 0]
                    hi = cell_off[cl, 1]
                    if hi == lo or cell_n[cl] == 0:
                        continue
                    # merged cells share one donor range and size: one sweep per range
                    seen = False
                    for q in range(n_done):
                        seen = seen or done[q] == lo
                    if seen:
                        continue
                    done[n_done] = lo
                    n_done += 1
                    j = lo  # donors lo..j-1 have s <= theta_i (ascending sweep)
                    for i in range(N_TBIN):
                        theta = theta_lo + i * width
                        while j < hi and donor_s[j] <= theta:
                            j += 1
                        if j == hi:
                            break
                        p = min(1.0, scale * (hi - j) / cell_n[cl])
                        if p > tab[st, dp, i]:
                            tab[st, dp, i] = p
            for i in range(N_TBIN):
                p = tab[st, dp, i]
                htab[st, dp, i] = 0.0 if p == 0.0 else (-np.log1p(-p) if p < 1.0 else np.inf)


@njit(cache=True, inline="always")
def _tab_bin(theta: float, theta_lo: float, inv_width: float) -> int:
    """Bin of ``theta`` in :func:`_bound_table` (its lower edge is at most ``theta``); -1 when
    ``theta >= 1`` (no sensitized delay exceeds it)."""
    if theta >= 1.0:
        return -1
    i = int((theta - theta_lo) * inv_width)
    if i <= 0:
        return 0
    i = min(i, N_TBIN - 1)
    if theta_lo + i * ((1.0 - theta_lo) / N_TBIN) > theta:  # float rounding: stay below
        i -= 1
    return i


@njit(cache=True, inline="always")
def _tab_bound(tab: np.ndarray, st: int, dp: int, i: int) -> float:
    if i < 0:
        return 0.0
    return tab[st, dp, i]


@njit(cache=True, inline="always")
def _record(ev: np.ndarray, e: int, m: int, n: int, k: int, t: int, donor: int, mask: int) -> None:
    """Row ``e`` of the event table: m, n, k, cycle, donor, late mask."""
    ev[e, 0] = m
    ev[e, 1] = n
    ev[e, 2] = k
    ev[e, 3] = t
    ev[e, 4] = donor
    ev[e, 5] = mask


@njit(cache=True, inline="always")
def _pick_mask(
    cl: int, cnt: int, u: float, theta: float, cell_off: np.ndarray, donor_arr: np.ndarray
) -> tuple[int, int]:
    """A donor of ``cl`` with ``s > theta`` (uniform by ``u``) and its late mask at ``theta``."""
    hi = cell_off[cl, 1]
    d = hi - cnt + min(int(u * cnt), cnt - 1)
    mask = 0
    for j in range(32):
        if donor_arr[d, j] > theta:
            mask |= 1 << j
    return d, mask


@njit(cache=True, parallel=True)
def _pe_order(inv_pe: np.ndarray) -> np.ndarray:
    """The columns of each PE row by ascending ``inv_pe`` (ties by column)."""
    R, C = inv_pe.shape
    order = np.empty((R, C), dtype=np.int64)
    for r in prange(R):
        order[r] = np.argsort(inv_pe[r], kind="mergesort")
    return order


@njit(cache=True, parallel=True)
def _ws_windows(
    inv_g: np.ndarray, R: int, M: int, n_folds: int, per_fold: int, seg: int, span: int
) -> np.ndarray:
    """``out[f, x]``: the smallest ``1/g`` over the ``seg`` cycles from ``f * per_fold + R + x``
    (fold ``f``'s cycles of input rows ``x - (r + c) ...`` for the PEs on diagonal ``r + c``)."""
    out = np.empty((n_folds, span))
    for f in prange(n_folds):
        _window_min(inv_g, f * per_fold + R, seg, out[f])
    return out


@njit(cache=True, parallel=True)
def _change_order(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input rows of every column ``k`` of ``A`` by ascending operand change
    ``|A[m, k] - A[m - 1, k]|`` (``A[-1] = 0``; stable counting sort): ``order`` int32
    ``(K, M)`` and ``first`` int64 ``(K, 257)``, the position in ``order[k]`` of the first row
    with change ``v`` (``first[k, 256] = M``). A ws PE with weight ``w`` changes its product
    by ``|w| * change``, so the rows of each product-change bucket of :func:`_pbucket` are
    one contiguous range of ``order[k]``."""
    M, K = A.shape
    order = np.empty((K, M), dtype=np.int32)
    first = np.zeros((K, 258), dtype=np.int64)
    for k in prange(K):
        change = np.empty(M, dtype=np.int64)
        prev = 0
        for m in range(M):
            a = int(A[m, k])
            change[m] = abs(a - prev)
            prev = a
        pos = first[k]
        for m in range(M):
            pos[change[m] + 2] += 1
        for v in range(2, 258):
            pos[v] += pos[v - 1]
        # pos[v + 1]: first position of change v; placing advances it to the next value's
        for m in range(M):
            d = change[m]
            order[k, pos[d + 1]] = m
            pos[d + 1] += 1
    return order, first[:, :257]


@njit(cache=True)
def _bucket_starts() -> np.ndarray:
    """``out[aw, dp]``: the smallest operand change ``|a - pa|`` whose product change
    ``aw * |a - pa|`` falls in bucket ``dp`` of :func:`_pbucket` (or above it), for a weight
    magnitude ``aw = |w|`` of 0..128; ``out[aw, 4] = 256``. The rows of bucket ``dp`` are
    ``order[k, first[k, out[aw, dp]] : first[k, out[aw, dp + 1]]]`` (:func:`_change_order`)."""
    out = np.empty((129, 5), dtype=np.int64)
    for aw in range(129):
        out[aw, 0] = 0
        out[aw, 4] = 256
        if aw == 0:  # the product never changes: every row is in bucket 0
            out[aw, 1] = 256
            out[aw, 2] = 256
            out[aw, 3] = 256
        else:
            out[aw, 1] = 1
            out[aw, 2] = min(255, 63 // aw) + 1
            out[aw, 3] = min(255, 1023 // aw) + 1
    return out


@njit(cache=True, parallel=True)
def _ws_events(
    A: np.ndarray,
    B: np.ndarray,
    BT: np.ndarray,  # int8 (N, K): B transposed, contiguous (the psums are row dot products)
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    rmask: int,  # _ripple_mask(consts)
    strata: np.ndarray,
    cell_n: np.ndarray,  # float64 (n_cells,): sampled MACs per cell
    cell_off: np.ndarray,  # int64 (n_cells, 2): donor ranges (sorted by s within a cell)
    donor_s: np.ndarray,
    donor_arr: np.ndarray,  # float64 (D, 32): per-bit arrivals of each donor
    tab: np.ndarray,  # float64 (n_strata, 4, N_TBIN): first-stage bounds (_bound_table)
    htab: np.ndarray,  # float64 (n_strata, 4, N_TBIN): -log(1 - tab), inf where tab = 1
    qmax: np.ndarray,  # float64 (n_strata, N_TBIN): tab's maximum over the product buckets
    theta_lo: float,
    inv_width: float,  # N_TBIN / (1 - theta_lo)
    diag_min: np.ndarray,  # float64 (n_folds, R + C - 1): min of 1/g over a diagonal's rows
    unit_theta: np.ndarray,  # float64 (n_folds * R,): lowest threshold of each unit
    pe_order: np.ndarray,  # int64 (R, C): the PE columns of each row by ascending inv_pe
    row_order: np.ndarray,  # int32 (K, M): _change_order
    change_first: np.ndarray,  # int64 (K, 257): _change_order
    seed: np.uint64,
    scale: float,
    units: np.ndarray,  # int64 (U,): the units v = fold * R + PE row to run
    offsets: np.ndarray,  # int64 (U,): first row of each unit's events in ev
    caps: np.ndarray,  # int64 (U,): rows of ev each unit may fill
    counts: np.ndarray,  # int64 (U,) out: events of each unit (may exceed its cap)
    ev: np.ndarray,  # int64 (E, 6) out: m, n, k, cycle, donor, mask
) -> None:
    """Error events of ws by thinning, per unit (fold ``f``, PE row ``r``): the input rows of
    each PE of the row fall into its four product-change buckets (one contiguous range each of
    ``row_order``, :func:`_bucket_starts`), and every bucket gets a Bernoulli candidate rate,
    the largest rate of its cells at the PE's lowest threshold over the fold (0: skipped). One
    cumulative-hazard walk over the PEs (by ascending factor, stopping at the first that
    cannot fail) and their buckets draws the candidates. A unit's random stream depends only
    on the unit, so a unit whose events overflowed its cap is run again alone with a larger
    one and gives the same events."""
    M, K = A.shape
    N = B.shape[1]
    row_folds = (K + R - 1) // R
    per_fold = 2 * R + C + M - 2
    n_cycles = inv_g.shape[0]
    # thresholds at or above stop[st] have no candidates in stratum st (qmax falls with theta;
    # one bin of slack against rounding): a unit's walk over its PEs ends at the first whose
    # lowest threshold reaches it
    stop = np.empty(qmax.shape[0])
    for st in range(qmax.shape[0]):
        i_zero = 0
        while i_zero < N_TBIN and qmax[st, i_zero] > 0.0:
            i_zero += 1
        stop[st] = theta_lo + (i_zero + 1) / inv_width
    bucket_start = _bucket_starts()
    for ui in prange(units.shape[0]):
        v = units[ui]
        f = v // R
        r = v - f * R
        cf = f // row_folds
        rf = f - cf * row_folds
        k = rf * R + r
        j = 0
        cols = min(C, N - cf * C)
        if k < K:
            st = strata[r]
            start = f * per_fold
            k0 = rf * R
            i0 = _tab_bin(unit_theta[v], theta_lo, inv_width)
            if i0 >= 0 and qmax[st, i0] > 0.0:
                # PEs in ascending order of their factor: past the first whose lowest
                # threshold in the fold reaches stop[st] none can fail
                dmin = np.inf
                for c in range(cols):
                    dmin = min(dmin, diag_min[f, r + c])
                p_stop = stop[st] / dmin
                rows_k = row_order[k]
                # Bernoulli(q) candidates by cumulative hazard over the unit's PEs and their
                # buckets in turn: the next candidate is where the summed -log(1 - q) of the
                # rows passed exceeds an Exp(1) budget (memoryless: what is left of it carries
                # over to the next bucket and PE)
                state = _seed_state(seed, v)
                state, ue = _uniform(state)
                budget = -np.log(1.0 - ue)  # 1 - ue is exact (ue = k / 2**53)
                for jc in range(C):
                    c = pe_order[r, jc]
                    P = inv_ratio * inv_pe[r, c]
                    if P > p_stop:
                        break
                    if c >= cols:
                        continue
                    n = cf * C + c
                    w = int(B[k, n])
                    i1 = _tab_bin(P * diag_min[f, r + c], theta_lo, inv_width)
                    if i1 < 0 or qmax[st, i1] <= 0.0:
                        continue  # none of this PE's MACs in the fold can fail
                    aw = abs(w)
                    for dp in range(4):
                        h = htab[st, dp, i1]
                        if h <= 0.0:
                            continue
                        pos = change_first[k, bucket_start[aw, dp]]
                        hi = change_first[k, bucket_start[aw, dp + 1]]
                        if budget >= h * (hi - pos):  # no candidate in this bucket
                            budget -= h * (hi - pos)
                            continue
                        qu = tab[st, dp, i1]
                        while True:
                            if budget >= h * (hi - pos):
                                budget -= h * (hi - pos)
                                break
                            pos += int(budget / h)  # the candidate's position
                            if pos >= hi:  # float rounding at the boundary
                                break
                            state, ue = _uniform(state)
                            budget = -np.log(1.0 - ue)  # 1 - ue is exact (ue = k / 2**53)
                            m = int(rows_k[pos])
                            pos += 1
                            t = start + R + m + r + c
                            theta = P * inv_g[min(t, n_cycles - 1)]
                            state, ua = _uniform(state)
                            # cheap bound first: the bucket's largest rate at the MAC's own
                            # threshold, over the classes the psums could give
                            if ua * qu >= _tab_bound(
                                tab, st, dp, _tab_bin(theta, theta_lo, inv_width)
                            ):
                                continue
                            a = int(A[m, k])
                            pa = int(A[m - 1, k]) if m > 0 else 0
                            psum, ppsum = _dot2(A, m, BT, n, k0, k0 + r)
                            cl = st * N_CLASSES + _class(
                                w, a, w, pa, _wrap32(psum), _wrap32(ppsum), rmask
                            )
                            p, cnt = _accept_prob(cl, theta, cell_n, cell_off, donor_s, scale)
                            if ua * qu < p:
                                state, ud = _uniform(state)
                                if j < caps[ui]:
                                    d, mask = _pick_mask(cl, cnt, ud, theta, cell_off, donor_arr)
                                    _record(ev, offsets[ui] + j, m, n, k, t, d, mask)
                                j += 1
                            if pos >= hi:
                                break
        counts[ui] = j


@njit(cache=True, parallel=True)
def _os_events(
    A: np.ndarray,
    B: np.ndarray,
    BT: np.ndarray,
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    rmask: int,  # _ripple_mask(consts)
    q: np.ndarray,  # float64 (R*C*S,): unit u = (r*C + c)*S + stratum
    strata_lo: np.ndarray,  # int64 (S + 1,): depth range [lo[s], lo[s+1]) of stratum s
    cell_n: np.ndarray,
    cell_off: np.ndarray,
    donor_s: np.ndarray,
    donor_arr: np.ndarray,
    tab: np.ndarray,
    theta_lo: float,
    inv_width: float,
    seed: np.uint64,
    scale: float,
    fill: bool,
    counts: np.ndarray,
    offsets: np.ndarray,
    ev: np.ndarray,
) -> None:
    M, K = A.shape
    N = B.shape[1]
    S = strata_lo.shape[0] - 1
    row_folds = (M + R - 1) // R
    per_fold = K + R + C - 2
    n_cycles = inv_g.shape[0]
    for u in prange(R * C * S):
        st = u % S
        pe_i = u // S
        r = pe_i // C
        c = pe_i - r * C
        qu = q[u]
        klo = strata_lo[st]
        klen = min(strata_lo[st + 1], K) - klo
        if qu <= 0.0 or r >= M or c >= N or klen <= 0:
            if not fill:
                counts[u] = 0
            continue
        nrf = (M - r + R - 1) // R
        ncf = (N - c + C - 1) // C
        total = klen * nrf * ncf
        log1mq = np.log1p(-qu) if qu < 1.0 else -np.inf
        state = _seed_state(seed, u)
        j = 0
        pos = -1
        while True:
            state, gap = _skip(state, log1mq)
            pos += 1 + gap
            if pos >= total:
                break
            k = klo + pos % klen
            t2 = pos // klen
            rf = t2 % nrf
            cf = t2 // nrf
            m = rf * R + r
            n = cf * C + c
            t = (cf * row_folds + rf) * per_fold + k + r + c
            theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, n_cycles - 1)]
            w = int(B[k, n])
            a = int(A[m, k])
            pw = int(B[k - 1, n]) if k > 0 else 0
            pa = int(A[m, k - 1]) if k > 0 else 0
            state, ua = _uniform(state)
            state, ud = _uniform(state)
            dp = _pbucket(w * a, pw * pa)
            if ua * qu >= _tab_bound(tab, st, dp, _tab_bin(theta, theta_lo, inv_width)):
                continue
            psum = _dot(A, m, BT, n, 0, k)
            ppsum = psum - pw * pa if k > 0 else 0
            cl = st * N_CLASSES + _class(w, a, pw, pa, _wrap32(psum), _wrap32(ppsum), rmask)
            p, cnt = _accept_prob(cl, theta, cell_n, cell_off, donor_s, scale)
            if ua * qu < p:
                if fill:
                    d, mask = _pick_mask(cl, cnt, ud, theta, cell_off, donor_arr)
                    _record(ev, offsets[u] + j, m, n, k, t, d, mask)
                j += 1
        if not fill:
            counts[u] = j


@njit(cache=True)
def _unit_bounds(
    theta_min: np.ndarray,  # float64 (U,): smallest threshold of each unit
    unit_stratum: np.ndarray,  # int64 (U,)
    tab: np.ndarray,
    theta_lo: float,
    inv_width: float,
    q: np.ndarray,  # float64 (U,) out: max over classes of the rate at theta_min
) -> None:
    for u in range(theta_min.shape[0]):
        i = _tab_bin(theta_min[u], theta_lo, inv_width)
        best = 0.0
        for dp in range(4):
            best = max(best, _tab_bound(tab, unit_stratum[u], dp, i))
        q[u] = best


# --------------------------------------------------------------------------- log values


@njit(cache=True, parallel=True)
def _ws_correct(
    A: np.ndarray, B: np.ndarray, R: int, m: np.ndarray, n: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Error-free psum leaving PE row ``k mod R`` of output ``(m, n)``'s fold chain."""
    out = np.empty(m.shape[0], dtype=np.int64)
    for i in prange(m.shape[0]):
        k0 = (k[i] // R) * R
        p = 0
        for kk in range(k0, k[i] + 1):
            p = _wrap32(p + int(A[m[i], kk]) * int(B[kk, n[i]]))
        out[i] = p
    return out


@njit(cache=True, parallel=True)
def _os_correct(
    A: np.ndarray, B: np.ndarray, m: np.ndarray, n: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Error-free accumulator of output ``(m, n)`` after its ``k``-th MAC."""
    out = np.empty(m.shape[0], dtype=np.int64)
    for i in prange(m.shape[0]):
        p = 0
        for kk in range(k[i] + 1):
            p = _wrap32(p + int(A[m[i], kk]) * int(B[kk, n[i]]))
        out[i] = p
    return out


# --------------------------------------------------------------------------- propagation


@njit(cache=True, parallel=True)
def _ws_propagate(
    A: np.ndarray,
    B: np.ndarray,
    BT: np.ndarray,  # int8 (N, K): B transposed, contiguous (a column's weights are a row)
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    mode: int,
    ev: np.ndarray,  # int64 (E, 6): m, n, k, cycle, donor, mask; sorted by (n, rf, m, r)
    delta: np.ndarray,  # int64 (E,): error of each sampled event
    lane_off: np.ndarray,  # int64 (L + 1,): event ranges of the (n, rf) lanes
    rec_off: np.ndarray,  # int64 (L + 1,): record ranges of the lanes
    rec: np.ndarray,  # int64 (cap, 8) out: m, n, k, cycle, mask, correct, latched, sampled
    used: np.ndarray,  # int64 (L,) out: records per lane, -1 when its range overflowed
) -> None:
    """Sampled events with their consequences, exactly, per column fold ``(n, rf)``.

    Positions whose state the error-free model describes (the psum entering the PE and the
    previous input row's psum are error-free) take the sampled events; once an error has
    corrupted a state (the rest of its row; the next row below the error, through the
    previous-cycle psum), every MAC is evaluated with the exact model on the true corrupted
    state and sampled events there are discarded. A row fold ends its cascade at the first
    input row without any error.
    """
    M, K = A.shape
    row_folds = (K + R - 1) // R
    per_fold = 2 * R + C + M - 2
    n_cycles = inv_g.shape[0]
    for li in prange(lane_off.shape[0] - 1):
        e0 = lane_off[li]
        e1 = lane_off[li + 1]
        n = ev[e0, 1]
        rf = ev[e0, 2] // R
        cf = n // C
        c = n - cf * C
        k0 = rf * R
        rows = min(R, K - k0)
        start = (cf * row_folds + rf) * per_fold
        wcol = BT[n, k0 : k0 + rows]
        prev_in = np.zeros(R, dtype=np.int64)
        prev_out = np.zeros(R, dtype=np.int64)
        ef_in = np.zeros(R, dtype=np.int64)
        j = rec_off[li]
        cap_end = rec_off[li + 1]
        overflow = False
        e = e0
        dirty_from = R  # first PE row whose previous-cycle psum is corrupted
        m = ev[e0, 0]
        while m < M and not overflow:
            if dirty_from >= rows:
                if e >= e1:
                    break
                m = ev[e, 0]  # rows in between are error-free
                # previous row error-free
                p = 0
                if m > 0:
                    arow = A[m - 1, k0 : k0 + rows]
                    for r in range(rows):
                        prev_in[r] = p
                        p = _wrap32(p + int(wcol[r]) * int(arow[r]))
                        prev_out[r] = p
                else:
                    for r in range(rows):
                        prev_in[r] = 0
                        prev_out[r] = 0
            p = 0
            ef = 0
            corrupt = False
            first_err = R
            arow = A[m, k0 : k0 + rows]
            for r in range(rows):
                k = k0 + r
                w = int(wcol[r])
                a = int(arow[r])
                t = start + R + m + r + c
                correct = _wrap32(p + w * a)
                ef_in[r] = ef
                ef = _wrap32(ef + w * a)
                sampled_here = False
                while e < e1 and ev[e, 0] == m and ev[e, 2] == k:
                    sampled_here = True
                    e += 1
                while e < e1 and ev[e, 0] == m and ev[e, 2] < k:
                    e += 1
                clean = (not corrupt) and r < dirty_from
                new = correct
                mask = 0
                if clean:
                    if sampled_here:
                        mask = ev[e - 1, 5]
                        if mode == 1:  # flip acts on the target's own register bit
                            new = _manifest(correct, p, prev_out[r], mask, mode)
                        else:
                            new = _wrap32(correct + delta[e - 1])
                else:
                    pa = int(A[m - 1, k]) if m > 0 else 0
                    theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, n_cycles - 1)]
                    mask = _late_mask(w, a, p, w, pa, prev_in[r], theta, consts)
                    if mask != 0:
                        new = _manifest(correct, p, prev_out[r], mask, mode)
                if mask != 0:
                    if j >= cap_end:
                        overflow = True
                        break
                    rec[j, 0] = m
                    rec[j, 1] = n
                    rec[j, 2] = k
                    rec[j, 3] = t
                    rec[j, 4] = mask
                    rec[j, 5] = correct
                    rec[j, 6] = new
                    rec[j, 7] = 1 if clean else 0
                    j += 1
                    if new != correct and first_err == R:
                        first_err = r
                        corrupt = True
                prev_in[r] = p
                prev_out[r] = new
                p = new
            # the next row's previous-cycle psum differs from the error-free one below here
            dirty_from = R
            for r in range(rows):
                if prev_in[r] != ef_in[r]:
                    dirty_from = r
                    break
            m += 1
            # skip sampled events of rows already passed
            while e < e1 and ev[e, 0] < m:
                e += 1
        used[li] = -1 if overflow else j - rec_off[li]


@njit(cache=True, parallel=True)
def _os_propagate(
    A: np.ndarray,
    B: np.ndarray,
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    mode: int,
    ev: np.ndarray,  # sorted by (m, n, k)
    delta: np.ndarray,
    lane_off: np.ndarray,  # event ranges of the (m, n) lanes
    rec_off: np.ndarray,
    rec: np.ndarray,
    used: np.ndarray,
) -> None:
    """As :func:`_ws_propagate` for os: after the first error of an output, the rest of its
    accumulation is evaluated exactly on the corrupted accumulator."""
    M, K = A.shape
    row_folds = (M + R - 1) // R
    per_fold = K + R + C - 2
    n_cycles = inv_g.shape[0]
    for li in prange(lane_off.shape[0] - 1):
        e0 = lane_off[li]
        m = ev[e0, 0]
        n = ev[e0, 1]
        rf = m // R
        r = m - rf * R
        cf = n // C
        c = n - cf * C
        start = (cf * row_folds + rf) * per_fold
        j = rec_off[li]
        overflow = False
        k_first = ev[e0, 2]
        acc = 0
        for k in range(k_first):
            acc = _wrap32(acc + int(A[m, k]) * int(B[k, n]))
        prev_in = 0
        if k_first > 0:
            prev_in = _wrap32(acc - int(A[m, k_first - 1]) * int(B[k_first - 1, n]))
        for k in range(k_first, K):
            a = int(A[m, k])
            w = int(B[k, n])
            correct = _wrap32(acc + w * a)
            t = start + k + r + c
            new = correct
            if k == k_first:
                mask = ev[e0, 5]
                if mode == 1:  # flip acts on the target's own register bit
                    new = _manifest(correct, acc, acc, mask, mode)
                else:
                    new = _wrap32(correct + delta[e0])
            else:
                pw = int(B[k - 1, n])
                pa = int(A[m, k - 1])
                theta = inv_ratio * inv_pe[r, c] * inv_g[min(t, n_cycles - 1)]
                mask = _late_mask(w, a, acc, pw, pa, prev_in, theta, consts)
                if mask != 0:
                    new = _manifest(correct, acc, acc, mask, mode)
            if mask != 0:
                if j >= rec_off[li + 1]:
                    overflow = True
                    break
                rec[j, 0] = m
                rec[j, 1] = n
                rec[j, 2] = k
                rec[j, 3] = t
                rec[j, 4] = mask
                rec[j, 5] = correct
                rec[j, 6] = new
                rec[j, 7] = 1 if k == k_first else 0
                j += 1
            prev_in = acc
            acc = new
        used[li] = -1 if overflow else j - rec_off[li]
