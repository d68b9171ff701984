"""DVFS policies: an operating point for every GEMM context, with optional feedback.

One interface (:class:`Policy`)::

    op = policy.decide(ctx)                       # before the GEMM
    policy.observe(ctx, detections=d, macs=m)     # after it (ABFT detections, MACs run)

Two modes (:class:`DvfsSpace`): ``undervolt`` scales the supply at the fixed nominal clock
(energy), ``overclock`` raises the clock at the fixed nominal supply (speed); DRIFT reports
these as separate claims (drift.md s0). The policy's *knob* is the voltage (V) in undervolt
mode and the frequency (Hz) in overclock mode.

Policies (:data:`POLICIES`; spec strings ``"name:key=value,..."`` or dicts, :func:`parse_policy`):

``nominal``
    Always (vnom, fnom).
``guardband``
    Remove the sign-off guardband only: the lowest V (highest f) at which the typical-corner
    static critical path still fits the cycle (:func:`~accelsim.timing.delay.zero_margin_voltage`
    / :func:`~accelsim.timing.delay.zero_margin_frequency`), so no sensitized path can fail on a
    typical chip with a quiet supply; ``margin`` (fraction of the nominal knob) keeps some back.
``uniform``
    One aggressive point for every GEMM (``vdd``/``v_scale`` or ``freq``/``freq_ghz``/``speedup``).
``timestep``
    Aggressive inside the given timestep ``ranges`` (``"10-50;60-70"``, stop exclusive) or from
    ``after`` on, the ``safe`` point elsewhere and outside the sampler.
``drift``
    DRIFT's resilience-aware DVFS: a :class:`~accelsim.dvfs.profile.SensitivityProfile`
    (block x timestep) marks fragile cells (sensitivity above ``threshold``, or the top
    ``protect`` fraction), which run at the ``safe`` point; the rest run aggressive. Cells the
    profile does not cover are ``missing`` (``safe`` by default). The caller enables rollback
    ABFT (``policy.abft == "drift"``).
``thundervolt``
    ThUnderVolt (DAC 2018, drift.md s4): one aggressive point with TE-Drop, i.e. a
    Razor-detected timing error drops that MAC's update instead of corrupting the sum. The
    policy only chooses the point; the caller must run the kernels with manifestation
    ``"drop"`` (``policy.manifestation``). ThUnderVolt's per-layer voltage selection from an
    error budget is not modelled (one point for all layers).
``closed-loop``
    No profile. Per key (``block`` by default), start at ``start`` (nominal or guardband) and
    move one ``step`` more aggressive after every observation window whose ABFT detections per
    MAC are at or below ``target``; back off ``backoff`` steps when the rate rises above it,
    then hold for ``cooldown`` windows. Bounded between the nominal knob and ``limit``;
    deterministic (no randomness). A window closes once it has seen ``window`` MACs (0: every
    observation). Needs ABFT detections from the caller (``policy.abft == "detect"`` at least).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from accelsim.config import (
    HardwareConfig,
    OperatingPoint,
    check_choice,
    check_float,
    check_int,
    parse_scalar,
    reject_unknown_keys,
)
from accelsim.context import GemmContext
from accelsim.dvfs.profile import SensitivityProfile, load_profile
from accelsim.errors import ConfigError
from accelsim.timing.delay import (
    DelayParams,
    default_delay_params,
    zero_margin_frequency,
    zero_margin_voltage,
)

__all__ = [
    "MODES",
    "POLICIES",
    "ClosedLoopPolicy",
    "DriftPolicy",
    "DvfsSpace",
    "GuardbandPolicy",
    "NominalPolicy",
    "Policy",
    "ThunderVoltPolicy",
    "TimestepPolicy",
    "UniformPolicy",
    "parse_policy",
]

MODES = ("undervolt", "overclock")
#: Default activation-checkpoint interval of the ``drift`` policy, in sampler steps (1: the
#: previous timestep, as DRIFT describes its rollback; DRIFT offloads every ~10 of 50+ steps).
DRIFT_DEFAULT_INTERVAL = 1
_V_KEYS = ("vdd", "v_scale")
_F_KEYS = ("freq", "freq_ghz", "speedup")


@dataclass(frozen=True)
class DvfsSpace:
    """The operating points a policy may choose: one knob, V or f, the other fixed at nominal.

    ``vnom`` (V) and ``fnom`` (Hz) are the nominal point; ``delay`` the delay model whose
    validity range bounds the voltage and whose zero-margin functions give the guardband point.
    """

    mode: str = "undervolt"
    vnom: float = 0.9
    fnom: float = 1.0e9
    delay: DelayParams = field(default_factory=DelayParams)

    def __post_init__(self) -> None:
        check_choice("dvfs.mode", self.mode, MODES)

    @classmethod
    def for_hardware(
        cls, hw: HardwareConfig, mode: str = "undervolt", delay: DelayParams | None = None
    ) -> DvfsSpace:
        """The space of ``hw``'s nominal point (delay model: calib defaults)."""
        return cls(mode, hw.tech.vnom, hw.tech.fnom, delay or default_delay_params())

    @property
    def undervolt(self) -> bool:
        """True in undervolt mode (knob = V), False in overclock mode (knob = f)."""
        return self.mode == "undervolt"

    @property
    def unit(self) -> str:
        """Unit of the knob."""
        return "V" if self.undervolt else "Hz"

    @property
    def nominal_knob(self) -> float:
        """Knob value of the nominal point."""
        return self.vnom if self.undervolt else self.fnom

    def nominal(self) -> OperatingPoint:
        """The nominal point (vnom, fnom)."""
        return OperatingPoint(self.vnom, self.fnom)

    def point(self, knob: float) -> OperatingPoint:
        """The operating point of a knob value (V in undervolt, Hz in overclock mode)."""
        if self.undervolt:
            return OperatingPoint(vdd=knob, freq=self.fnom)
        return OperatingPoint(vdd=self.vnom, freq=knob)

    def knob(self, op: OperatingPoint) -> float:
        """The knob value of an operating point."""
        return op.vdd if self.undervolt else op.freq

    def zero_margin(self) -> float:
        """Knob of the guardband-removed point: zero-margin V at fnom, or f at vnom."""
        if self.undervolt:
            return zero_margin_voltage(self.fnom, self.vnom, self.fnom, self.delay)
        return zero_margin_frequency(self.vnom, self.vnom, self.fnom, self.delay)

    def aggressiveness(self, knob: float) -> float:
        """Signed distance from nominal, larger = more aggressive (V below, or Hz above)."""
        return self.vnom - knob if self.undervolt else knob - self.fnom

    def check_knob(self, key: str, value: object) -> float:
        """Validate a knob value for this mode (V within the delay model, Hz within range)."""
        if self.undervolt:
            return check_float(key, value, self.delay.v_min, self.delay.v_max, unit="V")
        lo, hi = OperatingPoint.FREQ_RANGE
        return check_float(key, value, lo, hi, unit="Hz")

    def knob_from(self, params: dict[str, Any], where: str) -> float | None:
        """Pop a knob from ``vdd``/``v_scale`` (undervolt) or ``freq``/``freq_ghz``/``speedup``."""
        mine, other = (_V_KEYS, _F_KEYS) if self.undervolt else (_F_KEYS, _V_KEYS)
        for key in other:
            if key in params:
                fixed = "frequency" if self.undervolt else "voltage"
                raise ConfigError(
                    f"{where}.{key}: got {params[key]!r} in {self.mode} mode (fixed {fixed}), "
                    f"expected one of {', '.join(mine)}"
                )
        given = [k for k in mine if k in params]
        if len(given) > 1:
            raise ConfigError(f"{where}: got both {given[0]} and {given[1]}, expected only one")
        if not given:
            return None
        key = given[0]
        value = params.pop(key)
        if key == "v_scale":
            value = check_float(f"{where}.v_scale", value, 0.0, 2.0, lo_open=True) * self.vnom
        elif key == "freq_ghz":
            value = check_float(f"{where}.freq_ghz", value, 0.0, 100.0, lo_open=True) * 1e9
        elif key == "speedup":
            value = check_float(f"{where}.speedup", value, 0.0, 100.0, lo_open=True) * self.fnom
        return self.check_knob(f"{where}.{key}", value)


class Policy:
    """Base class: ``decide(ctx) -> OperatingPoint`` and ``observe(ctx, detections, macs)``.

    ``manifestation`` and ``abft`` are hints for the caller: the timing-error manifestation
    the policy assumes (None: the run's default) and the ABFT preset it needs (None: any).
    """

    name: ClassVar[str] = ""
    manifestation: ClassVar[str | None] = None
    abft: ClassVar[str | None] = None
    #: How critical errors are undone when the policy's ABFT asks for a rollback (None: the
    #: caller's default); see :mod:`accelsim.experiments.protect`.
    rollback: ClassVar[str | None] = None
    #: Sampler steps between activation checkpoints (None: no checkpoints).
    checkpoint_interval: int | None = None

    def __init__(self, space: DvfsSpace) -> None:
        self.space = space

    def needs_checkpoint(self, ctx: GemmContext) -> bool:
        """Whether the output of the GEMM of ``ctx`` must be checkpointed for a later rollback
        (default: yes; a policy that knows where it runs at the safe point says no there)."""
        return True

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The operating point for the GEMM of ``ctx``."""
        raise NotImplementedError

    def observe(self, ctx: GemmContext, detections: int, macs: int) -> None:
        """Feedback after the GEMM of ``ctx``: ABFT ``detections`` over ``macs`` MACs."""
        if detections < 0 or macs < 0:
            raise ConfigError(
                f"observe: got detections={detections}, macs={macs}, expected integers >= 0"
            )

    def reset(self) -> None:
        """Forget any feedback state (a new run)."""

    def describe(self) -> str:
        """One line for reports."""
        return f"{self.name} ({self.space.mode})"


class NominalPolicy(Policy):
    """Always the nominal point."""

    name = "nominal"

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The nominal point."""
        return self.space.nominal()


class GuardbandPolicy(Policy):
    """The zero-margin point (guardband removed), backed off by ``margin`` x nominal knob."""

    name = "guardband"

    def __init__(self, space: DvfsSpace, margin: float = 0.0) -> None:
        super().__init__(space)
        self.margin = check_float("guardband.margin", margin, 0.0, 0.5)
        zm = space.zero_margin()
        delta = self.margin * space.nominal_knob
        knob = zm + delta if space.undervolt else zm - delta
        # Never more conservative than nominal.
        if space.aggressiveness(knob) < 0:
            knob = space.nominal_knob
        self.op = space.point(knob)

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The guardband-removed point."""
        return self.op


class UniformPolicy(Policy):
    """One aggressive point for every GEMM."""

    name = "uniform"

    def __init__(self, space: DvfsSpace, knob: float) -> None:
        super().__init__(space)
        self.op = space.point(space.check_knob(f"{self.name}.knob", knob))

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The aggressive point."""
        return self.op


class ThunderVoltPolicy(UniformPolicy):
    """ThUnderVolt: one aggressive point, timing errors dropped (TE-Drop, manifestation drop)."""

    name = "thundervolt"
    manifestation = "drop"


def _safe_knob(space: DvfsSpace, safe: object, where: str) -> float:
    if safe == "nominal" or safe is None:
        return space.nominal_knob
    if safe == "guardband":
        return space.zero_margin()
    if isinstance(safe, str):
        raise ConfigError(
            f"{where}.safe: got {safe!r}, expected nominal, guardband or a knob value "
            f"({space.unit})"
        )
    return space.check_knob(f"{where}.safe", safe)


def _parse_ranges(value: object, where: str) -> tuple[tuple[int, int], ...]:
    """``"10-50;60-70"`` or ``[[10, 50], [60, 70]]`` -> ((10, 50), (60, 70)), stop exclusive."""
    items: list[tuple[object, object]] = []
    if isinstance(value, str):
        for part in filter(None, (p.strip() for p in value.replace("+", ";").split(";"))):
            a, dash, b = part.partition("-")
            if not dash:
                raise ConfigError(
                    f"{where}.ranges: got {part!r}, expected start-stop (stop exclusive)"
                )
            items.append((a.strip(), b.strip()))
    elif isinstance(value, list | tuple):
        for pair in value:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ConfigError(f"{where}.ranges: got {pair!r}, expected a [start, stop] pair")
            items.append((pair[0], pair[1]))
    else:
        raise ConfigError(f"{where}.ranges: got {value!r}, expected 'start-stop;start-stop'")
    out = []
    for lo, hi in items:
        try:
            start = int(str(lo))
            stop = int(str(hi))
        except ValueError:
            raise ConfigError(
                f"{where}.ranges: got {lo!r}-{hi!r}, expected integer timesteps"
            ) from None
        if start < 0 or stop <= start:
            raise ConfigError(
                f"{where}.ranges: got {start}-{stop}, expected 0 <= start < stop (stop exclusive)"
            )
        out.append((start, stop))
    return tuple(out)


class TimestepPolicy(Policy):
    """Aggressive in chosen timestep ranges (stop exclusive), the safe point elsewhere; with
    ``blocks``, only the GEMMs of those blocks (``""`` = outside any block) go aggressive (one
    block x timestep cell: what resilience profiling runs)."""

    name = "timestep"

    def __init__(
        self,
        space: DvfsSpace,
        knob: float,
        ranges: tuple[tuple[int, int], ...],
        safe: object = "nominal",
        blocks: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(space)
        if not ranges:
            raise ConfigError("timestep.ranges: got no range, expected at least one start-stop")
        self.ranges = ranges
        self.blocks = None if blocks is None else frozenset(blocks)
        self.aggressive = space.point(space.check_knob(f"{self.name}.knob", knob))
        self.safe = space.point(_safe_knob(space, safe, self.name))

    def in_range(self, timestep: int | None) -> bool:
        """True when ``timestep`` lies in one of the aggressive ranges."""
        return timestep is not None and any(a <= timestep < b for a, b in self.ranges)

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """Aggressive inside the ranges (and blocks), safe outside (and outside the sampler)."""
        if self.blocks is not None and ctx.block not in self.blocks:
            return self.safe
        return self.aggressive if self.in_range(ctx.timestep) else self.safe


class DriftPolicy(Policy):
    """DRIFT: fragile block x timestep cells at the safe point, the rest aggressive.

    Rollback ABFT (``abft = "drift"``): a critical error is masked with the same GEMM's output
    from the most recent activation checkpoint, taken every ``interval`` sampler steps
    (DRIFT's offload interval; 1 = the previous timestep). Only GEMMs that run aggressive at
    some later step are checkpointed (:meth:`needs_checkpoint`).
    """

    name = "drift"
    abft = "drift"
    rollback = "activation"

    def __init__(
        self,
        space: DvfsSpace,
        knob: float,
        profile: SensitivityProfile,
        *,
        threshold: float | None = None,
        protect: float | None = None,
        safe: object = "nominal",
        missing: str = "safe",
        interval: int = DRIFT_DEFAULT_INTERVAL,
    ) -> None:
        super().__init__(space)
        self.checkpoint_interval = check_int("drift.interval", interval, 1, 10_000)
        if threshold is not None and protect is not None:
            raise ConfigError("drift: got both threshold and protect, expected only one")
        if threshold is None:
            frac = 0.25 if protect is None else check_float("drift.protect", protect, 0.0, 1.0)
            self.threshold = profile.quantile_threshold(frac) if frac > 0 else math.inf
            self.inclusive = frac > 0
        else:
            self.threshold = check_float("drift.threshold", threshold)
            self.inclusive = False
        self.profile = profile
        self.missing = check_choice("drift.missing", missing, ("safe", "aggressive"))
        self.aggressive = space.point(space.check_knob(f"{self.name}.knob", knob))
        self.safe = space.point(_safe_knob(space, safe, self.name))

    def fragile(self, block: str, timestep: int | None) -> bool:
        """True when the profile marks (block, timestep) fragile (or misses it, if so set)."""
        s = self.profile.lookup(block, timestep)
        if s is None:
            return self.missing == "safe"
        # a cell whose measured loss is zero is never protected (ties at zero are not "the
        # most fragile"; with too few errors in the profile nothing would run aggressive)
        return (s >= self.threshold and s > 0) if self.inclusive else s > self.threshold

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """Safe for fragile cells, aggressive otherwise."""
        return self.safe if self.fragile(ctx.block, ctx.timestep) else self.aggressive

    def needs_checkpoint(self, ctx: GemmContext) -> bool:
        """True when ``ctx.block`` runs aggressive at some step after ``ctx.timestep`` (a
        checkpoint is read only by a later step's rollback)."""
        if self.aggressive == self.safe or ctx.timestep is None:
            return False
        t = ctx.timestep
        cells = [c for c in self.profile.cells if c.block == ctx.block and c.t_stop > t + 1]
        if self.missing == "aggressive":
            covered = sorted((max(c.t_start, t + 1), c.t_stop) for c in cells)
            edge = t + 1
            for a, b in covered:
                if a > edge:
                    return True  # a gap: an uncovered (aggressive) step
                edge = max(edge, b)
            if edge < 2**62:
                return True
        return any(not self.fragile(ctx.block, max(c.t_start, t + 1)) for c in cells)


@dataclass
class LoopState:
    """Closed-loop state of one key: level (0 = nominal), open window sums, cooldown left."""

    level: int
    detections: int = 0
    macs: int = 0
    cooldown: int = 0
    windows: int = 0
    backoffs: int = 0


class ClosedLoopPolicy(Policy):
    """Per-key step-down / back-off controller on the ABFT detection rate (module docstring)."""

    name = "closed-loop"
    abft = "classic"  # correct what checksums locate; detections feed the controller

    def __init__(
        self,
        space: DvfsSpace,
        *,
        target: float = 1e-8,
        step: float | None = None,
        backoff: int = 3,
        limit: float | None = None,
        start: str = "nominal",
        key: str = "block",
        window: int = 0,
        cooldown: int = 0,
    ) -> None:
        super().__init__(space)
        self.target = check_float("closed-loop.target", target, 0.0, 1.0)
        default_step = 0.01 if space.undervolt else 0.02 * space.fnom
        self.step = check_float(
            "closed-loop.step",
            default_step if step is None else step,
            0.0,
            1.0 if space.undervolt else 1e10,
            lo_open=True,
            unit=space.unit,
        )
        self.backoff = check_int("closed-loop.backoff", backoff, 1, 1000)
        default_limit = (
            max(space.delay.v_tail, space.delay.v_min) if space.undervolt else 2.5 * space.fnom
        )
        lim = space.check_knob("closed-loop.limit", default_limit if limit is None else limit)
        if space.aggressiveness(lim) < 0:
            raise ConfigError(
                f"closed-loop.limit: got {lim:g} {space.unit}, expected a point at least as "
                f"aggressive as nominal ({space.nominal_knob:g} {space.unit})"
            )
        self.limit = lim
        self.max_level = math.floor(space.aggressiveness(lim) / self.step + 1e-9)
        self.start = check_choice("closed-loop.start", start, ("nominal", "guardband"))
        if self.start == "guardband":
            gap = max(0.0, space.aggressiveness(space.zero_margin()))
            self.start_level = min(self.max_level, math.floor(gap / self.step + 1e-9))
        else:
            self.start_level = 0
        self.key = check_choice("closed-loop.key", key, ("block", "module", "layer_type", "global"))
        self.window = check_int("closed-loop.window", window, 0)
        self.cooldown = check_int("closed-loop.cooldown", cooldown, 0)
        self.states: dict[str, LoopState] = {}

    def _key(self, ctx: GemmContext) -> str:
        if self.key == "global":
            return ""
        if self.key == "module":
            return ctx.module
        if self.key == "layer_type":
            return ctx.layer_type
        return ctx.block

    def _state(self, ctx: GemmContext) -> LoopState:
        k = self._key(ctx)
        if k not in self.states:
            self.states[k] = LoopState(level=self.start_level)
        return self.states[k]

    def knob_of(self, level: int) -> float:
        """Knob value of a level (0 = nominal; each level one ``step`` more aggressive)."""
        if level >= self.max_level:
            return self.limit
        delta = level * self.step
        return self.space.nominal_knob - delta if self.space.undervolt else self.space.fnom + delta

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The key's current point."""
        return self.space.point(self.knob_of(self._state(ctx).level))

    def observe(self, ctx: GemmContext, detections: int, macs: int) -> None:
        """Accumulate the window; on close, step down or back off (module docstring)."""
        super().observe(ctx, detections, macs)
        st = self._state(ctx)
        st.detections += int(detections)
        st.macs += int(macs)
        if st.macs == 0 or st.macs < self.window:
            return
        rate = st.detections / st.macs
        st.detections = 0
        st.macs = 0
        st.windows += 1
        if rate > self.target:
            st.level = max(0, st.level - self.backoff)
            st.cooldown = self.cooldown
            st.backoffs += 1
        elif st.cooldown > 0:
            st.cooldown -= 1
        else:
            st.level = min(self.max_level, st.level + 1)

    def reset(self) -> None:
        """Forget all keys' state."""
        self.states.clear()


# --------------------------------------------------------------------------- parsing


def _spec_dict(spec: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        name, _, rest = spec.partition(":")
        data: dict[str, Any] = {"name": name.strip()}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"policy spec {spec!r}: got {item!r}, expected key=value")
            data[key.strip()] = parse_scalar(value)
        return data
    if isinstance(spec, dict):
        data = dict(spec)
        if "policy" in data and "name" not in data:
            data["name"] = data.pop("policy")
        return data
    raise ConfigError(f"policy: got {spec!r}, expected a policy name, a spec string or a table")


def _need_knob(space: DvfsSpace, params: dict[str, Any], where: str) -> float:
    knob = space.knob_from(params, where)
    if knob is None:
        keys = _V_KEYS if space.undervolt else _F_KEYS
        raise ConfigError(
            f"{where}: got no operating point, expected one of {', '.join(keys)} "
            f"({space.mode} mode)"
        )
    return knob


def _build_nominal(space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None) -> Policy:
    reject_unknown_keys("nominal", p, set())
    return NominalPolicy(space)


def _build_guardband(
    space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None
) -> Policy:
    reject_unknown_keys("guardband", p, {"margin"})
    return GuardbandPolicy(space, **p)


def _build_uniform(space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None) -> Policy:
    knob = _need_knob(space, p, "uniform")
    reject_unknown_keys("uniform", p, set())
    return UniformPolicy(space, knob)


def _build_thundervolt(
    space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None
) -> Policy:
    knob = _need_knob(space, p, "thundervolt")
    reject_unknown_keys("thundervolt", p, set())
    return ThunderVoltPolicy(space, knob)


def _build_timestep(space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None) -> Policy:
    knob = _need_knob(space, p, "timestep")
    reject_unknown_keys("timestep", p, {"ranges", "after", "safe", "blocks"})
    ranges: tuple[tuple[int, int], ...] = ()
    if "ranges" in p:
        ranges = _parse_ranges(p.pop("ranges"), "timestep")
    if "after" in p:
        after = check_int("timestep.after", p.pop("after"), 0)
        ranges = (*ranges, (after, 2**62))
    blocks = None
    if "blocks" in p:
        raw = p.pop("blocks")
        if not isinstance(raw, str):
            raise ConfigError(
                f"timestep.blocks: got {raw!r}, expected block names separated by ';' "
                "('-' = outside any block)"
            )
        blocks = tuple("" if b.strip() == "-" else b.strip() for b in raw.split(";"))
    return TimestepPolicy(space, knob, ranges, safe=p.get("safe", "nominal"), blocks=blocks)


def _build_drift(space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None) -> Policy:
    knob = _need_knob(space, p, "drift")
    reject_unknown_keys(
        "drift", p, {"profile", "threshold", "protect", "safe", "missing", "interval"}
    )
    source = p.pop("profile", None)
    if isinstance(source, SensitivityProfile):
        prof = source
    elif isinstance(source, str | Path):
        prof = load_profile(source)
    elif source is not None:
        raise ConfigError(f"drift.profile: got {source!r}, expected a CSV path")
    if prof is None:
        raise ConfigError("drift.profile: got none, expected a sensitivity profile CSV path")
    return DriftPolicy(space, knob, prof, **p)


def _build_closed_loop(
    space: DvfsSpace, p: dict[str, Any], prof: SensitivityProfile | None
) -> Policy:
    reject_unknown_keys(
        "closed-loop",
        p,
        {"target", "step", "backoff", "limit", "start", "key", "window", "cooldown"},
    )
    return ClosedLoopPolicy(space, **p)


_Builder = Callable[[DvfsSpace, dict[str, Any], SensitivityProfile | None], Policy]

#: Policy names and their builders (spec keys documented in the module docstring).
POLICIES: dict[str, _Builder] = {
    "nominal": _build_nominal,
    "guardband": _build_guardband,
    "uniform": _build_uniform,
    "timestep": _build_timestep,
    "drift": _build_drift,
    "thundervolt": _build_thundervolt,
    "closed-loop": _build_closed_loop,
}


def parse_policy(
    spec: str | dict[str, Any] | Policy,
    hw: HardwareConfig | None = None,
    *,
    profile: SensitivityProfile | None = None,
    delay: DelayParams | None = None,
) -> Policy:
    """Build a policy from ``"name:key=value,..."`` or a dict (``name`` or ``policy`` key).

    ``mode`` (undervolt | overclock, default undervolt) selects the knob; the operating point
    is given by ``vdd``/``v_scale`` (undervolt) or ``freq``/``freq_ghz``/``speedup``
    (overclock). ``profile`` supplies the drift policy's table when the spec names none.
    Examples: ``"uniform:vdd=0.72"``, ``"timestep:mode=overclock,speedup=1.7,ranges=10-50"``,
    ``"drift:vdd=0.7,profile=prof.csv,protect=0.2"``, ``"closed-loop:target=1e-8,step=0.01"``.

    Raises
    ------
    ConfigError
        Unknown policy or key, missing or out-of-range operating point (one line).
    """
    if isinstance(spec, Policy):
        return spec
    data = _spec_dict(spec)
    name = data.pop("name", None)
    if name not in POLICIES:
        raise ConfigError(f"policy: got {name!r}, expected one of {', '.join(POLICIES)}")
    mode = data.pop("mode", "undervolt")
    check_choice(f"{name}.mode", mode, MODES)
    hw = hw if hw is not None else HardwareConfig()
    space = DvfsSpace.for_hardware(hw, mode, delay)
    return POLICIES[name](space, data, profile)
