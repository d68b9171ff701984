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
    """One configuration (policy spec in a mode) over its chips and seeds.

    ``energy_saving`` / ``speedup`` are medians over the runs, ``*_worst`` the worst run;
    ``quality_loss`` the mean feature distance; ``quality_yield`` the fraction of runs that
    meet the criterion and ``chip_yield`` the fraction of chips on which every seed does;
    ``overhead`` the mean share of the energy spent on protection (ledger lines other than
    the array's own mac, sram, dram and leakage).
    """

    policy: str
    spec: str
    mode: str
    vdd: float
    freq_ghz: float
    interval: int | None
    n: int
    chips: int
    energy_saving: float
    energy_saving_worst: float
    speedup: float
    speedup_worst: float
    quality_loss: float
    quality_yield: float
    chip_yield: float
    abft_detections: float
    rollbacks: float
    recomputes: float
    overhead: float

    def gain(self) -> float:
        """The mode's figure of merit: energy saving (fraction) or speed-up (ratio)."""
        return self.energy_saving if self.mode == "undervolt" else self.speedup

    def worst_gain(self) -> float:
        """The mode's figure of merit on the worst run."""
        return self.energy_saving_worst if self.mode == "undervolt" else self.speedup_worst

    def label(self) -> str:
        """``policy`` plus its checkpoint interval when it has one (``drift K=2``)."""
        return f"{self.policy} K={self.interval}" if self.interval else self.policy


def _f(row: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = row.get(key, default)
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return 1.0 if value.lower() == "true" else 0.0
    return float(value)


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


_OVERHEAD = ("abft", "recompute", "rollback", "checkpoint", "detection", "replay", "dvfs")


def aggregate(
    rows: Iterable[dict[str, Any]],
    *,
    quality_key: str = "feature_distance",
    meets_key: str = "meets_quality",
    modes: Sequence[str] = MODES,
) -> list[Point]:
    """Group rows by (policy spec, mode) over chips and seeds (see :class:`Point`). A
    ``nominal`` row of mode ``both`` counts in each of ``modes``."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        modes_r = tuple(modes) if str(r["mode"]) == "both" else (str(r["mode"]),)
        for mode in modes_r:
            spec = r.get("spec") or f"{r['policy']}:vdd={_f(r, 'vdd'):g},freq={_f(r, 'freq_ghz'):g}"
            key = (str(r["policy"]), str(spec), mode)
            groups.setdefault(key, []).append(r)
    points = []
    for (policy, spec, mode), rs in sorted(groups.items()):
        n = len(rs)

        def mean(k: str, rs: list[dict[str, Any]] = rs, n: int = n) -> float:
            return sum(_f(r, k) for r in rs) / n

        savings = [_f(r, "energy_saving") for r in rs]
        speedups = [_f(r, "speedup", 1.0) for r in rs]
        chips: dict[str, list[bool]] = {}
        for r in rs:
            chips.setdefault(str(r.get("chip")), []).append(_f(r, meets_key) > 0.5)
        overhead = [
            sum(_f(r, f"energy_{c}_j") for c in _OVERHEAD) / (_f(r, "energy_j") or 1.0) for r in rs
        ]
        interval = rs[0].get("interval")
        points.append(
            Point(
                policy=policy,
                spec=spec,
                mode=mode,
                vdd=mean("vdd"),
                freq_ghz=mean("freq_ghz"),
                interval=int(float(interval)) if interval not in (None, "") else None,
                n=n,
                chips=len(chips),
                energy_saving=_median(savings),
                energy_saving_worst=min(savings),
                speedup=_median(speedups),
                speedup_worst=min(speedups),
                quality_loss=mean(quality_key),
                quality_yield=mean(meets_key),
                chip_yield=sum(all(v) for v in chips.values()) / len(chips),
                abft_detections=mean("abft_detections"),
                rollbacks=mean("rollbacks"),
                recomputes=mean("recomputes"),
                overhead=sum(overhead) / n,
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


def best_configurations(
    points: Sequence[Point], mode: str, *, min_yield: float = 1.0
) -> dict[str, Point]:
    """Per policy (drift: per checkpoint interval), the configuration of ``mode`` with the
    highest median gain among those that keep quality on at least ``min_yield`` of the chips
    (every seed of a chip must; default: every chip)."""
    best: dict[str, Point] = {}
    for p in points:
        if p.mode != mode or p.chip_yield < min_yield - 1e-12:
            continue
        key = p.label()
        if key not in best or p.gain() > best[key].gain():
            best[key] = p
    return best


def best_at_threshold(
    points: Sequence[Point], mode: str, threshold: float, *, min_yield: float = 1.0
) -> dict[str, Point]:
    """Per policy, the configuration of ``mode`` with the highest gain whose mean quality loss
    is within ``threshold`` and whose yield is at least ``min_yield``."""
    ok = [p for p in points if p.quality_loss <= threshold]
    return best_configurations(ok, mode, min_yield=min_yield)


def plot_pareto(
    points: Sequence[Point],
    path: str | Path,
    *,
    threshold: float,
    title: str = "",
    threshold_label: str = "quality threshold",
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
            threshold,
            color="crimson",
            ls="--",
            lw=1.2,
            label=f"{threshold_label} ({threshold:.3g})",
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
    points: Sequence[Point],
    *,
    model: str,
    array: str,
    criterion: str = "the quality criterion",
    extra: str = "",
    title: bool = True,
) -> str:
    """``report.md`` section: per mode, the best policy that keeps quality on every chip and
    seed, with one line per policy (median and worst gain, yield, protection overhead)."""
    lines = [f"# accelsim explore: {model} on {array}", ""] if title else []
    lines.append(
        f"A configuration keeps quality when every chip x seed run meets {criterion}. Gains "
        "are relative to the golden run (nominal point, no protection) of the same seed: "
        "median over the runs, worst run in brackets. Policies that keep quality on no chip "
        "at any point show their best-yield configuration, marked (misses)."
    )
    lines.append("")
    for mode in MODES:
        if not any(p.mode == mode for p in points):
            continue
        best = best_configurations(points, mode)
        lines.append(f"## {mode}")
        lines.append("")
        if not best:
            lines.append(f"No {mode} configuration keeps quality.")
            lines.append("")
        else:
            top = max(best.values(), key=lambda p: p.gain())
            lines.append(
                f"**Best policy: `{top.label()}`** at {top.vdd:.3f} V / {top.freq_ghz:.3g} GHz: "
                + _gain_text(top)
                + f", quality loss {top.quality_loss:.4g}, protection overhead "
                f"{100 * top.overhead:.1f}% of its energy."
            )
            lines.append("")
        lines.append(
            "| policy | V | GHz | energy saving | speed-up | feature distance | chips meeting | "
            "overhead | detections | rollbacks | recomputes |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        labels = sorted({p.label() for p in points if p.mode == mode})
        for label in labels:
            p = best.get(label)
            if p is None:  # none keeps quality: show its least damaging configuration
                cands = [q for q in points if q.mode == mode and q.label() == label]
                p = min(cands, key=lambda q: (-q.chip_yield, -q.quality_yield, q.quality_loss))
                mark = " (misses)"
            else:
                mark = ""
            lines.append(
                f"| {label}{mark} | {p.vdd:.3f} | {p.freq_ghz:.3g} | "
                f"{100 * p.energy_saving:.1f}% ({100 * p.energy_saving_worst:.1f}%) | "
                f"{p.speedup:.2f}x ({p.speedup_worst:.2f}x) | {p.quality_loss:.3g} | "
                f"{100 * p.chip_yield:.0f}% of {p.chips} | {100 * p.overhead:.1f}% | "
                f"{p.abft_detections:.0f} | {p.rollbacks:.0f} | {p.recomputes:.0f} |"
            )
        lines.append("")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def _gain_text(p: Point) -> str:
    if p.mode == "undervolt":
        return (
            f"{100 * p.energy_saving:.1f}% energy saving (worst run "
            f"{100 * p.energy_saving_worst:.1f}%)"
        )
    return f"{p.speedup:.2f}x speed-up (worst run {p.speedup_worst:.2f}x)"


def verdict_table(
    rows: Sequence[dict[str, Any]],
    criteria: Sequence[str],
    modes: Sequence[str],
    *,
    deciding: str,
    min_yield: float = 1.0,
) -> str:
    """Markdown table: per criterion and mode, the best policy that keeps quality on at least
    ``min_yield`` of the chips, with its median and worst gain."""
    lines = [
        "| criterion | mode | best policy | point | gain (median) | gain (worst chip) | "
        "chips meeting |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in criteria:
        points = aggregate(rows, meets_key=f"meets_{c}", modes=modes)
        for mode in modes:
            best = best_configurations(points, mode, min_yield=min_yield)
            name = f"**{c}**" if c == deciding else c
            if not best:
                lines.append(f"| {name} | {mode} | none keeps quality | - | - | - | - |")
                continue
            top = max(best.values(), key=lambda p: p.gain())
            if mode == "undervolt":
                gain = f"{100 * top.energy_saving:.1f}% energy"
                worst = f"{100 * top.energy_saving_worst:.1f}%"
                point = f"{top.vdd:.3f} V"
            else:
                gain = f"{top.speedup:.2f}x speed"
                worst = f"{top.speedup_worst:.2f}x"
                point = f"{top.freq_ghz:.3g} GHz"
            lines.append(
                f"| {name} | {mode} | `{top.label()}` | {point} | {gain} | {worst} | "
                f"{100 * top.chip_yield:.0f}% of {top.chips} |"
            )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Setting:
    """One assumption setting of a robustness check: which rows (and how) decide the verdict.

    ``meets_key``: the verdict column; ``min_yield``: fraction of chips that must keep
    quality; ``saving_key``: the column that replaces ``energy_saving`` (another SRAM rail
    assignment), None to keep it.
    """

    name: str
    rows: Sequence[dict[str, Any]]
    meets_key: str
    min_yield: float = 1.0
    saving_key: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The best policy of one mode under one setting (``label`` None: none keeps quality)."""

    setting: str
    mode: str
    label: str | None
    gain: float | None
    point: str


def robustness(settings: Sequence[Setting], modes: Sequence[str]) -> list[Verdict]:
    """The best policy per mode under every setting (the first setting is the reference)."""
    out = []
    for st in settings:
        rows = st.rows
        if st.saving_key is not None:
            rows = [{**r, "energy_saving": r.get(st.saving_key)} for r in rows]
        points = aggregate(rows, meets_key=st.meets_key, modes=modes)
        for mode in modes:
            best = best_configurations(points, mode, min_yield=st.min_yield)
            if not best:
                out.append(Verdict(st.name, mode, None, None, "-"))
                continue
            top = max(best.values(), key=lambda p: p.gain())
            point = f"{top.vdd:.3f} V" if mode == "undervolt" else f"{top.freq_ghz:.3g} GHz"
            out.append(Verdict(st.name, mode, top.label(), top.gain(), point))
    return out


def robustness_markdown(verdicts: Sequence[Verdict], modes: Sequence[str]) -> str:
    """The robustness section: one row per setting, then per mode how often the reference
    setting's best policy stays best."""
    settings = list(dict.fromkeys(v.setting for v in verdicts))
    by = {(v.setting, v.mode): v for v in verdicts}
    head = "| setting | " + " | ".join(f"{m}: best policy | {GAIN[m][1]}" for m in modes) + " |"
    lines = [head, "|---|" + "---|---|" * len(modes)]
    for s in settings:
        cells = []
        for m in modes:
            v = by[(s, m)]
            if v.label is None or v.gain is None:
                cells += ["none keeps quality", "-"]
            else:
                g = f"{100 * v.gain:.1f}%" if m == "undervolt" else f"{v.gain:.2f}x"
                cells += [f"`{v.label}` ({v.point})", g]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    ref = settings[0]
    for m in modes:
        best = by[(ref, m)].label
        same = sum(by[(s, m)].label == best for s in settings)
        name = f"`{best}`" if best else "no policy"
        lines.append(
            f"* {m}: the ranking ({name} best {'as' if best else 'keeps quality'} calibrated) "
            f"holds in {same} of {len(settings)} settings."
        )
    return "\n".join(lines) + "\n"


def plot_robustness(verdicts: Sequence[Verdict], modes: Sequence[str], path: str | Path) -> None:
    """``robustness.png``: the best policy's gain under every setting, one panel per mode
    (settings shared on the left), bars coloured by policy (no bar: none keeps quality)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(v.setting for v in verdicts))
    labels = sorted({v.label for v in verdicts if v.label})
    cmap = plt.get_cmap("tab10")
    colors = {lab: cmap(i % 10) for i, lab in enumerate(labels)}
    fig, axes = plt.subplots(
        1,
        len(modes),
        figsize=(3.0 + 4.2 * len(modes), 0.55 * len(settings) + 1.6),
        squeeze=False,
        sharey=True,
    )
    by = {(v.setting, v.mode): v for v in verdicts}
    ys = list(range(len(settings)))[::-1]
    for ax, mode in zip(axes[0], modes, strict=True):
        gains = [by[(s, mode)].gain or 0.0 for s in settings]
        scale = 100.0 if mode == "undervolt" else 1.0
        right = max([g * scale for g in gains] + [1e-9])
        for y, s in zip(ys, settings, strict=True):
            v = by[(s, mode)]
            if v.label is None or v.gain is None:
                ax.text(0.0, y, " none keeps quality", va="center", fontsize=8, color="gray")
                continue
            g = v.gain * scale
            ax.barh(y, g, color=colors[v.label], height=0.6)
            ax.text(g, y, f" {v.label}", va="center", fontsize=8)
        ax.set_xlim(0, right * 1.6)
        ax.set_xlabel("energy saving (%)" if mode == "undervolt" else "speed-up (x)")
        ax.set_title(f"{mode}: best policy per assumption", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, [textwrap.fill(s, 34) for s in settings], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
