"""Campaign trial kind ``model-run``: one shipped model, one configuration, quality vs golden.

A trial runs a shipped model (:class:`accelsim.runner.ModelSession`) on a simulated array at an
operating point (or under a DVFS policy) with injected faults, and compares it with the golden
run (same model, inputs, seed and number format; nominal point; no faults). The golden run of
each (model, inputs, seed, format, hardware) is computed once per worker and kept in the kind's
state, as is the loaded model.

Config keys (defaults in :data:`DEFAULTS`):

``model``, ``samples``, ``steps``, ``seed``
    What to run (see :class:`~accelsim.runner.SessionConfig`; ``samples = 0``: the model's
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
DEFAULTS: dict[str, Any] = {
    "samples": 0,
    "steps": 10,
    "seed": 0,
    "quant": "w8a8",
    "preset": "tpu-128x128",
    "hardware": "",
    "array": "",
    "dataflow": "",
    "vdd": "nominal",
    "freq": "nominal",
    "policy": "",
    "chip": "typical",
    "kernel": "fast",
    "faults": [],
    "by_confidence": False,
    "cell": {},
}
KEYS = set(DEFAULTS) | {"model"}
#: Golden runs kept per worker (oldest dropped first).
GOLDEN_CACHE = 16


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
    out["seed"] = check_int("seed", out["seed"], 0)
    out["quant"] = check_choice("quant", out["quant"], QUANT_MODES)
    for key in ("preset", "hardware", "array", "dataflow", "policy"):
        if not isinstance(out[key], str):
            raise ConfigError(f"{key}: got {out[key]!r}, expected a string")
    if out["dataflow"]:
        check_choice("dataflow", out["dataflow"], ("os", "ws", "is"))
    for key, lo, hi, unit in (("vdd", 0.3, 1.5, "V"), ("freq", 0.001, 10.0, "GHz")):
        if out[key] != "nominal":
            if isinstance(out[key], str):
                raise ConfigError(f"{key}: got {out[key]!r}, expected 'nominal' or a number")
            out[key] = check_float(key, out[key], lo, hi, unit=unit)
    if out["chip"] != "typical":
        if isinstance(out["chip"], str):
            raise ConfigError(f"chip: got {out['chip']!r}, expected 'typical' or a chip seed >= 0")
        out["chip"] = check_int("chip", out["chip"], 0)
    out["kernel"] = check_choice("kernel", out["kernel"], ("fast", "exact"))
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

    sessions: dict[tuple[str, int, int], Any] = field(default_factory=dict)
    hardware: dict[tuple[str, str, str, str], Any] = field(default_factory=dict)
    goldens: OrderedDict[str, Golden] = field(default_factory=OrderedDict)
    golden_runs: int = 0


def setup() -> ModelState:
    """Empty per-worker state (models load on first use)."""
    return ModelState()


def hardware_for(config: dict[str, Any], state: ModelState | None = None) -> Any:
    """The HardwareConfig of a trial config (cached in ``state``)."""
    from accelsim.config import load_hardware, load_preset

    key = (config["preset"], config["hardware"], config["array"], config["dataflow"])
    if state is not None and key in state.hardware:
        return state.hardware[key]
    hw = load_hardware(config["hardware"]) if config["hardware"] else load_preset(config["preset"])
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


def _session(config: dict[str, Any], state: ModelState) -> Any:
    from accelsim.runner import ModelSession, SessionConfig

    key = (config["model"], config["samples"], config["steps"])
    if key not in state.sessions:
        state.sessions[key] = ModelSession(
            SessionConfig(model=config["model"], samples=config["samples"], steps=config["steps"])
        )
    return state.sessions[key]


def golden_for(config: dict[str, Any], state: ModelState) -> Golden:
    """The golden run of ``config`` (computed once per worker)."""
    from accelsim.config import OperatingPoint
    from accelsim.runner import make_accelerator
    from accelsim.torch.quant import QuantConfig

    session = _session(config, state)
    noisy = session.kind in ("diffusion", "video-diffusion")  # the seed fixes sampler noise
    key = ("S" if noisy else "") + "|".join(
        str(config[k] if k != "seed" or noisy else "")
        for k in (
            "model",
            "samples",
            "steps",
            "seed",
            "quant",
            "preset",
            "hardware",
            "array",
            "dataflow",
        )
    )
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


# --------------------------------------------------------------------------- trial


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


def run_trial(config: dict[str, Any], state: ModelState | None) -> dict[str, Metric]:
    """Run one ``model-run`` trial (module docstring); ``state`` from :func:`setup`."""
    from accelsim.config import OperatingPoint
    from accelsim.faults.clipping import ActivationClipping
    from accelsim.runner import make_accelerator
    from accelsim.torch.quant import QuantConfig

    st = state if state is not None else setup()
    golden = golden_for(config, st)
    session = golden.session
    hw = hardware_for(config, st)
    quant = QuantConfig(mode=config["quant"])
    faults = [build_fault(f, config["quant"], golden.counter) for f in config["faults"]]
    chip = None if config["chip"] == "typical" else int(config["chip"])
    op: Any
    manifestation = "hold"
    if config["policy"]:
        from accelsim.dvfs.policies import parse_policy

        policy = parse_policy(config["policy"], hw)
        op = policy.decide
        manifestation = str(getattr(policy, "manifestation", None) or "hold")
    else:
        vdd = hw.tech.vnom if config["vdd"] == "nominal" else float(config["vdd"])
        freq = hw.tech.fnom if config["freq"] == "nominal" else float(config["freq"]) * 1e9
        op = OperatingPoint(vdd=vdd, freq=freq)
    clips = [f for f in faults if isinstance(f, ActivationClipping)]
    for clip in clips:
        prof_acc = make_accelerator(hw, kernel="fast", seed=config["seed"])

        def clean_run(c: ActivationClipping = clip, a: Any = prof_acc) -> object:
            return session.run(
                a, OperatingPoint.nominal(hw.tech), faults=[c], seed=config["seed"], quant=quant
            )

        clip.profile(clean_run)
    if config["policy"]:
        # the policy's ABFT (closed-loop: classic; drift: rollback) and transitions are charged
        from accelsim.protect import ProtectedAccelerator
        from accelsim.timing.errors import TimingModel

        acc: Any = ProtectedAccelerator(
            hw,
            policy=policy,
            kernel=config["kernel"],
            chip=chip,
            seed=config["seed"],
            timing=TimingModel.for_hardware(hw),
        )
        op = acc.decide
    else:
        acc = make_accelerator(
            hw, kernel=config["kernel"], chip=chip, seed=config["seed"], manifestation=manifestation
        )
    test = session.run(acc, op, faults=faults, seed=config["seed"], quant=quant)
    out_np = test.output.detach().float().numpy()
    nonfinite = float(np.mean(~np.isfinite(out_np))) if out_np.size else 0.0
    gold = golden.outcome
    if session.kind in ("diffusion", "video-diffusion"):
        gold = replace(gold, output=_clean_image(gold.output))
        test = replace(test, output=_clean_image(test.output))
    quality = session.compare(gold, test)
    metrics: dict[str, Metric] = {
        k: v for k, v in quality.items() if isinstance(v, int | float | str) or v is None
    }
    metrics.update(_drop(session.kind, quality))
    if config["by_confidence"] and session.kind in ("classifier", "features", "lm"):
        metrics.update(_confidence_metrics(session.kind, gold, test, session.inputs()))
    rep, grep = test.report, gold.report
    if rep is not None and grep is not None:
        e, ge = rep.total_energy_j, grep.total_energy_j
        metrics.update(
            energy_j=e,
            nominal_energy_j=ge,
            energy_saving=1.0 - e / ge if ge else None,
            latency_s=rep.latency_s,
            speedup=grep.latency_s / rep.latency_s if rep.latency_s else None,
            timing_errors=rep.errors_injected,
        )
    metrics["faults_injected"] = len(test.faults)
    metrics["nonfinite"] = nonfinite
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
