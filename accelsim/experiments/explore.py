"""``accelsim explore``: DVFS and ABFT policies over operating points, chips and seeds.

The main job, run as campaigns of ``model-run`` trials (:mod:`accelsim.experiments.trials`) on
the SQLite store ``OUT/explore.db``. For a shipped diffusion model on an array it

1. profiles block x timestep sensitivity (campaign ``explore-profile``: each cell at a reference
   undervolt point, everything else nominal, on a separate profiling seed), the ``drift``
   policy's input; written to ``sensitivity.csv`` / ``sensitivity.png``;
2. runs every policy x operating point x chip x seed (campaign ``explore``), in undervolt (V
   knob at fnom) and/or overclock (f knob at Vnom) mode, each against the golden run of its
   seed (nominal point, no protection): energy saving ``1 - E / E_golden``, speed-up
   ``T_golden / T``;
3. measures the quality references (:mod:`accelsim.experiments.quality_refs`) and judges every
   run by the chosen criterion;
4. exports ``results.csv`` (one row per configuration of *this* grid, from the store) and
   writes ``pareto.png`` and ``report.md``.

**Resuming.** A trial's id is the SHA-256 of its whole normalized config: model, steps,
samples, guidance, sampler, kernel, hardware (array, memory, every energy and timing-model
parameter, resolved), policy spec (with its profile and checkpoint interval), chip and seed.
Rerunning into the same ``--out`` reuses exactly the trials whose configs are unchanged;
changing any of these reruns. Every finished trial is committed in its own transaction, so a
killed run leaves no partial row; verdicts are recomputed from the stored metrics (at full
precision) at every export, so changing the quality criterion or threshold reruns nothing.

Policies (:mod:`accelsim.dvfs.policies`) and their protection: ``nominal`` (= the golden run);
``guardband``; ``uniform`` (no protection); ``thundervolt`` (TE-Drop: late updates dropped,
detection latches charged); ``timestep`` (the first ``protect`` fraction of steps at
nominal); ``drift`` (the ``protect`` fraction of most fragile block x timestep cells at
nominal, rollback ABFT with checkpoint interval K, one configuration per K of ``intervals``);
``closed-loop`` (per-block controller on ABFT detections, no profile; one configuration per
detection-rate target).
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accelsim.config import HardwareConfig, check_choice, check_float, check_int
from accelsim.errors import ConfigError
from accelsim.experiments.quality_refs import CRITERIA
from accelsim.hw.energy import COMPONENTS

POLICY_NAMES = (
    "nominal",
    "guardband",
    "uniform",
    "timestep",
    "drift",
    "thundervolt",
    "closed-loop",
)
MODES = ("undervolt", "overclock")
#: Store file inside ``--out``; campaign names inside it.
STORE_NAME = "explore.db"
CAMPAIGN = "explore"
PROFILE_CAMPAIGN = "explore-profile"
#: Columns of results.csv, in order.
COLUMNS = (
    "policy",
    "spec",
    "mode",
    "vdd",
    "freq_ghz",
    "interval",
    "mean_vdd",
    "mean_freq_ghz",
    "chip",
    "seed",
    "energy_j",
    "nominal_energy_j",
    "latency_s",
    "nominal_latency_s",
    "energy_saving",
    "speedup",
    "feature_distance",
    "image_distance_mean",
    "image_distance_max",
    "fd",
    "fd_threshold",
    "class_accuracy",
    "golden_class_accuracy",
    "accuracy_lost",
    "accuracy_gained",
    "samples",
    "psnr_db",
    "ssim",
    "meets_dataset",
    "meets_image",
    "meets_strict",
    "meets_quality",
    "abft_checks",
    "abft_detections",
    "abft_corrections",
    "recomputes",
    "rollbacks",
    "latent_rollbacks",
    "checkpoints",
    "transitions",
    "timing_errors",
    *(f"energy_{c}_j" for c in COMPONENTS),
    "energy_rail_scaled_j",
    "energy_rail_sram_j",
    "energy_rail_dram_j",
    "energy_saving_sram_fixed",
    "energy_saving_sram_dual",
    "energy_saving_sram_shared",
    "guidance",
    "trial_id",
    "wall_s",
)

Chip = int | str


@dataclass(frozen=True)
class ExploreConfig:
    """The exploration grid (voltages in V, frequencies in GHz; chips: seeds or ``typical``)."""

    model: str = "dit-digits"
    modes: tuple[str, ...] = MODES
    policies: tuple[str, ...] = POLICY_NAMES
    vdd: tuple[float, ...] = (0.78, 0.75, 0.72)
    freq_ghz: tuple[float, ...] = (1.25, 1.35, 1.45)
    chips: tuple[Chip, ...] = ("typical", 0, 1, 2, 3, 4, 5, 6)
    seeds: tuple[int, ...] = (0,)
    steps: int = 10
    samples: int = 16
    guidance: float | None = None
    threshold: float | None = None
    kernel: str = "fast"
    protect: float = 0.3
    intervals: tuple[int, ...] = (1, 2, 5)
    closed_loop_targets: tuple[float, ...] = (1e-6,)
    profile_groups: int = 5
    profile_seed: int = 1000
    quality: str = "dataset"
    image_fraction: float = 0.1
    reference_sets: int = 8
    reference_seed: int = 2000
    robustness: bool = True
    guardband_variants: tuple[float, ...] = (0.10, 0.20)

    def __post_init__(self) -> None:
        for m in self.modes:
            check_choice("--mode", m, MODES)
        if not self.modes:
            raise ConfigError("--mode: got none, expected undervolt, overclock or both")
        for p in self.policies:
            check_choice("--policies", p, POLICY_NAMES)
        if not self.policies:
            raise ConfigError("--policies: got none, expected at least one policy")
        for v in self.vdd:
            check_float("--vdd", v, 0.4, 1.2, unit="V")
        for f in self.freq_ghz:
            check_float("--freq", f, 0.1, 10.0, unit="GHz")
        check_int("--steps", self.steps, 1, 1000)
        check_int("--samples", self.samples, 2, 1000)  # a Frechet distance needs two
        if self.guidance is not None:
            check_float("--guidance", self.guidance, 0.0, 100.0)
        check_float("protect", self.protect, 0.0, 1.0)
        if self.threshold is not None:
            check_float("--threshold", self.threshold, 0.0, 10.0)
        if not self.chips:
            raise ConfigError("--chips: got none, expected at least one chip")
        for c in self.chips:
            if c != "typical":
                check_int("--chips", c, 0)
        if not self.seeds:
            raise ConfigError("--seeds: got none, expected at least one seed")
        for s in self.seeds:
            check_int("--seeds", s, 0)
        if not self.intervals:
            raise ConfigError("--intervals: got none, expected at least one checkpoint interval")
        for k in self.intervals:
            check_int("--intervals", k, 1, 1000)
        check_choice("--quality", self.quality, CRITERIA)
        check_float("--image-fraction", self.image_fraction, 0.0, 10.0, lo_open=True)
        check_int("--reference-sets", self.reference_sets, 2, 1000)
        check_int("reference_seed", self.reference_seed, 0)
        for g in self.guardband_variants:
            check_float("guardband_variants", g, 0.0, 0.4, lo_open=True)
        check_int("profile_groups", self.profile_groups, 1, 1000)
        check_int("profile_seed", self.profile_seed, 0)
        check_choice("--kernel", self.kernel, ("fast", "exact"))

    @classmethod
    def quick(cls, **overrides: Any) -> ExploreConfig:
        """The ``--quick`` grid: 2 points per mode, the typical chip and 2 seeded ones, one
        seed, 6 steps, 8 samples, checkpoint intervals 1 and 2, 5 reference sets."""
        base = cls(
            vdd=(0.75, 0.72),
            freq_ghz=(1.35, 1.45),
            chips=("typical", 0, 1),
            seeds=(0,),
            steps=6,
            samples=8,
            intervals=(1, 2),
            closed_loop_targets=(1e-6,),
            profile_groups=2,
            reference_sets=5,
        )
        return replace(base, **overrides)


@dataclass(frozen=True)
class Configuration:
    """One policy configuration of the grid (before chips and seeds)."""

    policy: str
    spec: str
    mode: str
    knob: float | None
    interval: int | None = None


def policy_specs(cfg: ExploreConfig, mode: str) -> Iterator[Configuration]:
    """Every policy configuration of ``mode`` (knob in V or GHz); ``nominal`` is not
    mode-specific and comes from :func:`configurations`."""
    knobs = cfg.vdd if mode == "undervolt" else cfg.freq_ghz
    key = "vdd" if mode == "undervolt" else "freq_ghz"
    after = max(1, round(cfg.protect * cfg.steps))
    for policy in cfg.policies:
        if policy == "nominal":
            continue
        if policy == "guardband":
            yield Configuration(policy, f"guardband:mode={mode}", mode, None)
        elif policy == "closed-loop":
            limit = min(knobs) if mode == "undervolt" else max(knobs) * 1e9
            for target in cfg.closed_loop_targets:
                yield Configuration(
                    policy,
                    f"closed-loop:mode={mode},target={target:g},limit={limit:g},start=guardband",
                    mode,
                    None,
                )
        elif policy == "drift":
            for k in knobs:
                for interval in cfg.intervals:
                    yield Configuration(
                        policy,
                        f"drift:mode={mode},{key}={k:g},protect={cfg.protect:g},"
                        f"interval={interval}",
                        mode,
                        k,
                        interval,
                    )
        else:
            extra = f",after={after}" if policy == "timestep" else ""
            for k in knobs:
                yield Configuration(policy, f"{policy}:mode={mode},{key}={k:g}{extra}", mode, k)


def configurations(cfg: ExploreConfig) -> list[Configuration]:
    """The grid's policy configurations: ``nominal`` once (it is the same run in both modes),
    then each mode's."""
    out = []
    if "nominal" in cfg.policies:
        out.append(Configuration("nominal", "nominal", "both", None))
    for mode in cfg.modes:
        out.extend(policy_specs(cfg, mode))
    return out


def _chip_value(chip: Chip) -> Chip:
    return "typical" if chip == "typical" else int(chip)


def base_config(cfg: ExploreConfig, hw: HardwareConfig) -> dict[str, Any]:
    """The ``model-run`` keys every trial of ``cfg`` shares."""
    from accelsim.experiments.trials import hardware_to_dict

    return {
        "model": cfg.model,
        "samples": cfg.samples,
        "steps": cfg.steps,
        "method": "ddim",
        "guidance": "model" if cfg.guidance is None else cfg.guidance,
        "hardware": hardware_to_dict(hw),
        "kernel": cfg.kernel,
    }


# --------------------------------------------------------------------------- profiling


def _profile_blocks(cfg: ExploreConfig, state: Any, base: dict[str, Any]) -> list[str]:
    """The blocks of the model (from one golden run's books), outside-block GEMMs as ''."""
    from accelsim.experiments import trials

    golden = trials.golden_for(trials.normalize({**base, "seed": cfg.profile_seed}), state)
    return sorted({c.block for c in golden.outcome.report.by_context})


def profile_reference_vdd(cfg: ExploreConfig) -> float:
    """The undervolt point each profiled cell runs at: the most aggressive of the ``vdd``
    grid (where cells see enough errors for their loss per error to be measured)."""
    return min(cfg.vdd) if cfg.vdd else 0.72


def profile_campaign(cfg: ExploreConfig, base: dict[str, Any], blocks: list[str]) -> Any:
    """Campaign ``explore-profile``: one trial per block x timestep group, that cell at the
    reference point (``timestep`` policy restricted to the block), the rest nominal."""
    from accelsim.campaign.spec import parse_campaign
    from accelsim.experiments.profiling import timestep_groups

    ref = profile_reference_vdd(cfg)
    include = []
    for block in blocks:
        for t0, t1 in timestep_groups(cfg.steps, cfg.profile_groups):
            name = block or "-"
            include.append(
                {
                    "policy": f"timestep:vdd={ref:g},ranges={t0}-{t1},blocks={name}",
                    "cell": {"block": block, "t_start": t0, "t_stop": t1},
                }
            )
    return parse_campaign(
        {
            "campaign": {
                "name": PROFILE_CAMPAIGN,
                "trial": "model-run",
                "description": f"block x timestep sensitivity of {cfg.model} at {ref:g} V",
            },
            "fixed": {
                **base,
                "seed": cfg.profile_seed,
                "chip": _chip_value(cfg.chips[0]),
            },
            "include": include,
        }
    )


def profile_from_trials(stored: list[Any]) -> tuple[Any, list[Any]]:
    """The sensitivity profile (quality loss per timing error, per cell) and the cell results
    from the profile campaign's stored trials."""
    from accelsim.dvfs.profile import ProfileCell, SensitivityProfile
    from accelsim.experiments.profiling import CellResult

    results = []
    for t in stored:
        cell = t.config["cell"]
        m = t.metrics or {}
        results.append(
            CellResult(
                cell["block"],
                int(cell["t_start"]),
                int(cell["t_stop"]),
                float(m.get("timing_errors") or 0.0),
                float(m.get("feature_distance") or 0.0),
            )
        )
    cells = tuple(
        ProfileCell(block=r.block, t_start=r.t_start, t_stop=r.t_stop, sensitivity=r.sensitivity)
        for r in results
    )
    return SensitivityProfile(cells), results


# --------------------------------------------------------------------------- the grid


def _trial_point(
    c: Configuration, seed: int, chip: Chip, profile_rows: Any, **cell: Any
) -> dict[str, Any]:
    """The ``model-run`` keys of one configuration on one chip and seed (``cell``: labels the
    report reads back; None values are left out, TOML has no null)."""
    labels = {"policy": c.policy, "mode": c.mode, "knob": c.knob, "interval": c.interval}
    point: dict[str, Any] = {
        "seed": seed,
        "chip": _chip_value(chip),
        "policy": c.spec,
        "cell": {k: v for k, v in {**labels, **cell}.items() if v is not None},
    }
    if c.policy == "drift":
        point["profile"] = profile_rows
    return point


def _campaign(name: str, description: str, fixed: dict[str, Any], include: list[Any]) -> Any:
    from accelsim.campaign.spec import parse_campaign

    return parse_campaign(
        {
            "campaign": {"name": name, "trial": "model-run", "description": description},
            "fixed": fixed,
            "include": include,
        }
    )


def explore_campaign(cfg: ExploreConfig, base: dict[str, Any], profile_rows: Any) -> Any:
    """Campaign ``explore``: every configuration x chip x seed as a ``model-run`` trial."""
    include = [
        _trial_point(c, seed, chip, profile_rows)
        for chip in cfg.chips
        for seed in cfg.seeds
        for c in configurations(cfg)
    ]
    return _campaign(CAMPAIGN, f"accelsim explore of {cfg.model}", base, include)


ROBUSTNESS_CAMPAIGN = "explore-robustness"
#: Measurements outside the store that a rerun reuses (references, guardbands), in ``--out``.
CACHE_NAME = "explore-cache.json"


class _Memo:
    """Results of deterministic measurements keyed by the SHA-256 of their inputs, kept in a
    JSON file next to the store (so a rerun that only re-judges or re-reports is fast)."""

    def __init__(self, path: Path) -> None:
        import json

        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, inputs: Any, compute: Callable[[], Any]) -> Any:
        import hashlib
        import json

        from accelsim.campaign.spec import canonical_json

        key = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
        if key not in self.data:
            self.data[key] = compute()
            _atomic_write(self.path, json.dumps(self.data, indent=0, sort_keys=True))
        return self.data[key]


def guardband_for(target: float, hw: HardwareConfig, *, tol: float = 0.002) -> float:
    """The ``[delay] guardband`` at which the typical chip's measured guardband
    (:func:`accelsim.timing.errors.measured_guardband`) is ``target`` (fraction of Vnom),
    by the secant method (the relation is close to linear, slope ~1)."""
    from dataclasses import replace as dc_replace

    from accelsim.timing.errors import TimingModel, measured_guardband

    base = TimingModel.for_hardware(hw)

    def measured(g: float) -> float:
        model = dc_replace(base, delay=dc_replace(base.delay, guardband=g))
        return measured_guardband(model, array=hw.array, n_samples=1 << 19).fraction

    g0 = base.delay.guardband
    m0 = measured(g0)
    g1 = min(0.45, max(0.01, g0 + (target - m0)))
    for _ in range(8):
        m1 = measured(g1)
        if abs(m1 - target) <= tol or m1 == m0:
            break
        g0, m0, g1 = g1, m1, min(0.45, max(0.01, g1 + (target - m1) * (g1 - g0) / (m1 - m0)))
    return round(g1, 4)


def robustness_campaign(
    cfg: ExploreConfig, base: dict[str, Any], profile_rows: Any, variants: dict[str, float]
) -> Any:
    """Campaign ``explore-robustness``: every configuration on the typical chip and the first
    seed, once per calibration variant (``{label: delay guardband}``)."""
    include = []
    for label, guardband in variants.items():
        delay = {**base["hardware"]["delay"], "guardband": guardband}
        hardware = {**base["hardware"], "delay": delay}
        for c in configurations(cfg):
            point = _trial_point(c, cfg.seeds[0], "typical", profile_rows, variant=label)
            include.append({**point, "hardware": hardware})
    fixed = {k: v for k, v in base.items() if k != "hardware"}
    return _campaign(
        ROBUSTNESS_CAMPAIGN,
        f"accelsim explore of {cfg.model}: calibration variants",
        fixed,
        include,
    )


@dataclass
class ExploreResult:
    """What an explore run produced: the rows of this grid (store order), the profile cells,
    the quality references and where everything lives."""

    cfg: ExploreConfig
    rows: list[dict[str, Any]]
    references: Any
    cells: list[Any] = field(default_factory=list)
    reused: int = 0
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    #: Rows of the calibration variants, by label (e.g. ``"measured guardband 10%"``).
    variant_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    variant_ran: int = 0
    variant_reused: int = 0
    measured_guardband: float | None = None


def _row(trial: Any, cfg: ExploreConfig, hw: HardwareConfig) -> dict[str, Any]:
    """One results.csv row from a stored trial (config + metrics)."""
    m = dict(trial.metrics or {})
    cell = trial.config["cell"]
    mode = cell["mode"]
    knob = cell.get("knob")
    vnom, fnom_ghz = hw.tech.vnom, hw.tech.fnom / 1e9
    mean_v = m.get("mean_vdd")
    mean_f = m.get("mean_freq_ghz")
    vdd: Any
    freq: Any
    if mode == "undervolt":
        vdd = knob if knob is not None else mean_v
        freq = fnom_ghz
    elif mode == "overclock":
        vdd = vnom
        freq = knob if knob is not None else mean_f
    else:
        vdd, freq = vnom, fnom_ghz
    row: dict[str, Any] = {
        "policy": cell["policy"],
        "spec": trial.config["policy"],
        "mode": mode,
        "vdd": vdd,
        "freq_ghz": freq,
        "interval": cell.get("interval"),
        "chip": trial.config["chip"],
        "seed": trial.config["seed"],
        "trial_id": trial.id,
        "wall_s": trial.wall_s,
        "meets_quality": None,
    }
    for key in COLUMNS:
        if key not in row:
            row[key] = m.get(key)
    return row


def _progress_fn(
    progress: Callable[[str, int, int], None] | None, phase: str, total: int
) -> tuple[Callable[[int], None], Callable[[Any], None]]:
    done = [0]

    def on_start(n: int) -> None:
        done[0] = total - n
        if progress is not None:
            progress(phase, done[0], total)

    def on_result(result: Any) -> None:
        done[0] += 1
        if progress is not None:
            progress(phase, done[0], total)

    return on_start, on_result


def explore(
    cfg: ExploreConfig,
    hw: HardwareConfig,
    out_dir: Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 1,
    dask: str | None = None,
) -> ExploreResult:
    """Run (or resume) the exploration into ``out_dir``.

    ``workers > 1`` runs trials in that many processes, ``dask`` on a Dask cluster; every
    trial is a deterministic function of its config, so the rows are the same whatever ran
    them (only ``wall_s`` differs).
    """
    from accelsim.campaign.executors import _state_for, make_executor
    from accelsim.campaign.registry import get_trial_kind
    from accelsim.campaign.runner import run_campaign
    from accelsim.campaign.store import Store
    from accelsim.experiments import trials
    from accelsim.experiments.quality_refs import measure_references

    out_dir.mkdir(parents=True, exist_ok=True)
    kind = get_trial_kind(trials.KIND)
    state = _state_for(kind)  # shared with the serial executor (goldens computed once)
    base = base_config(cfg, hw)
    result = ExploreResult(cfg=cfg, rows=[], references=None)
    with Store(out_dir / STORE_NAME) as store:
        profile_rows: Any = []
        if "drift" in cfg.policies:
            blocks = _profile_blocks(cfg, state, base)
            camp = profile_campaign(cfg, base, blocks)
            on_start, on_result = _progress_fn(
                progress, "profiling block x timestep", len(camp.trials)
            )
            with make_executor(workers=workers, dask=dask, serial=workers <= 1 and not dask) as ex:
                run_campaign(camp, store, executor=ex, on_start=on_start, on_result=on_result)
            stored = _stored_trials(store, camp)
            profile, cells = profile_from_trials(stored)
            result.cells = cells
            profile_rows = trials.profile_rows(profile)
            _write_profile(cfg, out_dir, profile, cells)
        camp = explore_campaign(cfg, base, profile_rows)
        on_start, on_result = _progress_fn(progress, "configurations", len(camp.trials))
        summary = None
        with make_executor(workers=workers, dask=dask, serial=workers <= 1 and not dask) as ex:
            summary = run_campaign(camp, store, executor=ex, on_start=on_start, on_result=on_result)
        result.reused = summary.skipped
        result.ran = summary.ran
        stored = _stored_trials(store, camp)
        result.failed = [f"{t.config['policy']}: {t.error}" for t in stored if t.status == "failed"]
        result.rows = [_row(t, cfg, hw) for t in stored if t.status == "done"]
        if cfg.robustness:
            from accelsim.timing.errors import TimingModel, measured_guardband

            if progress is not None:
                progress("calibration variants", 0, len(cfg.guardband_variants))
            memo = _Memo(out_dir / CACHE_NAME)
            result.measured_guardband = memo.get(
                {"measured_guardband": base["hardware"]},
                lambda: measured_guardband(TimingModel.for_hardware(hw), array=hw.array).fraction,
            )
            variants = {}
            for i, g in enumerate(cfg.guardband_variants):

                def solve(target: float = g) -> float:
                    return guardband_for(target, hw)

                variants[f"measured guardband {100 * g:.0f}%"] = memo.get(
                    {"guardband_for": g, "hardware": base["hardware"]}, solve
                )
                if progress is not None:
                    progress("calibration variants", i + 1, len(cfg.guardband_variants))
            camp = robustness_campaign(cfg, base, profile_rows, variants)
            on_start, on_result = _progress_fn(
                progress, "robustness (typical chip)", len(camp.trials)
            )
            with make_executor(workers=workers, dask=dask, serial=workers <= 1 and not dask) as ex:
                summary = run_campaign(
                    camp, store, executor=ex, on_start=on_start, on_result=on_result
                )
            result.variant_reused = summary.skipped
            result.variant_ran = summary.ran
            for t in _stored_trials(store, camp):
                if t.status != "done":
                    result.failed.append(f"{t.config['policy']}: {t.error}")
                    continue
                label = t.config["cell"]["variant"]
                result.variant_rows.setdefault(label, []).append(_row(t, cfg, hw))
    result.references = measure_references(
        cfg, base, state, progress=progress, memo=_Memo(out_dir / CACHE_NAME)
    )
    judge_rows(result.rows, result.references, cfg)
    for rows in result.variant_rows.values():
        judge_rows(rows, result.references, cfg)
    write_results_csv(result.rows, out_dir / "results.csv")
    return result


def _stored_trials(store: Any, camp: Any) -> list[Any]:
    """The stored trials of ``camp``'s current grid, in grid order (other ids are ignored)."""
    by_id = {t.id: t for t in store.trials(camp.name)}
    return [by_id[t.id] for t in camp.trials if t.id in by_id]


def judge_rows(rows: list[dict[str, Any]], refs: Any, cfg: ExploreConfig) -> None:
    """Fill the verdict columns of every row (``meets_dataset``, ``meets_image``,
    ``meets_strict``, ``meets_quality`` by the deciding criterion) in place."""
    for r in rows:
        r.update(refs.judge(r))


def _write_profile(cfg: ExploreConfig, out_dir: Path, profile: Any, cells: list[Any]) -> None:
    from accelsim.report.explore_report import plot_sensitivity

    ref = profile_reference_vdd(cfg)
    chip = cfg.chips[0]
    text = (
        f"# sensitivity of {cfg.model}: quality loss (feature distance) per timing error, "
        f"cell at {ref:g} V, rest nominal, seed {cfg.profile_seed}, chip {chip}\n"
        + profile.to_csv()
    )
    _atomic_write(out_dir / "sensitivity.csv", text)
    table = {(c.block or "(outside blocks)", c.t_start): c.sensitivity for c in cells}
    plot_sensitivity(
        table,
        out_dir / "sensitivity.png",
        title=f"{cfg.model}: quality loss per timing error (cell at {ref:g} V, rest nominal)",
    )


def _fmt(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if v is None:
        return ""
    return v


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Export ``rows`` (full float precision) to ``path`` atomically."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(r.get(k)) for k in COLUMNS})
    _atomic_write(path, buf.getvalue())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an existing results.csv (empty if absent); a foreign file is an error."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
            raise ConfigError(
                f"{path}: got columns {reader.fieldnames}, expected an accelsim explore "
                "results.csv of this version (rerun accelsim explore into that --out)"
            )
        return list(reader)


def finish(result: ExploreResult, hw: HardwareConfig, out_dir: Path) -> str:
    """Write pareto.png and report.md; returns the report text."""
    from accelsim.report.explore_report import (
        aggregate,
        markdown_report,
        plot_pareto,
        verdict_table,
    )

    cfg = result.cfg
    refs = result.references
    array = f"{hw.array.rows}x{hw.array.cols} {hw.array.dataflow}"
    points = aggregate(result.rows, modes=cfg.modes)
    plot_pareto(
        points,
        out_dir / "pareto.png",
        threshold=refs.threshold,
        title=f"{cfg.model} on {array}: {len(cfg.chips)} chip(s) x {len(cfg.seeds)} seed(s), "
        f"{cfg.steps} steps",
        threshold_label=(
            "strict threshold" if cfg.quality == "strict" else "image-criterion threshold"
        ),
    )
    guidance = result.rows[0]["guidance"] if result.rows else cfg.guidance
    chips = ", ".join(str(c) for c in cfg.chips)
    head = [
        f"# accelsim explore: {cfg.model} on {array}",
        "",
        f"{cfg.samples} samples per run, {cfg.steps} DDIM steps, classifier-free guidance "
        f"{guidance} ({'the model' + chr(39) + 's recommended scale' if cfg.guidance is None else 'given'}); "
        f"chips {chips} (typical = the median die); seeds {', '.join(map(str, cfg.seeds))}; "
        f"timing errors from the calibrated model ({cfg.kernel} kernel). Trials: {result.ran} "
        f"run, {result.reused} reused from {STORE_NAME} (robustness: {result.variant_ran} run, "
        f"{result.variant_reused} reused).",
        "",
        chip_line(cfg, hw, _Memo(out_dir / CACHE_NAME)),
        "",
        "## Verdict under each quality criterion",
        "",
        f"The deciding criterion (--quality) is **{cfg.quality}**. A policy keeps quality when "
        "every chip and seed does.",
        "",
        verdict_table(result.rows, CRITERIA, cfg.modes, deciding=cfg.quality),
        "Criteria:",
        "",
        *(f"* {c}: {refs.describe(c)}." for c in CRITERIA),
        "",
        f"## Per policy, by the {cfg.quality} criterion",
        "",
    ]
    body = markdown_report(
        points,
        model=cfg.model,
        array=array,
        criterion=refs.describe(),
        title=False,
        extra="",
    )
    text = "\n".join(head) + body + robustness_section(result, hw, out_dir)
    text += "\nFiles: results.csv, pareto.png, robustness.png, sensitivity.png, explore.db.\n"
    _atomic_write(out_dir / "report.md", text)
    return text


def robustness_settings(result: ExploreResult) -> list[Any]:
    """The assumption settings of the robustness check, the calibrated one first: each varies
    one assumption (criterion, chip requirement, SRAM rails, measured guardband)."""
    from accelsim.report.explore_report import Setting

    cfg = result.cfg
    key = f"meets_{cfg.quality}"
    mg = result.measured_guardband
    calibrated = f"as calibrated ({cfg.quality} criterion, every chip, dual-rail SRAM" + (
        f", measured guardband {100 * mg:.1f}%)" if mg is not None else ")"
    )
    settings = [Setting(calibrated, result.rows, key)]
    for c in CRITERIA:
        if c != cfg.quality:
            settings.append(Setting(f"{c} criterion", result.rows, f"meets_{c}"))
    if len(cfg.chips) > 1:
        settings.append(Setting("median chip (half the chips keep quality)", result.rows, key, 0.5))
    settings.append(
        Setting(
            "SRAM cells and periphery on a fixed rail",
            result.rows,
            key,
            1.0,
            "energy_saving_sram_fixed",
        )
    )
    settings.append(
        Setting(
            "whole SRAM on the scaled rail (>= 0.70 V)",
            result.rows,
            key,
            1.0,
            "energy_saving_sram_shared",
        )
    )
    for label, rows in result.variant_rows.items():
        settings.append(Setting(f"{label} (typical chip)", rows, key))
    return settings


def robustness_section(result: ExploreResult, hw: HardwareConfig, out_dir: Path) -> str:
    """The report's robustness section (and ``robustness.png``)."""
    from accelsim.report.explore_report import (
        plot_robustness,
        robustness,
        robustness_markdown,
    )

    cfg = result.cfg
    verdicts = robustness(robustness_settings(result), cfg.modes)
    plot_robustness(verdicts, cfg.modes, out_dir / "robustness.png")
    note = (
        "Each setting varies one assumption of the verdict; the guardband variants rerun every "
        "configuration on the typical chip (first seed) with the delay model's guardband set so "
        "that the typical chip's measured guardband is that fraction of Vnom."
        if result.variant_rows
        else "Each setting varies one assumption of the verdict (calibration variants not run)."
    )
    return "\n## Robustness\n\n" + note + "\n\n" + robustness_markdown(verdicts, cfg.modes)


def chip_line(cfg: ExploreConfig, hw: HardwareConfig, memo: _Memo | None = None) -> str:
    """One sentence on the chip population: each chip's die-to-die offset (sigma) and measured
    guardband (largest undervolt with < 1 expected error per 1e9 MACs)."""
    from accelsim.timing.errors import TimingModel, measured_guardband
    from accelsim.timing.variation import chip_map

    model = TimingModel.for_hardware(hw)
    parts = []
    for chip in cfg.chips:
        seed = None if chip == "typical" else int(chip)

        def measure(seed: int | None = seed) -> float:
            return measured_guardband(model, array=hw.array, chip=seed, n_samples=1 << 19).fraction

        inputs = {"chip_guardband": seed, "hardware": hardware_dict(hw)}
        fraction = memo.get(inputs, measure) if memo is not None else measure()
        if seed is None:
            parts.append(f"typical {100 * fraction:.1f}%")
        else:
            d2d = chip_map(hw.array.rows, hw.array.cols, seed, model.variation).d2d
            parts.append(f"chip {seed} ({d2d:+.1f} sigma) {100 * fraction:.1f}%")
    return (
        "Measured guardband of each chip (largest undervolt at 1 GHz with < 1 expected timing "
        "error per 1e9 MACs; die-to-die offset in sigma): " + ", ".join(parts) + "."
    )


def hardware_dict(hw: HardwareConfig) -> dict[str, Any]:
    """``hw`` as a resolved hardware table (:func:`accelsim.experiments.trials.hardware_to_dict`)."""
    from accelsim.experiments.trials import hardware_to_dict

    return hardware_to_dict(hw)
