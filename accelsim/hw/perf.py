"""Performance and energy of a whole workload (a list of GEMM layers) on one accelerator.

For each distinct layer shape the mapping (:mod:`accelsim.hw.mapping`), DRAM traffic and timing
(:mod:`accelsim.hw.memory`) and energy (:mod:`accelsim.hw.energy`) are evaluated once, then
multiplied by the layer's ``count`` and the number of repeats (e.g. diffusion steps). Layers are
executed one after another (no inter-layer overlap); each layer's wall time is
``compute + stall + fill`` seconds.

Throughput is reported in TOPS with 2 ops per MAC; TOPS/W is ``2 * MACs / energy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.errors import ConfigError
from accelsim.hw.energy import (
    COMPONENTS,
    RAILS,
    EnergyBreakdown,
    EnergyLedger,
    layer_energy,
    layer_rails,
    rail_variant_hardware,
    sum_energy,
)
from accelsim.hw.layer import GemmLayer
from accelsim.hw.mapping import Mapping, map_gemm
from accelsim.hw.memory import LayerTiming, Traffic, dram_traffic, layer_timing


@dataclass(frozen=True)
class LayerPerf:
    """One layer's mapping, traffic, timing and energy for ONE execution, and its total count."""

    layer: GemmLayer
    count: int
    mapping: Mapping
    traffic: Traffic
    timing: LayerTiming
    energy: EnergyBreakdown
    freq: float
    #: Energy of one execution by supply rail (J; :func:`accelsim.hw.energy.layer_rails`).
    rails: dict[str, float] = field(default_factory=dict)
    #: Total energy of one execution under each SRAM rail assignment (J;
    #: :data:`accelsim.hw.energy.SRAM_RAIL_VARIANTS`), for robustness checks.
    rail_variants: dict[str, float] = field(default_factory=dict)

    @property
    def fill_cycles(self) -> int:
        """Exposed first-load and final-drain time in array cycles (rounded up)."""
        return _ceil_cycles(self.timing.fill_s, self.freq)

    @property
    def cycles(self) -> int:
        """Wall time of one execution in array cycles: compute + stall + fill."""
        return self.timing.compute_cycles + self.timing.stall_cycles + self.fill_cycles

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (per execution, plus ``count`` and count-multiplied totals)."""
        m, t, tm = self.mapping, self.traffic, self.timing
        return {
            "layer": self.layer.name,
            "layer_type": self.layer.layer_type,
            "block": self.layer.block,
            "M": self.layer.M,
            "N": self.layer.N,
            "K": self.layer.K,
            "count": self.count,
            "macs": m.macs,
            "folds": m.folds,
            "compute_cycles": tm.compute_cycles,
            "stall_cycles": tm.stall_cycles,
            "fill_cycles": self.fill_cycles,
            "mapping_efficiency": m.mapping_efficiency,
            "compute_utilization": m.compute_utilization,
            "sram_ifmap_reads": m.sram_ifmap_reads,
            "sram_filter_reads": m.sram_filter_reads,
            "sram_ofmap_writes": m.sram_ofmap_writes,
            "dram_ifmap_reads": t.dram_ifmap_reads,
            "dram_filter_reads": t.dram_filter_reads,
            "dram_ofmap_writes": t.dram_ofmap_writes,
            "dram_reads": t.dram_ifmap_reads + t.dram_filter_reads,
            "dram_writes": t.dram_ofmap_writes,
            "compute_s": tm.compute_s,
            "stall_s": tm.stall_s,
            "fill_s": tm.fill_s,
            "seconds": tm.total_s,
            "energy_j": self.energy.total,
            "energy_split_j": self.energy.as_dict(),
            "total_macs": m.macs * self.count,
            "total_cycles": self.cycles * self.count,
            "total_energy_j": self.energy.total * self.count,
        }


@dataclass(frozen=True)
class PerfTotals:
    """Totals over a whole run (counts and repeats applied)."""

    macs: int
    compute_cycles: int
    stall_cycles: int
    fill_cycles: int
    compute_s: float
    stall_s: float
    fill_s: float
    energy: EnergyBreakdown
    pes: int
    freq: float
    rails: dict[str, float] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        """Total array cycles: compute + stall + fill."""
        return self.compute_cycles + self.stall_cycles + self.fill_cycles

    @property
    def seconds(self) -> float:
        """Total wall time, s."""
        return self.compute_s + self.stall_s + self.fill_s

    @property
    def utilization(self) -> float:
        """MACs / (cycles * PEs): fraction of the array's peak actually used."""
        return self.macs / (self.cycles * self.pes) if self.cycles else 0.0

    @property
    def tops(self) -> float:
        """Achieved throughput, tera-ops/s (2 ops per MAC)."""
        return 2.0 * self.macs / self.seconds / 1e12 if self.seconds else 0.0

    @property
    def peak_tops(self) -> float:
        """Peak throughput of the array at this clock, tera-ops/s."""
        return 2.0 * self.pes * self.freq / 1e12

    @property
    def power_w(self) -> float:
        """Average power, W."""
        return self.energy.total / self.seconds if self.seconds else 0.0

    @property
    def tops_per_w(self) -> float:
        """Energy efficiency, tera-ops per joule (= TOPS/W)."""
        return 2.0 * self.macs / self.energy.total / 1e12 if self.energy.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready totals."""
        return {
            "macs": self.macs,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "fill_cycles": self.fill_cycles,
            "seconds": self.seconds,
            "compute_s": self.compute_s,
            "stall_s": self.stall_s,
            "fill_s": self.fill_s,
            "energy_j": self.energy.total,
            "energy_split_j": self.energy.as_dict(),
            "energy_by_rail_j": dict(self.rails),
            "utilization": self.utilization,
            "tops": self.tops,
            "peak_tops": self.peak_tops,
            "tops_per_w": self.tops_per_w,
            "power_w": self.power_w,
        }


@dataclass(frozen=True)
class PerfReport:
    """Result of :func:`evaluate_workload`."""

    layers: tuple[LayerPerf, ...]
    totals: PerfTotals
    hardware: HardwareConfig
    op: OperatingPoint
    repeats: int

    def ledger(self, by: str = "layer") -> EnergyLedger:
        """An energy ledger keyed by layer name (``by="layer"``), ``"layer_type"`` or ``"block"``."""
        if by not in ("layer", "layer_type", "block"):
            raise ConfigError(f"by: got {by!r}, expected one of layer, layer_type, block")
        ledger = EnergyLedger()
        for lp in self.layers:
            key = {
                "layer": lp.layer.name,
                "layer_type": lp.layer.layer_type,
                "block": lp.layer.block,
            }[by]
            ledger.add(key or "(none)", lp.energy, lp.count)
        return ledger

    def as_dict(self) -> dict[str, Any]:
        """``{"layers": [...], "totals": {...}, "config": {...}}`` for ``--json``."""
        hw, op = self.hardware, self.op
        return {
            "layers": [lp.as_dict() for lp in self.layers],
            "totals": self.totals.as_dict(),
            "config": {
                "array": f"{hw.array.rows}x{hw.array.cols}",
                "dataflow": hw.array.dataflow,
                "vdd": op.vdd,
                "freq_ghz": op.freq / 1e9,
                "repeats": self.repeats,
                "ifmap_sram_kb": hw.memory.ifmap_sram_kb,
                "filter_sram_kb": hw.memory.filter_sram_kb,
                "ofmap_sram_kb": hw.memory.ofmap_sram_kb,
                "dram_bandwidth_gbps": hw.memory.dram_bandwidth / 1e9,
            },
        }


def _ceil_cycles(seconds: float, freq: float) -> int:
    cycles = seconds * freq
    # Guard against float noise turning an exact integer into the next one.
    rounded = round(cycles)
    return int(rounded) if abs(cycles - rounded) < 1e-6 else int(cycles) + 1


def evaluate_layer(
    layer: GemmLayer, hw: HardwareConfig, op: OperatingPoint, count: int = 1
) -> LayerPerf:
    """Mapping, traffic, timing and energy of one GEMM layer at operating point ``op``."""
    mapping = map_gemm(layer.M, layer.N, layer.K, hw.array)
    traffic = dram_traffic(mapping, hw.memory)
    timing = layer_timing(mapping, traffic, hw.memory, op.freq)
    energy = layer_energy(mapping, traffic, timing, hw, op)
    rails = layer_rails(mapping, traffic, timing, hw, op)
    variants = {
        name: layer_energy(mapping, traffic, timing, hw_v, op).total
        for name, hw_v in rail_variant_hardware(hw).items()
    }
    return LayerPerf(layer, count, mapping, traffic, timing, energy, op.freq, rails, variants)


def evaluate_workload(
    layers: Sequence[GemmLayer],
    hw: HardwareConfig,
    op: OperatingPoint | None = None,
    *,
    repeats: int = 1,
) -> PerfReport:
    """Evaluate every layer of a workload ``repeats`` times (e.g. diffusion steps).

    ``op`` defaults to the nominal point of ``hw.tech``. Identical shapes are evaluated once.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats: got {repeats!r}, expected an integer >= 1")
    if not layers:
        raise ConfigError("workload: got no layers, expected at least one GEMM layer")
    op = op or OperatingPoint.nominal(hw.tech)
    cache: dict[tuple[int, int, int], LayerPerf] = {}
    results: list[LayerPerf] = []
    for layer in layers:
        key = (layer.M, layer.N, layer.K)
        base = cache.get(key)
        if base is None:
            base = evaluate_layer(layer, hw, op)
            cache[key] = base
        results.append(
            LayerPerf(
                layer,
                layer.count * repeats,
                base.mapping,
                base.traffic,
                base.timing,
                base.energy,
                op.freq,
                base.rails,
                base.rail_variants,
            )
        )
    totals = PerfTotals(
        macs=sum(lp.mapping.macs * lp.count for lp in results),
        compute_cycles=sum(lp.timing.compute_cycles * lp.count for lp in results),
        stall_cycles=sum(lp.timing.stall_cycles * lp.count for lp in results),
        fill_cycles=sum(lp.fill_cycles * lp.count for lp in results),
        compute_s=sum(lp.timing.compute_s * lp.count for lp in results),
        stall_s=sum(lp.timing.stall_s * lp.count for lp in results),
        fill_s=sum(lp.timing.fill_s * lp.count for lp in results),
        energy=sum_energy(lp.energy.scaled(lp.count) for lp in results),
        pes=hw.array.pes,
        freq=op.freq,
        rails={r: sum(lp.rails.get(r, 0.0) * lp.count for lp in results) for r in RAILS},
    )
    return PerfReport(tuple(results), totals, hw, op, repeats)


def group_by(report: PerfReport, key: str = "layer_type") -> list[dict[str, Any]]:
    """Aggregate a report's layers by ``layer_type``, ``block`` or ``layer`` name, in first-seen order.

    Each row: ``group, calls, macs, cycles, compute_s, stall_s, fill_s, seconds, energy_j``,
    energy split, and ``utilization`` (MACs / (cycles * PEs)).
    """
    if key not in ("layer_type", "block", "layer"):
        raise ConfigError(f"group: got {key!r}, expected one of layer_type, block, layer")
    rows: dict[str, dict[str, Any]] = {}
    for lp in report.layers:
        name = {"layer_type": lp.layer.layer_type, "block": lp.layer.block, "layer": lp.layer.name}[
            key
        ]
        row = rows.setdefault(
            name or "(none)",
            {
                "group": name or "(none)",
                "calls": 0,
                "macs": 0,
                "cycles": 0,
                "compute_s": 0.0,
                "stall_s": 0.0,
                "fill_s": 0.0,
                "energy": EnergyBreakdown(),
            },
        )
        row["calls"] += lp.count
        row["macs"] += lp.mapping.macs * lp.count
        row["cycles"] += lp.cycles * lp.count
        row["compute_s"] += lp.timing.compute_s * lp.count
        row["stall_s"] += lp.timing.stall_s * lp.count
        row["fill_s"] += lp.timing.fill_s * lp.count
        row["energy"] = row["energy"] + lp.energy.scaled(lp.count)
    pes = report.hardware.array.pes
    out = []
    for row in rows.values():
        energy: EnergyBreakdown = row.pop("energy")
        row["seconds"] = row["compute_s"] + row["stall_s"] + row["fill_s"]
        row["energy_j"] = energy.total
        row.update({f"energy_{c}_j": getattr(energy, c) for c in COMPONENTS})
        row["utilization"] = row["macs"] / (row["cycles"] * pes) if row["cycles"] else 0.0
        out.append(row)
    return out
