"""``accelsim explore``: DVFS and ABFT policies over operating points, chips and seeds.

The main job. For a shipped diffusion model on an array it

1. measures the quality threshold: the feature distance between the float model's samples and
   the W8A8 golden samples of the same seeds (errors may perturb the output no more than
   quantization already does), unless ``threshold`` is given;
2. profiles block x timestep sensitivity (:mod:`accelsim.profiling`) on a separate profiling
   seed at a reference undervolt point (the ``drift`` policy protects the most fragile cells);
3. runs every policy x operating point x chip x seed, in undervolt (V knob, f = fnom) and/or
   overclock (f knob, V = Vnom) mode, each compared with the golden run of its seed and
   measured against the ``nominal`` run on the same chip and seed (energy saving, speed-up);
4. writes ``results.csv`` (one row per configuration, appended as each finishes: an interrupted
   run keeps its rows and a rerun skips them), ``pareto.png``, ``sensitivity.png``,
   ``sensitivity.csv`` and ``report.md``.

Policies (:mod:`accelsim.dvfs.policies`) and their protection: ``nominal``; ``guardband``;
``uniform`` (no protection); ``thundervolt`` (late updates dropped); ``timestep`` (the first
``protect`` fraction of steps at nominal); ``drift`` (the ``protect`` fraction of most fragile
block x timestep cells at nominal, rollback ABFT); ``closed-loop`` (per-block controller on
ABFT detections, no profile; one configuration per detection-rate target).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accelsim.config import HardwareConfig, check_choice, check_float, check_int
from accelsim.errors import ConfigError

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
#: Columns of results.csv, in order.
COLUMNS = (
    "policy",
    "spec",
    "mode",
    "vdd",
    "freq_ghz",
    "mean_vdd",
    "mean_freq_ghz",
    "chip",
    "seed",
    "energy_j",
    "latency_s",
    "energy_saving",
    "speedup",
    "feature_distance",
    "psnr_db",
    "ssim",
    "class_accuracy",
    "meets_quality",
    "abft_detections",
    "abft_corrections",
    "rollbacks",
    "transitions",
    "timing_errors",
    "wall_s",
)


@dataclass(frozen=True)
class ExploreConfig:
    """The exploration grid (voltages in V, frequencies in GHz)."""

    model: str = "dit-digits"
    modes: tuple[str, ...] = MODES
    policies: tuple[str, ...] = POLICY_NAMES
    vdd: tuple[float, ...] = (0.84, 0.82, 0.80)
    freq_ghz: tuple[float, ...] = (1.15, 1.2, 1.3)
    chips: tuple[int, ...] = (0, 1)
    seeds: tuple[int, ...] = (0,)
    steps: int = 10
    samples: int = 4
    threshold: float | None = None
    kernel: str = "fast"
    protect: float = 0.3
    closed_loop_targets: tuple[float, ...] = (1e-6,)
    profile_groups: int = 5
    profile_seed: int = 1000
    checkpoint_interval: int = 10

    def __post_init__(self) -> None:
        for m in self.modes:
            check_choice("--mode", m, MODES)
        for p in self.policies:
            check_choice("--policies", p, POLICY_NAMES)
        if not self.policies:
            raise ConfigError("--policies: got none, expected at least one policy")
        for v in self.vdd:
            check_float("--vdd", v, 0.4, 1.2, unit="V")
        for f in self.freq_ghz:
            check_float("--freq", f, 0.1, 10.0, unit="GHz")
        check_int("--steps", self.steps, 1, 1000)
        check_int("--samples", self.samples, 1, 1000)
        check_float("protect", self.protect, 0.0, 1.0)
        if self.threshold is not None:
            check_float("--threshold", self.threshold, 0.0, 10.0)
        for c in self.chips:
            check_int("--chips", c, 0)
        for s in self.seeds:
            check_int("--seeds", s, 0)

    @classmethod
    def quick(cls, **overrides: Any) -> ExploreConfig:
        """The ``--quick`` grid: 2 points per mode, one chip, one seed, 6 steps, 4 samples."""
        base = cls(
            vdd=(0.84, 0.80),
            freq_ghz=(1.2, 1.3),
            chips=(0,),
            seeds=(0,),
            steps=6,
            samples=4,
            closed_loop_targets=(1e-6,),
            profile_groups=2,
        )
        return replace(base, **overrides)


@dataclass(frozen=True)
class Trial:
    """One configuration: a policy spec in a mode, on a chip, with a seed."""

    policy: str
    spec: str
    mode: str
    knob: float | None
    chip: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.spec, self.mode, self.chip, self.seed)


def policy_specs(cfg: ExploreConfig, mode: str) -> Iterator[tuple[str, str, float | None]]:
    """``(policy, spec, knob)`` of every configuration of ``mode`` (knob in V or GHz)."""
    knobs = cfg.vdd if mode == "undervolt" else cfg.freq_ghz
    key = "vdd" if mode == "undervolt" else "freq_ghz"
    after = max(1, round(cfg.protect * cfg.steps))
    for policy in cfg.policies:
        if policy == "nominal":
            yield policy, f"nominal:mode={mode}", None
        elif policy == "guardband":
            yield policy, f"guardband:mode={mode}", None
        elif policy == "closed-loop":
            limit = min(knobs) if mode == "undervolt" else max(knobs) * 1e9
            for target in cfg.closed_loop_targets:
                yield (
                    policy,
                    f"closed-loop:mode={mode},target={target:g},limit={limit:g},start=guardband",
                    None,
                )
        else:
            for k in knobs:
                extra = ""
                if policy == "timestep":
                    extra = f",after={after}"
                elif policy == "drift":
                    extra = f",protect={cfg.protect:g}"
                yield policy, f"{policy}:mode={mode},{key}={k:g}{extra}", k


def trials(cfg: ExploreConfig) -> list[Trial]:
    """Every configuration, nominal first (it is the baseline of the others)."""
    out = []
    for chip in cfg.chips:
        for seed in cfg.seeds:
            for mode in cfg.modes:
                for policy, spec, knob in policy_specs(cfg, mode):
                    out.append(Trial(policy, spec, mode, knob, chip, seed))
    out.sort(key=lambda t: (t.policy != "nominal", t.chip, t.seed))
    return out


@dataclass
class ExploreState:
    """What an explore run keeps between trials: model session, goldens, profile."""

    cfg: ExploreConfig
    hw: HardwareConfig
    session: Any
    goldens: dict[int, Any] = field(default_factory=dict)
    profile: Any = None
    threshold: float = 0.0


def _float_model_outputs(state: ExploreState, seed: int) -> Any:
    """Samples of the un-intercepted float model for ``seed`` (same noise as the W8A8 runs)."""
    import torch

    from accelsim.diffusion.sampler import SamplerConfig, sample
    from accelsim.diffusion.schedule import NoiseSchedule
    from accelsim.rng import torch_generator

    s = state.session
    inputs = s.inputs()
    mconf = dict(getattr(s.model, "accelsim_config", {}))
    n = int(inputs["labels"].shape[0])
    with torch.no_grad():
        golden = state.goldens[seed].output
        res = sample(
            s.model,
            tuple(golden.shape),
            inputs["cond"],
            null_cond=inputs["null"],
            schedule=NoiseSchedule.from_config(mconf),
            config=SamplerConfig(
                method=s.config.method, steps=s.config.steps, guidance=s.config.guidance
            ),
            generator=torch_generator(seed, "sampler", s.config.model),
        )
    assert res.x.shape[0] == n
    return res.x


def prepare(
    cfg: ExploreConfig,
    hw: HardwareConfig,
    out_dir: Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> ExploreState:
    """Load the model, run the goldens, fix the threshold and measure the profile."""
    from accelsim.config import OperatingPoint
    from accelsim.dvfs.profile import load_profile
    from accelsim.profiling import measure_sensitivity
    from accelsim.quality.features import feature_distance
    from accelsim.runner import ModelSession, SessionConfig, make_accelerator

    session = ModelSession(SessionConfig(model=cfg.model, samples=cfg.samples, steps=cfg.steps))
    if session.kind != "diffusion":
        raise ConfigError(
            f"--model: got {cfg.model!r} ({session.kind}), expected a diffusion model (dit-digits, unet-digits)"
        )
    state = ExploreState(cfg, hw, session)
    nominal = OperatingPoint.nominal(hw.tech)
    for seed in cfg.seeds:
        acc = make_accelerator(hw, kernel=cfg.kernel, seed=seed)
        state.goldens[seed] = session.run(acc, nominal, seed=seed)
    if cfg.threshold is None:
        fds = [
            feature_distance(
                session.feature_net(), _float_model_outputs(state, s), state.goldens[s].output
            )
            for s in cfg.seeds
        ]
        state.threshold = float(sum(fds) / len(fds))
    else:
        state.threshold = cfg.threshold
    if "drift" in cfg.policies:
        path = out_dir / "sensitivity.csv"
        if path.is_file():
            state.profile = load_profile(path)
        else:
            golden = state.goldens[cfg.seeds[0]]
            blocks = sorted({c.block for c in golden.report.by_context})
            ref_v = sorted(cfg.vdd)[len(cfg.vdd) // 2] if cfg.vdd else 0.76
            hot = OperatingPoint(vdd=ref_v, freq=hw.tech.fnom)

            def prog(done: int, total: int) -> None:
                if progress is not None:
                    progress("profiling block x timestep", done, total)

            state.profile, cells = measure_sensitivity(
                session,
                hw,
                hot,
                blocks=blocks,
                groups=cfg.profile_groups,
                seeds=(cfg.profile_seed,),
                chip=cfg.chips[0],
                kernel=cfg.kernel,
                progress=prog,
            )
            path.write_text(
                f"# sensitivity of {cfg.model}: quality loss (feature distance) per timing error, "
                f"cell at {ref_v:g} V / {hw.tech.fnom / 1e9:g} GHz, rest nominal, seed {cfg.profile_seed}, chip {cfg.chips[0]}\n"
                + state.profile.to_csv()
            )
            from accelsim.report.explore_report import plot_sensitivity

            table = {(c.block or "(outside blocks)", c.t_start): c.sensitivity for c in cells}
            plot_sensitivity(
                table,
                out_dir / "sensitivity.png",
                title=f"{cfg.model}: quality loss per timing error (cell at {ref_v:g} V, rest nominal)",
            )
    return state


def run_trial(state: ExploreState, trial: Trial, baseline: dict[str, Any] | None) -> dict[str, Any]:
    """Run one configuration; ``baseline`` is the nominal row of the same chip and seed."""
    from accelsim.dvfs.policies import parse_policy
    from accelsim.protect import ProtectedAccelerator
    from accelsim.timing.errors import TimingModel

    cfg = state.cfg
    hw = state.hw
    timing = TimingModel.for_hardware(hw)
    policy = parse_policy(trial.spec, hw, profile=state.profile, delay=timing.delay)
    acc = ProtectedAccelerator(
        hw,
        policy=policy,
        kernel=cfg.kernel,
        chip=trial.chip,
        seed=trial.seed,
        timing=timing,
        checkpoint_interval=cfg.checkpoint_interval,
    )
    start = time.perf_counter()
    out = state.session.run(acc, acc.decide, seed=trial.seed, guard=acc.guard)
    wall = time.perf_counter() - start
    q = state.session.compare(state.goldens[trial.seed], out)
    rep = out.report
    st = acc.stats
    fd = float(q.get("feature_distance") or 0.0)
    e = rep.total_energy_j
    lat = rep.latency_s
    row: dict[str, Any] = {
        "policy": trial.policy,
        "spec": trial.spec,
        "mode": trial.mode,
        "vdd": trial.knob
        if trial.mode == "undervolt" and trial.knob is not None
        else (st.mean_vdd or hw.tech.vnom),
        "freq_ghz": trial.knob
        if trial.mode == "overclock" and trial.knob is not None
        else (st.mean_freq or hw.tech.fnom) / 1e9,
        "mean_vdd": st.mean_vdd,
        "mean_freq_ghz": (st.mean_freq or 0.0) / 1e9,
        "chip": trial.chip,
        "seed": trial.seed,
        "energy_j": e,
        "latency_s": lat,
        "energy_saving": 0.0 if baseline is None else 1.0 - e / float(baseline["energy_j"]),
        "speedup": 1.0 if baseline is None else float(baseline["latency_s"]) / lat,
        "feature_distance": fd,
        "psnr_db": q.get("psnr_db"),
        "ssim": q.get("ssim"),
        "class_accuracy": q.get("class_accuracy"),
        "meets_quality": fd <= state.threshold,
        "abft_detections": st.abft_detections,
        "abft_corrections": st.abft_corrections,
        "rollbacks": st.rollbacks + int(out.sampler.get("rollbacks", 0)),
        "transitions": st.transitions,
        "timing_errors": rep.errors_injected,
        "wall_s": wall,
    }
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an existing results.csv (empty if absent); a foreign file is an error."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
            raise ConfigError(
                f"{path}: got columns {reader.fieldnames}, expected an accelsim explore results.csv "
                "(use another --out or delete the file)"
            )
        return list(reader)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    if v is None:
        return ""
    return v


#: Per-worker-process state of a parallel explore (built once by :func:`_worker_init`).
_WORKER_STATE: ExploreState | None = None


def _worker_init(cfg: ExploreConfig, hw: HardwareConfig, out_dir: Path) -> None:
    """Process-pool initializer: one torch thread, the model and goldens loaded once."""
    import torch

    global _WORKER_STATE
    torch.set_num_threads(1)
    _WORKER_STATE = prepare(cfg, hw, out_dir)


def _worker_run(trial: Trial, baseline: dict[str, Any] | None) -> dict[str, Any]:
    assert _WORKER_STATE is not None
    return run_trial(_WORKER_STATE, trial, baseline)


def explore(
    cfg: ExploreConfig,
    hw: HardwareConfig,
    out_dir: Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 1,
) -> tuple[list[dict[str, Any]], ExploreState]:
    """Run (or resume) the exploration into ``out_dir``; returns all rows and the state.

    With ``workers > 1`` the configurations run in that many spawned processes (each loads the
    model and its goldens once); every row is a deterministic function of its configuration, so
    the rows are the same whatever the worker count (only ``wall_s`` differs).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.csv"
    done_rows = read_rows(path)
    done = {(r["spec"], r["mode"], int(r["chip"]), int(r["seed"])): r for r in done_rows}
    state = prepare(cfg, hw, out_dir, progress=progress)
    todo = trials(cfg)
    total = len(todo)
    new_file = not path.is_file()

    def base_key(t: Trial) -> tuple[str, str, int, int]:
        return (f"nominal:mode={t.mode}", t.mode, t.chip, t.seed)

    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        if new_file:
            writer.writeheader()
            fh.flush()

        def record(key: tuple[str, str, int, int], row: dict[str, Any]) -> None:
            writer.writerow({k: _fmt(row[k]) for k in COLUMNS})
            fh.flush()
            done[key] = row
            if progress is not None:
                progress("configurations", sum(t.key in done for t in todo), total)

        # every configuration's baseline: the nominal run of its mode, chip and seed
        nominals = {base_key(t) for t in todo if base_key(t) not in done}
        first = [Trial("nominal", k[0], k[1], None, k[2], k[3]) for k in sorted(nominals)]
        rest = [t for t in todo if t.key not in done and t.key not in nominals]
        if workers <= 1:
            for t in first:
                record(t.key, run_trial(state, t, None))
            for t in rest:
                record(t.key, run_trial(state, t, done[base_key(t)]))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            wcfg = replace(cfg, threshold=state.threshold)
            with ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(wcfg, hw, out_dir),
            ) as pool:
                for batch in (first, rest):
                    futures = {
                        pool.submit(
                            _worker_run, t, None if t.policy == "nominal" else done[base_key(t)]
                        ): t
                        for t in batch
                    }
                    for fut in as_completed(futures):
                        record(futures[fut].key, fut.result())
    rows = [done[t.key] for t in todo if t.key in done]
    return rows, state


def finish(rows: Sequence[dict[str, Any]], state: ExploreState, out_dir: Path, array: str) -> str:
    """Write pareto.png and report.md; returns the report text."""
    from accelsim.report.explore_report import aggregate, markdown_report, plot_pareto

    points = aggregate(rows)
    cfg = state.cfg
    plot_pareto(
        points,
        out_dir / "pareto.png",
        threshold=state.threshold,
        title=f"{cfg.model} on {array}: {len(cfg.chips)} chip(s) x {len(cfg.seeds)} seed(s), {cfg.steps} steps",
    )
    how = (
        "given with --threshold"
        if cfg.threshold is not None
        else (
            "measured: mean feature distance between the float model and the W8A8 golden samples "
            "(errors may change the output no more than quantization does)"
        )
    )
    extra = (
        f"Quality threshold {state.threshold:.4g} ({how}). Timing errors from the calibrated "
        f"model ({cfg.kernel} kernel); chips {list(cfg.chips)}, seeds {list(cfg.seeds)}, "
        f"{cfg.samples} samples per run. Files: results.csv, pareto.png, sensitivity.png."
    )
    text = markdown_report(
        points, threshold=state.threshold, model=cfg.model, array=array, extra=extra
    )
    (out_dir / "report.md").write_text(text)
    return text
