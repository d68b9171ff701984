"""A protected accelerator: DVFS policy, regulator transitions, checksum ABFT and rollback.

:class:`ProtectedAccelerator` is an :class:`~accelsim.accelerator.Accelerator` whose every GEMM

1. runs at the operating point the policy decides (:meth:`ProtectedAccelerator.decide`); a
   change from the previous GEMM's point is charged by the regulator model (stall time and
   energy, ledger component ``dvfs``);
2. executes on the kernel with timing errors (the policy may ask for another manifestation:
   ``thundervolt`` drops late updates, which needs in-situ detection latches, charged by the
   accelerator as ``detection``);
3. is verified by Huang-Abraham checksums when the policy (or the caller) asks for ABFT
   (:class:`accelsim.abft.AbftChecker`): the check itself is charged to ``abft`` on every GEMM;
   a detection is corrected (``abft``), recomputed at the safe point (``recompute``) or rolled
   back, as the ABFT preset says;
4. reports its detections to the policy (``observe``: the closed-loop controller's feedback).

**Rollback, as DRIFT describes it** (``rollback="activation"``). Every ``checkpoint_interval``
sampler steps (the policy's offload interval K; 1 = every step) the *dequantized* output of each
weight GEMM the policy may still run aggressively later (``policy.needs_checkpoint``) is kept
in DRAM at the ABFT config's ``rollback_bytes`` per element (default 1: int8 with one fp32
scale per row, as the W8A8 array stores activations; ledger ``checkpoint``, once per
checkpoint). The memory model writes every GEMM output to DRAM anyway (one word per element,
charged to the layer), so by default a checkpoint keeps that copy (a second buffer instead of
overwriting it) and is charged only the bytes beyond it (the row scales, or a wider stored
format); with the ABFT option ``offload_checkpoints=true`` (a design that keeps activations on
chip) it is charged as a separate write of the whole output. A critical detection replaces the
suspect elements (the located ones; where only rows and columns are known, their intersection,
or the whole rows or columns) by the same GEMM's values (same module, same call ordinal within the step) from the most
recent checkpoint step before the current one: values carried through their own
dequantization, not another step's raw int32 accumulators. The read is charged once per
rollback (``rollback``). Where no earlier checkpoint exists (the first steps, or a GEMM that
was never checkpointed), the located lines are recomputed exactly at the safe point
(``recompute``: MACs, SRAM, leakage and time). Attention score and value GEMMs (both operands
activations) are never checkpointed: their outputs are per-head ``tokens x tokens`` matrices
(29% of a dit-digits step's output bytes for 11% of its MACs), so recomputing the few located
lines costs far less than writing them out every checkpoint step. ``rollback="latent"`` flags the step for the
sampler (it restores its latent checkpoint and redoes the steps at the safe point; the runner
charges the latent traffic); ``rollback="none"`` leaves critical errors in and charges nothing
for them.

Only hardware a policy uses is charged: without ABFT no check, without rollback no
checkpoint, without a detecting manifestation no latches. A run without timing errors therefore
costs the unprotected run at the same per-GEMM operating points plus exactly the fixed
overheads (checks, latches, checkpoints, transitions): tested in
``tests/experiments/test_protect.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.abft.checker import ATTENTION_TYPES
from accelsim.accelerator import Accelerator
from accelsim.config import HardwareConfig, OperatingPoint, check_choice, check_int
from accelsim.context import GemmContext
from accelsim.kernels.exact import GemmResult

ROLLBACK_MODES = ("activation", "latent", "none")


@dataclass
class ProtectionStats:
    """What protection did in a run (counts; bytes; seconds)."""

    abft_checks: int = 0
    abft_detections: int = 0
    abft_corrections: int = 0
    critical: int = 0
    recomputes: int = 0
    recomputed_elements: int = 0
    rollbacks: int = 0
    rolled_back_elements: int = 0
    checkpoints: int = 0
    #: bytes the checkpoints hold (charged: only those beyond the output's own DRAM write)
    checkpoint_bytes: int = 0
    rollback_bytes: int = 0
    transitions: int = 0
    transition_stall_s: float = 0.0
    macs: int = 0
    #: MACs run at each (vdd, freq) point.
    macs_at: dict[tuple[float, float], int] = field(default_factory=dict)

    def _mean(self, i: int) -> float | None:
        if not self.macs:
            return None
        if len(self.macs_at) == 1:
            return next(iter(self.macs_at))[i]
        return sum(p[i] * m for p, m in self.macs_at.items()) / self.macs

    @property
    def mean_vdd(self) -> float | None:
        """MAC-weighted mean supply voltage of the run (V)."""
        return self._mean(0)

    @property
    def mean_freq(self) -> float | None:
        """MAC-weighted mean clock frequency of the run (Hz)."""
        return self._mean(1)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts (plus the MAC-weighted mean operating point)."""
        out = {k: v for k, v in self.__dict__.items() if k != "macs_at"}
        return {**out, "mean_vdd": self.mean_vdd, "mean_freq": self.mean_freq}


@dataclass
class _Pending:
    """What :meth:`ProtectedAccelerator.finish_output` must do with one GEMM's output."""

    key: tuple[str, int]
    mask: np.ndarray | None
    cached: np.ndarray | None
    op: OperatingPoint
    dram_s: float
    compute_s: float


class ProtectedAccelerator(Accelerator):
    """An accelerator with a DVFS policy, regulator transitions and (optionally) ABFT.

    ``policy`` is an :class:`accelsim.dvfs.policies.Policy` (None: the op the caller passes);
    ``abft`` an ABFT preset/spec string (``classic``, ``drift``, ``realm``, ``detect``) or None
    (default: the policy's hint); ``transitions`` a regulator preset name (``on-chip``,
    ``off-chip``) or model; ``rollback`` how critical errors are undone (module docstring;
    default: the policy's hint, else ``activation``); ``checkpoint_interval`` the steps between
    activation checkpoints (default: the policy's, else 1).
    """

    def __init__(
        self,
        hw: HardwareConfig,
        *,
        policy: Any = None,
        abft: str | None = None,
        transitions: Any = "on-chip",
        rollback: str | None = None,
        checkpoint_interval: int | None = None,
        **kwargs: Any,
    ) -> None:
        from accelsim.dvfs.transition import TransitionTracker, transition_model

        manifestation = kwargs.pop("manifestation", None)
        hint = getattr(policy, "manifestation", None) if policy is not None else None
        super().__init__(hw, manifestation=hint or manifestation or "hold", **kwargs)
        if rollback is None:
            rollback = getattr(policy, "rollback", None) or "activation"
        self.rollback_mode = check_choice("rollback", rollback, ROLLBACK_MODES)
        if checkpoint_interval is None:
            checkpoint_interval = getattr(policy, "checkpoint_interval", None) or 1
        self.checkpoint_interval = check_int("checkpoint_interval", checkpoint_interval, 1)
        self.policy = policy
        abft = abft if abft is not None else getattr(policy, "abft", None)
        model = transition_model(transitions) if isinstance(transitions, str) else transitions
        self.checker: Any = None
        if abft:
            from accelsim.abft import AbftChecker

            # a recompute at the safe point pays the regulator switch there and back
            self.checker = AbftChecker(abft, hw, transitions=model)
        cfg = self.checker.config if self.checker is not None else None
        #: Whether a critical error can lead to an activation rollback (then outputs are
        #: checkpointed; otherwise nothing is cached and nothing is charged for it).
        self.rolls_back = (
            cfg is not None
            and self.rollback_mode == "activation"
            and "rollback" in (cfg.on_critical, cfg.on_uncorrectable, cfg.on_benign)
        )
        self.output_hook = self.rolls_back
        self.bytes_per_element = cfg.rollback_bytes if cfg is not None else 2
        self.tracker = TransitionTracker(model)
        self.stats = ProtectionStats()
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self._ordinal: dict[str, int] = {}
        self._ordinal_step: int | None = None
        self._pending: dict[int, _Pending] = {}
        self._step_critical = False
        self._forced_safe = False
        self._safe_until = -1

    # ------------------------------------------------------------------ policy side

    def reset(self) -> None:
        """Forget books, statistics, caches and the policy's state."""
        super().reset()
        if hasattr(self, "stats"):
            self.stats = ProtectionStats()
            self._cache = {}
            self._ordinal = {}
            self._ordinal_step = None
            self._pending = {}
            self._step_critical = False
            self._forced_safe = False
            self._safe_until = -1
            self.tracker.reset()
            if self.policy is not None:
                self.policy.reset()

    def decide(self, ctx: GemmContext) -> OperatingPoint:
        """The operating point of a GEMM: the policy's decision (nominal while a rolled-back
        step is being recomputed)."""
        if self._forced_safe or self.policy is None:
            return OperatingPoint.nominal(self.hw.tech)
        op: OperatingPoint = self.policy.decide(ctx)
        return op

    def guard(self, step: int, t: int) -> str:
        """Sampler hook after each step: ``rollback`` when the step saw an uncorrected critical
        error and ``rollback="latent"`` (the redone steps then run at the safe point)."""
        critical = self._step_critical
        self._step_critical = False
        if critical and self.rollback_mode == "latent":
            self._forced_safe = True
            # every redone step up to and including this one runs at the safe point
            self._safe_until = max(self._safe_until, step)
            return "rollback"
        if step >= self._safe_until:
            self._forced_safe = False
        return "ok"

    # ------------------------------------------------------------------ the GEMM

    def _cache_key(self, ctx: GemmContext) -> tuple[str, int]:
        """(module, ordinal of this module's GEMM within the step): the same GEMM in another
        step. Ordinals restart whenever the step changes (also when a step is redone)."""
        if ctx.timestep != self._ordinal_step:
            self._ordinal = {}
            self._ordinal_step = ctx.timestep
        ordinal = self._ordinal.get(ctx.module, 0)
        self._ordinal[ctx.module] = ordinal + 1
        return (ctx.module, ordinal)

    def _checkpoint_step(self, ctx: GemmContext) -> bool:
        t = ctx.timestep
        return t is not None and t % self.checkpoint_interval == 0

    def gemm(
        self, A: np.ndarray, B: np.ndarray, ctx: GemmContext, op: OperatingPoint
    ) -> GemmResult:
        from accelsim.hw.energy import leakage_power

        cost = self.tracker.step(
            op, ledger=self.ledger, key="(dvfs)", leak_w=leakage_power(self.hw, op.vdd)
        )
        if cost.transitions:
            self.stats.transitions += cost.transitions
            self.stats.transition_stall_s += cost.stall_s
            self._extra_s += cost.stall_s
        result = super().gemm(A, B, ctx, op)
        M, N, K = A.shape[0], B.shape[1], A.shape[1]
        macs = M * N * K
        self.stats.macs += macs
        point = (op.vdd, op.freq)
        self.stats.macs_at[point] = self.stats.macs_at.get(point, 0) + macs
        if self.checker is None:
            return result
        key = self._cache_key(ctx) if self.rolls_back else None
        r = self.checker.check(A, B, result.out, ctx, op=op)
        self.stats.abft_checks += 1
        self._charge_cost(r.check_cost)
        out = r.out
        action = r.actions[0] if r.actions else None
        if r.detected:
            self.stats.abft_detections += int(r.n_detected)
        if r.critical:
            self.stats.critical += 1
        if action is not None and action.kind in ("correct", "recompute"):
            self._charge_cost(action.cost)
            if action.kind == "correct":
                self.stats.abft_corrections += int(r.corrected)
            else:
                self.stats.recomputes += 1
                self.stats.recomputed_elements += int(r.recomputed)
        mask = None
        cached = None
        if r.rollback and action is not None:
            if self.rollback_mode == "latent":
                self._step_critical = True
            elif self.rollback_mode == "activation":
                assert key is not None
                mask = r.suspect_mask()
                cached = self._cache.get(key)
                if cached is not None and cached.shape == out.shape:
                    # the read of the cached values (charged once, here)
                    self._charge_cost(action.cost)
                    self.stats.rollbacks += 1
                    self.stats.rolled_back_elements += int(mask.sum())
                    self.stats.rollback_bytes += int(mask.sum()) * self.bytes_per_element
                else:
                    # no earlier checkpoint: recompute the located lines at the safe point
                    redo, out = self.checker.recompute_suspects(A, B, r, op)
                    self._charge_cost(redo.cost)
                    self.stats.recomputes += 1
                    self.stats.recomputed_elements += int(redo.elements)
                    mask = cached = None
        if self.policy is not None:
            self.policy.observe(ctx, int(r.n_detected) if r.detected else 0, macs)
        if key is not None:
            lp = self.layer_perf(M, N, K, op)
            self._pending[ctx.call] = _Pending(
                key, mask, cached, op, lp.timing.dram_s, lp.timing.compute_s
            )
        return GemmResult(out=out, errors=result.errors)

    def finish_output(self, ctx: GemmContext, y: Any) -> Any:
        """Restore rolled-back elements from the checkpoint, then checkpoint the output when
        this is a checkpoint step and the policy may still need it (module docstring)."""
        pending = self._pending.pop(ctx.call, None)
        if pending is None:
            return y
        if pending.mask is not None and pending.cached is not None:
            import torch

            restored = torch.from_numpy(np.array(pending.cached))
            mask = torch.from_numpy(pending.mask)
            y = torch.where(mask, restored.to(y.dtype), y)
        if (
            self._checkpoint_step(ctx)
            and ctx.layer_type not in ATTENTION_TYPES
            and (self.policy is None or self.policy.needs_checkpoint(ctx))
        ):
            from accelsim.abft.cost import checkpoint_cost

            values = y.detach().to("cpu").numpy()
            stored, nbytes = _stored(values, self.bytes_per_element)
            self._cache[pending.key] = stored
            self.stats.checkpoints += 1
            self.stats.checkpoint_bytes += nbytes
            if not self.checker.config.offload_checkpoints:
                # the GEMM's own output write (already charged to its layer) is the copy kept
                nbytes = max(0, nbytes - int(values.size) * self.hw.memory.word_bytes)
            self._charge_cost(
                checkpoint_cost(
                    nbytes,
                    self.hw,
                    pending.op,
                    bytes_per_element=1,
                    dram_s=pending.dram_s,
                    compute_s=pending.compute_s,
                )
            )
        return y

    def _charge_cost(self, cost: Any) -> None:
        """Charge an :class:`~accelsim.abft.cost.AbftCost` (energy by component, time)."""
        self.ledger.add("(protection)", cost.energy)
        self._extra_s += cost.seconds


def _stored(values: np.ndarray, bytes_per_element: int) -> tuple[np.ndarray, int]:
    """``values`` (``M x N`` float) as the checkpoint holds them, back in float32, and the bytes
    written: int8 with one fp32 absmax scale per row (1 byte per element, as the W8A8 array
    stores activations), fp16 (2, saturated to its range) or fp32 (4)."""
    v = values.astype(np.float32)
    if bytes_per_element == 1:
        rows = v.reshape(-1, v.shape[-1])
        scale = np.abs(rows).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(rows / scale), -127, 127)
        out = (q * scale).astype(np.float32).reshape(v.shape)
        nbytes = v.size + 4 * rows.shape[0]
    elif bytes_per_element == 2:
        lim = float(np.finfo(np.float16).max)
        out = np.clip(v, -lim, lim).astype(np.float16).astype(np.float32)
        nbytes = 2 * v.size
    else:
        out = v
        nbytes = 4 * v.size
    out.setflags(write=False)
    return out, int(nbytes)
