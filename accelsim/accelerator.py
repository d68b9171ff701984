"""The simulated accelerator: one object that runs int8 GEMMs with timing errors and keeps books.

:class:`Accelerator` ties the pieces together for every GEMM a workload issues:

* **error inputs** at the call's operating point ``op`` (V, f): the typical-corner ratio
  ``CP(V)/T(f)`` (:func:`accelsim.timing.delay.critical_path_ratio`), the chip's per-PE delay
  factors at ``V`` (a seeded :func:`~accelsim.timing.variation.chip_map`, or, when ``chip`` is
  None, the typical chip: the median die with the within-die spread,
  :func:`~accelsim.timing.variation.typical_chip`), and the supply delay factor over this GEMM's cycles:
  first-droop events at its fold boundaries (:func:`~accelsim.timing.supply.droop_triggers` of
  its mapping) plus background noise (:func:`~accelsim.timing.supply.supply_droop`), drawn from
  ``rng_for(seed, "supply", module, timestep, call)``;
* **kernel**: ``exact`` (numba, MAC by MAC, :func:`accelsim.kernels.exact.exact_gemm`),
  ``fast`` (BLAS plus sampled error events, ``accelsim.kernels.fast.fast_gemm``, imported lazily;
  a GEMM whose sampled error rate exceeds ``fast.EXACT_ABOVE_TER`` runs on the exact kernel;
  falls back to ``exact`` with a warning while it does not exist) or ``reference`` (exact
  int8 x int8 -> int32 product, never any timing error). When no MAC can fail,
  ``ratio * max(pe) * max(g) <= 1`` (sensitized delays are at most the static critical path, 1),
  every kernel skips straight to the exact integer product (:func:`int_gemm`);
* **books**: one :class:`~accelsim.hw.layer.GemmLayer` ``(M, N, K)`` per call is evaluated with
  :func:`accelsim.hw.perf.evaluate_layer` at ``op`` (cycles, seconds, energy by component, the
  same numbers as :func:`accelsim.hw.perf.evaluate_workload` for that shape list) and charged
  to the energy ledger; statistics are kept per ``(block, layer_type, timestep)`` context.

Per ``(vdd, freq)`` the ratio, the PE factors and a conservative supply bound are cached; per
``(M, N, K, vdd, freq)`` the layer's perf record and mapping.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from accelsim.config import HardwareConfig, OperatingPoint, check_choice, check_int
from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.hw.energy import (
    COMPONENTS,
    RAILS,
    EnergyBreakdown,
    EnergyLedger,
    dynamic_scale,
    leakage_power,
    pe_leakage_power,
)
from accelsim.hw.layer import GemmLayer
from accelsim.hw.perf import LayerPerf, evaluate_layer
from accelsim.kernels.exact import MANIFESTATIONS, ErrorLog, GemmResult, run_exact
from accelsim.rng import rng_for
from accelsim.timing.delay import check_vdd, critical_path_ratio, normalized_delay
from accelsim.timing.errors import TimingModel
from accelsim.timing.sensitized import kernel_constants
from accelsim.timing.supply import (
    droop_triggers,
    iir_coefficients,
    supply_delay_factor,
    supply_droop_checked,
)
from accelsim.timing.variation import chip_map, pe_delay_factor, typical_chip

Kernel = Literal["exact", "fast", "reference"]
KERNELS: tuple[str, ...] = ("exact", "fast", "reference")
FloatArray = npt.NDArray[np.float64]

#: Noise excursion (in units of ``noise_sigma``) assumed by the cheap "can this GEMM fail at
#: all?" pre-check before the supply trace is drawn; a Gaussian exceeds 8 sigma with
#: probability 1e-15 per cycle. Above the bound the real trace is drawn and its maximum used.
_NOISE_BOUND_SIGMAS = 8.0


def _empty_errors() -> ErrorLog:
    z = np.zeros(0, dtype=np.int64)
    return ErrorLog(m=z, n=z, k=z, cycle=z, late_mask=z, correct=z, latched=z, total=0)


def int_gemm(A: np.ndarray, B: np.ndarray) -> npt.NDArray[np.int32]:
    """Exact ``A @ B`` for int8 operands with int32 wrap-around, as the array computes it.

    Uses ``torch._int_mm`` when torch provides it for the shapes; otherwise float64 BLAS, exact
    while ``|partial sums| < 2**53`` (always for ``K < 2**38``), reduced modulo ``2**32``.
    """
    if A.dtype != np.int8 or B.dtype != np.int8:
        raise ShapeError(
            f"A, B: got dtypes {A.dtype} and {B.dtype}, expected int8 (quantize first)"
        )
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ShapeError(f"A @ B: got A {A.shape} and B {B.shape}, expected (M, K) @ (K, N)")
    try:
        import torch

        out = torch._int_mm(
            torch.from_numpy(np.ascontiguousarray(A)), torch.from_numpy(np.ascontiguousarray(B))
        )
        result: npt.NDArray[np.int32] = out.numpy()
        return result
    except (ImportError, RuntimeError, AttributeError):
        exact = A.astype(np.float64) @ B.astype(np.float64)
        wrapped = exact.astype(np.int64).astype(np.uint32).view(np.int32)
        return np.ascontiguousarray(wrapped)


@dataclass(frozen=True)
class ErrorInputs:
    """What the error kernels need for one GEMM at one operating point.

    ``ratio``: ``CP(V)/T(f)``; ``pe_factor``: ``(rows, cols)`` PE delay factors; ``supply_factor``:
    per-cycle supply delay factor over the GEMM's compute cycles (None when not drawn because
    no MAC can fail); ``can_fail``: whether ``ratio * max(pe) * max(g) > 1``.
    """

    ratio: float
    pe_factor: FloatArray
    supply_factor: FloatArray | None
    can_fail: bool


@dataclass
class _Stats:
    calls: int = 0
    macs: int = 0
    cycles: int = 0
    seconds: float = 0.0
    energy_j: float = 0.0
    errors: int = 0


@dataclass(frozen=True)
class ContextStats:
    """Totals of the GEMM calls of one ``(block, layer_type, timestep)`` context.

    ``cycles`` and ``seconds`` are wall time (compute + stall + fill), ``energy_j`` in J.
    """

    block: str
    layer_type: str
    timestep: int | None
    calls: int
    macs: int
    cycles: int
    seconds: float
    energy_j: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready row."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class AcceleratorReport:
    """Books of an accelerator since construction (or the last :meth:`Accelerator.reset`).

    ``energy_j``: energy by component (J; ``energy_j.total`` is the sum); ``latency_s``: wall
    time (s, GEMMs back to back plus charged extra time); ``cycles``: array cycles of the GEMMs;
    ``macs``; ``gemm_calls``; ``errors_injected``: timing errors of all GEMMs (for ``razor``
    they are detected and replayed, so counted but harmless); errors grouped by layer type,
    block and timestep; ``by_context``: one :class:`ContextStats` per context, first-seen order.
    """

    energy_j: EnergyBreakdown
    latency_s: float
    cycles: int
    macs: int
    gemm_calls: int
    errors_injected: int
    errors_by_layer_type: dict[str, int]
    errors_by_block: dict[str, int]
    errors_by_timestep: dict[int | None, int]
    by_context: tuple[ContextStats, ...] = field(default=())
    #: Energy by supply rail (J): ``scaled``, ``sram`` (fixed SRAM rail), ``dram``.
    energy_by_rail: dict[str, float] = field(default_factory=dict)
    #: Total energy under each SRAM rail assignment (J; ``fixed``, ``dual``, ``shared``).
    energy_rail_variants: dict[str, float] = field(default_factory=dict)

    @property
    def total_energy_j(self) -> float:
        """Total energy, J."""
        return self.energy_j.total

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (timestep keys as strings, ``"none"`` for None)."""
        return {
            "energy_j": self.energy_j.total,
            "energy_split_j": self.energy_j.as_dict(),
            "latency_s": self.latency_s,
            "cycles": self.cycles,
            "macs": self.macs,
            "gemm_calls": self.gemm_calls,
            "errors_injected": self.errors_injected,
            "errors_by_layer_type": dict(self.errors_by_layer_type),
            "errors_by_block": dict(self.errors_by_block),
            "errors_by_timestep": {
                ("none" if k is None else str(k)): v for k, v in self.errors_by_timestep.items()
            },
            "by_context": [c.as_dict() for c in self.by_context],
            "energy_by_rail": dict(self.energy_by_rail),
            "energy_rail_variants": dict(self.energy_rail_variants),
        }


def _fast_kernel() -> Callable[..., GemmResult] | None:
    try:
        from accelsim.kernels import fast
    except ImportError:
        return None
    fn = getattr(fast, "fast_gemm", None)
    return fn if callable(fn) else None


class Accelerator:
    """A systolic array at run time: GEMMs with timing errors, plus the perf/energy books.

    Parameters
    ----------
    hw
        The hardware (array, memories, technology).
    kernel
        ``"fast"`` (default), ``"exact"`` or ``"reference"`` (no timing errors at all).
    chip
        Chip seed of the PE variation map; None is the typical chip (the median die with the
        within-die spread at exact quantiles).
    timing
        Timing model; default :meth:`TimingModel.default` for ``hw.tech``.
    manifestation
        What a late register latches: ``hold``, ``flip``, ``razor`` or ``drop``.
    seed
        Seed of the supply traces and the fast kernel's sampling (keyed by the GEMM context).
    log_capacity
        Errors logged per output lane by the kernels (more are counted only).
    """

    def __init__(
        self,
        hw: HardwareConfig,
        *,
        kernel: Kernel = "fast",
        chip: int | None = None,
        timing: TimingModel | None = None,
        manifestation: str = "hold",
        seed: int = 0,
        log_capacity: int = 256,
    ) -> None:
        if not isinstance(hw, HardwareConfig):
            raise ConfigError(f"hw: got {type(hw).__name__}, expected a HardwareConfig")
        check_choice("kernel", kernel, KERNELS)
        check_choice("manifestation", manifestation, tuple(MANIFESTATIONS))
        if chip is not None:
            check_int("chip", chip, 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed: got {seed!r}, expected an integer >= 0")
        self.hw = hw
        self.timing = timing or TimingModel.default(hw.tech)
        self.chip = chip
        self.manifestation = manifestation
        self.seed = seed
        self.log_capacity = check_int("log_capacity", log_capacity, 1)
        self._fast: Callable[..., GemmResult] | None = None
        if kernel == "fast":
            self._fast = _fast_kernel()
            if self._fast is None:
                warnings.warn(
                    "kernel 'fast' is not available yet (accelsim.kernels.fast); using 'exact'",
                    stacklevel=2,
                )
                kernel = "exact"
        self.kernel: Kernel = kernel
        # fast mode hands GEMMs whose sampled error rate is high to the exact kernel (faster
        # there, and the reference): accelsim.kernels.fast.EXACT_ABOVE_TER
        self._exact_above: float | None = None
        if self._fast is not None:
            from accelsim.kernels import fast

            self._exact_above = fast.EXACT_ABOVE_TER
        self._consts = kernel_constants(self.timing.sensitized)
        a = hw.array
        self._chip = (
            typical_chip(a.rows, a.cols, self.timing.variation)
            if chip is None
            else chip_map(a.rows, a.cols, chip, self.timing.variation)
        )
        self._op_cache: dict[tuple[float, float], tuple[float, FloatArray, float, float]] = {}
        self._inv_pe: dict[tuple[float, float], FloatArray] = {}
        self._pe_order: dict[tuple[float, float], npt.NDArray[np.int64]] = {}
        self._base_cache: dict[float, float] = {}
        self._iir_cache: dict[float, tuple[FloatArray, FloatArray]] = {}
        self._trigger_cache: dict[
            tuple[int, int, int, float, float], tuple[int, npt.NDArray[np.int64], FloatArray]
        ] = {}
        self._perf_cache: dict[tuple[int, int, int, float, float], LayerPerf] = {}
        self.reset()

    # ------------------------------------------------------------------ books

    def reset(self) -> None:
        """Forget all books (energy, time, statistics); caches are kept."""
        self.ledger = EnergyLedger()
        self._extra_s = 0.0
        self._cycles = 0
        self._seconds = 0.0
        self._macs = 0
        self._calls = 0
        self._errors = 0
        self._stats: dict[tuple[str, str, int | None], _Stats] = {}
        self._rails: dict[str, float] = {}
        self._rail_variants: dict[str, float] = {}

    def charge(
        self, component: str, joules: float, seconds: float = 0.0, key: str = "(run)"
    ) -> None:
        """Charge an extra event (ABFT, rollback, DVFS transition): ``joules`` J of
        ``component`` (one of :data:`accelsim.hw.energy.COMPONENTS`) and ``seconds`` s of time."""
        if component not in COMPONENTS:
            raise ConfigError(
                f"component: got {component!r}, expected one of {', '.join(COMPONENTS)}"
            )
        self.ledger.charge(component, float(joules), key)
        self._extra_s += float(seconds)

    def layer_perf(self, M: int, N: int, K: int, op: OperatingPoint) -> LayerPerf:
        """Perf/energy record of one ``(M x K) @ (K x N)`` GEMM at ``op`` (cached)."""
        key = (M, N, K, op.vdd, op.freq)
        lp = self._perf_cache.get(key)
        if lp is None:
            lp = evaluate_layer(GemmLayer(f"gemm{M}x{N}x{K}", M, N, K), self.hw, op)
            self._perf_cache[key] = lp
        return lp

    def account(
        self, M: int, N: int, K: int, ctx: GemmContext, op: OperatingPoint, errors: int = 0
    ) -> LayerPerf:
        """Charge one GEMM call of shape ``(M, N, K)`` at ``op`` to the books (no execution)."""
        lp = self.layer_perf(M, N, K, op)
        self.ledger.add(ctx.layer_type, lp.energy)
        for rail, e in lp.rails.items():
            self._rails[rail] = self._rails.get(rail, 0.0) + e
        for name, e in lp.rail_variants.items():
            self._rail_variants[name] = self._rail_variants.get(name, 0.0) + e
        self._cycles += lp.cycles
        self._seconds += lp.timing.total_s
        self._macs += lp.mapping.macs
        self._calls += 1
        self._errors += errors
        st = self._stats.setdefault((ctx.block, ctx.layer_type, ctx.timestep), _Stats())
        st.calls += 1
        st.macs += lp.mapping.macs
        st.cycles += lp.cycles
        st.seconds += lp.timing.total_s
        st.energy_j += lp.energy.total
        st.errors += errors
        return lp

    def report(self) -> AcceleratorReport:
        """Snapshot of the books (see :class:`AcceleratorReport`)."""
        by_lt: dict[str, int] = {}
        by_block: dict[str, int] = {}
        by_t: dict[int | None, int] = {}
        rows = []
        for (block, lt, t), st in self._stats.items():
            by_lt[lt] = by_lt.get(lt, 0) + st.errors
            by_block[block] = by_block.get(block, 0) + st.errors
            by_t[t] = by_t.get(t, 0) + st.errors
            rows.append(
                ContextStats(
                    block, lt, t, st.calls, st.macs, st.cycles, st.seconds, st.energy_j, st.errors
                )
            )
        total = self.ledger.total
        base = total.mac + total.sram + total.dram + total.leakage
        overhead = total.total - base
        # protection overheads: the logic on the scaled rail, except the checkpoint and
        # rollback traffic (DRAM-dominated)
        to_dram = total.checkpoint + total.rollback
        rails = {r: self._rails.get(r, 0.0) for r in RAILS}
        rails["scaled"] += overhead - to_dram
        rails["dram"] += to_dram
        variants = {k: v + overhead for k, v in self._rail_variants.items()}
        return AcceleratorReport(
            energy_by_rail=rails,
            energy_rail_variants=variants,
            energy_j=total,
            latency_s=self._seconds + self._extra_s,
            cycles=self._cycles,
            macs=self._macs,
            gemm_calls=self._calls,
            errors_injected=self._errors,
            errors_by_layer_type=by_lt,
            errors_by_block=by_block,
            errors_by_timestep=by_t,
            by_context=tuple(rows),
        )

    #: Whether :meth:`finish_output` must see every W8A8 GEMM's dequantized output.
    output_hook: bool = False

    def finish_output(self, ctx: GemmContext, y: Any) -> Any:
        """The dequantized float output ``y`` (``M x N``, before bias) of the GEMM of ``ctx``,
        possibly changed (a protected accelerator restores rolled-back values here)."""
        return y

    # ------------------------------------------------------------------ error inputs

    def _at_op(self, op: OperatingPoint) -> tuple[float, FloatArray, float, float]:
        """``(ratio, PE factors, worst-case ratio x PE x supply factor, ratio x max PE factor)``
        at ``op`` (cached)."""
        key = (op.vdd, op.freq)
        cached = self._op_cache.get(key)
        if cached is None:
            tm = self.timing
            ratio = critical_path_ratio(op.vdd, op.freq, tm.vnom, tm.fnom, tm.delay)
            pe = np.asarray(
                pe_delay_factor(self._chip, op.vdd, tm.vnom, tm.delay, tm.variation),
                dtype=np.float64,
            )
            pe.setflags(write=False)
            v = tm.variation
            bound = min(v.droop_amp_cap + _NOISE_BOUND_SIGMAS * v.noise_sigma, 0.5)
            g_bound = float(supply_delay_factor(np.array([bound]), op.vdd, tm.vnom, tm.delay)[0])
            ratio_pe = float(ratio) * float(pe.max())
            cached = (float(ratio), pe, ratio_pe * g_bound, ratio_pe)
            self._op_cache[key] = cached
        return cached

    def _base_delay(self, op: OperatingPoint) -> float:
        """Delay at ``op.vdd`` relative to nominal (the denominator of the supply factor)."""
        key = float(op.vdd)
        base = self._base_cache.get(key)
        if base is None:
            base = float(
                normalized_delay(
                    check_vdd(key, self.timing.delay), self.timing.vnom, self.timing.delay
                )
            )
            self._base_cache[key] = base
        return base

    def error_inputs(
        self, M: int, N: int, K: int, ctx: GemmContext, op: OperatingPoint
    ) -> ErrorInputs:
        """Ratio, PE factors and supply trace of one GEMM call at ``op`` (see module docstring)."""
        ratio, pe, worst, ratio_pe = self._at_op(op)
        if worst <= 1.0:
            return ErrorInputs(ratio, pe, None, False)
        key = (M, N, K, op.vdd, op.freq)
        cached = self._trigger_cache.get(key)
        if cached is None:  # the mapping and its droop triggers depend on the shape only
            mapping = self.layer_perf(M, N, K, op).mapping
            cyc, stp = droop_triggers(mapping)
            cached = (
                mapping.compute_cycles + 1,
                np.asarray(cyc, dtype=np.int64),
                np.asarray(stp, dtype=np.float64),
            )
            self._trigger_cache[key] = cached
        n_cycles, cycles, steps = cached
        tm = self.timing
        rng = rng_for(self.seed, "supply", ctx.module, ctx.timestep, ctx.call)
        # as supply_droop / supply_delay_factor, on arguments validated once per shape and op
        freq = float(op.freq)
        coeffs = self._iir_cache.get(freq)
        if coeffs is None:
            coeffs = iir_coefficients(freq, tm.variation)
            self._iir_cache[freq] = coeffs
        delta = supply_droop_checked(n_cycles, freq, cycles, steps, tm.variation, rng, coeffs)
        g = normalized_delay(op.vdd * (1.0 - delta), tm.vnom, tm.delay) / self._base_delay(op)
        can_fail = ratio_pe * float(g.max()) > 1.0
        return ErrorInputs(ratio, pe, g, can_fail)

    # ------------------------------------------------------------------ GEMM

    def gemm(
        self, A: np.ndarray, B: np.ndarray, ctx: GemmContext, op: OperatingPoint
    ) -> GemmResult:
        """Run ``A @ B`` (int8 ``(M, K)`` x int8 ``(K, N)`` -> int32) at ``op`` and book it."""
        for name, x in (("A", A), ("B", B)):
            if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim != 2 or 0 in x.shape:
                shape = getattr(x, "shape", None)
                dtype = getattr(x, "dtype", type(x).__name__)
                raise ShapeError(
                    f"{name}: got {dtype} {shape}, expected a non-empty 2-D numpy int8 matrix"
                )
        if A.shape[1] != B.shape[0]:
            raise ShapeError(f"A @ B: got A {A.shape} and B {B.shape}, expected (M, K) @ (K, N)")
        if not isinstance(op, OperatingPoint):
            raise ConfigError(f"op: got {type(op).__name__}, expected an OperatingPoint")
        M, K = A.shape
        N = B.shape[1]
        if self.kernel == "reference":
            result = GemmResult(int_gemm(A, B), _empty_errors())
        else:
            inputs = self.error_inputs(M, N, K, ctx, op)
            if not inputs.can_fail:
                result = GemmResult(int_gemm(A, B), _empty_errors())
            else:
                kwargs: dict[str, Any] = {
                    "ratio": inputs.ratio,
                    "consts": self._consts,
                    "pe_factor": inputs.pe_factor,
                    "supply_factor": inputs.supply_factor,
                    "manifestation": self.manifestation,
                    "log_capacity": self.log_capacity,
                }
                if self.kernel == "fast" and self._fast is not None and M * N * K > FAST_MIN_MACS:
                    rng = rng_for(self.seed, "kernel", ctx.module, ctx.timestep, ctx.call)
                    order = self._pe_order.get((op.vdd, op.freq))
                    if order is None:
                        from accelsim.kernels.fast import pe_column_order

                        order = pe_column_order(inputs.pe_factor)
                        self._pe_order[(op.vdd, op.freq)] = order
                    result = self._fast(
                        A,
                        B,
                        self.hw.array,
                        rng=rng,
                        exact_above=self._exact_above,
                        pe_order=order,
                        **kwargs,
                    )
                else:  # inputs validated above and by construction (chip map, supply trace)
                    inv_pe = self._inv_pe.get((op.vdd, op.freq))
                    if inv_pe is None:
                        inv_pe = np.ascontiguousarray(1.0 / inputs.pe_factor)
                        self._inv_pe[(op.vdd, op.freq)] = inv_pe
                    g = inputs.supply_factor
                    result = run_exact(
                        np.ascontiguousarray(A),
                        np.ascontiguousarray(B),
                        self.hw.array,
                        inv_ratio=1.0 / inputs.ratio if inputs.ratio > 0 else np.inf,
                        consts=self._consts,
                        inv_pe=inv_pe,
                        inv_g=np.ones(1) if g is None else 1.0 / g,
                        mode=MANIFESTATIONS[self.manifestation],
                        log_capacity=self.log_capacity,
                    )
        lp = self.account(M, N, K, ctx, op, int(result.errors.total))
        if self.manifestation in ("razor", "drop"):
            self._charge_detection(lp, op, int(result.errors.total), ctx.layer_type)
        return result

    def _charge_detection(self, lp: LayerPerf, op: OperatingPoint, errors: int, key: str) -> None:
        """In-situ error detection (Razor shadow latches, also needed by TE-Drop): a fixed
        ``tech.detect_overhead`` share of the PE array's MAC energy and leakage of this GEMM,
        errors or not; with ``razor``, every detected error also stalls the lockstep array for
        ``tech.replay_cycles`` cycles (leakage of array and SRAMs during the stall) and
        re-executes its MAC (``replay`` component). Sources: calib/energy.toml."""
        tech = self.hw.tech
        protected = lp.energy.mac + pe_leakage_power(self.hw, op.vdd) * lp.timing.total_s
        self.charge("detection", tech.detect_overhead * protected, key=key)
        if self.manifestation == "razor" and errors:
            stall_s = errors * tech.replay_cycles / op.freq
            energy = leakage_power(self.hw, op.vdd) * stall_s + errors * tech.e_mac_int8 * (
                dynamic_scale(op.vdd, tech)
            )
            self.charge("replay", energy, stall_s, key=key)


#: GEMMs with at most this many MACs run on the exact kernel even when ``kernel="fast"``: below
#: about 2M MACs the exact kernel is the cheaper one (measured on DiT qkv data at 0.835 V, chip 0,
#: 2 cores: 0.5M MACs 1.5 ms exact vs 5.7 ms fast, 2.1M 6.1 vs 6.2 ms, 4.2M 11.7 vs 6.8 ms; the
#: fast kernel's fixed cost is its rate sample and bound tables), and it is the reference the
#: fast kernel is tested against.
FAST_MIN_MACS = 1 << 21


def expected_no_fail(accel: Accelerator, op: OperatingPoint) -> bool:
    """True when no GEMM at ``op`` can have a timing error even at the worst supply bound
    (``ratio * max(pe) * g(droop cap + 8 sigma noise) <= 1``)."""
    return accel._at_op(op)[2] <= 1.0


__all__ = [
    "FAST_MIN_MACS",
    "KERNELS",
    "Accelerator",
    "AcceleratorReport",
    "ContextStats",
    "ErrorInputs",
    "expected_no_fail",
    "int_gemm",
]
