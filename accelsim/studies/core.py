"""The study engine: a study's trials run as a campaign in ``DIR/NAME.db``, then aggregate.

``run_study(name, model, out_dir, ...)`` asks the study for its trial configs (each carries the
study cell it belongs to in its ``cell`` table), runs them as the campaign ``NAME:MODEL`` of
trial kind ``model-run`` (:mod:`accelsim.experiments.trials`) in the SQLite store ``DIR/NAME.db``
(resumable: a rerun skips finished trials), groups the finished trials by cell and writes
``DIR/NAME.csv`` (one row per cell: the cell keys, ``trials``, ``quality_drop`` and more),
``DIR/NAME.png`` and ``DIR/NAME.md``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.errors import ConfigError

#: Metrics averaged per cell into the CSV (when the trials report them).
MEAN_METRICS = (
    "quality_drop",
    "output_error",
    "faults_injected",
    "timing_errors",
    "energy_saving",
    "speedup",
    "nonfinite",
)
#: Unit of ``quality_drop`` per model kind.
DROP_UNITS = {
    "classifier": "accuracy points (%)",
    "features": "accuracy points (%)",
    "lm": "top-1 flip rate (% of tokens)",
    "diffusion": "feature distance vs golden",
    "video-diffusion": "feature distance vs golden",
}
#: Inputs per trial (quick, full) per model kind: test images, token windows, or generated
#: images/clips; and sampler steps (generators).
SAMPLES = {
    "classifier": (32, 256),
    "features": (32, 256),
    "lm": (4, 32),
    "diffusion": (2, 10),
    "video-diffusion": (1, 4),
}
STEPS = {"quick": 4, "full": 20}
#: Inputs per quick trial of a classifier when timing errors are simulated (vf, yield).
TIMING_QUICK_SAMPLES = 16


@dataclass
class StudyContext:
    """What a study plans for: the model, its kind and structure, size options, hardware."""

    model: str
    kind: str
    quick: bool
    seeds: tuple[int, ...]
    samples: int
    steps: int
    base: dict[str, Any]
    hw: Any
    structure: dict[str, Any] = field(default_factory=dict)
    samples_given: bool = False

    def timing_samples(self) -> dict[str, Any]:
        """Trial overrides for studies with timing errors (the slow kernels): quick runs of
        classifiers use at most :data:`TIMING_QUICK_SAMPLES` inputs unless --samples is given."""
        if self.quick and not self.samples_given and self.kind in ("classifier", "features"):
            return {"samples": min(self.samples, TIMING_QUICK_SAMPLES)}
        return {}

    def trial(self, cell: dict[str, Any], seed: int, **config: Any) -> dict[str, Any]:
        """A ``model-run`` trial config for ``cell`` (base options + ``config``)."""
        return {**self.base, "seed": seed, "cell": dict(cell), **config}

    @property
    def drop_unit(self) -> str:
        """Unit of ``quality_drop`` for this model."""
        return DROP_UNITS.get(self.kind, "quality loss")


@dataclass(frozen=True)
class Study:
    """A study: which model kinds it accepts, its cell keys, how to plan, report and plot."""

    name: str
    title: str
    kinds: tuple[str, ...]
    keys: tuple[str, ...]
    plan: Callable[[StudyContext], list[dict[str, Any]]]
    plot: Callable[[list[dict[str, Any]], Path, StudyContext], None]
    summarize: Callable[[list[dict[str, Any]], StudyContext], str]
    finish: Callable[[list[dict[str, Any]], list[dict[str, Any]], StudyContext], None] | None = None
    default_model: str = "vit-digits"


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` did: the table, the files written and the campaign counts."""

    name: str
    rows: list[dict[str, Any]]
    csv: Path
    png: Path
    md: Path
    store: Path
    total: int
    ran: int
    skipped: int
    failed: int  # failed trials in the store (rerun with retry_failed)
    seconds: float


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, str | bool):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def mean(values: Sequence[Any]) -> float | None:
    """Mean of the finite numbers in ``values`` (None if there are none)."""
    nums = [v for v in (_num(x) for x in values) if v is not None]
    return sum(nums) / len(nums) if nums else None


def aggregate(
    trials: list[dict[str, Any]], keys: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[tuple[Any, ...], list[dict[str, Any]]]]:
    """One row per cell (in first-seen order): keys, ``trials``, means of :data:`MEAN_METRICS`.

    ``trials``: dicts with ``cell`` and ``metrics`` (finished trials only). Also returns the
    trials grouped by cell key tuple.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for t in trials:
        key = tuple(t["cell"].get(k) for k in keys)
        groups.setdefault(key, []).append(t)
    rows = []
    for key, group in groups.items():
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["trials"] = len(group)
        for m in MEAN_METRICS:
            vals = [g["metrics"].get(m) for g in group if m in g["metrics"]]
            if vals:
                row[m] = mean(vals)
        rows.append(row)
    return rows, groups


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """``rows`` as CSV (columns in first-seen order; empty cell = missing)."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(list(cols))
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def md_table(rows: list[dict[str, Any]], cols: Sequence[str], limit: int = 40) -> str:
    """A markdown table of ``rows`` (first ``limit``) over ``cols``."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:limit]:
        lines.append("| " + " | ".join(_cell(r.get(c)) or "-" for c in cols) + " |")
    if len(rows) > limit:
        lines.append(f"| ... {len(rows) - limit} more rows in the CSV |" + " |" * (len(cols) - 1))
    return "\n".join(lines)


def _output_error(kind: str, metrics: dict[str, Any]) -> float | None:
    if kind in ("diffusion", "video-diffusion"):
        return _num(metrics.get("feature_distance"))
    return _num(metrics.get("logits_mean_abs"))


def run_study(
    name: str,
    model: str | None,
    out_dir: str | Path,
    *,
    quick: bool = False,
    workers: int | None = None,
    seeds: Sequence[int] | None = None,
    samples: int | None = None,
    steps: int | None = None,
    hw: Any = None,
    hardware: dict[str, str] | None = None,
    dask: str | None = None,
    retry_failed: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[Any], None] | None = None,
) -> StudyResult:
    """Run study ``name`` on ``model`` into ``out_dir`` (module docstring).

    ``workers`` 1 runs serially in this process; ``hw`` the HardwareConfig (default: the
    ``tpu-128x128`` preset) and ``hardware`` the matching trial keys (``preset``, ``hardware``,
    ``array``, ``dataflow``) that rebuild it in the workers.
    """
    import time

    from accelsim.campaign.runner import run_campaign
    from accelsim.campaign.spec import parse_campaign
    from accelsim.campaign.store import Store
    from accelsim.experiments import trials as model_trials
    from accelsim.models.zoo import MODEL_NAMES, model_module

    from .defs import STUDIES

    if name not in STUDIES:
        raise ConfigError(f"study: got {name!r}, expected one of {', '.join(STUDIES)}")
    study = STUDIES[name]
    model = model or study.default_model
    if model not in MODEL_NAMES:
        raise ConfigError(f"--model: got {model!r}, expected one of {', '.join(MODEL_NAMES)}")
    kind = str(model_module(model).KIND)
    if kind not in study.kinds:
        ok = [m for m in MODEL_NAMES if str(model_module(m).KIND) in study.kinds]
        raise ConfigError(
            f"--model: got {model!r} ({kind}), study {name!r} needs one of {', '.join(ok)}"
        )
    seed_list = tuple(seeds) if seeds else ((0,) if quick else (0, 1, 2))
    for s in seed_list:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"--seeds: got {s!r}, expected integers >= 0")
    hwkeys = {"preset": "tpu-128x128", "hardware": "", "array": "", "dataflow": ""}
    hwkeys.update(hardware or {})
    base: dict[str, Any] = {
        "model": model,
        "samples": samples if samples is not None else SAMPLES[kind][0 if quick else 1],
        "steps": steps if steps is not None else STEPS["quick" if quick else "full"],
        **hwkeys,
    }
    base = {k: v for k, v in model_trials.normalize(dict(base)).items() if k in base}
    if hw is None:
        hw = model_trials.hardware_for(model_trials.normalize(dict(base)))
    ctx = StudyContext(
        model=model,
        kind=kind,
        quick=quick,
        seeds=seed_list,
        samples=int(base["samples"]),
        steps=int(base["steps"]),
        base=base,
        hw=hw,
        samples_given=samples is not None,
    )
    ctx.structure = model_trials.model_structure(
        model, steps=min(ctx.steps, 2) if name != "timesteps" else ctx.steps
    )
    configs = study.plan(ctx)
    camp = parse_campaign(
        {
            "campaign": {
                "name": f"{name}:{model}",
                "trial": model_trials.KIND,
                "description": study.title,
            },
            "include": configs,
        }
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db = out / f"{name}.db"
    t0 = time.perf_counter()
    summary = run_campaign(
        camp,
        db,
        workers=workers if workers and workers > 1 else None,
        serial=workers == 1,
        dask=dask,
        retry_failed=retry_failed,
        on_start=on_start,
        on_result=on_result,
    )
    seconds = time.perf_counter() - t0
    wanted = {t.id for t in camp.trials}
    finished = []
    failed = 0
    with Store(db) as st:
        for t in st.trials(camp.name):
            failed += int(t.id in wanted and t.status == "failed")
            if t.id in wanted and t.status == "done" and t.metrics is not None:
                metrics = dict(t.metrics)
                metrics["output_error"] = _output_error(kind, metrics)
                finished.append({"cell": t.config["cell"], "config": t.config, "metrics": metrics})
    rows, _ = aggregate(finished, study.keys)
    if study.finish is not None:
        study.finish(rows, finished, ctx)
    csv_path, png, md = out / f"{name}.csv", out / f"{name}.png", out / f"{name}.md"
    write_csv(rows, csv_path)
    study.plot(rows, png, ctx)
    head = (
        f"# Study `{name}`: {study.title}\n\nModel `{model}` ({kind}), "
        f"{'quick' if quick else 'full'} run: "
        f"{'/'.join(str(n) for n in sorted({int(c['samples']) for c in configs}))} "
        "inputs per trial"
        + (f", {ctx.steps} sampler steps" if kind in ("diffusion", "video-diffusion") else "")
        + f", seeds {', '.join(map(str, seed_list))}; {len(camp.trials)} trials "
        f"({summary.ran} run now, {summary.skipped} resumed from `{db.name}`, "
        f"{failed} failed). `quality_drop` unit: {ctx.drop_unit}.\n\n"
    )
    md.write_text(head + study.summarize(rows, ctx) + "\n", encoding="utf-8")
    return StudyResult(
        name=name,
        rows=rows,
        csv=csv_path,
        png=png,
        md=md,
        store=db,
        total=len(camp.trials),
        ran=summary.ran,
        skipped=summary.skipped,
        failed=failed,
        seconds=seconds,
    )
