"""Energy model and ledger.

Per-event energies come from :class:`~accelsim.config.TechParams` (defaults and their sources in
``calib/energy.toml``, basis: ../shared/reference/timing.md section 9). For one GEMM layer:

* **MAC**: ``macs * e_mac_int8 * (V/vnom)**2``. Only useful MACs are charged: idle PEs (edge
  folds, fill/drain skew, stalls) are assumed clock-gated and cost leakage only. (SCALE-Sim's
  Accelergy flow charges every PE every cycle; we do not.)
* **SRAM**: every word read from or written into an operand SRAM costs the per-byte energy of
  that SRAM, interpolated log-log in size from the ``sram_read_pj_per_64b`` table and clamped
  at its ends (a large SRAM is assumed built from banks of at most the largest table size, so
  an access costs what a bank access costs; wire/H-tree energy is not modeled). Writes are
  ``sram_write_factor`` times a read. Counted: array-side reads of ifmap/filter, ofmap writes
  (and partial-sum read-back), SRAM fills from DRAM, and ofmap reads for the drain to DRAM.
  Rails (``tech.sram_scaled``): the periphery's share of an access (``sram_periphery_share``)
  and the cells' share each scale with ``(V/vnom)**2`` of their own rail: the array's (held at
  ``sram_vmin``) for the parts listed, ``vnom`` for the others. Default: periphery on the
  scaled rail, cells on a fixed one (dual-rail SRAM).
* **DRAM**: ``dram_bytes * dram_j_per_byte``; DRAM has its own supply and does not scale.
* **Leakage**: ``P_leak0 * (V/vnom) * exp(leak_k * (V - vnom))`` times the layer's wall time
  (compute + stall + fill), with ``P_leak0 = leak_w_per_pe * R * C`` for the array plus
  ``leak_w_per_sram_kb * sram_leak_retention * (total SRAM kB)`` for the SRAMs (the per-kB
  value is an accessed bank's; nearly every cell is unaccessed in a cycle and, source-biased,
  leaks ``sram_leak_retention`` of that), which follows the cells' rail (timing.md sections
  1.3 and 9; calib/energy.toml).

Dynamic energy per operation is independent of the clock (``E = a C V^2``); leakage energy is
power times time, so overclocking saves leakage energy on compute-bound layers and none on
memory-bound ones.

The :class:`EnergyLedger` accumulates energy by component and by layer. The components
(:data:`COMPONENTS`) are the array's own work (``mac``, ``sram``, ``dram``, ``leakage``) and one
line per protection overhead, each charged by the part that incurs it: ``abft`` (checksum
encode/compute/verify and corrections), ``recompute`` (lines or GEMMs re-run at the safe point),
``rollback`` (cached values read back), ``checkpoint`` (values written to the cache),
``detection`` (Razor / TE-Drop shadow latches in every PE), ``replay`` (Razor's per-error
stalls and re-executed MACs) and ``dvfs`` (regulator transitions).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import lru_cache

from accelsim.config import HardwareConfig, MemoryConfig, OperatingPoint, TechParams
from accelsim.hw.mapping import Mapping
from accelsim.hw.memory import LayerTiming, Traffic

#: Ledger components, in report order.
COMPONENTS: tuple[str, ...] = (
    "mac",
    "sram",
    "dram",
    "leakage",
    "abft",
    "recompute",
    "rollback",
    "checkpoint",
    "detection",
    "replay",
    "dvfs",
)
#: Components that are protection overheads (not the unprotected array's own work).
OVERHEAD_COMPONENTS: tuple[str, ...] = COMPONENTS[4:]


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy by component, in J."""

    mac: float = 0.0
    sram: float = 0.0
    dram: float = 0.0
    leakage: float = 0.0
    abft: float = 0.0
    recompute: float = 0.0
    rollback: float = 0.0
    checkpoint: float = 0.0
    detection: float = 0.0
    replay: float = 0.0
    dvfs: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all components, J."""
        return sum(getattr(self, name) for name in COMPONENTS)

    def scaled(self, factor: float) -> EnergyBreakdown:
        """Every component multiplied by ``factor`` (e.g. a layer's repeat count)."""
        return EnergyBreakdown(**{name: getattr(self, name) * factor for name in COMPONENTS})

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        return EnergyBreakdown(
            **{name: getattr(self, name) + getattr(other, name) for name in COMPONENTS}
        )

    def as_dict(self) -> dict[str, float]:
        """Components as a plain dict (J), without the total."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def dynamic_scale(vdd: float, tech: TechParams) -> float:
    """Dynamic energy per operation relative to nominal: ``(V / vnom)**2`` (E = a C V^2)."""
    return (vdd / tech.vnom) ** 2


def leakage_scale(vdd: float, tech: TechParams) -> float:
    """Leakage power relative to nominal: ``(V/vnom) * exp(leak_k * (V - vnom))``."""
    return (vdd / tech.vnom) * math.exp(tech.leak_k * (vdd - tech.vnom))


def sram_j_per_byte(size_kb: float, tech: TechParams) -> float:
    """Read energy per byte (J) of an SRAM of ``size_kb`` kB at vnom.

    Log-log interpolation in the ``(kB, pJ per 64 bit)`` table, clamped to its end points.
    """
    points = tech.sram_read_pj_per_64b
    sizes = [p[0] for p in points]
    if size_kb <= sizes[0]:
        pj = points[0][1]
    elif size_kb >= sizes[-1]:
        pj = points[-1][1]
    else:
        i = bisect_left(sizes, size_kb)
        (s0, e0), (s1, e1) = points[i - 1], points[i]
        t = (math.log(size_kb) - math.log(s0)) / (math.log(s1) - math.log(s0))
        pj = math.exp(math.log(e0) + t * (math.log(e1) - math.log(e0)))
    return pj * 1e-12 / 8.0


#: Supply rails of the energy report: the array's scaled rail, the fixed SRAM rail, DRAM's own.
RAILS: tuple[str, ...] = ("scaled", "sram", "dram")


#: SRAM rail assignments compared by robustness checks: no SRAM part on the scaled rail, the
#: periphery only (dual-rail SRAM, the default), or the whole SRAM.
SRAM_RAIL_VARIANTS: dict[str, tuple[str, ...]] = {
    "fixed": (),
    "dual": ("periphery",),
    "shared": ("cells", "periphery"),
}


def rail_variant_hardware(hw: HardwareConfig) -> dict[str, HardwareConfig]:
    """``hw`` under each SRAM rail assignment of :data:`SRAM_RAIL_VARIANTS` (cached)."""
    return _rail_variants(hw)


@lru_cache(maxsize=64)
def _rail_variants(hw: HardwareConfig) -> dict[str, HardwareConfig]:
    from dataclasses import replace

    return {
        name: replace(hw, tech=replace(hw.tech, sram_scaled=parts, sram_scales_with_vdd=False))
        for name, parts in SRAM_RAIL_VARIANTS.items()
    }


def sram_part_vdd(vdd: float, tech: TechParams, part: str) -> float:
    """Supply (V) of an SRAM ``part`` (``cells`` or ``periphery``) when the array runs at
    ``vdd``: the scaled rail held at ``sram_vmin`` if the part is on it, else ``vnom``."""
    if part in tech.sram_scaled:
        return max(vdd, tech.sram_vmin)
    return tech.vnom


def sram_dynamic_scale(vdd: float, tech: TechParams) -> float:
    """SRAM access energy relative to nominal with the array at ``vdd``: the periphery share
    and the cell share each scale with their own rail's ``(V/vnom)**2``."""
    p = tech.sram_periphery_share
    return p * dynamic_scale(sram_part_vdd(vdd, tech, "periphery"), tech) + (
        1.0 - p
    ) * dynamic_scale(sram_part_vdd(vdd, tech, "cells"), tech)


def sram_leakage_power(hw: HardwareConfig, vdd: float) -> float:
    """Leakage power of the SRAMs (W) with the array at ``vdd``: ``leak_w_per_sram_kb`` per kB
    for accessed cells, ``sram_leak_retention`` times that for the (virtually all) unaccessed
    ones, scaled with the cells' rail."""
    mem, tech = hw.memory, hw.tech
    sram_kb = mem.ifmap_sram_kb + mem.filter_sram_kb + mem.ofmap_sram_kb
    scale = leakage_scale(sram_part_vdd(vdd, tech, "cells"), tech)
    return tech.leak_w_per_sram_kb * tech.sram_leak_retention * sram_kb * scale


def pe_leakage_power(hw: HardwareConfig, vdd: float) -> float:
    """Leakage power of the PE array alone at supply ``vdd`` (V), in W (no SRAM)."""
    return hw.tech.leak_w_per_pe * hw.array.pes * leakage_scale(vdd, hw.tech)


def leakage_power(hw: HardwareConfig, vdd: float) -> float:
    """Leakage power of the array and its SRAMs with the array at supply ``vdd`` (V), in W.

    The PE array's leakage scales with ``vdd``; the SRAMs' follows the bit cells' rail
    (:func:`sram_leakage_power`).
    """
    return pe_leakage_power(hw, vdd) + sram_leakage_power(hw, vdd)


def _sram_energy(mapping: Mapping, traffic: Traffic, mem: MemoryConfig, tech: TechParams) -> float:
    """SRAM dynamic energy of one layer at vnom, J.

    ifmap/filter SRAMs: array-side reads plus fills from DRAM (writes). ofmap SRAM: outputs
    and partial sums written by the array, partial-sum read-modify-write reads, partial sums
    read back from DRAM (writes) and the drain to DRAM (reads).
    """
    wb = mem.word_bytes
    e_if = sram_j_per_byte(mem.ifmap_sram_kb, tech) * wb
    e_fl = sram_j_per_byte(mem.filter_sram_kb, tech) * wb
    e_of = sram_j_per_byte(mem.ofmap_sram_kb, tech) * wb
    w = tech.sram_write_factor
    ofmap_writes = mapping.ofmap_words_written + traffic.dram_ofmap_reads
    ofmap_reads = mapping.sram_ofmap_reads + traffic.dram_ofmap_writes
    return (
        e_if * (mapping.sram_ifmap_reads + w * traffic.dram_ifmap_reads)
        + e_fl * (mapping.sram_filter_reads + w * traffic.dram_filter_reads)
        + e_of * (w * ofmap_writes + ofmap_reads)
    )


def layer_energy(
    mapping: Mapping,
    traffic: Traffic,
    timing: LayerTiming,
    hw: HardwareConfig,
    op: OperatingPoint,
) -> EnergyBreakdown:
    """Energy of one execution of a GEMM layer at operating point ``op``, J by component."""
    tech = hw.tech
    dyn = dynamic_scale(op.vdd, tech)
    return EnergyBreakdown(
        mac=mapping.macs * tech.e_mac_int8 * dyn,
        sram=_sram_energy(mapping, traffic, hw.memory, tech) * sram_dynamic_scale(op.vdd, tech),
        dram=traffic.dram_bytes * tech.dram_j_per_byte,
        leakage=leakage_power(hw, op.vdd) * timing.total_s,
    )


def layer_rails(
    mapping: Mapping,
    traffic: Traffic,
    timing: LayerTiming,
    hw: HardwareConfig,
    op: OperatingPoint,
) -> dict[str, float]:
    """Energy of one execution of a GEMM layer by supply rail (J): ``scaled`` (MACs, PE
    leakage and the SRAM parts on the array's rail), ``sram`` (the SRAM parts on the fixed
    rail) and ``dram``. Sums to :func:`layer_energy`'s total."""
    tech = hw.tech
    sram_nom = _sram_energy(mapping, traffic, hw.memory, tech)
    p = tech.sram_periphery_share
    rails = {
        "scaled": mapping.macs * tech.e_mac_int8 * dynamic_scale(op.vdd, tech)
        + pe_leakage_power(hw, op.vdd) * timing.total_s,
        "sram": 0.0,
        "dram": traffic.dram_bytes * tech.dram_j_per_byte,
    }
    for part, share in (("periphery", p), ("cells", 1.0 - p)):
        v = sram_part_vdd(op.vdd, tech, part)
        rail = "scaled" if part in tech.sram_scaled else "sram"
        rails[rail] += sram_nom * share * dynamic_scale(v, tech)
    cells = "scaled" if "cells" in tech.sram_scaled else "sram"
    rails[cells] += sram_leakage_power(hw, op.vdd) * timing.total_s
    return rails


class EnergyLedger:
    """Accumulates energy by component and by layer key (e.g. a layer name or type).

    ``add(key, breakdown, count)`` charges ``count`` executions; ``charge(component, joules,
    key)`` adds a single event such as a DVFS transition or an ABFT recomputation.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, EnergyBreakdown] = {}

    def add(self, key: str, energy: EnergyBreakdown, count: int = 1) -> None:
        """Charge ``count`` executions of ``energy`` to ``key``."""
        charged = energy.scaled(count) if count != 1 else energy
        self._by_key[key] = self._by_key.get(key, EnergyBreakdown()) + charged

    def charge(self, component: str, joules: float, key: str = "(run)") -> None:
        """Charge ``joules`` of one ``component`` (one of COMPONENTS) to ``key``."""
        if component not in COMPONENTS:
            raise ValueError(
                f"component: got {component!r}, expected one of {', '.join(COMPONENTS)}"
            )
        self.add(key, EnergyBreakdown(**{component: joules}))

    @property
    def by_key(self) -> dict[str, EnergyBreakdown]:
        """Energy per key, in insertion order."""
        return dict(self._by_key)

    @property
    def total(self) -> EnergyBreakdown:
        """Energy summed over all keys."""
        return sum_energy(self._by_key.values())


def sum_energy(items: Iterable[EnergyBreakdown]) -> EnergyBreakdown:
    """Component-wise sum of breakdowns."""
    total = EnergyBreakdown()
    for item in items:
        total = total + item
    return total
