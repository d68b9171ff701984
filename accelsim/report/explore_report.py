"""Figures and the markdown summary of an ``accelsim explore`` run, from its result rows.

Pure functions of the rows of ``results.csv`` (one dict per configuration: policy, mode, vdd,
freq_ghz, chip, seed, energy_saving, speedup, feature_distance, meets_quality, ...), so they can
be re-run on a stored CSV. Aggregation: configurations (policy, mode, vdd, freq_ghz) are averaged
over chips and seeds; a configuration *meets the quality threshold* when its mean feature
distance does and, stricter, when every chip x seed does (``yield`` = fraction that does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("undervolt", "overclock")
#: What each mode gains, and the column that measures it.
GAIN = {"undervolt": ("energy_saving", "energy saving"), "overclock": ("speedup", "speed-up")}


@dataclass(frozen=True)
class Point:
    """One configuration averaged over chips and seeds."""

    policy: str
    mode: str
    vdd: float
    freq_ghz: float
    n: int
    energy_saving: float
    speedup: float
    quality_loss: float
    quality_yield: float
    abft_detections: float
    rollbacks: float

    def gain(self) -> float:
        """The mode's figure of merit: energy saving (fraction) or speed-up (ratio)."""
        return self.energy_saving if self.mode == "undervolt" else self.speedup


def _f(row: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = row.get(key, default)
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return 1.0 if value.lower() == "true" else 0.0
    return float(value)


def aggregate(
    rows: Iterable[dict[str, Any]], *, quality_key: str = "feature_distance"
) -> list[Point]:
    """Average rows over chips and seeds, per (policy, mode, vdd, freq_ghz)."""
    groups: dict[tuple[str, str, float, float], list[dict[str, Any]]] = {}
    for r in rows:
        key = (
            str(r["policy"]),
            str(r["mode"]),
            round(_f(r, "vdd"), 6),
            round(_f(r, "freq_ghz"), 6),
        )
        groups.setdefault(key, []).append(r)
    points = []
    for (policy, mode, vdd, freq), rs in sorted(groups.items()):
        n = len(rs)

        def mean(k: str, rs: list[dict[str, Any]] = rs, n: int = n) -> float:
            return sum(_f(r, k) for r in rs) / n

        points.append(
            Point(
                policy=policy,
                mode=mode,
                vdd=vdd,
                freq_ghz=freq,
                n=n,
                energy_saving=mean("energy_saving"),
                speedup=mean("speedup")
                if any(r.get("speedup") not in (None, "") for r in rs)
                else 1.0,
                quality_loss=mean(quality_key),
                quality_yield=mean("meets_quality"),
                abft_detections=mean("abft_detections"),
                rollbacks=mean("rollbacks"),
            )
        )
    return points


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points not dominated in (lower quality loss, higher gain), sorted by quality loss."""
    front: list[Point] = []
    best = -math.inf
    for p in sorted(points, key=lambda p: (p.quality_loss, -p.gain())):
        if p.gain() > best:
            front.append(p)
            best = p.gain()
    return front


def best_at_threshold(
    points: Sequence[Point], mode: str, threshold: float, *, min_yield: float = 1.0
) -> dict[str, Point]:
    """Per policy, the configuration of ``mode`` with the highest gain whose mean quality loss
    is within ``threshold`` and whose yield (fraction of chip x seed runs meeting it) is at
    least ``min_yield``."""
    best: dict[str, Point] = {}
    for p in points:
        if p.mode != mode or p.quality_loss > threshold or p.quality_yield < min_yield:
            continue
        if p.policy not in best or p.gain() > best[p.policy].gain():
            best[p.policy] = p
    return best


def plot_pareto(
    points: Sequence[Point], path: str | Path, *, threshold: float, title: str = ""
) -> None:
    """``pareto.png``: gain vs quality loss, one curve (its Pareto front) per policy, the
    quality threshold as a vertical line and the nominal point marked; one panel per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist

    modes = [m for m in MODES if any(p.mode == m for p in points)] or ["undervolt"]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 4.6), squeeze=False)
    policies = sorted({p.policy for p in points})
    cmap = plt.get_cmap("tab10")
    colors = {pol: cmap(i % 10) for i, pol in enumerate(policies)}
    for ax, mode in zip(axes[0], modes, strict=True):
        label = GAIN[mode][1]
        scale = 100.0 if mode == "undervolt" else 1.0
        for pol in policies:
            pts = [p for p in points if p.policy == pol and p.mode == mode]
            if not pts or pol == "nominal":
                continue
            ax.scatter(
                [p.quality_loss for p in pts],
                [p.gain() * scale for p in pts],
                s=14,
                alpha=0.35,
                color=colors[pol],
            )
            front = pareto_front(pts)
            ax.plot(
                [p.quality_loss for p in front],
                [p.gain() * scale for p in front],
                "-o",
                ms=4,
                lw=1.6,
                color=colors[pol],
                label=pol,
            )
        nominal_gain = 0.0 if mode == "undervolt" else 1.0
        ax.plot([0], [nominal_gain], marker="*", ms=16, color="black", ls="none", label="nominal")
        ax.axvline(
            threshold, color="crimson", ls="--", lw=1.2, label=f"quality threshold ({threshold:g})"
        )
        ax.set_xlabel("quality loss (feature distance vs golden)")
        ax.set_ylabel(f"{label} ({'%' if mode == 'undervolt' else 'x'}) vs nominal")
        ax.set_title(f"{mode}: {label} vs quality loss")
        ax.grid(alpha=0.3)
        ax.set_xscale("symlog", linthresh=max(threshold / 10, 1e-6))
        worst = max([p.quality_loss for p in points if p.mode == mode] + [threshold])
        ax.set_xlim(left=-max(threshold / 10, 1e-6) * 0.15, right=worst * 2.0)
    # one legend for both panels (same colours), below them: inside a panel it hid points
    handles: dict[str, Artist] = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=min(len(handles), 5),
        fontsize=8,
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    rows = -(-len(handles) // 5)
    fig.tight_layout(rect=(0.0, 0.035 + 0.045 * rows, 1.0, 1.0))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sensitivity(
    table: dict[tuple[str, int], float], path: str | Path, *, title: str = ""
) -> None:
    """``sensitivity.png``: block x timestep heatmap of quality loss per injected error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    blocks = sorted({b for b, _ in table}, key=_block_order)
    steps = sorted({t for _, t in table})
    grid = np.full((len(blocks), len(steps)), np.nan)
    for (b, t), v in table.items():
        grid[blocks.index(b), steps.index(t)] = v
    fig, ax = plt.subplots(
        figsize=(max(5.0, 0.45 * len(steps) + 2.5), max(3.0, 0.4 * len(blocks) + 1.5))
    )
    im = ax.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_yticks(range(len(blocks)), blocks)
    ax.set_xticks(range(len(steps)), [str(s) for s in steps], fontsize=7)
    ax.set_xlabel("first denoising step of the cell (0 = first step, from pure noise)")
    ax.set_ylabel("block")
    fig.colorbar(im, ax=ax, label="quality loss per injected error")
    import textwrap

    ax.set_title(textwrap.fill(title or "sensitivity: block x timestep", 60), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _block_order(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition(".")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


def markdown_report(
    points: Sequence[Point], *, threshold: float, model: str, array: str, extra: str = ""
) -> str:
    """``report.md``: the best policy at the quality threshold (energy saving and speed-up),
    with one line per policy."""
    lines = [f"# accelsim explore: {model} on {array}", ""]
    lines.append(
        f"Quality threshold: feature distance vs the golden run <= {threshold:g} on every chip "
        "and seed (yield 100%). Gains are relative to `nominal` on the same chip and seed."
    )
    lines.append("")
    for mode in MODES:
        best = best_at_threshold(points, mode, threshold)
        if not any(p.mode == mode for p in points):
            continue
        lines.append(f"## {mode}")
        lines.append("")
        if not best:
            lines.append(f"No {mode} configuration meets the threshold.")
            lines.append("")
            continue
        top = max(best.values(), key=lambda p: p.gain())
        gain = (
            f"{100 * top.energy_saving:.1f}% energy saving"
            if mode == "undervolt"
            else f"{top.speedup:.2f}x speed-up"
        )
        lines.append(
            f"**Best policy: `{top.policy}`** at {top.vdd:.3f} V / {top.freq_ghz:.3g} GHz: {gain} "
            f"(energy saving {100 * top.energy_saving:.1f}%, speed-up {top.speedup:.2f}x), "
            f"quality loss {top.quality_loss:.4g}, {top.abft_detections:.1f} ABFT detections and "
            f"{top.rollbacks:.1f} rollbacks per run."
        )
        lines.append("")
        lines.append(
            "| policy | V | GHz | energy saving | speed-up | quality loss | ABFT detections | rollbacks |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for pol in sorted(best, key=lambda k: -best[k].gain()):
            p = best[pol]
            lines.append(
                f"| {pol} | {p.vdd:.3f} | {p.freq_ghz:.3g} | {100 * p.energy_saving:.1f}% | "
                f"{p.speedup:.2f}x | {p.quality_loss:.4g} | {p.abft_detections:.1f} | {p.rollbacks:.1f} |"
            )
        missing = sorted({p.policy for p in points if p.mode == mode} - set(best))
        if missing:
            lines.append("")
            lines.append("No configuration meets the threshold for: " + ", ".join(missing) + ".")
        lines.append("")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"
