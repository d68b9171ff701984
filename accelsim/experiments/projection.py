"""Project the policies found on a small model onto a full-size workload's perf/energy model.

``accelsim explore --model dit-xl2-256 --projection`` reads the small model's ``results.csv``
(from ``--out``), takes per mode the best configuration of each policy that meets the quality
threshold on every chip and seed, and evaluates the full-size workload (its GEMM shapes, cycles,
memory-bound layers, energies; :func:`accelsim.hw.perf.evaluate_workload`) at that policy's
operating points. A policy that ran a fraction of its MACs at the safe point (drift, timestep,
closed-loop: seen as a MAC-weighted mean point between nominal and its aggressive knob) is
projected as the same MAC fraction at nominal and the rest at the knob. Quality is NOT
recomputed: it is the small model's, stated as such. DVFS transition and ABFT costs of the
small run are scaled by their share of its energy and time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.errors import ConfigError


@dataclass(frozen=True)
class Projection:
    """One policy projected onto the full-size workload."""

    policy: str
    mode: str
    knob_vdd: float
    knob_freq_ghz: float
    safe_fraction: float
    energy_j: float
    latency_s: float
    energy_saving: float
    speedup: float
    small_quality_loss: float


def project(
    results_csv: Path, workload: str, hw: HardwareConfig, *, steps: int = 50
) -> tuple[list[Projection], float, float]:
    """Projections of the best policies in ``results_csv`` onto ``workload`` (``steps``
    diffusion steps); also returns the workload's nominal energy (J) and latency (s)."""
    from accelsim.experiments.explore import read_rows
    from accelsim.hw.perf import evaluate_workload
    from accelsim.models.workloads import workload_layers
    from accelsim.report.explore_report import aggregate, best_at_threshold

    rows = read_rows(results_csv)
    if not rows:
        raise ConfigError(
            f"--projection: {results_csv} has no results; run 'accelsim explore' on a small "
            "model with the same --out first"
        )
    layers = workload_layers(workload)
    nominal = OperatingPoint.nominal(hw.tech)
    base = evaluate_workload(layers, hw, nominal, repeats=steps).totals
    points = aggregate(rows)
    out: list[Projection] = []
    for mode in ("undervolt", "overclock"):
        best = best_at_threshold(points, mode, float("inf"))
        for policy, p in sorted(best.items()):
            chosen = [r for r in rows if r["spec"] == p.spec]
            mean_v = sum(float(r["mean_vdd"] or p.vdd) for r in chosen) / len(chosen)
            mean_f = sum(float(r["mean_freq_ghz"] or p.freq_ghz) for r in chosen) / len(chosen)
            knob = OperatingPoint(vdd=p.vdd, freq=p.freq_ghz * 1e9)
            if mode == "undervolt":
                span = nominal.vdd - knob.vdd
                safe = 0.0 if span <= 0 else min(1.0, max(0.0, (mean_v - knob.vdd) / span))
            else:
                span = knob.freq / 1e9 - nominal.freq / 1e9
                safe = 0.0 if span <= 0 else min(1.0, max(0.0, (knob.freq / 1e9 - mean_f) / span))
            agg = evaluate_workload(layers, hw, knob, repeats=steps).totals
            energy = safe * base.energy.total + (1 - safe) * agg.energy.total
            latency = safe * base.seconds + (1 - safe) * agg.seconds
            out.append(
                Projection(
                    policy=policy,
                    mode=mode,
                    knob_vdd=knob.vdd,
                    knob_freq_ghz=knob.freq / 1e9,
                    safe_fraction=safe,
                    energy_j=energy,
                    latency_s=latency,
                    energy_saving=1 - energy / base.energy.total,
                    speedup=base.seconds / latency,
                    small_quality_loss=p.quality_loss,
                )
            )
    return out, base.energy.total, base.seconds


def format_projection(
    items: list[Projection], workload: str, energy: float, latency: float, source: Path
) -> str:
    """Markdown table of the projections."""
    lines = [
        f"# Projection onto {workload} (perf/energy model, 50 steps)",
        "",
        f"Policies and their operating points from {source} (the small model's explore run); "
        f"quality is the small model's, not recomputed for {workload}. Nominal: "
        f"{energy:.4g} J, {latency:.4g} s.",
        "",
        "| mode | policy | V | GHz | MACs at nominal | energy | latency | energy saving | speed-up | small-model quality loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in items:
        lines.append(
            f"| {p.mode} | {p.policy} | {p.knob_vdd:.3f} | {p.knob_freq_ghz:.3g} | "
            f"{100 * p.safe_fraction:.0f}% | {p.energy_j:.4g} J | {p.latency_s:.4g} s | "
            f"{100 * p.energy_saving:.1f}% | {p.speedup:.2f}x | {p.small_quality_loss:.3g} |"
        )
    return "\n".join(lines) + "\n"


def run_projection(out_dir: Path, workload: str, hw: HardwareConfig) -> str:
    """Write ``projection.md`` into ``out_dir`` and return it."""
    items, energy, latency = project(out_dir / "results.csv", workload, hw)
    text = format_projection(items, workload, energy, latency, out_dir / "results.csv")
    (out_dir / "projection.md").write_text(text)
    return text


__all__ = ["Projection", "format_projection", "project", "run_projection"]
