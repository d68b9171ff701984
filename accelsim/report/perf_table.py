"""Console tables for ``accelsim perf``."""

from __future__ import annotations

import sys

from accelsim.hw.energy import COMPONENTS
from accelsim.hw.perf import PerfReport, group_by


def si(value: float, unit: str) -> str:
    """Format ``value`` with an SI prefix, e.g. ``si(3.2e-3, "J") == "3.20 mJ"``."""
    if value == 0:
        return f"0 {unit}"
    prefixes = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "u"),
        (1e-9, "n"),
        (1e-12, "p"),
    ]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value / 1e-15:.3g} f{unit}"


def print_perf_report(report: PerfReport, workload: str, group: str = "layer_type") -> None:
    """Print the per-group table and the totals of a perf report."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    hw, op, tot = report.hardware, report.op, report.totals
    title = (
        f"{workload} x{report.repeats} on {hw.array.rows}x{hw.array.cols} {hw.array.dataflow.upper()} "
        f"at {op.vdd:.3g} V, {op.freq / 1e9:.3g} GHz"
    )
    heading = {"layer_type": "layer type", "block": "block", "layer": "layer"}[group]
    table = Table(title=title, title_justify="left")
    table.add_column(heading)
    for col in (
        "calls",
        "GMACs",
        "Mcycles",
        "util",
        "compute",
        "stall+fill",
        "energy",
        "MAC",
        "SRAM",
        "DRAM",
        "leak",
        "share",
    ):
        table.add_column(col, justify="right")
    total_energy = tot.energy.total
    for row in group_by(report, group):
        table.add_row(
            row["group"],
            f"{row['calls']:,}",
            f"{row['macs'] / 1e9:,.2f}",
            f"{row['cycles'] / 1e6:,.2f}",
            f"{100 * row['utilization']:.1f}%",
            si(row["compute_s"], "s"),
            si(row["stall_s"] + row["fill_s"], "s"),
            si(row["energy_j"], "J"),
            si(row["energy_mac_j"], "J"),
            si(row["energy_sram_j"], "J"),
            si(row["energy_dram_j"], "J"),
            si(row["energy_leakage_j"], "J"),
            f"{100 * row['energy_j'] / total_energy:.1f}%" if total_energy else "-",
        )
    table.add_section()
    table.add_row(
        "total",
        f"{sum(lp.count for lp in report.layers):,}",
        f"{tot.macs / 1e9:,.2f}",
        f"{tot.cycles / 1e6:,.2f}",
        f"{100 * tot.utilization:.1f}%",
        si(tot.compute_s, "s"),
        si(tot.stall_s + tot.fill_s, "s"),
        si(total_energy, "J"),
        si(tot.energy.mac, "J"),
        si(tot.energy.sram, "J"),
        si(tot.energy.dram, "J"),
        si(tot.energy.leakage, "J"),
        "100%",
    )
    console.print(table)
    split = ", ".join(
        f"{c} {100 * getattr(tot.energy, c) / total_energy:.1f}%"
        for c in COMPONENTS
        if getattr(tot.energy, c) > 0
    )
    console.print(
        f"cycles {tot.cycles:,} (compute {tot.compute_cycles:,}, stall {tot.stall_cycles:,}, "
        f"fill {tot.fill_cycles:,})  |  time {si(tot.seconds, 's')} (compute {si(tot.compute_s, 's')}, "
        f"stall {si(tot.stall_s, 's')}, fill {si(tot.fill_s, 's')})",
        highlight=False,
    )
    console.print(
        f"energy {si(total_energy, 'J')} ({split})  |  avg power {si(tot.power_w, 'W')}",
        highlight=False,
    )
    tech = hw.tech
    sram_parts = " and ".join(tech.sram_scaled) or "no SRAM part"
    rails = ", ".join(
        f"{name} {si(tot.rails.get(key, 0.0), 'J')} ({100 * tot.rails.get(key, 0.0) / total_energy:.1f}%)"
        for key, name in (
            ("scaled", f"scaled rail (MAC array, {sram_parts})"),
            ("sram", "fixed SRAM rail"),
            ("dram", "DRAM"),
        )
    )
    console.print(f"energy by rail: {rails}", highlight=False)
    console.print(
        f"throughput {tot.tops:.2f} TOPS of {tot.peak_tops:.2f} peak (utilization "
        f"{100 * tot.utilization:.1f}%)  |  efficiency {tot.tops_per_w:.2f} TOPS/W",
        highlight=False,
    )
    if (op.vdd, op.freq) != (hw.tech.vnom, hw.tech.fnom):
        console.print(
            f"note: time and energy only at {op.vdd:.3g} V / {op.freq / 1e9:.3g} GHz "
            f"(nominal {hw.tech.vnom:.3g} V / {hw.tech.fnom / 1e9:.3g} GHz); "
            "timing errors are not applied by 'accelsim perf'",
            highlight=False,
        )
