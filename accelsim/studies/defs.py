"""The studies: trial plans, figures and summaries (see :mod:`accelsim.studies`).

Fault budgets (documented defaults, not fitted):

* ``FLIPS`` faulty values per run (``bitpos``, ``formats``): enough single-bit flips that the
  harmful bits of a 32-input quick run show a drop while harmless bits show none;
* ``CELL_FLIPS`` per run in the studied cell (``blocks``, ``timesteps``,
  ``memory-vs-compute``), in accumulator bits ``HIGH_BITS`` (16-31): a late MAC corrupts the
  high accumulator bits (DESIGN.md, timing error model), so these are the flips that matter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .core import Study, StudyContext, md_table, mean

FLIPS = 50
CELL_FLIPS = 10
HIGH_BITS = "16-31"
GENERATORS = ("diffusion", "video-diffusion")
CLASSIFIERS = ("classifier", "features")
ALL_KINDS = ("classifier", "features", "lm", "diffusion", "video-diffusion")

#: bitpos: bit positions per format (quick, full).
BITPOS_BITS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "int8": ((0, 3, 6, 7), tuple(range(8))),
    "int32": ((0, 16, 30, 31), tuple(range(32))),
    "fp16": ((0, 9, 10, 14, 15), tuple(range(16))),
    "bf16": ((0, 6, 7, 14, 15), tuple(range(16))),
    "fp32": ((0, 22, 23, 30, 31), tuple(range(32))),
}
BITPOS_QUICK_FORMATS = ("int8", "int32", "fp32")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _v(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _fmt_of(fmt: str) -> tuple[str, tuple[str, ...]]:
    from accelsim.experiments.trials import places_for_format, quant_for_format

    return quant_for_format(fmt), tuple(places_for_format(fmt))


def _top(rows: list[dict[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: -(r.get("quality_drop") or 0.0))[:n]


# --------------------------------------------------------------------------- bitpos


def _bitpos_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    formats = BITPOS_QUICK_FORMATS if ctx.quick else tuple(BITPOS_BITS)
    out = []
    for fmt in formats:
        quant, places = _fmt_of(fmt)
        for target in places:
            if ctx.quick and fmt == "int8" and target == "inputs":
                continue
            for bit in BITPOS_BITS[fmt][0 if ctx.quick else 1]:
                cell = {"format": fmt, "target": target, "bit": bit}
                spec = {"fault": "bitflip", "target": target, "format": fmt, "bit": bit}
                for seed in ctx.seeds:
                    out.append(
                        ctx.trial(cell, seed, quant=quant, faults=[{**spec, "flips": FLIPS}])
                    )
    return out


def _bitpos_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    series = sorted({(r["format"], r["target"]) for r in rows})
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2.2 * max(1, len(series))), squeeze=False)
    for ax, (fmt, target) in zip(axes[:, 0], series, strict=True):
        sel = sorted(
            (r for r in rows if (r["format"], r["target"]) == (fmt, target)), key=lambda r: r["bit"]
        )
        ax.bar([r["bit"] for r in sel], [_v(r.get("quality_drop")) for r in sel], color="C3")
        ax.set_title(f"{fmt} {target}: {FLIPS} single-bit flips per run", fontsize=9)
        ax.set_ylabel("quality drop")
        ax.set_xticks([r["bit"] for r in sel])
        width = {"int8": 8, "int32": 32, "fp16": 16, "bf16": 16, "fp32": 32}.get(fmt, 32)
        ax.set_xlim(-0.7, width - 0.3)
        top = max(
            [_v(r.get("quality_drop")) for r in sel if r.get("quality_drop") is not None] or [0.0]
        )
        ax.set_ylim(0, max(1.0, 1.1 * top))
    axes[-1, 0].set_xlabel("bit position (0 = LSB)")
    fig.suptitle(f"{ctx.model}: vulnerability per bit position ({ctx.drop_unit})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bitpos_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    text = (
        f"Each trial flips one bit position in about {FLIPS} randomly chosen values per run "
        "(per-value rate = flips / values of that place) of the named format and place "
        "(weights once per run, inputs/outputs per GEMM call).\n\nMost harmful cells:\n\n"
    )
    text += md_table(_top(rows), ["format", "target", "bit", "trials", "quality_drop"])
    return (
        text
        + "\n\nAll cells:\n\n"
        + md_table(rows, ["format", "target", "bit", "trials", "quality_drop", "output_error"], 200)
    )


# --------------------------------------------------------------------------- formats


def _formats_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    out = []
    targets = ("weights", "outputs") if ctx.quick else ("weights", "inputs", "outputs")
    for fmt in ("fp32", "fp16", "bf16", "int8"):
        quant = "w8a8" if fmt == "int8" else fmt
        for target in targets:
            place_fmt = "int32" if fmt == "int8" and target == "outputs" else fmt
            cell = {"format": fmt, "target": target}
            spec = {"fault": "bitflip", "target": target, "format": place_fmt, "flips": FLIPS}
            for seed in ctx.seeds:
                out.append(ctx.trial(cell, seed, quant=quant, faults=[spec]))
    return out


def _formats_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    fmts = ["fp32", "fp16", "bf16", "int8"]
    targets = sorted({r["target"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.8 / max(1, len(targets))
    for i, t in enumerate(targets):
        vals = [
            next(
                (_v(r.get("quality_drop")) for r in rows if r["format"] == f and r["target"] == t),
                float("nan"),
            )
            for f in fmts
        ]
        ax.bar([j + i * w for j in range(len(fmts))], vals, w, label=t)
    ax.set_xticks([j + w * (len(targets) - 1) / 2 for j in range(len(fmts))])
    ax.set_xticklabels(["fp32", "fp16", "bf16", "int8 (W8A8, int32 acc.)"])
    ax.set_ylabel(f"quality drop ({ctx.drop_unit})")
    ax.set_title(f"{ctx.model}: {FLIPS} random single-bit flips per run, per number format")
    ax.legend(title="faulty place")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _formats_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        f"The same fault budget (about {FLIPS} single-bit flips per run, bit uniform over the "
        "format's width) in each number format; int8 means the W8A8 run, whose outputs are "
        "int32 accumulators.\n\n"
        + md_table(
            rows, ["format", "target", "trials", "quality_drop", "output_error", "nonfinite"]
        )
    )


# --------------------------------------------------------------------------- blocks


def _blocks_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    st = ctx.structure
    blocks = list(st.get("blocks", []))
    ltypes = [lt for lt in st.get("layer_types", []) if lt != "other"]
    cells = [({"block": b, "layer_type": "all"}, {"block": b}) for b in blocks]
    cells += [({"block": "all", "layer_type": lt}, {"layer-type": lt}) for lt in ltypes]
    out = []
    for cell, scope in cells:
        spec = {"fault": "bitflip", "target": "outputs", "format": "int32", "bit": HIGH_BITS}
        for seed in ctx.seeds:
            out.append(ctx.trial(cell, seed, faults=[{**spec, **scope, "flips": CELL_FLIPS}]))
    return out


def _bars(ax: Any, rows: list[dict[str, Any]], label: str, color: str) -> None:
    ax.barh([str(r[label]) for r in rows], [_v(r.get("quality_drop")) for r in rows], color=color)
    ax.invert_yaxis()


def _blocks_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    br = [r for r in rows if r["layer_type"] == "all"]
    lr = [r for r in rows if r["block"] == "all"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, max(3.0, 0.3 * max(len(br), len(lr)) + 1.5)))
    _bars(a1, br, "block", "C0")
    a1.set_title("per block (all its GEMMs)", fontsize=9)
    _bars(a2, lr, "layer_type", "C1")
    a2.set_title("per layer type (all blocks)", fontsize=9)
    for a in (a1, a2):
        a.set_xlabel(f"quality drop ({ctx.drop_unit})")
    fig.suptitle(
        f"{ctx.model}: {CELL_FLIPS} flips per run in int32 accumulator bits {HIGH_BITS}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _blocks_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        f"About {CELL_FLIPS} single-bit flips per run in the int32 accumulators (bits "
        f"{HIGH_BITS}) of the GEMMs of one block (`layer_type = all`) or of one layer type in "
        "every block (`block = all`).\n\nMost sensitive cells:\n\n"
        + md_table(_top(rows), ["block", "layer_type", "trials", "quality_drop"])
        + "\n\nAll cells:\n\n"
        + md_table(rows, ["block", "layer_type", "trials", "quality_drop", "output_error"], 200)
    )


# --------------------------------------------------------------------------- timesteps


def _timesteps_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    out = []
    for t in range(ctx.steps):
        spec = {
            "fault": "bitflip",
            "target": "outputs",
            "format": "int32",
            "bit": HIGH_BITS,
            "timestep": t,
            "flips": CELL_FLIPS,
        }
        for seed in ctx.seeds:
            out.append(ctx.trial({"timestep": t}, seed, faults=[spec]))
    return out


def _timesteps_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    rs = sorted(rows, key=lambda r: r["timestep"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.bar([r["timestep"] for r in rs], [_v(r.get("quality_drop")) for r in rs], color="C2")
    ax.set_xticks([r["timestep"] for r in rs])
    ax.set_xlabel(f"sampler step (0 = first, noisiest; {ctx.steps} steps)")
    ax.set_ylabel(f"quality drop ({ctx.drop_unit})")
    ax.set_title(
        f"{ctx.model}: {CELL_FLIPS} accumulator flips (bits {HIGH_BITS}) in one step", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _timesteps_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    rs = sorted(rows, key=lambda r: r["timestep"])
    half = len(rs) // 2
    early = mean([r.get("quality_drop") for r in rs[:half]])
    late = mean([r.get("quality_drop") for r in rs[half:]])
    return (
        f"About {CELL_FLIPS} single-bit flips (int32 accumulator bits {HIGH_BITS}) in the "
        "GEMMs of one sampler step. Mean drop of the early half of the steps: "
        f"{_num_text(early)}, late half: {_num_text(late)}.\n\n"
        + md_table(rs, ["timestep", "trials", "quality_drop", "output_error"], 200)
    )


def _num_text(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


# --------------------------------------------------------------------------- layers

LAYER_BERS = ((1e-6, 1e-5, 1e-4), (1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1e-3))
REF_BER = 1e-5
#: Per-bit error rate of the per-head cells (a head's int8 attention output is ~1/(3 heads)
#: of one GEMM's values: 1e-3 gives tens of flips per run in a quick run).
HEAD_BER = 1e-3
THRESHOLDS = (1.0, 5.0, 10.0)


def _layers_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    blocks = list(ctx.structure.get("blocks", []))
    heads = int(ctx.structure.get("config", {}).get("heads", 1))
    out = []
    for li, b in enumerate(blocks):
        for ber in LAYER_BERS[0 if ctx.quick else 1]:
            spec = {"fault": "bitflip", "target": "outputs", "format": "int32", "block": b}
            for seed in ctx.seeds:
                out.append(
                    ctx.trial(
                        {"layer": li, "head": "all", "ber": ber},
                        seed,
                        faults=[{**spec, "ber": ber}],
                    )
                )
        for h in range(heads):
            spec = {
                "fault": "bitflip",
                "target": "inputs",
                "format": "int8",
                "block": b,
                "layer-type": "proj",
                "head": h,
                "heads": heads,
                "ber": HEAD_BER,
            }
            for seed in ctx.seeds:
                cell = {"layer": li, "head": h, "ber": HEAD_BER}
                out.append(ctx.trial(cell, seed, faults=[spec]))
    return out


def ber_threshold(points: list[tuple[float, float]], loss: float) -> float | None:
    """Smallest BER where the (log-interpolated) drop reaches ``loss``; None if never."""
    pts = sorted(points)
    prev: tuple[float, float] | None = None
    for ber, drop in pts:
        if drop >= loss:
            if prev is None or prev[1] >= loss:
                return ber
            lb0, lb1 = math.log10(prev[0]), math.log10(ber)
            frac = (loss - prev[1]) / (drop - prev[1])
            return float(10 ** (lb0 + frac * (lb1 - lb0)))
        prev = (ber, drop)
    return None


def _layers_finish(
    rows: list[dict[str, Any]], trials: list[dict[str, Any]], ctx: StudyContext
) -> None:
    # collapse the BER sweep of each layer into one row (drop at REF_BER + thresholds)
    sweep: dict[int, list[tuple[float, float]]] = {}
    keep = []
    for r in rows:
        if r["head"] == "all":
            if r.get("quality_drop") is not None:
                sweep.setdefault(r["layer"], []).append((float(r["ber"]), r["quality_drop"]))
            if not math.isclose(float(r["ber"]), REF_BER):
                continue
        keep.append(r)
    for r in keep:
        if r["head"] == "all":
            pts = sweep.get(r["layer"], [])
            for loss in THRESHOLDS:
                r[f"ber_{int(loss)}pct"] = ber_threshold(pts, loss)
            r["ber_sweep"] = " ".join(f"{b:g}:{d:.3g}" for b, d in sorted(pts))
    rows[:] = keep


def _layers_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    import numpy as np

    layers = sorted({r["layer"] for r in rows})
    heads = sorted({r["head"] for r in rows if r["head"] != "all"})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    grid = np.full((len(layers), max(1, len(heads))), np.nan)
    for r in rows:
        if r["head"] != "all":
            grid[layers.index(r["layer"]), heads.index(r["head"])] = _v(r.get("output_error"))
    im = a1.imshow(grid, cmap="Reds", aspect="auto", vmin=0)
    a1.set_xticks(range(len(heads)))
    a1.set_xticklabels([str(h) for h in heads])
    a1.set_yticks(range(len(layers)))
    a1.set_yticklabels([f"layer {li}" for li in layers])
    a1.set_xlabel("attention head")
    a1.set_title(f"per head: int8 attention output, BER {HEAD_BER:g}/bit", fontsize=9)
    fig.colorbar(im, ax=a1, label="mean |logit change| vs golden")
    lr = sorted((r for r in rows if r["head"] == "all"), key=lambda r: r["layer"])
    for i, loss in enumerate(THRESHOLDS):
        vals = [_v(r.get(f"ber_{int(loss)}pct")) for r in lr]
        a2.scatter([r["layer"] + (i - 1) * 0.12 for r in lr], vals, label=f"{loss:g}% acc. loss")
    a2.set_yscale("log")
    a2.set_xticks(layers)
    a2.set_xlabel("encoder layer")
    a2.set_ylabel("BER threshold (per accumulator bit)")
    a2.set_title("per layer: BER causing the accuracy loss (missing: not reached)", fontsize=9)
    a2.legend(fontsize=8)
    fig.suptitle(f"{ctx.model}: per-layer and per-head sensitivity", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _layers_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    lr = [r for r in rows if r["head"] == "all"]
    hr = [r for r in rows if r["head"] != "all"]
    return (
        "Per layer (`head = all`): bit errors at per-bit rate BER in the int32 accumulators of "
        f"all GEMMs of the encoder layer; `quality_drop` at BER {REF_BER:g}, thresholds "
        "`ber_1pct`/`ber_5pct`/`ber_10pct` interpolated (log BER) on the sweep `ber_sweep` "
        "(empty: loss not reached; a threshold equal to the sweep's smallest BER is an upper "
        "bound). Per head: bit errors at BER "
        f"{HEAD_BER:g} in that head's int8 attention output (the head's columns of the "
        "output projection's input).\n\n"
        + md_table(lr, ["layer", "trials", "quality_drop", "ber_1pct", "ber_5pct", "ber_10pct"])
        + "\n\n"
        + md_table(hr, ["layer", "head", "trials", "quality_drop"], 200)
    )


# --------------------------------------------------------------------------- clipping

#: Fault models of the clipping study: int32 outputs of every MLP fc2 GEMM call (one call per
#: block per batch), random 32-bit patterns (a corrupted register), after Roquet et al.
CLIP_FAULTS: dict[str, dict[str, Any]] = {
    "single-value": {
        "fault": "single-value",
        "target": "outputs",
        "value": "random",
        "per": "call",
    },
    "random-values": {"fault": "random-values", "target": "outputs", "n": 10, "per": "call"},
    "rowcol": {"fault": "rowcol", "axis": "row", "value": "random", "per": "call"},
}
CLIP_SCOPE = "fc2"


def _clipping_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    out = []
    arr = f"{ctx.hw.array.rows}x{ctx.hw.array.cols}"
    for name, spec in CLIP_FAULTS.items():
        f = {**spec, "layer-type": CLIP_SCOPE}
        if name == "rowcol":
            f["array"] = arr
        for clip in ("off", "on"):
            faults = [f] + ([{"fault": "clip", "mode": "zero"}] if clip == "on" else [])
            for seed in ctx.seeds:
                out.append(
                    ctx.trial(
                        {"fault": name, "clipping": clip}, seed, faults=faults, by_confidence=True
                    )
                )
    return out


def _clipping_finish(
    rows: list[dict[str, Any]], trials: list[dict[str, Any]], ctx: StudyContext
) -> None:
    from accelsim.quality.classifier import MAX_EDGES

    out = []
    for r in rows:
        group = [
            t
            for t in trials
            if t["cell"]["fault"] == r["fault"] and t["cell"]["clipping"] == r["clipping"]
        ]
        for i in range(len(MAX_EDGES) - 1):
            n = sum(int(t["metrics"].get(f"conf{i}_n") or 0) for t in group)
            sdc = sum(int(t["metrics"].get(f"conf{i}_sdc") or 0) for t in group)
            row = dict(r)
            row["confidence"] = f"{MAX_EDGES[i]:g}-{MAX_EDGES[i + 1]:g}"
            row["inputs"] = n
            row["critical_sdc"] = sdc
            row["critical_sdc_rate"] = sdc / n if n else None
            out.append(row)
    rows[:] = out


def _clipping_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    faults = list(dict.fromkeys(r["fault"] for r in rows))
    confs = list(dict.fromkeys(r["confidence"] for r in rows))
    fig, axes = plt.subplots(1, len(faults), figsize=(4 * len(faults), 3.6), squeeze=False)
    for ax, f in zip(axes[0], faults, strict=True):
        for i, clip in enumerate(("off", "on")):
            vals = [
                next(
                    (
                        _v(r.get("critical_sdc_rate")) * 100
                        for r in rows
                        if r["fault"] == f and r["clipping"] == clip and r["confidence"] == c
                    ),
                    float("nan"),
                )
                for c in confs
            ]
            ax.bar([j + 0.4 * i for j in range(len(confs))], vals, 0.4, label=f"clipping {clip}")
        ax.set_xticks([j + 0.2 for j in range(len(confs))])
        ax.set_xticklabels(confs, fontsize=8)
        ax.set_xlabel("golden confidence (max softmax)")
        ax.set_title(f"fault: {f}", fontsize=9)
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("critical SDC rate (% of inputs or LM tokens)")
    fig.suptitle(f"{ctx.model}: activation clipping (zero out-of-range) vs none", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _clipping_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        f"Faults in the int32 outputs of every `{CLIP_SCOPE}` GEMM call (single-value: one "
        "random 32-bit pattern per call; random-values: 10 per call; rowcol: one array row of "
        "one output tile per call, random patterns), with and without activation clipping (per-layer ranges profiled on the golden run, out-of-range "
        "values zeroed; Roquet et al.). Critical SDC: a top-1 change on an input the golden "
        "run got right, bucketed by the golden max-softmax confidence.\n\n"
        + md_table(
            rows,
            [
                "fault",
                "clipping",
                "confidence",
                "inputs",
                "critical_sdc",
                "critical_sdc_rate",
                "quality_drop",
            ],
            200,
        )
    )


# --------------------------------------------------------------------------- vf

VF_GRID = (((1.0, 0.89, 0.85), (1.0, 1.15)), ((1.0, 0.94, 0.9, 0.87, 0.85, 0.83), (1.0, 1.1, 1.2)))


def _vf_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    vs, fs = VF_GRID[0 if ctx.quick else 1]
    chips: list[Any] = ["typical"] if ctx.quick else ["typical", 0, 1]
    vnom, fnom = ctx.hw.tech.vnom, ctx.hw.tech.fnom / 1e9
    out = []
    for chip in chips:
        for v in vs:
            for f in fs:
                vdd, freq = round(vnom * v, 4), round(fnom * f, 4)
                cell = {"chip": chip, "vdd": vdd, "freq_ghz": freq}
                for seed in ctx.seeds:
                    out.append(
                        ctx.trial(cell, seed, vdd=vdd, freq=freq, chip=chip, **ctx.timing_samples())
                    )
    return out


def _vf_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    import numpy as np

    chips = list(dict.fromkeys(str(r["chip"]) for r in rows))
    fig, axes = plt.subplots(1, len(chips), figsize=(5 * len(chips), 4), squeeze=False)
    for ax, chip in zip(axes[0], chips, strict=True):
        rs = [r for r in rows if str(r["chip"]) == chip]
        vs = sorted({r["vdd"] for r in rs})
        fs = sorted({r["freq_ghz"] for r in rs})
        grid = np.full((len(vs), len(fs)), np.nan)
        for r in rs:
            grid[vs.index(r["vdd"]), fs.index(r["freq_ghz"])] = _v(r.get("quality_drop"))
        vmax = max(1.0, float(np.nanmax(grid))) if np.isfinite(grid).any() else 1.0
        im = ax.imshow(grid, cmap="Reds", origin="lower", aspect="auto", vmin=0, vmax=vmax)
        top = float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0
        for r in rs:
            drop = _v(r.get("quality_drop"))
            ax.text(
                fs.index(r["freq_ghz"]),
                vs.index(r["vdd"]),
                f"drop {drop:.3g}\nsaves {100 * _v(r.get('energy_saving')):.0f}%",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if top > 0 and drop > 0.5 * top else "black",
            )
        ax.set_xticks(range(len(fs)))
        ax.set_xticklabels([f"{f:g}" for f in fs])
        ax.set_yticks(range(len(vs)))
        ax.set_yticklabels([f"{v:.3g}" for v in vs])
        ax.set_xlabel("clock (GHz)")
        ax.set_ylabel("supply (V)")
        ax.set_title(f"chip {chip}: quality drop, energy saving vs nominal", fontsize=9)
        fig.colorbar(im, ax=ax, label=f"quality drop ({ctx.drop_unit})")
    fig.suptitle(f"{ctx.model}: quality and energy over the V x f plane", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _vf_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        "Every GEMM at one operating point (timing errors from the fast kernel), per chip "
        "(`typical` = no PE variation, integers = chip seeds of the variation map).\n\n"
        + md_table(
            rows,
            [
                "chip",
                "vdd",
                "freq_ghz",
                "trials",
                "quality_drop",
                "energy_saving",
                "speedup",
                "timing_errors",
            ],
            200,
        )
    )


# --------------------------------------------------------------------------- yield

#: Policies judged on yield. ``closed-loop`` runs with classic ABFT; its voltage is its lower
#: limit (it settles where detections allow). ``drift`` needs a diffusion profile and
#: ``timestep`` a sampler, so they are left to ``accelsim explore``.
YIELD_POLICIES = ("uniform", "thundervolt", "closed-loop")
YIELD_V = ((0.89, 0.85), (0.95, 0.92, 0.89, 0.87, 0.85, 0.83))
#: Quality threshold a chip must meet, per model kind (same units as ``quality_drop``).
YIELD_THRESHOLD = {
    "classifier": 1.0,
    "features": 1.0,
    "lm": 1.0,
    "diffusion": 0.05,
    "video-diffusion": 0.05,
}


def _yield_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    chips = range(3) if ctx.quick else range(10)
    out = []
    for pol in YIELD_POLICIES:
        for v in YIELD_V[0 if ctx.quick else 1]:
            vdd = round(ctx.hw.tech.vnom * v, 4)
            for chip in chips:
                cell = {"policy": pol, "vdd": vdd, "chip": chip}
                if pol == "closed-loop":
                    policy = f"closed-loop:target=1e-06,limit={vdd},start=guardband"
                else:
                    policy = f"{pol}:vdd={vdd}"
                out.append(
                    ctx.trial(cell, ctx.seeds[0], policy=policy, chip=chip, **ctx.timing_samples())
                )
    return out


def _yield_finish(
    rows: list[dict[str, Any]], trials: list[dict[str, Any]], ctx: StudyContext
) -> None:
    thr = YIELD_THRESHOLD.get(ctx.kind, 1.0)
    out: dict[tuple[str, float], dict[str, Any]] = {}
    for r in rows:
        key = (r["policy"], r["vdd"])
        o = out.setdefault(
            key, {"policy": key[0], "vdd": key[1], "trials": 0, "chips_ok": 0, "drops": []}
        )
        o["trials"] += r["trials"]
        d = r.get("quality_drop")
        o["chips_ok"] += int(d is not None and d <= thr)
        o["drops"].append(d)
        o.setdefault("savings", []).append(r.get("energy_saving"))
    res = []
    for o in out.values():
        chips = len(o["drops"])
        res.append(
            {
                "policy": o["policy"],
                "vdd": o["vdd"],
                "trials": o["trials"],
                "chips": chips,
                "yield": o["chips_ok"] / chips if chips else None,
                "threshold": thr,
                "quality_drop": mean(o["drops"]),
                "energy_saving": mean(o["savings"]),
            }
        )
    rows[:] = res


def _yield_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for pol in dict.fromkeys(r["policy"] for r in rows):
        rs = sorted((r for r in rows if r["policy"] == pol), key=lambda r: r["vdd"])
        ax.plot([r["vdd"] for r in rs], [100 * _v(r["yield"]) for r in rs], "o-", label=pol)
    ax.set_xlabel("supply voltage (V)")
    ax.set_ylabel("yield (% of chips meeting the threshold)")
    thr = YIELD_THRESHOLD.get(ctx.kind, 1.0)
    ax.set_title(f"{ctx.model}: chips with quality drop <= {thr:g} ({ctx.drop_unit})", fontsize=9)
    ax.set_ylim(-5, 105)
    ax.legend(title="policy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _yield_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        "Monte Carlo over chips (PE variation maps, chip seeds 0..N-1): for each policy and "
        "voltage, the fraction of chips whose quality drop stays within the threshold.\n\n"
        + md_table(
            rows,
            ["policy", "vdd", "chips", "yield", "threshold", "quality_drop", "energy_saving"],
            200,
        )
    )


# --------------------------------------------------------------------------- memory-vs-compute


def _mvc_plan(ctx: StudyContext) -> list[dict[str, Any]]:
    out = []
    mem = {
        "fault": "bitflip",
        "target": "weights",
        "format": "int8",
        "multiplicity": 2,
        "flips": CELL_FLIPS,
    }
    cells: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"site": "memory (2-bit, persistent)", "timestep": "all"}, mem)
    ]
    steps = sorted({0, ctx.steps // 2, ctx.steps - 1})
    for t in ["all", *steps]:
        spec = {
            "fault": "bitflip",
            "target": "outputs",
            "format": "int32",
            "bit": HIGH_BITS,
            "flips": CELL_FLIPS,
        }
        if t != "all":
            spec["timestep"] = t
        cells.append(({"site": "compute (1-bit, transient)", "timestep": t}, spec))
    for cell, spec in cells:
        for seed in ctx.seeds:
            out.append(ctx.trial(cell, seed, faults=[spec]))
    return out


def _mvc_plot(rows: list[dict[str, Any]], path: Path, ctx: StudyContext) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [
        ("memory" if r["site"].startswith("memory") else "compute")
        + ("\nall steps" if r["timestep"] == "all" else f"\nstep {r['timestep']}")
        for r in rows
    ]
    colors = ["C4" if r["site"].startswith("memory") else "C0" for r in rows]
    ax.bar(range(len(rows)), [_v(r.get("quality_drop")) for r in rows], color=colors)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(f"quality drop ({ctx.drop_unit})")
    ax.set_title(
        f"{ctx.model}: {CELL_FLIPS} faulty values per run; memory = 2-bit int8 weight flips "
        f"(persistent), compute = 1-bit accumulator flips, bits {HIGH_BITS} (transient)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mvc_md(rows: list[dict[str, Any]], ctx: StudyContext) -> str:
    return (
        f"About {CELL_FLIPS} faulty values per run: 2-bit flips in int8 weights (memory, "
        f"persistent for the whole run) vs 1-bit flips in int32 accumulator bits {HIGH_BITS} "
        "(computation, transient) in all steps or one chosen step.\n\n"
        + md_table(rows, ["site", "timestep", "trials", "quality_drop", "output_error"], 200)
    )


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "bitpos",
            "per-bit-position vulnerability per format",
            ALL_KINDS,
            ("format", "target", "bit"),
            _bitpos_plan,
            _bitpos_plot,
            _bitpos_md,
        ),
        Study(
            "formats",
            "same fault budget across fp32 / fp16 / bf16 / int8",
            ALL_KINDS,
            ("format", "target"),
            _formats_plan,
            _formats_plot,
            _formats_md,
        ),
        Study(
            "blocks",
            "per-block and per-layer-type sensitivity",
            ALL_KINDS,
            ("block", "layer_type"),
            _blocks_plan,
            _blocks_plot,
            _blocks_md,
        ),
        Study(
            "timesteps",
            "sensitivity of each sampler step",
            GENERATORS,
            ("timestep",),
            _timesteps_plan,
            _timesteps_plot,
            _timesteps_md,
            default_model="unet-digits",
        ),
        Study(
            "layers",
            "per-encoder-layer and per-head sensitivity, BER thresholds",
            CLASSIFIERS,
            ("layer", "head", "ber"),
            _layers_plan,
            _layers_plot,
            _layers_md,
            finish=_layers_finish,
        ),
        Study(
            "clipping",
            "activation clipping vs critical SDC by input confidence",
            ("classifier", "lm"),
            ("fault", "clipping"),
            _clipping_plan,
            _clipping_plot,
            _clipping_md,
            finish=_clipping_finish,
        ),
        Study(
            "memory-vs-compute",
            "persistent memory faults vs transient compute faults",
            GENERATORS,
            ("site", "timestep"),
            _mvc_plan,
            _mvc_plot,
            _mvc_md,
            default_model="unet-digits",
        ),
        Study(
            "vf",
            "quality and energy over the V x f plane per chip",
            ALL_KINDS,
            ("chip", "vdd", "freq_ghz"),
            _vf_plan,
            _vf_plot,
            _vf_md,
        ),
        Study(
            "yield",
            "fraction of chips meeting the quality threshold per policy",
            ALL_KINDS,
            ("policy", "vdd", "chip"),
            _yield_plan,
            _yield_plot,
            _yield_md,
            finish=_yield_finish,
        ),
    )
}
