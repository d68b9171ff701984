"""numba kernels of the sensitized-delay model of one int8 x int8 -> int32 MAC cycle.

Private: plain integers and float64 arrays in, no validation, no fastmath. The model, its
formulas, the fast-path bound and the calibration are documented in
:mod:`accelsim.timing.sensitized`; the public wrappers there validate inputs and build
``consts`` with ``kernel_constants(params)``.

``consts`` (float64, length ``N_CONSTS``); times are fractions of the static critical path:

===============  ============================================================================
index            meaning
===============  ============================================================================
0..15            ``t_h[j]``: arrival of a toggled bit j of the sub-products ``u``, ``v``
``_TX``          sum delay of the multiplier's merge adder
``_TCM``         carry delay per bit of the merge adder
``_TC``          carry delay per bit of the accumulator's ripple section
``_TS``          sum delay of the accumulator
``_RIPPLE``      ripple width R of the accumulator (carries into bits >= R cost nothing)
``_SPLIT``       activation bit k at which the multiplier splits into ``u`` and ``v``
``_THMAX``       ``max_j t_h[j]``
``_ACC``         accumulator width in bits (<= 32)
``_CMASK`` + i   bit mask of the accumulator carries ``c_j`` whose static arrival plus the
                 sum delay exceeds ``theta_i = i / _NBIN`` (i = 0.._NBIN-1)
``_PMASK`` + i   the same for the product (sign-extended) input bits
``_XMASK`` + i   all bits if ``t_s > theta_i`` (a toggled psum bit alone could be late), else 0
===============  ============================================================================

The per-MAC functions are compiled with ``_nrt=False`` (numba's reference counting off; they
allocate nothing): with reference counting on, every call that passes ``consts`` on to a
helper costs two atomic operations, about 5 ns, more than the whole early exit.

:func:`_late_mask` is the per-MAC entry point of the exact systolic kernel. It requires a
finite ``theta >= 0`` (it indexes the mask tables with ``floor(theta * _NBIN)``) and is kept
small on purpose: LLVM then inlines it into the caller's loop (3.7 instead of ~10 ns/MAC).
Its early exit 3 is :func:`_chain_bound` (inlined by numba, branch-free) compared by
:func:`_chain_exit`; the exact systolic kernel calls both directly on contiguous batches of
MACs to screen them (with a lower bound of theta, which keeps the screen conservative). Its ws
path, and the fast kernel's sampler, first screen every MAC with :func:`_popcount_screen`: exit
2 and a cheaper, looser form of exit 3 in 32-bit fixed point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numba import njit, prange

from accelsim.kernels import _u32 as U

_F = TypeVar("_F", bound=Callable[..., object])


def _per_mac(fn: _F) -> _F:
    """``njit`` for the per-MAC functions: cached, no fastmath, reference counting off."""
    jitted: _F = njit(cache=True, _nrt=False)(fn)  # type: ignore[call-overload]
    return jitted


_TX = 16
_TCM = 17
_TC = 18
_TS = 19
_RIPPLE = 20
_SPLIT = 21
_THMAX = 22
_ACC = 23
_NBIN = 256
_CMASK = 32
_PMASK = _CMASK + _NBIN
_XMASK = _PMASK + _NBIN
N_CONSTS = _XMASK + _NBIN

_NEG = -1.0e30  # arrival of a signal without a transition
_M16 = 0xFFFF
# Relative margin that keeps the fast-path bound conservative against float rounding.
_EPS = 1e-9
_CHUNK = 4096
#: Fixed-point scale of :func:`_popcount_screen`: delays in units of 1/65536 of the critical path.
_SCREEN_Q = 65536.0
#: How far (fraction of the critical path) the popcount screen's threshold stays below theta:
#: far above the float rounding of the chain bound and the margin of :func:`_chain_exit`.
_SCREEN_MARGIN = 1e-6
#: Below this many MACs the delays are computed on one thread.
PARALLEL_MIN = 100_000


@_per_mac
def _walk(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    theta: float,
    consts: np.ndarray,
    arr: np.ndarray,
    store: bool,
) -> tuple[float, int]:
    """Evaluate the model bit by bit: returns ``(s, late mask)``; fills ``arr[0:32]`` if ``store``.

    The merge adder (product bits 0..15) and the accumulator (bits 0..acc-1) are walked in one
    upward loop: product bit ``j`` is ready when accumulator bit ``j`` needs it.
    """
    acc = int(consts[_ACC])
    mask = (1 << acc) - 1
    y = w * a
    yp = pw * pa
    # multiplier: p = u + v, u = w * (a mod 2^k), v = p - u
    have_prod = y != yp
    din = 0
    dcm = 0
    dpm = 0
    propm = 0
    if have_prod:
        lo = (1 << int(consts[_SPLIT])) - 1
        u = w * (a & lo)
        up = pw * (pa & lo)
        un = u & _M16
        vn = (y - u) & _M16
        uo = up & _M16
        vo = (yp - up) & _M16
        pn = y & _M16
        po = yp & _M16
        dcm = (pn ^ un ^ vn) ^ (po ^ uo ^ vo)
        din = (un ^ uo) | (vn ^ vo)
        dpm = pn ^ po
        propm = un ^ vn
    # accumulator: z = x + sext(p)
    xn = psum_in & mask
    xo = ppsum_in & mask
    yn = y & mask
    yo = yp & mask
    sn = (xn + yn) & mask
    so = (xo + yo) & mask
    dc = (sn ^ xn ^ yn) ^ (so ^ xo ^ yo)
    ds = sn ^ so
    dx = xn ^ xo
    dy = yn ^ yo
    prop = xn ^ yn
    tx = consts[_TX]
    tcm = consts[_TCM]
    tc = consts[_TC]
    ts = consts[_TS]
    ripple = int(consts[_RIPPLE])
    acm = _NEG
    apj = _NEG
    ac = _NEG
    s = 0.0
    late = 0
    # bits above the highest toggling output bit change nothing below them: stop there
    top = math.frexp(float(ds))[1] if ds != 0 else 0
    if store:
        for j in range(top, 32):
            arr[j] = 0.0
    for j in range(top):
        if j < 16:
            if have_prod:
                ain_m = consts[j] if (din >> j) & 1 else _NEG
                acj_m = acm if (dcm >> j) & 1 else _NEG
                apj = tx + max(ain_m, acj_m) if (dpm >> j) & 1 else _NEG
                if j < 15 and (dcm >> (j + 1)) & 1:
                    acm = tcm + (max(acj_m, ain_m) if (propm >> j) & 1 else ain_m)
                else:
                    acm = _NEG
            # for j >= 16 apj keeps product bit 15's arrival (sign extension)
        ain = 0.0 if (dx >> j) & 1 else _NEG
        if (dy >> j) & 1 and apj > ain:
            ain = apj
        acj = ac if (dc >> j) & 1 else _NEG
        if (ds >> j) & 1:
            t = ts + max(ain, acj)
            if t > s:
                s = t
            if t > theta:
                late |= 1 << j
            if store:
                arr[j] = t
        elif store:
            arr[j] = 0.0
        if j + 1 < acc and (dc >> (j + 1)) & 1:
            hop = tc if j + 1 < ripple else 0.0
            ac = hop + (max(acj, ain) if (prop >> j) & 1 else ain)
        else:
            ac = _NEG
    return min(s, 1.0), late


@_per_mac
def _mac_arrivals(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    consts: np.ndarray,
    arr: np.ndarray,
) -> float:
    """Arrival of every accumulator output bit into ``arr[0:32]`` (0 where it does not toggle).

    Returns the sensitized delay ``s = max_j arr[j]``, in [0, 1].
    """
    s, _ = _walk(
        int(w), int(a), int(psum_in), int(pw), int(pa), int(ppsum_in), 2.0, consts, arr, True
    )
    return s


@_per_mac
def _sensitized_delay(
    w: int, a: int, psum_in: int, pw: int, pa: int, ppsum_in: int, consts: np.ndarray
) -> float:
    """Sensitized delay of one MAC cycle as a fraction of the static critical path."""
    s, _ = _walk(
        int(w), int(a), int(psum_in), int(pw), int(pa), int(ppsum_in), 2.0, consts, consts, False
    )
    return s


@njit(cache=True, inline="always")
def _longest_run(m: int) -> int:
    """Length of the longest run of consecutive 1 bits of ``0 <= m < 2**32`` (branch-free).

    Binary lifting: ``r`` holds the start positions of runs of length >= ``n``; runs of
    length ``n + t`` start where a run of ``n`` starts and a run of ``t`` starts ``n`` later.
    """
    q1 = m
    q2 = q1 & (q1 >> 1)
    q4 = q2 & (q2 >> 2)
    q8 = q4 & (q4 >> 4)
    q16 = q8 & (q8 >> 8)
    q32 = q16 & (q16 >> 16)
    n = 32 if q32 != 0 else 0
    r = q32 if q32 != 0 else m | ~m
    c = r & (q16 >> n)
    n = n + 16 if c != 0 else n
    r = c if c != 0 else r
    c = r & (q8 >> n)
    n = n + 8 if c != 0 else n
    r = c if c != 0 else r
    c = r & (q4 >> n)
    n = n + 4 if c != 0 else n
    r = c if c != 0 else r
    c = r & (q2 >> n)
    n = n + 2 if c != 0 else n
    r = c if c != 0 else r
    c = r & (q1 >> n)
    n = n + 1 if c != 0 else n
    return n


@_per_mac
def _chain_params(consts: np.ndarray) -> tuple[int, int, int, float, float, float, float, float]:
    """Constants of :func:`_chain_bound` as scalars (loop-invariant in a caller's loop):
    accumulator mask, ripple carry mask, multiplier split mask, t_s, t_c, t_x, max t_h, t_cm."""
    return (
        (1 << int(consts[_ACC])) - 1,
        (1 << int(consts[_RIPPLE])) - 2,
        (1 << int(consts[_SPLIT])) - 1,
        consts[_TS],
        consts[_TC],
        consts[_TX],
        consts[_THMAX],
        consts[_TCM],
    )


@njit(cache=True, inline="always")
def _chain_bound(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    params: tuple[int, int, int, float, float, float, float, float],
) -> float:
    """Chain bound of early exit 3 of :func:`_late_mask`: no output bit arrives after it.

    ``t_s + t_c * C``, plus ``t_x + max t_h + t_cm * Cm`` if the product changed (see
    :func:`_late_mask`); ``params`` from :func:`_chain_params`. Branch-free (the product term
    is computed always and selected) and inlined by numba (a call costs ~4x the bound), so
    loops over many MACs run at a few ns per MAC; the exact systolic kernel screens with it.
    """
    mask, ripple_mask, lo, ts, tc, tx, thmax, tcm = params
    y = w * a
    yp = pw * pa
    xn = psum_in & mask
    xo = ppsum_in & mask
    yn = y & mask
    yo = yp & mask
    sn = (xn + yn) & mask
    so = (xo + yo) & mask
    dc = ((sn ^ xn ^ yn) ^ (so ^ xo ^ yo)) & ripple_mask
    link = dc & ((xn ^ yn) << 1) & (dc << 1)
    chain = _longest_run(link) + (1 if dc != 0 else 0)
    bound = ts + tc * chain
    u = w * (a & lo)
    up = pw * (pa & lo)
    un = u & _M16
    vn = (y - u) & _M16
    uo = up & _M16
    vo = (yp - up) & _M16
    dcm = ((y & _M16) ^ un ^ vn) ^ ((yp & _M16) ^ uo ^ vo)
    linkm = dcm & ((un ^ vn) << 1) & (dcm << 1)
    chainm = _longest_run(linkm) + (1 if dcm != 0 else 0)
    # adding 0.0 leaves the bound bit-identical to not adding the product term
    return bound + (tx + thmax + tcm * chainm if y != yp else 0.0)


@_per_mac
def _chain_exit(bound: float, theta: float) -> bool:
    """Early exit 3: the chain ``bound`` is at most ``theta``, with a margin so that float
    rounding may only send a MAC to the full evaluation, never skip a late one."""
    return bound * (1.0 + _EPS) + _EPS <= theta


@_per_mac
def _screen_params(consts: np.ndarray) -> tuple[int, int, int, int, int, int, float]:
    """Constants of :func:`_popcount_screen`: accumulator mask, ripple carry mask, multiplier
    split mask, then ``t_c``, ``t_x + max t_h`` and ``t_cm`` rounded up to units of
    ``1 / _SCREEN_Q``, and ``t_s`` (for :func:`_screen_threshold`)."""
    return (
        (1 << int(consts[_ACC])) - 1,
        (1 << int(consts[_RIPPLE])) - 2,
        (1 << int(consts[_SPLIT])) - 1,
        math.ceil(consts[_TC] * _SCREEN_Q),
        math.ceil((consts[_TX] + consts[_THMAX]) * _SCREEN_Q),
        math.ceil(consts[_TCM] * _SCREEN_Q),
        consts[_TS],
    )


@njit(cache=True, inline="always")
def _screen_threshold(theta: float, ts: float) -> int:
    """Fixed-point threshold of :func:`_popcount_screen` for a lower bound ``theta`` of a MAC's
    threshold (``ts`` from :func:`_screen_params`): a score below it proves that the chain
    bound passes :func:`_chain_exit` at ``theta``. In ``[0, 2**32)``."""
    t = theta - ts - _SCREEN_MARGIN
    if not t >= 0.0:  # also NaN
        return 0
    return math.floor(min(t, 60000.0) * _SCREEN_Q) + 1


@njit(cache=True, inline="always")
def _popcount_screen(
    xn: np.uint32,
    xo: np.uint32,
    w: np.uint32,
    a: np.uint32,
    pw: np.uint32,
    pa: np.uint32,
    cmk: np.uint32,
    pmk: np.uint32,
    xmk: np.uint32,
    amask: np.uint32,
    rmask: np.uint32,
    lo: np.uint32,
    tci: np.uint32,
    pxi: np.uint32,
    tcmi: np.uint32,
    thr: np.uint32,
) -> np.uint32:
    """1 unless early exit 2 or a popcount form of exit 3 proves a MAC on time.

    32-bit words (:mod:`accelsim.kernels._u32`: loops over it vectorize 16 lanes wide): psum in
    ``xn`` / ``xo``, weight ``w`` / ``pw`` and activation ``a`` / ``pa`` of this and the PE's
    previous MAC (ws: ``pw = w``); exit-2 masks ``cmk``, ``pmk``, ``xmk`` of a theta bin at or below the MAC's (see
    :func:`_late_mask`); the rest from :func:`_screen_params` and :func:`_screen_threshold`.

    The second test is :func:`_chain_bound` with each longest run of linked carries replaced
    by the number of linked carries (a popcount, at least the longest run) and the delays in
    fixed point rounded up, so its score is at least the chain bound: a MAC it clears also
    passes exit 3. Popcounts cost one instruction where the longest run costs about 30; on
    DNN operands the test keeps 5.5% of the MACs exit 2 flags (the chain bound: 1.7%).
    """
    one = U.u32(1)
    m16 = U.u32(0xFFFF)
    y = U.mul(w, a)
    yp = U.mul(pw, pa)
    sn = U.add(xn, y)
    so = U.add(xo, yp)
    dcw = U.xor(U.xor(U.xor(sn, xn), y), U.xor(U.xor(so, xo), yp))
    risky = U.and_(
        U.xor(sn, so),
        U.or_(U.or_(U.and_(dcw, cmk), U.and_(U.xor(y, yp), pmk)), U.and_(U.xor(xn, xo), xmk)),
    )
    # accumulator: as _chain_bound, on the acc-bit words
    xna = U.and_(xn, amask)
    xoa = U.and_(xo, amask)
    yna = U.and_(y, amask)
    yoa = U.and_(yp, amask)
    sna = U.and_(U.add(xna, yna), amask)
    soa = U.and_(U.add(xoa, yoa), amask)
    dc = U.and_(U.xor(U.xor(U.xor(sna, xna), yna), U.xor(U.xor(soa, xoa), yoa)), rmask)
    link = U.and_(U.and_(dc, U.shl(U.xor(xna, yna), one)), U.shl(dc, one))
    chain = U.add(U.popcount(link), U.nonzero(dc))
    # multiplier's merge adder
    u = U.mul(w, U.and_(a, lo))
    up = U.mul(pw, U.and_(pa, lo))
    un = U.and_(u, m16)
    vn = U.and_(U.sub(y, u), m16)
    uo = U.and_(up, m16)
    vo = U.and_(U.sub(yp, up), m16)
    dcm = U.xor(U.xor(U.xor(U.and_(y, m16), un), vn), U.xor(U.xor(U.and_(yp, m16), uo), vo))
    linkm = U.and_(U.and_(dcm, U.shl(U.xor(un, vn), one)), U.shl(dcm, one))
    chainm = U.add(U.popcount(linkm), U.nonzero(dcm))
    product = U.nonzero(U.xor(y, yp))
    score = U.add(U.mul(chain, tci), U.mul(product, U.add(pxi, U.mul(chainm, tcmi))))
    return U.and_(U.nonzero(risky), U.at_least(score, thr))


@_per_mac
def _late_mask_tail(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    theta: float,
    consts: np.ndarray,
) -> int:
    """Early exit 3 of :func:`_late_mask` (chain bound), then the full per-bit evaluation."""
    bound = _chain_bound(w, a, psum_in, pw, pa, ppsum_in, _chain_params(consts))
    if _chain_exit(bound, theta):
        return 0
    _, late = _walk(w, a, psum_in, pw, pa, ppsum_in, theta, consts, consts, False)
    return late


@_per_mac
def _late_mask(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    theta: float,
    consts: np.ndarray,
) -> int:
    """Mask of accumulator output bits that toggle and arrive after ``theta`` (fraction of CP).

    Early exits, each conservative (it never hides a late bit), before any per-bit loop:

    1. ``theta >= 1``: no arrival exceeds the static critical path.
    2. Static bound per cause: output bit j arrives by ``t_s + max(A_in(j), A_c(j))``, and
       ``A_c(j)``, ``A_in(j)`` are at most their static values. If no toggling output bit has
       a toggled carry, product bit or psum bit whose static arrival could exceed theta (bit
       masks precomputed for 256 theta bins, rounded down), return 0: a few ANDs.
    3. Chain bound (:func:`_late_mask_tail`): every output bit arrives by ``t_s + P + t_c * C``
       with ``C`` the longest chain of toggled accumulator carries (into bits 1..R-1) linked
       by a current propagate, and ``P`` the product's bound (0 if the product did not
       change, else ``t_x + max t_h + t_cm * Cm`` with ``Cm`` the same chain length in the
       merge adder); chain lengths come from branch-free shift-and-AND longest-run
       computations (:func:`_longest_run`), no per-bit loop.

    Otherwise the bits are evaluated one by one (:func:`_walk`).
    """
    if theta >= 1.0:
        return 0
    # 32-bit arithmetic is exact for every acc_bits <= 32 (the masks below have no higher bits);
    # keeping this function this small lets LLVM inline it into the caller's loop.
    mask = 0xFFFFFFFF
    y = int(w) * int(a)
    yp = int(pw) * int(pa)
    xn = int(psum_in) & mask
    xo = int(ppsum_in) & mask
    yn = y & mask
    yo = yp & mask
    sn = (xn + yn) & mask
    so = (xo + yo) & mask
    dc = (sn ^ xn ^ yn) ^ (so ^ xo ^ yo)
    i = int(theta * _NBIN)
    # output bit j can be late only if it toggles and one of its toggled causes could be late
    risky = (sn ^ so) & (
        (dc & int(consts[_CMASK + i]))
        | ((yn ^ yo) & int(consts[_PMASK + i]))
        | ((xn ^ xo) & int(consts[_XMASK + i]))
    )
    if risky == 0:
        return 0
    return _late_mask_tail(
        int(w), int(a), int(psum_in), int(pw), int(pa), int(ppsum_in), theta, consts
    )


@_per_mac
def _late_mask_full(
    w: int,
    a: int,
    psum_in: int,
    pw: int,
    pa: int,
    ppsum_in: int,
    theta: float,
    consts: np.ndarray,
) -> int:
    """``_late_mask`` without the early exits (reference for the fast-path test)."""
    _, late = _walk(
        int(w), int(a), int(psum_in), int(pw), int(pa), int(ppsum_in), theta, consts, consts, False
    )
    return late


@njit(cache=True, inline="always")
def _delay_at(
    w_arr: np.ndarray,
    a_arr: np.ndarray,
    psum_arr: np.ndarray,
    pw_arr: np.ndarray,
    pa_arr: np.ndarray,
    ppsum_arr: np.ndarray,
    i: int,
    consts: np.ndarray,
) -> float:
    """Sensitized delay of element ``i`` of operand arrays (shared by the batch kernels)."""
    s, _ = _walk(
        int(w_arr[i]),
        int(a_arr[i]),
        int(psum_arr[i]),
        int(pw_arr[i]),
        int(pa_arr[i]),
        int(ppsum_arr[i]),
        2.0,
        consts,
        consts,
        False,
    )
    return s


@njit(cache=True, parallel=True)
def _sensitized_delays(
    w_arr: np.ndarray,
    a_arr: np.ndarray,
    psum_arr: np.ndarray,
    pw_arr: np.ndarray,
    pa_arr: np.ndarray,
    ppsum_arr: np.ndarray,
    consts: np.ndarray,
    out: np.ndarray,
) -> None:
    """Sensitized delay of each MAC cycle of flat arrays into ``out`` (float64).

    Parallel over chunks; every element is computed on its own, so the result does not depend
    on the number of threads.
    """
    n = w_arr.shape[0]
    nchunks = (n + _CHUNK - 1) // _CHUNK
    for c in prange(nchunks):
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            out[i] = _delay_at(w_arr, a_arr, psum_arr, pw_arr, pa_arr, ppsum_arr, i, consts)


@njit(cache=True)
def _sensitized_delays_serial(
    w_arr: np.ndarray,
    a_arr: np.ndarray,
    psum_arr: np.ndarray,
    pw_arr: np.ndarray,
    pa_arr: np.ndarray,
    ppsum_arr: np.ndarray,
    consts: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`_sensitized_delays` on one thread (small inputs: no thread-pool overhead)."""
    for i in range(w_arr.shape[0]):
        out[i] = _delay_at(w_arr, a_arr, psum_arr, pw_arr, pa_arr, ppsum_arr, i, consts)


@njit(cache=True)
def _mac_arrivals_many(
    w_arr: np.ndarray,
    a_arr: np.ndarray,
    psum_arr: np.ndarray,
    pw_arr: np.ndarray,
    pa_arr: np.ndarray,
    ppsum_arr: np.ndarray,
    consts: np.ndarray,
    out: np.ndarray,
) -> None:
    """Per-bit arrivals of each MAC cycle into ``out`` of shape (n, 32)."""
    for i in range(w_arr.shape[0]):
        _mac_arrivals(
            w_arr[i], a_arr[i], psum_arr[i], pw_arr[i], pa_arr[i], ppsum_arr[i], consts, out[i]
        )


@njit(cache=True)
def _late_masks(
    w_arr: np.ndarray,
    a_arr: np.ndarray,
    psum_arr: np.ndarray,
    pw_arr: np.ndarray,
    pa_arr: np.ndarray,
    ppsum_arr: np.ndarray,
    theta_arr: np.ndarray,
    consts: np.ndarray,
    out: np.ndarray,
    full: bool,
) -> None:
    """Late masks of each MAC cycle into ``out`` (uint32), threshold ``theta_arr[i]``:
    ``_late_mask`` (with its early exits), or ``_late_mask_full`` (without) when ``full``."""
    for i in range(w_arr.shape[0]):
        args = (w_arr[i], a_arr[i], psum_arr[i], pw_arr[i], pa_arr[i], ppsum_arr[i])
        if full:
            out[i] = _late_mask_full(*args, theta_arr[i], consts)
        else:
            out[i] = _late_mask(*args, theta_arr[i], consts)
