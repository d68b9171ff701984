"""Cycles and energy of checksum ABFT and of its recovery actions.

**How the array computes the checksums.** The encoded GEMM is
``[A; e^T A] @ [B, B e]``: one extra row of ``A`` (the column checksum row) and one extra
column of ``B`` (the row checksum column), giving the ``(M+1) x (N+1)`` full-checksum output
(Huang and Abraham 1984, drift.md s3). Two placements:

* ``"array"``: the checksum row/column are ordinary operand data on the same array,
  so the encoded GEMM is simply ``map_gemm(M+1, N+1, K)``. The extra column costs nothing
  when the last column fold has a free PE column and a whole extra fold otherwise; the extra
  row adds one streamed cycle per fold (ws/is) or one spatial row (os).
* ``"dedicated"`` (default): Huang-Abraham's ``(n+1) x (n+1)`` array: one extra physical PE column
  (and, for os, one extra PE row) holds the checksums, so the folds are those of the plain
  GEMM and every fold pays the skew of the wider array plus the streamed checksum row::

      os:    T' = K,    R' = R + 1, C' = C + 1
      ws:    T' = M + 1, R' = R,    C' = C + 1
      is:    T' = N + 1, R' = R,    C' = C + 1
      cycles' = (folds - 1) * interval' + P' - 1   (P', interval' as in accelsim.hw.mapping)

  i.e. +2 cycles per fold with serialized folds. The extra PEs (``R`` for ws/is, ``R + C + 1``
  for os) leak during the whole encoded GEMM (``checksum_leakage``). This is the default:
  it is the classical systolic ABFT hardware, and its overhead (about 1.5% of the MAC energy
  on DiT-XL/2's linear layers on a 128x128 array) is in line with ReaLM's measured detector
  cost of 1.42% area / 1.79% power (drift.md s3). The ``array`` placement can cost a whole
  extra column fold (+11% cycles for an ``N = 1152`` layer on 128 columns).

The checksum operands are wide (``8 + ceil(log2 M)`` and ``8 + ceil(log2 N)`` bits, at most
32, :func:`~accelsim.abft.checksum.checksum_width`): a checksum-row MAC is charged
``e_mac_int8 * w_a/8`` (multiplier energy linear in one operand's width, quadratic when both
widen; timing.md s5: integer multiplier energy scales with the product of the widths), a
checksum-column MAC ``e_mac_int8 * w_b/8``, the corner ``e_mac_int8 * w_a w_b / 64``.

**Encode and verify** run on an adder row at the array edge (our own model): encoding adds
``M*K`` (``e^T A``) plus ``K*N`` (``B e``; zero when the weights are static, ``B e`` is then
computed once offline and stored), verification ``2*M*N`` adds (row and column sums of ``C``)
plus ``M + N`` compares, each at ``e_add_j`` (0.05 pJ: the 24-32 bit accumulate share of the
int8 MAC, timing.md s9 "int8 MAC PE energy"), on the array's rail. With ``verify_lanes``
adders verification takes ``ceil((2MN + M + N) / lanes)``. The default is two adders per array
column: the array emits at most one output per column per cycle and each output feeds two sums
(its row's and its column's), so the verifier keeps pace with the drain (with one adder per
column, verifying a 1024 x 384 x 128 GEMM would expose 45% extra time on a 128 x 128 array)
cycles; with ``overlap_verify`` (default) it runs while the outputs drain, and only what
exceeds the encoded GEMM's compute cycles is exposed. SRAM: the checksum row/column words
the encoded mapping reads (at the checksum width; ``reads / (M+1)`` of the ifmap reads and
``reads / (N+1)`` of the filter reads, as SCALE-Sim's counts are proportional to those
sizes), int8 data streamed again when the ``array`` placement adds a fold, and the
``M + N + 1`` int32 output checksums written and read back once. Leakage over the exposed cycles is charged too.

Recovery actions: *correct* rewrites ``k`` elements (one read-modify-write of the ofmap SRAM
per cycle); *recompute* re-runs the affected rows or columns
(``map_gemm(rows, N, K)`` or ``map_gemm(M, cols, K)``) at the safe operating point (MAC, SRAM,
leakage energy, time at its clock); *rollback* reads ``k`` elements of the checkpointed
activation (``bytes_per_element`` each) from DRAM into the ofmap SRAM;
*checkpoint* writes a GEMM's output to the DRAM cache once per checkpoint step. Ledger
components: checks and corrections ``abft``, recomputes ``recompute``, rollback reads
``rollback``, checkpoint writes ``checkpoint``; each action is charged once, by whoever carries
it out (:mod:`accelsim.experiments.protect`).

All energies in J, times in s, cycles of the array clock at the operating point given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from accelsim.abft.checksum import checksum_width
from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.hw.energy import (
    EnergyBreakdown,
    dynamic_scale,
    leakage_power,
    leakage_scale,
    sram_dynamic_scale,
    sram_j_per_byte,
)
from accelsim.hw.mapping import Mapping, map_gemm

__all__ = [
    "E_ADD_J",
    "AbftCost",
    "check_cost",
    "checkpoint_cost",
    "correction_cost",
    "dedicated_cycles",
    "recompute_cost",
    "rollback_cost",
]

#: Energy of one 24-32 bit integer add at vnom, J (timing.md s9: the accumulate share of the
#: 0.25 pJ int8 MAC is ~0.05 pJ at 28 nm).
E_ADD_J = 0.05e-12


@dataclass(frozen=True)
class AbftCost:
    """Time and energy of one ABFT step or action.

    ``cycles`` are exposed array cycles (they lengthen the run), ``seconds`` their duration
    (plus DRAM time for rollbacks), ``energy`` the ledger breakdown (components ``abft`` and
    ``rollback``), ``detail`` the energy by physical part (J), for reports.
    """

    cycles: int = 0
    seconds: float = 0.0
    energy: EnergyBreakdown = field(default_factory=EnergyBreakdown)
    detail: dict[str, float] = field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        """Total energy, J."""
        return self.energy.total

    def __add__(self, other: AbftCost) -> AbftCost:
        detail = dict(self.detail)
        for key, value in other.detail.items():
            detail[key] = detail.get(key, 0.0) + value
        return AbftCost(
            cycles=self.cycles + other.cycles,
            seconds=self.seconds + other.seconds,
            energy=self.energy + other.energy,
            detail=detail,
        )


def _per_fold(dataflow: str, T: int, R: int, C: int) -> int:
    if dataflow == "os":
        return T + R + C - 2
    return 2 * R + C + T - 2


def dedicated_cycles(base: Mapping) -> int:
    """Compute cycles of the encoded GEMM on a dedicated-checksum array (module docstring)."""
    df, R, C = base.dataflow, base.rows, base.cols
    if df == "os":
        T2, R2 = base.T, R + 1
    else:
        T2, R2 = base.T + 1, R
    C2 = C + 1
    per_fold = _per_fold(df, T2, R2, C2)
    interval = max(T2, R2) if base.overlap_folds else per_fold
    return (base.folds - 1) * interval + per_fold - 1


def _sram_byte_j(hw: HardwareConfig, which: str, vdd: float) -> float:
    mem, tech = hw.memory, hw.tech
    size = {"ifmap": mem.ifmap_sram_kb, "filter": mem.filter_sram_kb}.get(which, mem.ofmap_sram_kb)
    return sram_j_per_byte(size, tech) * sram_dynamic_scale(vdd, tech)


def _finish(
    hw: HardwareConfig, op: OperatingPoint, cycles: int, parts: dict[str, float], component: str
) -> AbftCost:
    seconds = cycles / op.freq
    parts = dict(parts)
    parts["leakage"] = parts.get("leakage", 0.0) + leakage_power(hw, op.vdd) * seconds
    total = sum(parts.values())
    return AbftCost(
        cycles=cycles,
        seconds=seconds,
        energy=EnergyBreakdown(**{component: total}),
        detail=parts,
    )


def check_cost(
    M: int,
    N: int,
    K: int,
    hw: HardwareConfig,
    op: OperatingPoint,
    *,
    placement: str = "dedicated",
    weights_static: bool = False,
    verify_lanes: int | None = None,
    overlap_verify: bool = True,
    overlap_folds: bool = False,
    e_add_j: float = E_ADD_J,
) -> AbftCost:
    """Overhead of encoding, computing and verifying the checksums of one ``M x N x K`` GEMM.

    See the module docstring for the model. ``weights_static`` drops the run-time ``B e``
    encode (a linear layer's weights: its checksum column is precomputed once).
    """
    tech = hw.tech
    base = map_gemm(M, N, K, hw.array, overlap_folds=overlap_folds)
    enc = map_gemm(M + 1, N + 1, K, hw.array, overlap_folds=overlap_folds)
    if placement == "dedicated":
        enc_cycles = dedicated_cycles(base)
    else:
        enc_cycles = enc.compute_cycles
    gemm_cycles = enc_cycles - base.compute_cycles
    lanes = verify_lanes if verify_lanes is not None else 2 * hw.array.cols
    verify_ops = 2 * M * N + M + N
    verify_cycles = -(-verify_ops // lanes)
    exposed_verify = max(0, verify_cycles - enc_cycles) if overlap_verify else verify_cycles
    cycles = gemm_cycles + exposed_verify

    dyn = dynamic_scale(op.vdd, tech)
    w_a, w_b = checksum_width(M), checksum_width(N)
    e_mac = tech.e_mac_int8 * dyn
    checksum_mac = e_mac * (N * K * w_a / 8 + M * K * w_b / 8 + K * w_a * w_b / 64)
    encode_adds = M * K + (0 if weights_static else K * N)
    bytes_a, bytes_b = math.ceil(w_a / 8), math.ceil(w_b / 8)
    wb = hw.memory.word_bytes
    if placement == "dedicated":
        # Same folds as the plain GEMM: only the checksum row/column words are extra.
        cs_if = base.sram_ifmap_reads // M
        cs_fl = base.sram_filter_reads // N
        data_if = data_fl = 0
    else:
        # Reads scale with M+1 (ifmap) and N+1 (filter); the rest of the increase is plain
        # int8 data streamed again because of an extra fold.
        cs_if = enc.sram_ifmap_reads // (M + 1)
        cs_fl = enc.sram_filter_reads // (N + 1)
        data_if = max(0, enc.sram_ifmap_reads - base.sram_ifmap_reads - cs_if)
        data_fl = max(0, enc.sram_filter_reads - base.sram_filter_reads - cs_fl)
    out_bytes = 4 * (M + N + 1)
    sram = (
        (cs_if * bytes_a + data_if * wb) * _sram_byte_j(hw, "ifmap", op.vdd)
        + (cs_fl * bytes_b + data_fl * wb) * _sram_byte_j(hw, "filter", op.vdd)
        + out_bytes * (tech.sram_write_factor + 1.0) * _sram_byte_j(hw, "ofmap", op.vdd)
    )
    parts = {
        "checksum_mac": checksum_mac,
        "encode": encode_adds * e_add_j * dyn,
        "verify": verify_ops * e_add_j * dyn,
        "sram": sram,
    }
    if placement == "dedicated":
        # The checksum PEs leak during the whole encoded GEMM, not only the exposed cycles.
        R, C = hw.array.rows, hw.array.cols
        extra_pes = R + C + 1 if hw.array.dataflow == "os" else R
        parts["checksum_leakage"] = (
            tech.leak_w_per_pe * extra_pes * leakage_scale(op.vdd, tech) * enc_cycles / op.freq
        )
    return _finish(hw, op, cycles, parts, "abft")


def correction_cost(
    k: int, hw: HardwareConfig, op: OperatingPoint, *, e_add_j: float = E_ADD_J
) -> AbftCost:
    """Correct ``k`` located elements: one ofmap read-modify-write (4 bytes) per cycle."""
    if k <= 0:
        return AbftCost()
    rmw = 4 * (1.0 + hw.tech.sram_write_factor) * _sram_byte_j(hw, "ofmap", op.vdd)
    parts = {"correct": k * (e_add_j * dynamic_scale(op.vdd, hw.tech) + rmw)}
    return _finish(hw, op, k, parts, "abft")


def recompute_cost(
    M: int, N: int, K: int, hw: HardwareConfig, safe: OperatingPoint, *, overlap_folds: bool = False
) -> AbftCost:
    """Re-run an ``M x N x K`` (sub-)GEMM at the safe point ``safe`` (MAC, SRAM, leakage)."""
    mp = map_gemm(M, N, K, hw.array, overlap_folds=overlap_folds)
    wb = hw.memory.word_bytes
    sram = (
        mp.sram_ifmap_reads * wb * _sram_byte_j(hw, "ifmap", safe.vdd)
        + mp.sram_filter_reads * wb * _sram_byte_j(hw, "filter", safe.vdd)
        + (mp.ofmap_words_written * hw.tech.sram_write_factor + mp.sram_ofmap_reads)
        * wb
        * _sram_byte_j(hw, "ofmap", safe.vdd)
    )
    parts = {
        "recompute_mac": mp.macs * hw.tech.e_mac_int8 * dynamic_scale(safe.vdd, hw.tech),
        "recompute_sram": sram,
    }
    return _finish(hw, safe, mp.compute_cycles, parts, "recompute")


def rollback_cost(
    k: int, hw: HardwareConfig, op: OperatingPoint, *, bytes_per_element: int = 2
) -> AbftCost:
    """Fetch ``k`` elements of the cached earlier activation from DRAM into the ofmap SRAM."""
    if k <= 0:
        return AbftCost()
    nbytes = k * bytes_per_element
    seconds = hw.memory.dram_latency_s + nbytes / hw.memory.dram_bandwidth
    cycles = math.ceil(seconds * op.freq)
    energy = (
        nbytes * hw.tech.dram_j_per_byte
        + nbytes * hw.tech.sram_write_factor * _sram_byte_j(hw, "ofmap", op.vdd)
        + leakage_power(hw, op.vdd) * seconds
    )
    return AbftCost(
        cycles=cycles,
        seconds=seconds,
        energy=EnergyBreakdown(rollback=energy),
        detail={"rollback": energy},
    )


def checkpoint_cost(
    elements: int,
    hw: HardwareConfig,
    op: OperatingPoint,
    *,
    bytes_per_element: int = 2,
    dram_s: float = 0.0,
    compute_s: float = 0.0,
) -> AbftCost:
    """Write ``elements`` output values (``bytes_per_element`` each) to the DRAM checkpoint.

    The write streams out through the ofmap double buffer like the GEMM's own output (read once
    from the ofmap SRAM, written once to DRAM); it costs time only where the GEMM's DRAM traffic
    plus this write (``dram_s`` + write time) exceeds the GEMM's busy time
    (``max(compute_s, dram_s)``), as in :mod:`accelsim.hw.memory`. Leakage of array and SRAMs is
    charged over that exposed time.
    """
    if elements <= 0:
        return AbftCost()
    nbytes = elements * bytes_per_element
    write_s = nbytes / hw.memory.dram_bandwidth
    exposed = max(0.0, dram_s + write_s - max(compute_s, dram_s))
    energy = (
        nbytes * hw.tech.dram_j_per_byte
        + nbytes * _sram_byte_j(hw, "ofmap", op.vdd)
        + leakage_power(hw, op.vdd) * exposed
    )
    return AbftCost(
        cycles=math.ceil(exposed * op.freq),
        seconds=exposed,
        energy=EnergyBreakdown(checkpoint=energy),
        detail={"checkpoint": energy},
    )
