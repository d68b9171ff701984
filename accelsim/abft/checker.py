"""The ABFT checker the interceptor calls after every GEMM: detect, locate, classify, act.

``AbftChecker(config, hw).check(A, B, C, ctx, op=op) -> AbftResult``:

1. reference checksums of ``A @ B`` (exact modulo 2**32, :mod:`accelsim.abft.checksum`;
   the checksum PEs and adders are assumed error-free, e.g. guard-banded: a fault in them
   would show up as an ``inconsistent`` mismatch, i.e. a false alarm, never as silent
   corruption);
2. syndromes of the produced ``C``; no mismatch: done (only the check overhead is charged);
3. locate (single error, several in one row/column, or distinct rows and columns paired by
   value; else ambiguous);
4. classify (``classifier``: ``none`` = every detection is critical, ``magnitude``, ``realm``:
   :mod:`accelsim.abft.classify`);
5. act: benign detections get ``on_benign`` (``ignore`` or ``correct``), critical ones
   ``on_critical`` (``correct``, ``recompute`` at the safe point, ``rollback``: flag for the
   sampler, DRIFT's rollback ABFT, or ``ignore``); a critical pattern that cannot be located
   gets ``on_uncorrectable`` (``recompute``, ``rollback`` or ``ignore``).

Every action carries its :class:`~accelsim.abft.cost.AbftCost`; ``result.cost`` is the check
overhead plus all actions, ready for ``EnergyLedger.add(key, result.cost.energy)`` and for
adding ``result.cost.seconds`` to the layer time.

Presets (:func:`abft_config`): ``classic`` (correct what is located, recompute the rest),
``drift`` (magnitude rule; benign errors left in, critical ones rolled back), ``realm``
(ReaLM rule; critical GEMMs recomputed whole at the safe point), ``detect`` (count only: for
closed-loop DVFS). Specs are ``"preset"`` or ``"preset:key=value,key=value"`` or a dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from accelsim.abft.checksum import (
    Checksums,
    Location,
    Syndromes,
    apply_corrections,
    check_gemm_operands,
    encode,
    locate,
    syndromes,
    to_int32,
)
from accelsim.abft.classify import (
    REALM_BMM,
    REALM_LINEAR,
    Classification,
    RealmParams,
    magnitude_rule,
    realm_rule,
)
from accelsim.abft.cost import (
    E_ADD_J,
    AbftCost,
    check_cost,
    correction_cost,
    recompute_cost,
    rollback_cost,
)
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
from accelsim.dvfs.transition import TransitionModel
from accelsim.errors import ConfigError
from accelsim.hw.energy import EnergyBreakdown, leakage_power

__all__ = [
    "ABFT_PRESETS",
    "AbftChecker",
    "AbftConfig",
    "AbftResult",
    "Action",
    "abft_config",
]

Int64Array = npt.NDArray[np.int64]

#: Layer types whose both operands are activations (no static weight checksum).
ATTENTION_TYPES = ("attn-scores", "attn-value")


@dataclass(frozen=True)
class AbftConfig:
    """What the checker does and how its hardware is built (see the module docstring).

    Thresholds are in int32 accumulator units (``abs_threshold``) or relative to the output
    range (``rel_threshold``). ``realm_a/b/F`` override ReaLM's constants (default: its
    linear-layer fit, and its BMM fit for attention matmuls). ``safe_vdd`` (V) / ``safe_freq``
    (Hz) give the recompute point (default: the nominal point). ``placement``,
    ``weights_static``, ``verify_lanes``, ``overlap_verify`` and ``e_add_j`` (J) parametrize
    the cost model (:mod:`accelsim.abft.cost`); ``rollback_bytes`` is the size of one
    checkpointed activation element: 1 (int8 with one fp32 scale per row, as the W8A8 array
    stores activations; default), 2 (fp16) or 4 (fp32). ``offload_checkpoints``: a checkpoint
    is a separate DRAM write of the whole output (a design that keeps activations on chip);
    default False: the memory model (:mod:`accelsim.hw.memory`) already writes every GEMM
    output to DRAM at ``memory.word_bytes`` per element, so a checkpoint keeps that copy
    instead of overwriting it and costs only the bytes beyond it (scales, wider formats).
    """

    classifier: str = "none"
    abs_threshold: float = 0.0
    rel_threshold: float = 0.5
    realm_rule: str = "either"
    realm_a: float | None = None
    realm_b: float | None = None
    realm_F: float | None = None
    on_benign: str = "correct"
    on_critical: str = "correct"
    on_uncorrectable: str = "recompute"
    recompute_scope: str = "lines"
    match_multiple: bool = True
    placement: str = "dedicated"
    weights_static: bool = True
    verify_lanes: int | None = None
    overlap_verify: bool = True
    e_add_j: float = E_ADD_J
    safe_vdd: float | None = None
    safe_freq: float | None = None
    rollback_bytes: int = 1
    offload_checkpoints: bool = False

    def __post_init__(self) -> None:
        check_choice("abft.classifier", self.classifier, ("none", "magnitude", "realm"))
        object.__setattr__(
            self, "abs_threshold", check_float("abft.abs_threshold", self.abs_threshold, 0.0)
        )
        object.__setattr__(
            self,
            "rel_threshold",
            check_float("abft.rel_threshold", self.rel_threshold, 0.0, 1e6),
        )
        check_choice("abft.realm_rule", self.realm_rule, ("region", "msd", "either"))
        for name in ("realm_a", "realm_b", "realm_F"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_float(f"abft.{name}", value, -1e3, 1e3))
        check_choice("abft.on_benign", self.on_benign, ("ignore", "correct"))
        check_choice(
            "abft.on_critical", self.on_critical, ("correct", "recompute", "rollback", "ignore")
        )
        check_choice(
            "abft.on_uncorrectable", self.on_uncorrectable, ("recompute", "rollback", "ignore")
        )
        check_choice("abft.recompute_scope", self.recompute_scope, ("lines", "gemm"))
        check_choice("abft.placement", self.placement, ("array", "dedicated"))
        for name in ("match_multiple", "weights_static", "overlap_verify", "offload_checkpoints"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"abft.{name}: got {getattr(self, name)!r}, expected true or false"
                )
        if self.verify_lanes is not None:
            object.__setattr__(
                self, "verify_lanes", check_int("abft.verify_lanes", self.verify_lanes, 1)
            )
        object.__setattr__(self, "e_add_j", check_float("abft.e_add_j", self.e_add_j, 0.0, 1e-9))
        object.__setattr__(
            self, "rollback_bytes", check_int("abft.rollback_bytes", self.rollback_bytes, 1, 4)
        )
        if self.rollback_bytes == 3:
            raise ConfigError("abft.rollback_bytes: got 3, expected 1 (int8), 2 (fp16) or 4 (fp32)")
        if self.safe_vdd is not None:
            object.__setattr__(
                self, "safe_vdd", check_float("abft.safe_vdd", self.safe_vdd, 0.3, 1.5, unit="V")
            )
        if self.safe_freq is not None:
            object.__setattr__(
                self,
                "safe_freq",
                check_float("abft.safe_freq", self.safe_freq, 1e6, 1e10, unit="Hz"),
            )

    def realm_params(self, layer_type: str) -> RealmParams:
        """ReaLM constants for a layer type (BMM fit for attention matmuls), with overrides."""
        base = REALM_BMM if layer_type in ATTENTION_TYPES else REALM_LINEAR
        return RealmParams(
            a=base.a if self.realm_a is None else self.realm_a,
            b=base.b if self.realm_b is None else self.realm_b,
            F=base.F if self.realm_F is None else self.realm_F,
        )


#: Named configurations; a spec may override any field: ``"drift:rel_threshold=0.25"``.
ABFT_PRESETS: dict[str, dict[str, Any]] = {
    "classic": {},
    "drift": {
        "classifier": "magnitude",
        "on_benign": "ignore",
        "on_critical": "rollback",
        "on_uncorrectable": "rollback",
    },
    "realm": {
        "classifier": "realm",
        "on_benign": "ignore",
        "on_critical": "recompute",
        "on_uncorrectable": "recompute",
        "recompute_scope": "gemm",
    },
    "detect": {"on_benign": "ignore", "on_critical": "ignore", "on_uncorrectable": "ignore"},
}


def abft_config(spec: str | dict[str, Any] | AbftConfig | None = None) -> AbftConfig:
    """Build an AbftConfig from a preset name, ``"preset:key=value,..."``, a dict or a config.

    A dict may carry ``preset`` (default ``classic``) plus field overrides. Unknown presets
    or keys raise a one-line ConfigError.
    """
    if spec is None:
        return AbftConfig()
    if isinstance(spec, AbftConfig):
        return spec
    if isinstance(spec, str):
        name, _, rest = spec.partition(":")
        data: dict[str, Any] = {"preset": name.strip()}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"abft spec {spec!r}: got {item!r}, expected key=value")
            data[key.strip()] = parse_scalar(value)
    elif isinstance(spec, dict):
        data = dict(spec)
    else:
        raise ConfigError(f"abft: got {spec!r}, expected a preset name, a spec string or a table")
    preset = data.pop("preset", "classic")
    if preset not in ABFT_PRESETS:
        raise ConfigError(f"abft.preset: got {preset!r}, expected one of {', '.join(ABFT_PRESETS)}")
    reject_unknown_keys("abft", data, {f.name for f in fields(AbftConfig)})
    return AbftConfig(**{**ABFT_PRESETS[preset], **data})


@dataclass(frozen=True)
class Action:
    """One recovery action taken on a GEMM.

    ``kind``: ``correct`` (located elements fixed from the syndromes), ``recompute`` (the
    ``rows`` or ``cols`` lines, or the whole GEMM when both are empty, re-run at ``op``),
    ``rollback`` (the suspect elements must be replaced by the sampler with an earlier
    timestep's activation) or ``ignore`` (errors left in the output). ``elements`` is the
    number of output elements concerned; ``cost`` its time and energy.
    """

    kind: str
    elements: int
    rows: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    cols: Int64Array = field(default_factory=lambda: np.zeros(0, np.int64))
    op: OperatingPoint | None = None
    cost: AbftCost = field(default_factory=AbftCost)


@dataclass(frozen=True)
class AbftResult:
    """Outcome of checking one GEMM.

    ``out`` is the int32 output after the actions (corrected or recomputed; unchanged for
    ``rollback``/``ignore``). ``detected``: a checksum mismatched; ``n_detected``: erroneous
    elements (exact when ``located``, else a lower bound); ``corrected``: elements repaired from
    the checksums; ``recomputed``: elements re-run at the safe point; ``critical``: the classifier's verdict; ``rollback``: the
    caller must replace :meth:`suspect_mask` from an earlier timestep; ``residual``: errors
    knowingly left in ``out``. ``cost`` = check overhead + all actions.
    """

    out: npt.NDArray[np.int32]
    detected: bool
    n_detected: int
    located: bool
    corrected: int
    recomputed: int
    critical: bool
    rollback: bool
    residual: bool
    actions: tuple[Action, ...]
    cost: AbftCost
    check_cost: AbftCost
    syndromes: Syndromes
    location: Location
    classification: Classification | None

    def summary(self) -> dict[str, Any]:
        """Scalar fields for logs and result stores (no arrays)."""
        return {
            "detected": self.detected,
            "n_detected": self.n_detected,
            "located": self.located,
            "pattern": self.location.pattern,
            "corrected": self.corrected,
            "recomputed": self.recomputed,
            "critical": self.critical,
            "rollback": self.rollback,
            "residual": self.residual,
            "actions": ",".join(a.kind for a in self.actions),
            "cycles": self.cost.cycles,
            "seconds": self.cost.seconds,
            **{f"energy_{k}": v for k, v in self.cost.energy.as_dict().items() if v},
        }

    def suspect_mask(self) -> npt.NDArray[np.bool_]:
        """``M x N`` mask of the elements known or suspected to be wrong (before actions)."""
        mask = np.zeros(self.out.shape, dtype=np.bool_)
        loc = self.location
        if loc.located:
            mask[loc.m, loc.n] = True
        elif loc.rows.size and loc.cols.size:
            mask[np.ix_(loc.rows, loc.cols)] = True
        elif loc.rows.size:
            mask[loc.rows, :] = True
        elif loc.cols.size:
            mask[:, loc.cols] = True
        return mask


@lru_cache(maxsize=4096)
def _cached_check_cost(
    M: int,
    N: int,
    K: int,
    hw: HardwareConfig,
    op: OperatingPoint,
    placement: str,
    weights_static: bool,
    verify_lanes: int | None,
    overlap_verify: bool,
    e_add_j: float,
) -> AbftCost:
    return check_cost(
        M,
        N,
        K,
        hw,
        op,
        placement=placement,
        weights_static=weights_static,
        verify_lanes=verify_lanes,
        overlap_verify=overlap_verify,
        e_add_j=e_add_j,
    )


def _exact_lines(
    A: np.ndarray, B: np.ndarray, rows: Int64Array | None, cols: Int64Array | None
) -> npt.NDArray[np.int32]:
    """Error-free int32 (wrap-around) product of the selected rows or columns."""
    a = A if rows is None else A[rows]
    b = B if cols is None else B[:, cols]
    prod = a.astype(np.int64).astype(np.uint64) @ b.astype(np.int64).astype(np.uint64)
    return to_int32(prod).astype(np.int32)


class AbftChecker:
    """Checksum ABFT for one accelerator: ``check(A, B, C, ctx, op=...)`` per GEMM.

    ``hw`` gives the array, memories and energies (default: the 128x128 preset-like
    ``HardwareConfig()``). With ``transitions``, a recompute at a safe point different from the
    GEMM's point also pays the switch there and back (stall time, regulator energy in the
    ``dvfs`` component, leakage during the stalls). Stateless apart from its configuration
    (safe to share across GEMMs and threads).
    """

    def __init__(
        self,
        config: AbftConfig | str | dict[str, Any] | None = None,
        hw: HardwareConfig | None = None,
        *,
        transitions: TransitionModel | None = None,
    ) -> None:
        self.config = abft_config(config)
        self.hw = hw if hw is not None else HardwareConfig()
        self.transitions = transitions
        tech = self.hw.tech
        self.safe_op = OperatingPoint(
            vdd=self.config.safe_vdd if self.config.safe_vdd is not None else tech.vnom,
            freq=self.config.safe_freq if self.config.safe_freq is not None else tech.fnom,
        )

    def overhead(
        self, M: int, N: int, K: int, op: OperatingPoint, layer_type: str = "other"
    ) -> AbftCost:
        """Check overhead of an ``M x N x K`` GEMM at ``op`` (also charged when nothing fails)."""
        cfg = self.config
        static = cfg.weights_static and layer_type not in ATTENTION_TYPES
        return _cached_check_cost(
            M,
            N,
            K,
            self.hw,
            op,
            cfg.placement,
            static,
            cfg.verify_lanes,
            cfg.overlap_verify,
            cfg.e_add_j,
        )

    def classify(
        self, C: np.ndarray, s: Syndromes, layer_type: str = "other"
    ) -> Classification | None:
        """The configured classifier's verdict (None for ``classifier="none"``)."""
        cfg = self.config
        if cfg.classifier == "magnitude":
            return magnitude_rule(
                C, s, abs_threshold=cfg.abs_threshold, rel_threshold=cfg.rel_threshold
            )
        if cfg.classifier == "realm":
            return realm_rule(s, cfg.realm_params(layer_type), rule=cfg.realm_rule)
        return None

    def check(
        self,
        A: np.ndarray,
        B: np.ndarray,
        C: np.ndarray,
        ctx: GemmContext | None = None,
        *,
        op: OperatingPoint | None = None,
        reference: Checksums | None = None,
    ) -> AbftResult:
        """Verify ``C`` against ``A @ B`` (int8 x int8 -> int32) and act on any mismatch.

        Parameters
        ----------
        A, B
            The int8 operands, ``M x K`` and ``K x N``.
        C
            The int32 ``M x N`` output the array produced (possibly faulty).
        ctx
            Where the GEMM comes from (its ``layer_type`` selects ReaLM constants and whether
            ``B`` is a static weight matrix); optional.
        op
            Operating point the GEMM ran at (default nominal): scales the check's energy and
            gives its cycle time.
        reference
            Precomputed reference checksums (default: :func:`~accelsim.abft.checksum.encode`);
            pass faulty ones to model errors in the checksum hardware.

        Raises
        ------
        ShapeError
            If the operands are not int8 matrices of matching shapes or ``C`` is not M x N int32.
        """
        check_gemm_operands(A, B, C)
        cfg = self.config
        layer_type = ctx.layer_type if ctx is not None else "other"
        op = op if op is not None else OperatingPoint.nominal(self.hw.tech)
        M, K = A.shape
        N = B.shape[1]
        ref = reference if reference is not None else encode(A, B)
        s = syndromes(C, ref)
        overhead = self.overhead(M, N, K, op, layer_type)
        loc = locate(s, match_multiple=cfg.match_multiple)
        if not s.detected:
            return AbftResult(
                out=C,
                detected=False,
                n_detected=0,
                located=True,
                corrected=0,
                recomputed=0,
                critical=False,
                rollback=False,
                residual=False,
                actions=(),
                cost=overhead,
                check_cost=overhead,
                syndromes=s,
                location=loc,
                classification=None,
            )
        verdict = self.classify(C, s, layer_type)
        critical = True if verdict is None else verdict.critical
        wanted = cfg.on_critical if critical else cfg.on_benign
        if wanted == "correct" and not loc.located:
            wanted = cfg.on_uncorrectable if critical else "ignore"
        action = self._act(wanted, A, B, C, loc, op)
        out = action[1]
        act = action[0]
        return AbftResult(
            out=out,
            detected=True,
            n_detected=loc.n_errors,
            located=loc.located,
            corrected=act.elements if act.kind == "correct" else 0,
            recomputed=act.elements if act.kind == "recompute" else 0,
            critical=critical,
            rollback=act.kind == "rollback",
            residual=act.kind in ("ignore", "rollback"),
            actions=(act,),
            cost=overhead + act.cost,
            check_cost=overhead,
            syndromes=s,
            location=loc,
            classification=verdict,
        )

    def recompute_suspects(
        self, A: np.ndarray, B: np.ndarray, result: AbftResult, op: OperatingPoint
    ) -> tuple[Action, npt.NDArray[np.int32]]:
        """Recompute at the safe point the lines ``result`` located (the whole GEMM when it
        located none): the fallback of a rollback that has no checkpoint to read from."""
        return self._act("recompute", A, B, result.out, result.location, op)

    def _recompute(self, M: int, N: int, K: int, op: OperatingPoint) -> AbftCost:
        cost = recompute_cost(M, N, K, self.hw, self.safe_op)
        if self.transitions is None or op == self.safe_op:
            return cost
        there = self.transitions.cost(op, self.safe_op)
        back = self.transitions.cost(self.safe_op, op)
        stall = there.stall_s + back.stall_s
        leak = leakage_power(self.hw, op.vdd) * stall
        switch = AbftCost(
            cycles=math.ceil(stall * op.freq),
            seconds=stall,
            energy=EnergyBreakdown(dvfs=there.energy_j + back.energy_j, recompute=leak),
            detail={"switch": there.energy_j + back.energy_j, "switch_leakage": leak},
        )
        return cost + switch

    def _act(
        self,
        kind: str,
        A: np.ndarray,
        B: np.ndarray,
        C: np.ndarray,
        loc: Location,
        op: OperatingPoint,
    ) -> tuple[Action, npt.NDArray[np.int32]]:
        hw, cfg = self.hw, self.config
        M, K = A.shape
        N = B.shape[1]
        if kind == "correct":
            k = int(loc.m.size)
            cost = correction_cost(k, hw, op, e_add_j=cfg.e_add_j)
            return Action("correct", k, loc.rows, loc.cols, op, cost), apply_corrections(C, loc)
        if kind == "recompute":
            out = np.array(C, dtype=np.int32, copy=True)
            rows, cols = loc.rows, loc.cols
            # rows or columns, whichever is cheaper to re-run on this array (a few rows on a
            # weight-stationary array reload every weight fold; a few columns do not)
            by_rows = rows.size > 0 and (
                cols.size == 0
                or self._recompute(int(rows.size), N, K, op).energy_j
                <= self._recompute(M, int(cols.size), K, op).energy_j
            )
            if cfg.recompute_scope == "gemm" or (rows.size == 0 and cols.size == 0):
                out = _exact_lines(A, B, None, None)
                cost = self._recompute(M, N, K, op)
                empty = np.zeros(0, np.int64)
                return Action("recompute", M * N, empty, empty, self.safe_op, cost), out
            if by_rows:
                out[rows, :] = _exact_lines(A, B, rows, None)
                cost = self._recompute(int(rows.size), N, K, op)
                act = Action(
                    "recompute", int(rows.size) * N, rows, np.zeros(0, np.int64), self.safe_op, cost
                )
                return act, out
            out[:, cols] = _exact_lines(A, B, None, cols)
            cost = self._recompute(M, int(cols.size), K, op)
            act = Action(
                "recompute", M * int(cols.size), np.zeros(0, np.int64), cols, self.safe_op, cost
            )
            return act, out
        n_suspect = (
            int(loc.m.size)
            if loc.located
            else (
                int(loc.rows.size * loc.cols.size)
                if loc.rows.size and loc.cols.size
                else int(loc.rows.size * N + loc.cols.size * M)
            )
        )
        if kind == "rollback":
            cost = rollback_cost(n_suspect, hw, op, bytes_per_element=cfg.rollback_bytes)
            return Action("rollback", n_suspect, loc.rows, loc.cols, op, cost), C
        return Action("ignore", n_suspect, loc.rows, loc.cols, op, AbftCost()), C
