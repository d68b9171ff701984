"""DRAM traffic (words, bytes) and layer time with memory stalls (seconds).

Traffic model (:func:`dram_traffic`)
------------------------------------
Each operand SRAM is a double buffer, as in SCALE-Sim: half of it (``H = sram_words // 2``
words) holds the data the array is using, the other half is filled from DRAM meanwhile. The
folds run in SCALE-Sim's order, ``for col_fold: for row_fold:`` (row folds innermost), which
decides what can stay resident across consecutive folds:

====  =====================================  ======================================  ===========
df    ifmap (M x K) DRAM reads               filter (K x N) DRAM reads               psum block
====  =====================================  ======================================  ===========
os    M*K if M*K <= H_i else M*K*col_folds   K*N if K*min(C,N) <= H_f else K*N*rf    --
ws    M*K if M*K <= H_i else M*K*col_folds   K*N (each weight used by one fold)      M*min(C,N)
is    M*K (each input used by one fold)      K*N if K*N <= H_f else K*N*col_folds    N*min(C,M)
====  =====================================  ======================================  ===========

* The operand streamed by the inner row-fold loop over its whole matrix (os/ws ifmap, is
  filter) is fetched once if the whole matrix fits in its active half, otherwise once per
  column fold (then DRAM reads = SRAM reads, as SCALE-Sim CALC does: scalesim.md section 5).
* The os filter column block (``K x C``) is reused by all row folds of a column fold; it is
  fetched once if the block fits in the active half, otherwise once per fold.
* Outputs: os writes every output once (``M*N``). ws/is accumulate partial sums over the
  row folds in the ofmap SRAM; if the psum block of one column fold (table) fits in the ofmap
  active half (or there is one row fold) each output is written to DRAM once (``M*N``),
  otherwise every row-fold pass spills: ``M*N*row_folds`` writes plus ``M*N*(row_folds-1)``
  partial-sum read-backs (``dram_ofmap_reads``).
* ``scalesim_compat=True`` reproduces SCALE-Sim's CALC output accounting instead: ws/is write
  every partial sum of every row fold to DRAM (``M*N*row_folds``) and never read them back,
  whatever the ofmap SRAM size.

Against the 54 CALC rows of ``tests/data/scalesim_small_gemm.csv`` (64 kB SRAMs, all operands
fit): ``dram_ifmap_reads`` and ``dram_filter_reads`` match exactly (54/54); ``dram_ofmap_writes``
matches 52/54 with ``scalesim_compat=True`` (ws and is 8x8 g33x65x129: 36465 vs SCALE-Sim's
36472, an artefact of SCALE-Sim's write buffer, which counts the ``-1`` padding of partially
filled lines flushed mid-drain) and 40/54 in the default mode (all os rows and every ws/is row
with one row fold; otherwise we write ``M*N`` where SCALE-Sim writes ``M*N*row_folds``).

When an operand does not fit, SCALE-Sim (``read_buffer_estimate_bw``) counts a word again when
it was last fetched in an earlier "epoch" of ``50*floor(S/100)`` (about half the SRAM ``S``)
distinct words. Checked against an emulation of that logic on 260 random small GEMMs with
1-8 kB SRAMs: ifmap reads (all dataflows) and ws/is filter reads equal ours exactly; the os
filter differs when the whole filter does not fit in the active half (SCALE-Sim re-fetches the
part of a ``K x C`` block that straddles an epoch boundary, or re-uses part of a block that does
not fit): ours is 0.64x to 1.08x of SCALE-Sim's there, ours being the ideal double buffer.

Timing model (:func:`layer_timing`)
-----------------------------------
Compute time is ``compute_cycles / freq``; DRAM time is ``bytes / memory.dram_bandwidth``
(bytes/s) plus ``memory.dram_latency_s`` and does **not** scale with the array clock.

* ``fill_s``: exposed, not overlapped with compute: the DRAM latency, the first fold's operands
  (``Traffic.fill_bytes``) and the final drain of the last fold's outputs
  (``Traffic.drain_bytes``) at the DRAM bandwidth.
* Steady state: the rest of the traffic (later folds' operand fetches and earlier folds'
  output drains) streams during the folds' compute through the double buffers, spread evenly
  over the folds, so each fold takes ``max(fold compute, fold DRAM)`` and in total
  ``max(compute_s, steady_bytes / bandwidth)``.
* ``stall_s = max(0, steady_dram_s - compute_s)`` (the bandwidth shortfall), so that
  ``total_s = compute_s + fill_s + stall_s``; ``stall_cycles = ceil(stall_s * freq)``.
* ``dram_s = dram_latency_s + dram_bytes / bandwidth``: the time the DRAM interface is busy.

So a memory-bound layer (steady DRAM time > compute time) has ``total_s = dram_s`` whatever the
clock: overclocking it gains nothing. This intentionally does not copy SCALE-Sim's USER-mode
stall model (scalesim.md section 5) and its quirks.

Word size: ``memory.word_bytes`` bytes per word (SCALE-Sim hard-codes 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.config import MemoryConfig, check_float
from accelsim.hw.mapping import Mapping

__all__ = ["LayerTiming", "Traffic", "dram_traffic", "layer_timing"]


@dataclass(frozen=True, slots=True)
class Traffic:
    """Accesses of one GEMM per operand, in words (``dram_bytes``/``*_bytes`` in bytes).

    ``ifmap_passes``/``filter_passes`` say how many times each operand matrix is fetched from
    DRAM; ``psum_spill`` whether ws/is partial sums go to DRAM between row folds.
    """

    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    dram_ofmap_reads: int
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    sram_ofmap_reads: int
    ifmap_passes: int
    filter_passes: int
    psum_spill: bool
    word_bytes: int
    dram_bytes: int
    fill_bytes: int
    drain_bytes: int

    @property
    def dram_words(self) -> int:
        """Total DRAM words moved (reads + writes)."""
        return (
            self.dram_ifmap_reads
            + self.dram_filter_reads
            + self.dram_ofmap_writes
            + self.dram_ofmap_reads
        )


def _first_last(m: Mapping) -> tuple[int, int]:
    """Words of the first fold's operands and of the last fold's outputs."""
    R, C, M, N, K = m.rows, m.cols, m.M, m.N, m.K
    last_c = m.Sc - (m.col_folds - 1) * C
    if m.dataflow == "os":
        first = min(R, M) * K + K * min(C, N)
        last = (M - (m.row_folds - 1) * R) * last_c
    elif m.dataflow == "ws":
        first = min(R, K) * min(C, N) + M * min(R, K)
        last = M * last_c
    else:
        first = min(R, K) * min(C, M) + min(R, K) * N
        last = N * last_c
    return first, last


def dram_traffic(
    mapping: Mapping, memory: MemoryConfig, *, scalesim_compat: bool = False
) -> Traffic:
    """DRAM traffic of a mapped GEMM with double-buffered operand SRAMs (module docstring).

    Parameters
    ----------
    mapping
        The GEMM on the array (:func:`accelsim.hw.mapping.map_gemm`).
    memory
        SRAM sizes (kB), word size (bytes).
    scalesim_compat
        Count ws/is partial sums as SCALE-Sim CALC does (every row fold written, none read).

    Returns
    -------
    Traffic
        DRAM and SRAM accesses in words, ``dram_bytes`` in bytes.
    """
    M, N, K = mapping.M, mapping.N, mapping.K
    C = mapping.cols
    rf, cf = mapping.row_folds, mapping.col_folds
    h_if = memory.sram_words("ifmap") // 2
    h_fl = memory.sram_words("filter") // 2
    h_of = memory.sram_words("ofmap") // 2
    df = mapping.dataflow
    if df == "os":
        if_passes = 1 if M * K <= h_if else cf
        fl_passes = 1 if K * min(C, N) <= h_fl else rf
        psum_block = 0
    elif df == "ws":
        if_passes = 1 if M * K <= h_if else cf
        fl_passes = 1
        psum_block = M * min(C, N)
    else:
        if_passes = 1
        fl_passes = 1 if K * N <= h_fl else cf
        psum_block = N * min(C, M)
    if df == "os" or rf == 1:
        spill = False
        of_writes, of_reads = M * N, 0
    elif scalesim_compat:
        spill = True
        of_writes, of_reads = M * N * rf, 0
    else:
        spill = psum_block > h_of
        of_writes = M * N * rf if spill else M * N
        of_reads = M * N * (rf - 1) if spill else 0
    if_reads = M * K * if_passes
    fl_reads = K * N * fl_passes
    wb = memory.word_bytes
    first, last = _first_last(mapping)
    return Traffic(
        dram_ifmap_reads=if_reads,
        dram_filter_reads=fl_reads,
        dram_ofmap_writes=of_writes,
        dram_ofmap_reads=of_reads,
        sram_ifmap_reads=mapping.sram_ifmap_reads,
        sram_filter_reads=mapping.sram_filter_reads,
        sram_ofmap_writes=mapping.sram_ofmap_writes,
        sram_ofmap_reads=mapping.sram_ofmap_reads,
        ifmap_passes=if_passes,
        filter_passes=fl_passes,
        psum_spill=spill,
        word_bytes=wb,
        dram_bytes=(if_reads + fl_reads + of_writes + of_reads) * wb,
        fill_bytes=first * wb,
        drain_bytes=last * wb,
    )


@dataclass(frozen=True, slots=True)
class LayerTiming:
    """Time of one GEMM: cycles of the array clock and seconds.

    ``total_s = compute_s + fill_s + stall_s``; ``dram_s`` is the DRAM busy time (it overlaps
    the others).
    """

    compute_cycles: int
    stall_cycles: int
    compute_s: float
    stall_s: float
    fill_s: float
    dram_s: float
    total_s: float

    @property
    def memory_bound(self) -> bool:
        """True when the steady-state DRAM traffic, not compute, sets the time."""
        return self.stall_s > 0.0


def layer_timing(
    mapping: Mapping, traffic: Traffic, memory: MemoryConfig, freq_hz: float
) -> LayerTiming:
    """Time of a mapped GEMM at array clock ``freq_hz`` (Hz) with double-buffered DRAM traffic.

    DRAM time (``traffic`` bytes at ``memory.dram_bandwidth`` bytes/s, plus
    ``memory.dram_latency_s``) does not depend on ``freq_hz``; see the module docstring.

    Raises
    ------
    ConfigError
        If ``freq_hz`` is not a finite number > 0.
    """
    freq = check_float("freq_hz", freq_hz, 0.0, 1e15, lo_open=True, unit="Hz")
    bw = memory.dram_bandwidth
    compute_s = mapping.compute_cycles / freq
    exposed = traffic.fill_bytes + traffic.drain_bytes
    steady_s = max(0, traffic.dram_bytes - exposed) / bw
    fill_s = memory.dram_latency_s + exposed / bw
    stall_s = max(0.0, steady_s - compute_s)
    return LayerTiming(
        compute_cycles=mapping.compute_cycles,
        stall_cycles=math.ceil(stall_s * freq),
        compute_s=compute_s,
        stall_s=stall_s,
        fill_s=fill_s,
        dram_s=memory.dram_latency_s + traffic.dram_bytes / bw,
        total_s=compute_s + fill_s + stall_s,
    )
