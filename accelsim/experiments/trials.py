"""Campaign trial kind ``model-run``: one shipped model, one configuration, quality vs golden.

A trial runs a shipped model (:class:`accelsim.experiments.runner.ModelSession`) on a simulated array at an
operating point (or under a DVFS policy) with injected faults, and compares it with the golden
run (same model, inputs, seed and number format; nominal point; no faults). The golden run of
each (model, inputs, seed, format, hardware) is computed once per worker and kept in the kind's
state, as is the loaded model.

Config keys (defaults in :data:`DEFAULTS`):

``model``, ``samples``, ``steps``, ``seed``
    What to run (see :class:`~accelsim.experiments.runner.SessionConfig`; ``samples = 0``: the model's
    default input set).
``quant``
    ``w8a8`` (int8 operands, int32 accumulators) or ``fp32`` / ``fp16`` / ``bf16``.
``preset``, ``hardware``, ``array``, ``dataflow``
    The hardware: a preset name, or a hardware TOML path (``hardware``, replaces the preset);
    ``array`` ``"RxC"`` and ``dataflow`` override it (empty: keep).
``vdd``, ``freq``
    Operating point in V and GHz; ``"nominal"`` for the hardware's nominal value.
``policy``
    A DVFS policy spec (:func:`accelsim.dvfs.policies.parse_policy`, e.g. ``"uniform:vdd=0.7"``)
    used instead of ``vdd``/``freq``; empty: none.
``chip``
    ``"typical"`` or a chip seed (PE variation map); ``kernel`` ``fast`` | ``exact``.
``faults``
    A list of fault specs (dicts for :func:`accelsim.faults.spec.fault_from_dict`) with three
    extra keys resolved here: ``flips`` (expected number of faulty values per run in the
    fault's target and scope; converted to a per-value ``rate`` with the value counts of the
    golden run), ``ber`` (per-bit error rate: ``rate = ber x format width``) and ``head`` /
    ``heads`` (restrict an ``inputs`` fault to the columns of one attention head of the input
    of the attention output projection, i.e. that head's attention output). A ``clip`` fault
    (activation clipping) is profiled on the golden run of the same inputs before the test run.
``by_confidence``
    Classifiers and the LM: also report critical SDC per golden-confidence bucket
    (:data:`accelsim.quality.classifier.MAX_EDGES`): metrics ``conf{i}_n``, ``conf{i}_sdc``.
``cell``
    Free-form table carried along (the study cell the trial belongs to); not used here.

Metrics: the model's quality metrics (:meth:`ModelSession.compare`), ``quality_drop`` (the
main quality metric's loss vs golden: accuracy points (x100) for classifiers, feature distance
for generators, top-1 flip rate in % of tokens for the LM), ``loss_increase`` (LM),
``energy_j``, ``nominal_energy_j``, ``energy_saving``, ``latency_s``, ``speedup``,
``timing_errors``, ``faults_injected``, ``nonfinite`` (fraction of non-finite output values;
generator outputs are clamped to [-1, 1] with NaN -> 0 before comparing, as a displayed image
would be).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from accelsim.campaign.registry import Metric, register_trial
from accelsim.config import check_choice, check_float, check_int, reject_unknown_keys
from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults.base import FaultLog
from accelsim.faults.targeting import Target

KIND = "model-run"
QUANT_MODES = ("w8a8", "fp32", "fp16", "bf16")
#: Format of each GEMM place per quant mode (w8a8: int8 operands, int32 accumulators).
PLACE_FORMAT = {
    "w8a8": {"weights": "int8", "inputs": "int8", "outputs": "int32"},
    "fp32": {"weights": "fp32", "inputs": "fp32", "outputs": "fp32"},
    "fp16": {"weights": "fp16", "inputs": "fp16", "outputs": "fp16"},
    "bf16": {"weights": "bf16", "inputs": "bf16", "outputs": "bf16"},
}
FORMAT_WIDTH = {"int8": 8, "int32": 32, "fp16": 16, "bf16": 16, "fp32": 32}
#: Revision of the simulation semantics and cost models behind a trial's metrics. It enters
#: every trial's id, so bumping it (when a change alters what an unchanged config computes)
#: makes resumed campaigns rerun instead of reusing rows computed by older code. 1: the
#: protection ledger, rails and calibration of session 9.
REVISION = 1
DEFAULTS: dict[str, Any] = {
    "samples": 0,
    "steps": 10,
    "method": "ddim",
    "guidance": "model",
    "seed": 0,
    "quant": "w8a8",
    "preset": "tpu-128x128",
    "hardware": "",
    "array": "",
    "dataflow": "",
    "vdd": "nominal",
    "freq": "nominal",
    "policy": "",
    "profile": [],
    "abft": "",
    "regulator": "on-chip",
    "chip": "typical",
    "kernel": "fast",
    "manifestation": "hold",
    "faults": [],
    "by_confidence": False,
    "cell": {},
    "revision": REVISION,
}
KEYS = set(DEFAULTS) | {"model"}
#: Golden runs kept per worker (oldest dropped first).
GOLDEN_CACHE = 16
MANIFESTATION_NAMES = ("hold", "flip", "razor", "drop")


# --------------------------------------------------------------------------- config


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a ``model-run`` config and fill in defaults (ConfigError on bad input)."""
    from accelsim.models.zoo import MODEL_NAMES

    reject_unknown_keys("", config, KEYS)
    out = {**DEFAULTS, **config}
    names = [str(m) for m in MODEL_NAMES]
    model = out.get("model")
    if not isinstance(model, str) or model not in names:
        raise ConfigError(f"model: got {model!r}, expected one of {', '.join(names)}")
    out["samples"] = check_int("samples", out["samples"], 0, 100_000)
    out["steps"] = check_int("steps", out["steps"], 1, 1000)
    out["method"] = check_choice("method", out["method"], ("ddim", "ddpm"))
    if out["guidance"] != "model":
        if isinstance(out["guidance"], str):
            raise ConfigError(
                f"guidance: got {out['guidance']!r}, expected 'model' (the model's recommended "
                "scale) or a number in [0, 100]"
            )
        out["guidance"] = check_float("guidance", out["guidance"], 0.0, 100.0)
    out["seed"] = check_int("seed", out["seed"], 0)
    out["quant"] = check_choice("quant", out["quant"], QUANT_MODES)
    for key in ("preset", "array", "dataflow", "policy", "abft", "regulator"):
        if not isinstance(out[key], str):
            raise ConfigError(f"{key}: got {out[key]!r}, expected a string")
    if not isinstance(out["hardware"], str | dict):
        raise ConfigError(
            f"hardware: got {out['hardware']!r}, expected a hardware TOML path or table"
        )
    if isinstance(out["hardware"], dict):
        from accelsim.config import hardware_from_dict

        hardware_from_dict(out["hardware"])  # validate now, not in the worker
    if out["dataflow"]:
        check_choice("dataflow", out["dataflow"], ("os", "ws", "is"))
    for key, lo, hi, unit in (("vdd", 0.3, 1.5, "V"), ("freq", 0.001, 10.0, "GHz")):
        if out[key] != "nominal":
            if isinstance(out[key], str):
                raise ConfigError(f"{key}: got {out[key]!r}, expected 'nominal' or a number")
            out[key] = check_float(key, out[key], lo, hi, unit=unit)
    if out["policy"] and (out["vdd"] != "nominal" or out["freq"] != "nominal"):
        raise ConfigError(
            f"policy: got {out['policy']!r} together with vdd/freq, expected one of the two "
            "(the policy spec carries its operating point)"
        )
    if out["chip"] != "typical":
        if isinstance(out["chip"], str):
            raise ConfigError(f"chip: got {out['chip']!r}, expected 'typical' or a chip seed >= 0")
        out["chip"] = check_int("chip", out["chip"], 0)
    out["kernel"] = check_choice("kernel", out["kernel"], ("fast", "exact"))
    out["manifestation"] = check_choice("manifestation", out["manifestation"], MANIFESTATION_NAMES)
    from accelsim.dvfs.transition import REGULATORS

    check_choice("regulator", out["regulator"], tuple(REGULATORS))
    out["profile"] = _normalize_profile(out["profile"])
    if out["abft"]:
        from accelsim.abft import abft_config

        abft_config(out["abft"])
    if (out["policy"] or out["abft"]) and out["quant"] != "w8a8":
        raise ConfigError(
            f"quant: got {out['quant']!r} with a policy or ABFT, expected w8a8 (protection "
            "and timing errors act on the int8 array; float formats run without them)"
        )
    out["revision"] = check_int("revision", out["revision"], 0)
    if out["policy"]:
        policy_for(out, None)  # validate now (spec keys, knob range, profile)
    faults = out["faults"]
    if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
        raise ConfigError(f"faults: got {faults!r}, expected a list of fault tables")
    for f in faults:
        build_fault(f, out["quant"], None)  # validate now, not in the worker
    if not isinstance(out["by_confidence"], bool):
        raise ConfigError(f"by_confidence: got {out['by_confidence']!r}, expected true or false")
    if not isinstance(out["cell"], dict):
        raise ConfigError(f"cell: got {out['cell']!r}, expected a table")
    return out


def _normalize_profile(value: Any) -> Any:
    """A drift profile: a CSV path (string), or inline rows ``[block, t_start, t_stop,
    sensitivity]`` (``t_stop`` -1 = open-ended), kept canonical so that it hashes stably."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ConfigError(
            f"profile: got {value!r}, expected a profile CSV path or a list of "
            "[block, t_start, t_stop, sensitivity] rows"
        )
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list | tuple) or len(row) != 4 or not isinstance(row[0], str):
            raise ConfigError(
                f"profile[{i}]: got {row!r}, expected [block, t_start, t_stop, sensitivity]"
            )
        t0 = check_int(f"profile[{i}].t_start", row[1], 0)
        t1 = check_int(f"profile[{i}].t_stop", row[2], -1)
        sens = check_float(f"profile[{i}].sensitivity", row[3])
        rows.append([row[0], t0, t1, sens])
    return rows


def profile_rows(profile: Any) -> list[list[Any]]:
    """Inline rows (see :func:`_normalize_profile`) of a :class:`SensitivityProfile`."""
    from accelsim.dvfs.profile import _INF

    return [
        [c.block, c.t_start, -1 if c.t_stop >= _INF else c.t_stop, float(c.sensitivity)]
        for c in profile.cells
    ]


def _profile_of(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            return None
        from accelsim.dvfs.profile import load_profile

        return load_profile(value)
    if not value:
        return None
    from accelsim.dvfs.profile import _INF, ProfileCell, SensitivityProfile

    return SensitivityProfile(
        tuple(
            ProfileCell(block=b, t_start=t0, t_stop=_INF if t1 < 0 else t1, sensitivity=s)
            for b, t0, t1, s in value
        )
    )


def policy_for(config: dict[str, Any], hw: Any) -> Any:
    """The DVFS policy of a normalized config (None without ``policy``)."""
    if not config["policy"]:
        return None
    from accelsim.dvfs.policies import parse_policy
    from accelsim.timing.errors import TimingModel

    hw = hw if hw is not None else hardware_for(config)
    return parse_policy(
        config["policy"],
        hw,
        profile=_profile_of(config["profile"]),
        delay=TimingModel.for_hardware(hw).delay,
    )


def hardware_to_dict(hw: Any) -> dict[str, Any]:
    """``hw`` as a hardware table (the sections of a hardware TOML) with every timing-model
    parameter resolved, so that the table alone fixes every number a run depends on (trial
    ids hash it) and rebuilds the same :class:`~accelsim.config.HardwareConfig`."""
    from dataclasses import asdict

    from accelsim.timing.errors import TimingModel

    def plain(x: Any) -> Any:
        if isinstance(x, tuple | list):
            return [plain(v) for v in x]
        return x

    tm = TimingModel.for_hardware(hw)
    table: dict[str, Any] = {
        "array": asdict(hw.array),
        "memory": asdict(hw.memory),
        "tech": {k: plain(v) for k, v in asdict(hw.tech).items()},
    }
    for name, params in (
        ("delay", tm.delay),
        ("variation", tm.variation),
        ("sensitized", tm.sensitized),
    ):
        table[name] = {k: plain(v) for k, v in asdict(params).items()}
    return table


# --------------------------------------------------------------------------- fault helpers


@dataclass
class ValueCounter:
    """A do-nothing fault model that counts the values at each GEMM place per context."""

    counts: dict[tuple[str, str, int | None, str, int | None, str], int] = field(
        default_factory=dict
    )

    def _add(self, place: str, x: np.ndarray, ctx: GemmContext) -> np.ndarray:
        key = (place, ctx.block, ctx.block_index, ctx.layer_type, ctx.timestep, ctx.module)
        self.counts[key] = self.counts.get(key, 0) + int(x.size)
        return x

    def on_weights(
        self, w: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._add("weights", w, ctx)

    def on_inputs(
        self, a: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._add("inputs", a, ctx)

    def on_output(
        self, out: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._add("outputs", out, ctx)

    def total(self, place: str, scope: Target) -> int:
        """Values at ``place`` in GEMMs ``scope`` matches."""
        n = 0
        for (p, block, index, ltype, step, module), count in self.counts.items():
            ctx = GemmContext(
                module=module, block=block, block_index=index, layer_type=ltype, timestep=step
            )
            if p == place and scope.matches(ctx):
                n += count
        return n

    def structure(self) -> dict[str, list[Any]]:
        """Blocks (in order), layer types and timesteps seen."""
        blocks: dict[str, int] = {}
        for _, block, index, _, _, _ in self.counts:
            if block and index is not None:
                blocks[block] = index
        return {
            "blocks": sorted(blocks, key=lambda b: blocks[b]),
            "layer_types": sorted({k[3] for k in self.counts}),
            "timesteps": sorted({k[4] for k in self.counts if k[4] is not None}),
        }


@dataclass
class HeadSlice:
    """Apply ``inner`` (an ``inputs`` fault) only to columns ``[h*d, (h+1)*d)`` of the input.

    Used on the attention output projection, whose input is the concatenation of the heads'
    attention outputs (head-major), so the fault hits one head's output only.
    """

    inner: Any
    head: int
    heads: int

    def on_weights(
        self, w: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return w

    def on_inputs(
        self, a: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        if getattr(self.inner, "target", "inputs") != "inputs" or not self.inner.scope.matches(ctx):
            return a
        width = a.shape[-1]
        if width % self.heads:
            raise ConfigError(
                f"heads: got {self.heads}, expected a divisor of the input width {width} "
                f"at {ctx.module!r}"
            )
        d = width // self.heads
        cols = slice(self.head * d, (self.head + 1) * d)
        part = np.ascontiguousarray(a[..., cols])
        new = self.inner.on_inputs(part, ctx, fmt, rng, log)
        if new is part:
            return a
        out = np.array(a, copy=True)
        out[..., cols] = new
        return out

    def on_output(
        self, out: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return out


def _place_of(spec: dict[str, Any]) -> str:
    kind = spec.get("fault")
    if kind in ("rowcol", "stuck-at", "timing"):
        return "outputs"
    return str(spec.get("target") or "outputs")


def build_fault(spec: dict[str, Any], quant: str, counter: ValueCounter | None) -> Any:
    """The fault model of one spec dict (``flips``/``ber``/``head`` resolved, module doc).

    With ``counter`` None (validation in the parent) ``flips`` is resolved against a dummy
    count of 1 value.
    """
    opts = dict(spec)
    flips = opts.pop("flips", None)
    ber = opts.pop("ber", None)
    head = opts.pop("head", None)
    heads = opts.pop("heads", None)
    if flips is not None and ber is not None:
        raise ConfigError("faults: got both flips and ber, expected at most one")
    place = _place_of(opts)
    fmt = PLACE_FORMAT[quant][place]
    if opts.get("fault") in ("bitflip", "random-values", "single-value", "rowcol", "stuck-at"):
        given = opts.get("format")
        if given is not None and given != fmt:
            raise ConfigError(
                f"faults.format: got {given!r} for {place} in a {quant} run, expected {fmt}"
            )
    from accelsim.faults.spec import fault_from_dict

    if flips is not None or ber is not None:
        if opts.get("fault") != "bitflip":
            raise ConfigError("faults: flips/ber apply to bitflip faults only")
        if place == "weights":
            opts["per"] = "call"  # a rate counts per value; weights are hooked once per run
        if ber is not None:
            rate = check_float("faults.ber", ber, 0.0, 1.0) * FORMAT_WIDTH[fmt]
        else:
            n_flips = check_float("faults.flips", flips, 0.0, 1e9)
            scope = fault_from_dict({**opts, "rate": 0.0}).scope  # type: ignore[attr-defined]
            n = counter.total(place, scope) if counter is not None else 1
            rate = n_flips / n if n > 0 else 0.0
        opts["rate"] = min(1.0, rate)
    model = fault_from_dict(opts)
    if head is not None or heads is not None:
        h = check_int("faults.head", head, 0)
        hs = check_int("faults.heads", heads, 1)
        if h >= hs:
            raise ConfigError(f"faults.head: got {h}, expected < heads = {hs}")
        if place != "inputs":
            raise ConfigError(f"faults.head: got target {place!r}, expected inputs")
        return HeadSlice(model, h, hs)
    return model


# --------------------------------------------------------------------------- state


@dataclass
class Golden:
    """A golden run, its value counts per GEMM place and the session that produced it."""

    session: Any
    outcome: Any
    counter: ValueCounter


@dataclass
class ModelState:
    """Per-worker state: loaded sessions, hardware configs and golden runs (LRU)."""

    sessions: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    goldens: OrderedDict[str, Golden] = field(default_factory=OrderedDict)
    golden_runs: int = 0


def setup() -> ModelState:
    """Empty per-worker state (models load on first use)."""
    return ModelState()


def _key(config: dict[str, Any], keys: Sequence[str]) -> str:
    from accelsim.campaign.spec import canonical_json

    return canonical_json({k: config[k] for k in keys})


_HW_KEYS = ("preset", "hardware", "array", "dataflow")


def hardware_for(config: dict[str, Any], state: ModelState | None = None) -> Any:
    """The HardwareConfig of a trial config (cached in ``state``): ``hardware`` (a TOML path
    or an inline table, replacing the preset) or ``preset``, then ``array`` / ``dataflow``."""
    from accelsim.config import hardware_from_dict, load_hardware, load_preset

    key = _key(config, _HW_KEYS)
    if state is not None and key in state.hardware:
        return state.hardware[key]
    source = config["hardware"]
    if isinstance(source, dict):
        hw = hardware_from_dict(source)
    elif source:
        hw = load_hardware(source)
    else:
        hw = load_preset(config["preset"])
    changes: dict[str, Any] = {}
    if config["array"]:
        parts = str(config["array"]).lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"array: got {config['array']!r}, expected RxC like 32x32")
        changes["rows"], changes["cols"] = int(parts[0]), int(parts[1])
    if config["dataflow"]:
        changes["dataflow"] = config["dataflow"]
    hw = hw.with_array(**changes) if changes else hw
    if state is not None:
        state.hardware[key] = hw
    return hw


def session_for(config: dict[str, Any], state: ModelState) -> Any:
    """The loaded :class:`~accelsim.experiments.runner.ModelSession` of a normalized config
    (one per model, inputs and sampler settings, kept in ``state``)."""
    from accelsim.experiments.runner import ModelSession, SessionConfig

    guidance = None if config["guidance"] == "model" else float(config["guidance"])
    key = (config["model"], config["samples"], config["steps"], config["method"], guidance)
    if key not in state.sessions:
        state.sessions[key] = ModelSession(
            SessionConfig(
                model=config["model"],
                samples=config["samples"],
                steps=config["steps"],
                method=config["method"],
                guidance=guidance,
            )
        )
    return state.sessions[key]


#: Config keys that fix a golden run (the seed only for generators, whose noise it draws).
GOLDEN_KEYS = ("model", "samples", "steps", "method", "guidance", "seed", "quant", *_HW_KEYS)


def golden_for(config: dict[str, Any], state: ModelState) -> Golden:
    """The golden run of ``config``: the same model, inputs, seed, number format and hardware
    at the nominal point, no faults, no protection, typical chip (computed once per worker)."""
    from accelsim.config import OperatingPoint
    from accelsim.experiments.runner import make_accelerator
    from accelsim.torch.quant import QuantConfig

    session = session_for(config, state)
    noisy = session.kind in ("diffusion", "video-diffusion")  # the seed fixes sampler noise
    key = _key({**config, "seed": config["seed"] if noisy else 0}, GOLDEN_KEYS)
    if key in state.goldens:
        state.goldens.move_to_end(key)
        return state.goldens[key]
    hw = hardware_for(config, state)
    counter = ValueCounter()
    acc = make_accelerator(hw, kernel="fast", seed=config["seed"])
    outcome = session.run(
        acc,
        OperatingPoint.nominal(hw.tech),
        faults=[counter],
        seed=config["seed"],
        quant=QuantConfig(mode=config["quant"]),
    )
    golden = Golden(session, outcome, counter)
    state.goldens[key] = golden
    state.golden_runs += 1
    while len(state.goldens) > GOLDEN_CACHE:
        state.goldens.popitem(last=False)
    return golden


# --------------------------------------------------------------------------- the run path


def _clean_image(x: Any) -> Any:
    import torch

    return torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0).clamp(-1.0, 1.0)


def _confidence_metrics(
    kind: str, golden: Any, test: Any, inputs: dict[str, Any]
) -> dict[str, Metric]:
    from accelsim.quality.classifier import MAX_EDGES, confidence, confidence_buckets, critical_sdc

    g = golden.output.reshape(-1, golden.output.shape[-1]).numpy()
    t = test.output.reshape(-1, test.output.shape[-1]).numpy()
    labels = (inputs["labels"] if kind != "lm" else inputs["targets"]).reshape(-1).numpy()
    sdc = critical_sdc(g, t, labels)
    bucket = confidence_buckets(confidence(g), MAX_EDGES)
    out: dict[str, Metric] = {}
    for i in range(len(MAX_EDGES) - 1):
        sel = bucket == i
        out[f"conf{i}_n"] = int(np.count_nonzero(sel))
        out[f"conf{i}_sdc"] = int(np.count_nonzero(sdc & sel))
    return out


@dataclass
class RunResult:
    """One configuration against its golden run: ``metrics`` (JSON-ready; nested only in
    ``energy_by_component``, ``energy_by_rail`` and the ``errors_by_*`` tables), the golden and
    test :class:`~accelsim.experiments.runner.Outcome` and the session that ran them."""

    metrics: dict[str, Any]
    golden: Any
    test: Any
    session: Any


def run_configuration(config: dict[str, Any], state: ModelState | None = None) -> RunResult:
    """**The** run path: one normalized ``model-run`` config against its golden run.

    ``accelsim run``, ``accelsim explore``, the studies and campaigns all come here. The test
    run uses the config's policy (through a
    :class:`~accelsim.experiments.protect.ProtectedAccelerator`: its ABFT, checkpoints,
    rollbacks, transitions and detection latches are charged) or its fixed ``vdd``/``freq``.
    Energy saving and speed-up are always relative to the golden run (nominal point, no
    protection, same inputs, seed and hardware): ``energy_saving = 1 - E / E_golden``,
    ``speedup = T_golden / T``.
    """
    from accelsim.config import OperatingPoint
    from accelsim.experiments.protect import ProtectedAccelerator
    from accelsim.experiments.runner import make_accelerator
    from accelsim.faults.clipping import ActivationClipping
    from accelsim.timing.errors import TimingModel
    from accelsim.torch.quant import QuantConfig

    st = state if state is not None else setup()
    golden = golden_for(config, st)
    session = golden.session
    hw = hardware_for(config, st)
    quant = QuantConfig(mode=config["quant"])
    faults = [build_fault(f, config["quant"], golden.counter) for f in config["faults"]]
    chip = None if config["chip"] == "typical" else int(config["chip"])
    clips = [f for f in faults if isinstance(f, ActivationClipping)]
    for clip in clips:
        prof_acc = make_accelerator(hw, kernel="fast", seed=config["seed"])

        def clean_run(c: ActivationClipping = clip, a: Any = prof_acc) -> object:
            return session.run(
                a, OperatingPoint.nominal(hw.tech), faults=[c], seed=config["seed"], quant=quant
            )

        clip.profile(clean_run)
    policy = policy_for(config, hw)
    protected = policy is not None or bool(config["abft"])
    op: Any
    guard = None
    if protected:
        acc: Any = ProtectedAccelerator(
            hw,
            policy=policy,
            abft=config["abft"] or None,
            transitions=config["regulator"],
            kernel=config["kernel"],
            chip=chip,
            seed=config["seed"],
            timing=TimingModel.for_hardware(hw),
            manifestation=config["manifestation"],
        )
        guard = acc.guard
        if policy is not None:
            op = acc.decide
        else:
            vdd = hw.tech.vnom if config["vdd"] == "nominal" else float(config["vdd"])
            freq = hw.tech.fnom if config["freq"] == "nominal" else float(config["freq"]) * 1e9
            op = OperatingPoint(vdd=vdd, freq=freq)
    else:
        vdd = hw.tech.vnom if config["vdd"] == "nominal" else float(config["vdd"])
        freq = hw.tech.fnom if config["freq"] == "nominal" else float(config["freq"]) * 1e9
        op = OperatingPoint(vdd=vdd, freq=freq)
        acc = make_accelerator(
            hw,
            kernel=config["kernel"],
            chip=chip,
            seed=config["seed"],
            manifestation=config["manifestation"],
        )
    test = session.run(acc, op, faults=faults, seed=config["seed"], quant=quant, guard=guard)
    out_np = test.output.detach().float().numpy()
    nonfinite = float(np.mean(~np.isfinite(out_np))) if out_np.size else 0.0
    gold = golden.outcome
    if session.kind in ("diffusion", "video-diffusion"):
        gold = replace(gold, output=_clean_image(gold.output))
        test = replace(test, output=_clean_image(test.output))
    quality = session.compare(gold, test)
    metrics: dict[str, Any] = dict(quality)
    metrics.update(_drop(session.kind, quality))
    if config["by_confidence"] and session.kind in ("classifier", "features", "lm"):
        metrics.update(_confidence_metrics(session.kind, gold, test, session.inputs()))
    metrics["guidance"] = session.guidance if session.kind.endswith("diffusion") else None
    rep, grep = test.report, gold.report
    if rep is not None and grep is not None:
        e, ge = rep.total_energy_j, grep.total_energy_j
        metrics.update(
            energy_j=e,
            nominal_energy_j=ge,
            energy_saving=1.0 - e / ge if ge else None,
            latency_s=rep.latency_s,
            nominal_latency_s=grep.latency_s,
            speedup=grep.latency_s / rep.latency_s if rep.latency_s else None,
            timing_errors=rep.errors_injected,
            macs=rep.macs,
            gemm_calls=rep.gemm_calls,
            energy_by_component=rep.energy_j.as_dict(),
            energy_by_rail=dict(rep.energy_by_rail),
            **{
                f"energy_saving_sram_{k}": 1.0 - v / grep.energy_rail_variants[k]
                for k, v in rep.energy_rail_variants.items()
                if grep.energy_rail_variants.get(k)
            },
            errors_by_layer_type=dict(rep.errors_by_layer_type),
            errors_by_block=dict(rep.errors_by_block),
            errors_by_timestep={
                ("none" if k is None else str(k)): v for k, v in rep.errors_by_timestep.items()
            },
        )
    stats = acc.stats.as_dict() if protected else {}
    metrics.update(
        abft_checks=int(stats.get("abft_checks", 0)),
        abft_detections=int(stats.get("abft_detections", 0)),
        abft_corrections=int(stats.get("abft_corrections", 0)),
        recomputes=int(stats.get("recomputes", 0)),
        recomputed_elements=int(stats.get("recomputed_elements", 0)),
        rollbacks=int(stats.get("rollbacks", 0)),
        rolled_back_elements=int(stats.get("rolled_back_elements", 0)),
        latent_rollbacks=int(test.sampler.get("rollbacks", 0)),
        checkpoints=int(stats.get("checkpoints", 0)),
        checkpoint_bytes=int(stats.get("checkpoint_bytes", 0)),
        transitions=int(stats.get("transitions", 0)),
        mean_vdd=stats.get("mean_vdd") or (op.vdd if isinstance(op, OperatingPoint) else None),
        mean_freq_ghz=(
            stats["mean_freq"] / 1e9
            if stats.get("mean_freq")
            else (op.freq / 1e9 if isinstance(op, OperatingPoint) else None)
        ),
        manifestation=acc.manifestation,
    )
    metrics["faults_injected"] = len(test.faults)
    metrics["nonfinite"] = nonfinite
    metrics["wall_s"] = test.wall_s
    return RunResult(metrics=metrics, golden=gold, test=test, session=session)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, Metric]:
    """``metrics`` flattened for a results store: ``energy_by_component`` as
    ``energy_<component>_j`` columns, ``energy_by_rail`` as ``energy_rail_<rail>_j``, the other
    tables dropped."""
    out: dict[str, Metric] = {}
    for k, v in metrics.items():
        if k == "energy_by_component":
            out.update({f"energy_{c}_j": float(x) for c, x in v.items()})
        elif k == "energy_by_rail":
            out.update({f"energy_rail_{r}_j": float(x) for r, x in v.items()})
        elif isinstance(v, bool | int | float | str) or v is None:
            out[k] = v
    return out


def run_trial(config: dict[str, Any], state: ModelState | None) -> dict[str, Metric]:
    """Run one ``model-run`` trial (module docstring); ``state`` from :func:`setup`."""
    result = run_configuration(config, state)
    metrics = flat_metrics(result.metrics)
    metrics.pop("wall_s", None)  # the store keeps the trial's wall time itself
    return metrics


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _drop(kind: str, q: dict[str, Any]) -> dict[str, Metric]:
    """``quality_drop`` (module doc) and, for the LM, ``loss_increase``."""
    if kind in ("diffusion", "video-diffusion"):
        return {"quality_drop": _finite(q.get("feature_distance"))}
    if kind in ("classifier", "features"):
        return {"quality_drop": 100.0 * (float(q["golden_accuracy"]) - float(q["accuracy"]))}
    loss, gl = _finite(q.get("loss")), _finite(q.get("golden_loss"))
    return {
        "quality_drop": 100.0 * float(q["top1_flip_rate"]),
        "loss_increase": None if loss is None or gl is None else loss - gl,
    }


def model_structure(model: str, steps: int = 2, preset: str = "tpu-128x128") -> dict[str, Any]:
    """Blocks, layer types and timesteps of ``model`` from one tiny run (1 input)."""
    cfg = normalize({"model": model, "samples": 1, "steps": steps, "preset": preset})
    st = setup()
    g = golden_for(cfg, st)
    out: dict[str, Any] = dict(g.counter.structure())
    out["kind"] = g.session.kind
    out["config"] = dict(getattr(g.session.model, "accelsim_config", {}))
    return out


def place_format(quant: str, place: str) -> str:
    """Number format of ``place`` (weights | inputs | outputs) in a ``quant`` run."""
    return PLACE_FORMAT[quant][place]


def quant_for_format(fmt: str) -> str:
    """The quant mode in which some GEMM place has format ``fmt``."""
    return "w8a8" if fmt in ("int8", "int32") else fmt


def places_for_format(fmt: str) -> Sequence[str]:
    """GEMM places that have format ``fmt`` in its quant mode."""
    quant = quant_for_format(fmt)
    return [p for p, f in PLACE_FORMAT[quant].items() if f == fmt]


register_trial(KIND, run_trial, setup=setup, normalize=normalize)
