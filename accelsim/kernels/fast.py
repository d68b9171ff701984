"""Fast timing-error GEMM: an exact int8 GEMM plus error events sampled from the exact model.

:func:`fast_gemm` takes the arguments of :func:`accelsim.kernels.exact.exact_gemm` plus an
``rng`` and returns the same :class:`GemmResult`; its errors are *statistically* equivalent
to the exact kernel's (same per-MAC probabilities, masks and manifestations), not identical.

Method
------
1. **Error-free product**: ``torch._int_mm`` (exact int8 x int8 -> int32 on CPU, any shape);
   without torch, float32 BLAS on chunks of at most 1024 reduction rows (every partial sum is
   an integer below ``1024 * 128**2 = 2**24``, so exact) summed in int64, wrapped to int32.
2. **Per-MAC error probability of this GEMM**, from a random subsample of its accumulation
   chains (ws: lanes ``(m, n, row fold)``, the psum chain down the fold and the previous input
   row's chain, i.e. the PE's true previous cycle; os: output chains over ``k``). Each sampled
   MAC gets its sensitized delay ``s`` (``_mac._late_mask`` at the GEMM's smallest threshold,
   the per-bit arrivals ``_mac._mac_arrivals_many`` for the late ones: the *donors*) and a cell
   = chain-depth stratum x state class x product class:

   * stratum: the depth (PE row ``r`` in ws, ``k`` in os) itself below 16, then 16-31, 32-63,
     ... The psum entering a MAC grows like ``sqrt(depth)`` and depth 0 sees ``psum_in = 0``
     (no error at all in ws): the rate varies with depth mostly at small depths (measured).
   * state class: the length of the longest chain of toggled accumulator carries (into the
     ripple section, linked by current propagates: ``_mac._chain_bound``'s chain) in 9 ranges
     (<= 8, 9-10, 11-12, 13, ..., 17, >= 18 bits) x the sign of the new sum. Only a sum that
     changes sign against the previous cycle with a small psum or product toggles a long
     chain through the sign-extension region; measured on DNN-like ws data at theta ~ 1/1.28
     the late rate is 0 below 11 bits, 0.3 % at 12, 7 % at 16 and ~45 % from 19 bits. The
     chain carries the psum's magnitude, which persists down a chain (a random walk): with a
     coarser state (sign change, small output magnitude) the errors of one ws output were
     correlated beyond the classes (over-dispersed per-output counts). The sum's sign sets
     the sign of a ``hold`` error (the late high bits take the previous, opposite sign).
   * product class: ``|w*a - pw*pa|`` = 0, 1-6, 7-10 or >= 11 bits, x whether the (new, else
     old) product's sign is opposite to ``psum_in``'s.

   The product class is known from the operands; the state class needs the MAC's error-free
   ``psum_in`` and the previous cycle's, which the event sampler computes (an ``O(depth)`` dot
   product) only for candidates that pass a first thinning stage bounded over the state
   classes. With few donors the cells are merged (>= ``MERGE_FULL`` donors: all;
   >= ``MERGE_COARSE``: stratum x chain group (<= 12, 13-15, >= 16 bits) x product change;
   fewer: doubling depth ranges x chain >= 14 bits or not x product changed or not), and in a
   subsample the cells with fewer than ``MIN_CELL_MACS`` sampled MACs are pooled with the
   sparse cells of their parent, level by level (a cell the sample misses would get rate 0, a
   downward bias with many small cells; one donor among three MACs would read as rate 1/3),
   trading data dependence for estimation noise and thinning cost. A census keeps every cell.

   ``p(cell, theta) = #(donors of cell with s > theta) / #(sampled MACs of cell)`` is unbiased
   for every theta (the sample is uniform over the GEMM's MACs). Sample size: a pilot of
   ``2**14`` MACs estimates the rate at the smallest threshold; an independent main sample of
   ``TARGET_DONORS / rate`` MACs (at least ``2**15``, at most ``max_sample_macs``, default
   ``max(2**16, MACs // 2048)``) is used (the pilot only sets the size, so the estimate stays
   unbiased; the relative standard error of a rate is ~``1/sqrt(donors)``). A GEMM of at most
   ``max_sample_macs`` MACs is taken whole (a census: the rates are this GEMM's own).

   **Low rates**: the resolution is ``1 / sample`` per MAC. At a TER of 1e-6 on a
   256x1152x1152 GEMM (3.4e8 MACs, 1.7e5 sampled by default) the sample holds ~0.2 late MACs
   on average: the expected error count is right (unbiased in mean over seeds,
   ``tests/kernels/test_fast.py``), but a single call sees either no errors or ~2000 copies
   of one donor's pattern. Pass a larger ``max_sample_macs`` (~5-10 ns per MAC on 2 cores)
   when per-call accuracy at such rates matters.
3. **Events by thinning**: a Bernoulli candidate process per MAC at a rate ``q`` that bounds
   its cell's probability, by geometric skips (cumulative hazard), so the cost is
   proportional to the candidates, not to the MACs. In ws, ``q`` is per PE and
   product-change bucket: a PE's weight ``w`` is fixed, so its product changes by
   ``|w| * |a - pa|`` and the input rows of each bucket are one contiguous range of the rows
   sorted once per GEMM by ``|a - pa|`` (``_fast._change_order``); the rate is the bucket's
   largest cell rate in the PE row's stratum at the PE's lowest threshold over the fold (its
   factor times the lowest ``1/g`` over its cycles). Most MACs change their product by 7 or
   more bits and fail far less often than the small changes: one rate over all buckets drew
   1.4x the candidates and walked 16 supply segments per PE, and made the event pass 2x
   slower on dit-digits at 0.837 V (a GEMM-wide lowest threshold made 40x more candidates).
   In os, ``q`` is per PE and depth stratum, at the unit's lowest threshold. The rates come
   from tables over 512 threshold bins
   (``_fast._bound_table``: per stratum and product-change bucket, the largest rate over the
   state classes at the bin's lower edge). A candidate at ``(m, n, k)`` gets its true cycle,
   threshold ``theta = 1 / (ratio * pe[r, c] * g[cycle])`` (accepted on to the second stage
   with its bucket's bound at that threshold), then its psums (two ``O(depth)`` int8 dot
   products) and cell, and is accepted with ``p(cell, theta) / q``: every MAC fails
   independently with its cell's probability at its own threshold (slow PEs and droop cycles
   exactly).
4. **Manifestation** of an event: a donor of the same cell with ``s > theta`` (uniform), its
   late mask at the target's theta (the donor's arrivals above theta) and: ``hold`` adds the
   donor's own ``latched - correct`` (late bits keep the donor's previous register value) to
   the target; ``flip`` flips the top late bit of the target's register; ``drop`` loses the
   donor's product (late MACs are mostly products of the sign opposite to the psum's, a bias
   the target's own product would not carry); ``razor`` corrupts nothing.
5. **Propagation and cascades** (``_fast._ws_propagate`` / ``_os_propagate``): the corrupted
   psum flows on exactly (ws down the column into the output, os in the accumulator), and
   every MAC whose state the error corrupted (the rest of the chain; in ws also the next input
   row below the error, through the PE's previous-cycle psum, and so on while errors continue)
   is evaluated with the exact model on its true corrupted state; sampled events there are
   discarded. Logged ``correct``/``latched`` are the target's true register values.

Known deviations from the exact kernel (``tests/kernels/test_fast.py``, 10 chips of 48x64x40
on 16x16, 2-7e-3 errors per MAC, census rates): errors of one ws fold chain remain slightly
more correlated in the exact kernel (pairs of late MACs in one fold: +10 % over the classes'
prediction, +40 % with the former sign-change classes), within the tests' power.
Error locations (PE row x droop), late bits, output-error magnitudes, totals and per-output
count histograms agree for ws and os with hold, flip and drop.

Cost (``benchmarks/kernels.py``, 256x1152x1152 on chip 0, 2 cores): at TER 1e-6 about 1.35x a
float32 matmul (the product, the ~2e5-MAC sample, the thinning); at TER 1e-4 about 43x: a
bucket's candidate rate covers every carry-chain class (long chains fail up to ~45 % of the
time), so ~80 candidates are drawn per event, each needing its two psums, and each event's
cascade is re-evaluated exactly.

Deterministic: the sample lanes and a 64-bit seed come from ``rng``; the event kernels use a
counter-based generator per unit, so the result is identical at any numba thread count.
"""

from __future__ import annotations

import functools

import numpy as np

from accelsim.config import ArrayConfig
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels import _fast, _mac
from accelsim.kernels.exact import (
    MANIFESTATIONS,
    ErrorLog,
    GemmResult,
    Manifestation,
    check_error_inputs,
    run_exact,
)

#: Per-MAC error rate above which the fast kernel is the slower one and the accelerator's fast
#: mode hands a GEMM to the exact kernel (``exact_above``). Measured, 2 cores: 256x1152x1152 on
#: chip 0 with the popcount-screened exact ws kernel, fast vs exact 0.21 vs 0.22 s at TER 9.4e-5,
#: 0.25 vs 0.24 s at 1.3e-4, 0.32 vs 0.28 s at 2e-4, 0.56 vs 0.33 s at 3.4e-4, 0.84 vs 0.47 s at
#: 6.4e-4 (crossover near 1.2e-4; with the older exact kernel it was near 2.7e-4); dit-digits
#: sampling at 0.80 V (TER 4e-4) 14.8 vs 7.9 s, at 0.75 V (2.6e-3) 62 vs 15 s (older exact
#: kernel), and there the fast kernel also overcounts (+5 %, +19 %).
EXACT_ABOVE_TER = 1e-4
#: Least room for events per ws thinning unit (fold x PE row) in the first pass, and the most
#: rows of the first pass's event buffer otherwise (48 bytes each; more events take a rerun).
EVENTS_PER_UNIT = 16
EVENT_ROWS = 1 << 21
#: Donors (late sampled MACs at the smallest threshold) the main sample aims for.
TARGET_DONORS = 256
#: MACs of the pilot sample and the smallest main sample.
PILOT_MACS = 1 << 14
MIN_SAMPLE_MACS = 1 << 15
_F32_EXACT_K = 1024  # 1024 * 128 * 128 = 2**24: float32 partial sums stay exact integers


def exact_int_matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` of int8 matrices as int32 with wrap-around, exactly (torch or chunked BLAS)."""
    try:
        import torch

        res: np.ndarray = torch._int_mm(torch.from_numpy(A), torch.from_numpy(B)).numpy()
        return res
    except (ImportError, RuntimeError):
        pass
    acc = np.zeros((A.shape[0], B.shape[1]), dtype=np.int64)
    for k0 in range(0, A.shape[1], _F32_EXACT_K):
        a = A[:, k0 : k0 + _F32_EXACT_K].astype(np.float32)
        b = B[k0 : k0 + _F32_EXACT_K].astype(np.float32)
        acc += (a @ b).astype(np.int64)
    return acc.astype(np.int32)


def _empty_log(total: int = 0) -> ErrorLog:
    z = np.zeros(0, dtype=np.int64)
    return ErrorLog(z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), total)


def _wrap(x: np.ndarray) -> np.ndarray:
    w: np.ndarray = ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return w


def _bitlen(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (0 for 0)."""
    out = np.zeros(x.shape, dtype=np.int64)
    v = x.copy()
    while np.any(v):
        nz = v > 0
        out[nz] += 1
        v >>= 1
    return out


def _strata(depth: int) -> np.ndarray:
    """Stratum of each chain depth: its own below 16, then 16-31, 32-63, ... (doubling)."""
    d = np.arange(depth, dtype=np.int64)
    strata: np.ndarray = np.where(d < 16, d, 11 + _bitlen(d))
    return strata


@functools.lru_cache(maxsize=64)
def _depth_tables(depth: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``(_strata(depth), _cell_levels(strata))`` kept per chain depth (they depend on the
    depth only and cost ~0.3 ms per GEMM to rebuild), read-only."""
    strata = _strata(depth)
    levels = tuple(_cell_levels(strata))
    for a in (strata, *levels):
        a.setflags(write=False)
    return strata, levels


def _above_limit(late: int, sampled: int, limit: float) -> bool:
    """Whether ``late`` late MACs among ``sampled`` show a rate above ``limit``: more than
    the expected count at ``limit`` plus two of its Poisson standard deviations.

    The main sample holds 32-64k MACs, so at the default limit (1e-4) it expects 3-6 late
    MACs; a bare ``late > limit * sampled`` sent a dit-digits qkv GEMM with a true rate of
    1.6e-5 to the exact kernel on 4 late MACs of 32768 (54 ms instead of about 6 ms). Near the
    limit both kernels cost about the same, so a late switch costs little."""
    expected = limit * sampled
    return late > expected + 2.0 * float(np.sqrt(expected))


def fast_gemm(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    *,
    ratio: float,
    consts: np.ndarray,
    pe_factor: np.ndarray | None = None,
    supply_factor: np.ndarray | None = None,
    manifestation: Manifestation = "hold",
    log_capacity: int = 256,
    rng: np.random.Generator,
    max_sample_macs: int | None = None,
    exact_above: float | None = None,
    pe_order: np.ndarray | None = None,
) -> GemmResult:
    """``A @ B`` with timing errors sampled like :func:`~accelsim.kernels.exact.exact_gemm`'s.

    Arguments and result as ``exact_gemm`` (see there), plus ``rng`` (the source of all
    randomness) and ``max_sample_macs``: the largest subsample of MACs evaluated with the exact
    delay model (default ``max(2**16, MACs // 2048)``); the method is in the module docstring.
    ``exact_above``: when the sample puts this GEMM's per-MAC error rate above it (beyond the
    sample's noise: :func:`_above_limit`), run the exact kernel instead and return its result
    (there it is the faster of the two: see :data:`EXACT_ABOVE_TER`); None (default) always samples. ``pe_order``: the caller's cached
    :func:`pe_column_order` of ``pe_factor`` (a caller running many GEMMs at one operating
    point saves its sort, ~0.3 ms per call); None computes it.
    """
    return _fast_gemm(
        A,
        B,
        array,
        ratio=ratio,
        consts=consts,
        pe_factor=pe_factor,
        supply_factor=supply_factor,
        manifestation=manifestation,
        log_capacity=log_capacity,
        rng=rng,
        max_sample_macs=max_sample_macs,
        exact_above=exact_above,
        pe_order=pe_order,
    )


def transpose_int8(B: np.ndarray) -> np.ndarray:
    """``np.ascontiguousarray(B.T)`` of an int8 matrix; by 8x8 byte blocks in 64-bit words
    (``_fast._transpose_words``) when both sides are multiples of 8 and the data is 8-byte
    aligned and contiguous (little-endian byte order, as on x86 and ARM hosts)."""
    K, N = B.shape
    if (
        K % 8 == 0
        and N % 8 == 0
        and K * N > 0
        and B.flags.c_contiguous
        and B.ctypes.data % 8 == 0
        and np.little_endian
    ):
        words: np.ndarray = _fast._transpose_words(B.view(np.uint64))
        return words.view(np.int8)
    return np.ascontiguousarray(B.T)


def pe_column_order(pe_factor: np.ndarray) -> np.ndarray:
    """The PE columns of each array row by descending delay factor (ties by column), int64
    ``(rows, cols)``: the order in which the ws event sampler visits a row's PEs."""
    pe = np.asarray(pe_factor, dtype=np.float64)
    if pe.ndim != 2 or pe.size == 0:
        raise ShapeError(f"pe_factor: got shape {pe.shape}, expected a non-empty 2-D array")
    order: np.ndarray = _fast._pe_order(np.ascontiguousarray(1.0 / pe))
    return order


def _fast_gemm(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    *,
    ratio: float,
    consts: np.ndarray,
    pe_factor: np.ndarray | None,
    supply_factor: np.ndarray | None,
    manifestation: Manifestation,
    log_capacity: int,
    rng: np.random.Generator,
    max_sample_macs: int | None,
    rate_scale: float = 1.0,
    mask_shift: int = 0,
    exact_above: float | None = None,
    pe_order: np.ndarray | None = None,
) -> GemmResult:
    """:func:`fast_gemm` with test hooks that bias it on purpose (negative tests only):
    ``rate_scale`` multiplies every error probability, ``mask_shift`` shifts late masks up."""
    A, B, pe, g = check_error_inputs(A, B, array, ratio, pe_factor, supply_factor, manifestation)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng: got {type(rng).__name__}, expected a numpy.random.Generator")
    if isinstance(log_capacity, bool) or not isinstance(log_capacity, int | np.integer):
        raise ConfigError(f"log_capacity: got {log_capacity!r}, expected an integer >= 0")
    if log_capacity < 0:
        raise ConfigError(f"log_capacity: got {log_capacity!r}, expected an integer >= 0")
    if max_sample_macs is not None and (
        isinstance(max_sample_macs, bool)
        or not isinstance(max_sample_macs, int | np.integer)
        or max_sample_macs < MIN_SAMPLE_MACS
    ):
        raise ConfigError(
            f"max_sample_macs: got {max_sample_macs!r}, expected an integer >= {MIN_SAMPLE_MACS}"
        )
    R, C = array.rows, array.cols
    consts = np.ascontiguousarray(consts, dtype=np.float64)
    transpose = array.dataflow == "is"
    os_flow = array.dataflow == "os"
    # is(A, B) == ws(B^T, A^T)^T with the same PE coordinates (as exact_gemm).
    A_k, B_k = (np.ascontiguousarray(B.T), np.ascontiguousarray(A.T)) if transpose else (A, B)
    M, K = A_k.shape
    N = B_k.shape[1]
    out0 = exact_int_matmul(A_k, B_k)
    inv_pe = np.ascontiguousarray(1.0 / pe)
    inv_g = np.ascontiguousarray(1.0 / g)
    if os_flow:
        n_cycles_used = ((N + C - 1) // C) * ((M + R - 1) // R) * (K + R + C - 2)
    else:
        n_cycles_used = ((N + C - 1) // C) * ((K + R - 1) // R) * (2 * R + C + M - 2)
    inv_g_min = float(inv_g[: max(1, min(inv_g.size, n_cycles_used))].min())
    inv_ratio = 1.0 / ratio if ratio > 0 else np.inf
    used_pe = inv_pe[: min(R, M if os_flow else K), : min(C, N)]
    theta_floor = inv_ratio * float(used_pe.min()) * inv_g_min
    if not theta_floor < 1.0:  # no sensitized delay exceeds the static critical path
        return _result(out0, _empty_log(), transpose)

    sampler = _Sampler(A_k, B_k, R, os_flow, theta_floor, consts, rng)
    total_macs = M * N * K
    cap = max_sample_macs if max_sample_macs is not None else max(1 << 16, total_macs // 2048)
    pilot = sampler.draw(PILOT_MACS)
    pilot_late, pilot_macs = sampler.count_late(pilot)
    rate0 = max(pilot_late, 0.5) / pilot_macs
    want = int(min(max(TARGET_DONORS / rate0, MIN_SAMPLE_MACS), cap))
    census = total_macs <= cap
    cells = sampler.cells(sampler.census() if census else sampler.draw(want), census)
    if exact_above is not None:
        # this GEMM's error rate from the sample: donors late at their own PE's and cycle's
        # threshold (the other sampled MACs are not late even at the lowest one)
        dm, dn, dk = cells.pos[:, 0], cells.pos[:, 1], cells.pos[:, 2]
        r, c = (dm % R, dn % C) if os_flow else (dk % R, dn % C)
        if os_flow:
            fold = (dn // C) * ((M + R - 1) // R) + dm // R
            t = fold * (K + R + C - 2) + dk + r + c
        else:
            fold = (dn // C) * ((K + R - 1) // R) + dk // R
            t = fold * (2 * R + C + M - 2) + R + dm + r + c
        theta = inv_ratio * inv_pe[r, c] * inv_g[np.minimum(t, inv_g.size - 1)]
        if _above_limit(int(np.count_nonzero(cells.s > theta)), cells.sampled, exact_above):
            return run_exact(
                A, B, array, inv_ratio=inv_ratio, consts=consts, inv_pe=inv_pe, inv_g=inv_g,
                mode=MANIFESTATIONS[manifestation], log_capacity=log_capacity,
            )  # fmt: skip

    seed = np.uint64(rng.integers(0, 1 << 63, dtype=np.int64))
    tab = np.zeros((sampler.n_strata, 4, _fast.N_TBIN))
    htab = np.empty_like(tab)
    _fast._bound_table(
        theta_floor, sampler.n_strata, cells.n, cells.off, cells.s, float(rate_scale), tab, htab
    )
    inv_width = _fast.N_TBIN / (1.0 - theta_floor)
    BT = transpose_int8(B_k)
    rmask = int(_fast._ripple_mask(consts))
    if os_flow:
        S = sampler.n_strata
        strata_lo = np.searchsorted(sampler.strata, np.arange(S + 1)).astype(np.int64)
        theta_min = np.repeat((inv_ratio * inv_g_min) * inv_pe.reshape(-1), S)
        unit_stratum = np.tile(np.arange(S, dtype=np.int64), R * C)
        q = np.zeros(theta_min.size)
        _fast._unit_bounds(theta_min, unit_stratum, tab, theta_floor, inv_width, q)
        n_units = q.size
    else:
        n_folds = ((N + C - 1) // C) * ((K + R - 1) // R)
        per_fold = 2 * R + C + M - 2
        # diag_min[f, d]: the lowest 1/g over the M cycles of the PEs on diagonal d = r + c
        diag_min = _fast._ws_windows(inv_g, R, M, n_folds, per_fold, M, R + C - 1)
        row_order, change_first = _fast._change_order(A_k)
        row_min = inv_ratio * inv_pe.min(axis=1)
        unit_theta = np.ascontiguousarray(np.outer(diag_min.min(axis=1), row_min).reshape(-1))
        if pe_order is not None and (pe_order.shape != (R, C) or pe_order.dtype != np.int64):
            raise ShapeError(
                f"pe_order: got {pe_order.dtype} {pe_order.shape}, expected int64 {(R, C)} "
                "(pe_column_order(pe_factor))"
            )
        order: np.ndarray = _fast._pe_order(inv_pe) if pe_order is None else pe_order
        qmax = np.ascontiguousarray(tab.max(axis=1))
        n_units = unit_theta.size
    if os_flow:
        counts = np.zeros(n_units, dtype=np.int64)
        ev = np.zeros((0, 6), dtype=np.int64)
        for fill in (False, True):
            offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
            if fill:
                ev = np.zeros((int(counts.sum()), 6), dtype=np.int64)
            _fast._os_events(
                A_k, B_k, BT, R, C, inv_pe, inv_g, inv_ratio, rmask, q, strata_lo, cells.n,
                cells.off, cells.s, cells.arr, tab, theta_floor, inv_width, seed,
                float(rate_scale), fill, counts, offsets, ev,
            )  # fmt: skip
    else:
        # one pass with room for EVENTS_PER_UNIT events per unit; units that had more are run
        # again alone (same stream, same events) with room for all of theirs
        units = np.arange(n_units, dtype=np.int64)
        # room: EVENTS_PER_UNIT, or twice the pilot's rate (at the GEMM's lowest threshold:
        # an overestimate) spread over the units, whichever is larger, within EVENT_ROWS rows
        room = int(min(2.0 * rate0 * total_macs / n_units, EVENT_ROWS / n_units))
        room = max(EVENTS_PER_UNIT, room)
        caps = np.full(n_units, room, dtype=np.int64)
        offsets = units * room
        counts = np.zeros(n_units, dtype=np.int64)
        buf = np.empty((n_units * room, 6), dtype=np.int64)
        ws_args = (
            A_k, B_k, BT, R, C, inv_pe, inv_g, inv_ratio, rmask, sampler.strata, cells.n,
            cells.off, cells.s, cells.arr, tab, htab, qmax, theta_floor, inv_width, diag_min,
            unit_theta, order, row_order, change_first, seed, float(rate_scale),
        )  # fmt: skip
        _fast._ws_events(*ws_args, units, offsets, caps, counts, buf)
        over = counts > caps
        ev = _fast._unit_rows(buf, offsets, np.where(over, 0, counts))
        if over.any():
            units2 = units[over]
            caps2 = counts[over]
            offsets2 = np.concatenate(([0], np.cumsum(caps2)[:-1])).astype(np.int64)
            ev2 = np.empty((int(caps2.sum()), 6), dtype=np.int64)
            counts2 = np.zeros(units2.size, dtype=np.int64)
            _fast._ws_events(*ws_args, units2, offsets2, caps2, counts2, ev2)
            ev = np.concatenate([ev, ev2])
    if ev.shape[0] == 0:
        return _result(out0, _empty_log(), transpose)
    em, en, ek, ecyc, donor, mask = (ev[:, i] for i in range(6))
    if mask_shift:
        mask = (mask << mask_shift) & 0xFFFFFFFF
    mode = MANIFESTATIONS[manifestation]
    if mode == 0:  # hold: late bits keep the donor's previous register value
        corr = cells.correct[donor]
        latched = (corr & ~mask & 0xFFFFFFFF) | (cells.prev[donor] & mask & 0xFFFFFFFF)
        delta = _wrap(latched - corr)
    elif mode == 1:  # flip: the highest late bit of the donor's register flips
        corr = cells.correct[donor]
        delta = _wrap(((corr & 0xFFFFFFFF) ^ (1 << (_bitlen(mask) - 1))) - corr)
    elif mode == 3:  # drop: the donor's update (its product) is lost
        delta = -cells.prod[donor]
    else:  # razor: detected and replayed
        delta = np.zeros(em.size, dtype=np.int64)
    # execution order of the exact kernel's logs: ws per column (rf, m, r), os per row (n, k)
    if os_flow:
        order = np.lexsort((ek, en, em))
    else:
        order = np.lexsort((ek, em, ek // R, en))
    ev = np.ascontiguousarray(np.stack([em, en, ek, ecyc, donor, mask], axis=1)[order])
    delta = np.ascontiguousarray(delta[order])
    if mode == 2:  # razor corrupts no state: the sampled events are all there is
        if os_flow:
            correct = _fast._os_correct(A_k, B_k, ev[:, 0], ev[:, 1], ev[:, 2])
        else:
            correct = _fast._ws_correct(A_k, B_k, R, ev[:, 0], ev[:, 1], ev[:, 2])
        rec = np.stack([ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3], ev[:, 5], correct, correct], 1)
    else:
        rec = _propagate(
            A_k, B_k, BT, R, C, inv_pe, inv_g, inv_ratio, consts, mode, ev, delta, os_flow
        )
    rm, rn = rec[:, 0], rec[:, 1]
    # add the errors to the outputs they reach (int32 wrap-around), touching only those
    hit, inverse = np.unique(rm * N + rn, return_inverse=True)
    err = np.zeros(hit.size, dtype=np.int64)
    np.add.at(err, inverse, _wrap(rec[:, 6] - rec[:, 5]))
    out = out0.copy()
    flat = out.reshape(-1)
    flat[hit] = _wrap(flat[hit].astype(np.int64) + err).astype(np.int32)
    lane = rm if os_flow else rn  # log lanes: os output rows, ws output columns
    first = np.searchsorted(lane, lane, side="left")
    keep = (np.arange(lane.size) - first) < log_capacity
    logged = rec[keep]
    m_col, n_col = (1, 0) if transpose else (0, 1)
    errors = ErrorLog(
        m=logged[:, m_col].copy(),
        n=logged[:, n_col].copy(),
        k=logged[:, 2].copy(),
        cycle=logged[:, 3].copy(),
        late_mask=logged[:, 4].copy(),
        correct=logged[:, 5].copy(),
        latched=logged[:, 6].copy(),
        total=int(rec.shape[0]),
    )
    return _result(out, errors, transpose)


def _propagate(
    A: np.ndarray,
    B: np.ndarray,
    BT: np.ndarray,
    R: int,
    C: int,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    inv_ratio: float,
    consts: np.ndarray,
    mode: int,
    ev: np.ndarray,
    delta: np.ndarray,
    os_flow: bool,
) -> np.ndarray:
    """Records ``(m, n, k, cycle, mask, correct, latched)`` of the sampled events and the
    errors their corrupted states cause (``_fast._ws_propagate`` / ``_os_propagate``)."""
    if os_flow:
        key = ev[:, 0] * B.shape[1] + ev[:, 1]
    else:
        key = ev[:, 1] * ((A.shape[1] + R - 1) // R) + ev[:, 2] // R
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    lane_off = np.append(starts, key.size).astype(np.int64)
    per_lane = np.diff(lane_off)
    room = 4
    while True:
        cap = (8 + room * per_lane).astype(np.int64)
        rec_off = np.concatenate(([0], np.cumsum(cap))).astype(np.int64)
        rec = np.zeros((int(rec_off[-1]), 8), dtype=np.int64)
        used = np.zeros(per_lane.size, dtype=np.int64)
        if os_flow:
            _fast._os_propagate(
                A, B, R, C, inv_pe, inv_g, inv_ratio, consts, mode, ev, delta, lane_off,
                rec_off, rec, used,
            )  # fmt: skip
        else:
            _fast._ws_propagate(
                A, B, BT, R, C, inv_pe, inv_g, inv_ratio, consts, mode, ev, delta, lane_off,
                rec_off, rec, used,
            )  # fmt: skip
        if np.all(used >= 0):
            break
        room *= 4
    before = np.cumsum(used) - used  # records of the lanes before each lane
    idx = np.arange(int(used.sum()), dtype=np.int64) + np.repeat(rec_off[:-1] - before, used)
    result: np.ndarray = rec[idx, :7]
    return result


def _result(out: np.ndarray, errors: ErrorLog, transpose: bool) -> GemmResult:
    return GemmResult(out=np.ascontiguousarray(out.T) if transpose else out, errors=errors)


#: Donors from which the full cells are used; below, stratum x chain group x product change;
#: below MERGE_COARSE, doubling depth ranges x long chain or not x product changed or not.
MERGE_FULL = 256
MERGE_COARSE = 32
#: State classes (chain range x sum sign) per chain group of the merged cells (MERGE_COARSE
#: <= donors < MERGE_FULL: chains <= 12, 13-15, >= 16 bits), and the first state class of a
#: long chain (fewer donors: chains >= 14 bits).
LANES_PER_GROUP = 6
LONG_LANE = 8
#: Sampled MACs a cell of a subsample needs to keep its own rate: sparser cells are pooled with
#: the sparse cells of their parent (next coarser level), and so on. A cell the sample misses
#: would get rate 0 (a downward bias with many small cells), and one donor among a handful of
#: MACs reads as a huge rate (the thinning's candidate rate is the largest cell rate).
MIN_CELL_MACS = 16


def _cell_levels(strata: np.ndarray) -> list[np.ndarray]:
    """Parent of each cell at successively coarser levels: the cell; stratum x chain group x
    product change; the same with (product changed or not); doubling depth ranges x long
    chain or not x (product changed or not); depth range x long chain; depth range."""
    n_strata = int(strata.max()) + 1
    nc = _fast.N_CLASSES
    cells = np.arange(n_strata * nc, dtype=np.int64)
    st, cls = cells // nc, cells % nc
    pclass = cls % _fast.N_PCLASS
    lane = cls // _fast.N_PCLASS  # state class: toggled-carry chain length x sum sign
    group = (lane // LANES_PER_GROUP) * LANES_PER_GROUP * _fast.N_PCLASS
    changed = np.where(pclass == 0, 0, 2)
    long = np.where(lane >= LONG_LANE, LONG_LANE * _fast.N_PCLASS, 0)
    # depth ranges 0, 1, 2-3, 4-7, ... (strata are non-decreasing in depth)
    first_depth = np.searchsorted(strata, np.arange(n_strata))
    group_first = np.where(first_depth > 0, 1 << np.maximum(_bitlen(first_depth) - 1, 0), 0)
    rep = strata[group_first][st] * nc
    return [
        cells,
        st * nc + group + (pclass & ~1),
        st * nc + group + changed,
        rep + long + changed,
        rep + long,
        rep,
    ]


def _cell_map(levels: tuple[np.ndarray, ...], donors: int, n_cell: np.ndarray | None) -> np.ndarray:
    """Representative cell (the group's smallest cell index) of each cell's group.

    The starting level depends on the donors (few donors: coarse cells, less estimation
    noise, less data dependence); then, in a subsample (``n_cell``: sampled MACs per cell;
    None for a census, whose rates are the GEMM's own), every group with fewer than
    :data:`MIN_CELL_MACS` sampled MACs is pooled with the other sparse groups of its parent at
    the next level, up to the coarsest level. The groups partition the cells, so each group's
    rate estimate (donors / sampled MACs of the group) stays unbiased for the group.
    ``levels``: :func:`_cell_levels` of the strata.
    """
    start = 0 if donors >= MERGE_FULL else (1 if donors >= MERGE_COARSE else 3)
    size = levels[0].size
    label = levels[start] + start * size  # labels of level L are L * size + parent
    for lvl in range(start + 1, len(levels) if n_cell is not None else start + 1):
        assert n_cell is not None
        n_group = np.bincount(label, weights=n_cell, minlength=len(levels) * size)[label]
        sparse = n_group < MIN_CELL_MACS
        if not sparse.any():
            break
        label[sparse] = lvl * size + levels[lvl][sparse]
    rep = np.full(len(levels) * size, size, dtype=np.int64)
    np.minimum.at(rep, label, levels[0])
    cmap: np.ndarray = rep[label]
    return cmap


class _Cells:
    """Per-cell sample sizes and donors (sorted by ``s`` within each cell)."""

    def __init__(
        self,
        n: np.ndarray,
        off: np.ndarray,
        s: np.ndarray,
        arr: np.ndarray,
        correct: np.ndarray,
        prev: np.ndarray,
        prod: np.ndarray,
        pos: np.ndarray,
        sampled: int,
    ) -> None:
        self.n = n
        self.prod = prod
        self.pos = pos  # int64 (D, 3): m, n, k of each donor
        self.sampled = sampled  # MACs in the sample
        self.off = off
        self.s = s
        self.arr = arr
        self.correct = correct
        self.prev = prev


class _Sampler:
    """Random accumulation chains of one GEMM (ws lanes ``(m, n, rf)``, os lanes ``(m, n)``)."""

    def __init__(
        self,
        A: np.ndarray,
        B: np.ndarray,
        R: int,
        os_flow: bool,
        theta: float,
        consts: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.A, self.B, self.R, self.os_flow = A, B, R, os_flow
        self.theta, self.consts, self.rng = theta, consts, rng
        M, K = A.shape
        N = B.shape[1]
        depth = K if os_flow else min(R, K)
        self.lane_len = depth
        strata, self.levels = _depth_tables(depth)
        # a writable copy for the numba kernels (a read-only array is another signature)
        self.strata = strata.copy()
        self.n_strata = int(self.strata.max()) + 1
        self.n_lanes = M * N if os_flow else M * N * ((K + R - 1) // R)

    def draw(self, macs: int) -> np.ndarray:
        """Lane indices (uniform, with replacement) covering about ``macs`` MACs."""
        count = max(1, -(-macs // self.lane_len))
        lanes: np.ndarray = self.rng.integers(0, self.n_lanes, size=count, dtype=np.int64)
        return lanes

    def census(self) -> np.ndarray:
        """Every lane once."""
        return np.arange(self.n_lanes, dtype=np.int64)

    def _run(self, lanes: np.ndarray) -> tuple[np.ndarray, ...]:
        M = self.A.shape[0]
        N = self.B.shape[1]
        L, D = lanes.size, self.lane_len
        cell = np.empty((L, D), dtype=np.int64)
        late = np.empty((L, D), dtype=np.uint8)
        psum = np.empty((L, D), dtype=np.int64)  # written where late (the donors) only
        ppsum = np.empty((L, D), dtype=np.int64)
        if self.os_flow:
            lm, ln = lanes // N, lanes % N
            _fast._os_sample(
                self.A, self.B, lm, ln, self.theta, self.consts, self.strata, cell, late, psum,
                ppsum,
            )  # fmt: skip
            lrf = np.zeros_like(lm)
        else:
            lrf, rest = lanes // (M * N), lanes % (M * N)
            lm, ln = rest // N, rest % N
            _fast._ws_sample(
                self.A, self.B, self.R, lm, ln, lrf, self.theta, self.consts, self.strata,
                cell, late, psum, ppsum,
            )  # fmt: skip
        return lm, ln, lrf, cell, late, psum, ppsum

    def count_late(self, lanes: np.ndarray) -> tuple[int, int]:
        """(late MACs, sampled MACs) at the smallest threshold."""
        _, _, _, cell, late, _, _ = self._run(lanes)
        _, li, _, sampled = _fast._sample_stats(cell, late, self.n_strata * _fast.N_CLASSES)
        return int(li.size), int(sampled)

    def cells(self, lanes: np.ndarray, census: bool = False) -> _Cells:
        """Cell sizes and donors of the chains ``lanes`` (``census``: every chain once)."""
        lm, ln, lrf, cell, late, psum, ppsum = self._run(lanes)
        n_cells = self.n_strata * _fast.N_CLASSES
        n, li, di, sampled = _fast._sample_stats(cell, late, n_cells)
        m, nn = lm[li], ln[li]
        if self.os_flow:
            k = di
            w = self.B[k, nn].astype(np.int64)
            a = self.A[m, k].astype(np.int64)
            pw = np.where(k > 0, self.B[np.maximum(k - 1, 0), nn], 0).astype(np.int64)
            pa = np.where(k > 0, self.A[m, np.maximum(k - 1, 0)], 0).astype(np.int64)
        else:
            k = lrf[li] * self.R + di
            w = self.B[k, nn].astype(np.int64)
            a = self.A[m, k].astype(np.int64)
            pw = w
            pa = np.where(m > 0, self.A[np.maximum(m - 1, 0), k], 0).astype(np.int64)
        p_in, pp_in = psum[li, di], ppsum[li, di]
        arr = np.zeros((li.size, 32), dtype=np.float64)
        _mac._mac_arrivals_many(w, a, p_in, pw, pa, pp_in, self.consts, arr)
        s = np.minimum(arr.max(axis=1, initial=0.0), 1.0)
        correct = _wrap(p_in + w * a)
        # previous value of the PE's output register: ws the previous input row's psum out
        # (0 at the fold's first row), os the accumulator itself
        prev = p_in if self.os_flow else np.where(m > 0, _wrap(pp_in + pw * pa), 0)
        # merge cells while the donors are few (each merged cell shares one donor range)
        cmap = _cell_map(self.levels, li.size, None if census else n)
        n = np.bincount(cmap, weights=n, minlength=n_cells)[cmap]
        dcell = cmap[cell[li, di]]
        order = np.lexsort((s, dcell))
        bounds = np.searchsorted(dcell[order], np.arange(n_cells + 1)).astype(np.int64)
        off = np.ascontiguousarray(np.stack([bounds[cmap], bounds[cmap + 1]], axis=1))
        return _Cells(
            n,
            off,
            np.ascontiguousarray(s[order]),
            np.ascontiguousarray(arr[order]),
            correct[order],
            prev[order],
            (w * a)[order],
            np.ascontiguousarray(np.stack([m, nn, k], axis=1)[order]),
            int(sampled),
        )
