"""A protected accelerator: DVFS policy, regulator transitions and checksum ABFT per GEMM.

:class:`ProtectedAccelerator` is an :class:`~accelsim.accelerator.Accelerator` whose every GEMM

1. runs at the operating point the interceptor asked for (the DVFS policy's decision, see
   :meth:`ProtectedAccelerator.decide`); a change from the previous GEMM's point is charged by the
   regulator model (latency stall + energy, ``dvfs`` ledger component);
2. executes on the kernel with timing errors (the policy may ask for another manifestation,
   e.g. ``thundervolt`` drops late updates);
3. is verified by Huang-Abraham checksums when ABFT is on (:class:`accelsim.abft.AbftChecker`):
   single errors are corrected, critical ones are recomputed at a safe point or rolled back,
   and every check and action is charged (``abft`` / ``rollback`` components, time);
4. reports its detections to the policy (``observe``: the closed-loop controller's feedback).

Rollback, DRIFT style: the GEMM's int32 output is cached at checkpoint steps (every
``checkpoint_interval`` sampler steps, DRIFT's ~10-step offload; the DRAM write of each cached
output is charged); a critical error replaces the suspect elements with the same GEMM's cached
output from the latest checkpoint step (the same module and the same call ordinal within the
step). This is approximate by design (an earlier timestep's activation), as in DRIFT; its
integer values are reused as they are, so a change of the activation scale between the two
timesteps is not compensated. Without a cached output the elements are recomputed exactly (at
the safe point, charged as a rollback).

The sampler-facing :meth:`guard` reports whether the finished step saw an uncorrected critical
error (for latent-level rollback: ``rollback="latent"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.accelerator import Accelerator
from accelsim.config import HardwareConfig, OperatingPoint, check_choice, check_int
from accelsim.context import GemmContext
from accelsim.kernels.exact import GemmResult

ROLLBACK_MODES = ("activation", "latent", "none")


@dataclass
class ProtectionStats:
    """What protection did in a run."""

    abft_checks: int = 0
    abft_detections: int = 0
    abft_corrections: int = 0
    critical: int = 0
    recomputes: int = 0
    rollbacks: int = 0
    rolled_back_elements: int = 0
    transitions: int = 0
    transition_stall_s: float = 0.0
    cache_bytes: int = 0
    macs: int = 0
    vdd_mac_sum: float = 0.0
    freq_mac_sum: float = 0.0

    @property
    def mean_vdd(self) -> float | None:
        """MAC-weighted mean supply voltage of the run (V)."""
        return self.vdd_mac_sum / self.macs if self.macs else None

    @property
    def mean_freq(self) -> float | None:
        """MAC-weighted mean clock frequency of the run (Hz)."""
        return self.freq_mac_sum / self.macs if self.macs else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts (plus the MAC-weighted mean operating point)."""
        return {**self.__dict__, "mean_vdd": self.mean_vdd, "mean_freq": self.mean_freq}


class ProtectedAccelerator(Accelerator):
    """An accelerator with a DVFS policy, regulator transitions and (optionally) ABFT.

    ``policy`` is an :class:`accelsim.dvfs.policies.Policy` (None: the op the caller passes);
    ``abft`` an ABFT preset/spec string (``classic``, ``drift``, ``realm``, ``detect``) or None
    (default: the policy's hint); ``transitions`` a regulator preset name (``on-chip``,
    ``off-chip``) or model; ``rollback`` how critical errors are undone (module docstring).
    """

    def __init__(
        self,
        hw: HardwareConfig,
        *,
        policy: Any = None,
        abft: str | None = None,
        transitions: Any = "on-chip",
        rollback: str = "activation",
        checkpoint_interval: int = 10,
        **kwargs: Any,
    ) -> None:
        from accelsim.dvfs.transition import TransitionTracker, transition_model

        manifestation = kwargs.pop("manifestation", None)
        hint = getattr(policy, "manifestation", None) if policy is not None else None
        super().__init__(hw, manifestation=hint or manifestation or "hold", **kwargs)
        check_choice("rollback", rollback, ROLLBACK_MODES)
        self.policy = policy
        self.rollback_mode = rollback
        self.checkpoint_interval = check_int("checkpoint_interval", checkpoint_interval, 1)
        abft = abft if abft is not None else getattr(policy, "abft", None)
        self.checker: Any = None
        if abft:
            from accelsim.abft import AbftChecker

            self.checker = AbftChecker(abft, hw)
        model = transition_model(transitions) if isinstance(transitions, str) else transitions
        self.tracker = TransitionTracker(model)
        self.stats = ProtectionStats()
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self._ordinal: dict[tuple[str, int | None], int] = {}
        self._step_critical = False
        self._forced_safe = False

    # ------------------------------------------------------------------ policy side

    def reset(self) -> None:
        """Forget books, statistics, caches and the policy's state."""
        super().reset()
        if hasattr(self, "stats"):
            self.stats = ProtectionStats()
            self._cache = {}
            self._ordinal = {}
            self._step_critical = False
            self._forced_safe = False
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
            return "rollback"
        self._forced_safe = False
        return "ok"

    # ------------------------------------------------------------------ the GEMM

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
        macs = A.shape[0] * A.shape[1] * B.shape[1]
        self.stats.macs += macs
        self.stats.vdd_mac_sum += op.vdd * macs
        self.stats.freq_mac_sum += op.freq * macs
        if self.checker is None:
            return result
        M, N, K = A.shape[0], B.shape[1], A.shape[1]
        r = self.checker.check(A, B, result.out, ctx, op=op)
        self.stats.abft_checks += 1
        self.ledger.add("(abft)", r.cost.energy)
        self._extra_s += r.cost.seconds
        out = r.out
        if r.detected:
            self.stats.abft_detections += int(r.n_detected)
            self.stats.abft_corrections += int(r.corrected)
        if r.critical:
            self.stats.critical += 1
        if self.policy is not None:
            self.policy.observe(ctx, int(r.n_detected) if r.detected else 0, M * N * K)
        key_t = ctx.timestep
        ordinal = self._ordinal.get((ctx.module, key_t), 0)
        self._ordinal[(ctx.module, key_t)] = ordinal + 1
        cache_key = (ctx.module, ordinal)
        if r.rollback:
            if self.rollback_mode == "latent":
                self._step_critical = True
            elif self.rollback_mode == "activation":
                mask = r.suspect_mask()
                cached = self._cache.get(cache_key)
                out = np.array(out, copy=True)
                if cached is not None and cached.shape == out.shape:
                    out[mask] = cached[mask]
                else:
                    exact = A.astype(np.int64) @ B.astype(np.int64)
                    out[mask] = exact.astype(np.uint32).view(np.int32)[mask]
                    self.stats.recomputes += 1
                self.stats.rollbacks += 1
                self.stats.rolled_back_elements += int(mask.sum())
                # reading the cached rows/columns back from DRAM
                self.charge("rollback", int(mask.sum()) * 4 * self.hw.tech.dram_j_per_byte)
        if (
            key_t is not None
            and key_t % self.checkpoint_interval == 0
            and self.rollback_mode == "activation"
        ):
            self._cache[cache_key] = np.array(out, copy=True)
            nbytes = out.size * 4
            self.stats.cache_bytes += nbytes
            self.charge("rollback", nbytes * self.hw.tech.dram_j_per_byte)
        return GemmResult(out=out, errors=result.errors)
