"""Activation clipping: a profile-based fault mitigation (per-layer ranges, then zero or clamp).

What and where, after Roquet et al., "Assessing the Limitations of Activation Clipping for
Fault Mitigation in Vision and Language Transformers" (LATS 2026, /work/shared/papers/001):
ranges are profiled per layer on clean inputs (Sec. III, the min/max of every layer's output
activations over the profiling set); in the fault runs "any activation value outside its
profiled range is set to zero" (Sec. IV-A, following Burel et al.) -- ``mode="zero"``, the
default here; clamping to the range (Ranger-style) is ``mode="clamp"``. NaN and +-inf are
always out of range (zeroed; clamp sends +-inf to the bounds and NaN to 0).

Here the "activations" are the GEMM outputs the interceptor hands to ``on_output`` (int32
accumulators in W8A8 runs, float tensors in float-format runs) -- the paper clips the outputs
of Block / MHA / MLP modules, which in a Transformer are (sums of) GEMM outputs; with
``target="inputs"`` the quantized GEMM inputs are clipped instead. Caveat for int32
accumulators: their range in integer units depends on the quantization scales; with dynamic
(per-call) activation scales, profile and fault runs must use the same inputs' scales, or clip
float outputs instead.

Usage::

    clip = ActivationClipping()
    clip.profile(lambda: run_model(clean_inputs, faults=[clip]))   # record mode
    run_model(inputs, faults=[BitFlip(...), clip])                 # clip mode (list order!)

A layer never seen while profiling is left unchanged (listed in :attr:`unprofiled`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults import bits as B
from accelsim.faults.base import FaultLog, FaultRecord
from accelsim.faults.targeting import EVERYWHERE, Target

GRANULARITIES = ("module", "module-timestep", "layer_type", "global")
CLIP_MODES = ("zero", "clamp")


@dataclass
class ActivationClipping:
    """Per-layer (or coarser) range clipping of GEMM outputs or inputs.

    ``granularity``: one range per ``module`` (the paper's per-layer clipping), per module and
    timestep (diffusion), per ``layer_type``, or one ``global`` range. ``margin`` widens each
    profiled range ``[lo, hi]`` by ``margin * (hi - lo)`` on each side (0 = the exact profiled
    range). ``log_sites`` logs every clipped value (kind ``clip``) in the run's FaultLog.
    """

    mode: str = "zero"
    granularity: str = "module"
    target: str = "outputs"
    margin: float = 0.0
    scope: Target = EVERYWHERE
    log_sites: bool = True
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    recording: bool = False
    unprofiled: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.mode not in CLIP_MODES:
            raise ConfigError(f"mode: got {self.mode!r}, expected one of {', '.join(CLIP_MODES)}")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(
                f"granularity: got {self.granularity!r}, expected one of {', '.join(GRANULARITIES)}"
            )
        if self.target not in ("outputs", "inputs"):
            raise ConfigError(f"target: got {self.target!r}, expected outputs or inputs")
        if not np.isfinite(self.margin) or self.margin < 0:
            raise ConfigError(f"margin: got {self.margin!r}, expected a finite number >= 0")

    # ---- profiling -------------------------------------------------------------------------

    def key(self, ctx: GemmContext) -> str:
        """The range key of a GEMM call under this granularity."""
        if self.granularity == "module":
            return ctx.module
        if self.granularity == "module-timestep":
            return f"{ctx.module}@{ctx.timestep}"
        if self.granularity == "layer_type":
            return ctx.layer_type
        return "*"

    @contextmanager
    def record(self, *, reset: bool = True) -> Iterator[ActivationClipping]:
        """Record mode inside the ``with`` block: hooks update the ranges and change nothing."""
        if reset:
            self.ranges.clear()
            self.unprofiled.clear()
        self.recording = True
        try:
            yield self
        finally:
            self.recording = False

    def profile(self, ranges_from: Callable[[], object]) -> dict[str, tuple[float, float]]:
        """Run ``ranges_from()`` (a clean model run with this object among its fault models)
        in record mode; returns the profiled ranges."""
        with self.record():
            ranges_from()
        return dict(self.ranges)

    def observe(self, x: np.ndarray, ctx: GemmContext, fmt: str) -> None:
        """Widen the range of ``ctx``'s key by the finite values of ``x``."""
        v = B.values_of(x, fmt)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        k = self.key(ctx)
        lo, hi = float(v.min()), float(v.max())
        if k in self.ranges:
            lo, hi = min(lo, self.ranges[k][0]), max(hi, self.ranges[k][1])
        self.ranges[k] = (lo, hi)

    # ---- persistence -------------------------------------------------------------------------

    def to_json(self) -> str:
        """The ranges as JSON (``{key: [lo, hi]}``)."""
        return json.dumps({k: [lo, hi] for k, (lo, hi) in sorted(self.ranges.items())})

    def load_ranges(self, ranges: Mapping[str, object] | str) -> None:
        """Replace the ranges by ``{key: (lo, hi)}`` (or its JSON text)."""
        data = json.loads(ranges) if isinstance(ranges, str) else ranges
        new: dict[str, tuple[float, float]] = {}
        for k, r in data.items():
            if (
                not isinstance(r, list | tuple)
                or len(r) != 2
                or not all(isinstance(v, int | float) and np.isfinite(v) for v in r)
                or r[0] > r[1]
            ):
                raise ConfigError(f"ranges[{k!r}]: got {r!r}, expected [lo, hi] with lo <= hi")
            new[str(k)] = (float(r[0]), float(r[1]))
        self.ranges = new

    # ---- clipping ----------------------------------------------------------------------------

    def bounds(self, key: str) -> tuple[float, float] | None:
        """The clipping interval of ``key`` (profiled range widened by the margin)."""
        if key not in self.ranges:
            return None
        lo, hi = self.ranges[key]
        d = self.margin * (hi - lo)
        return lo - d, hi + d

    def clip(self, x: np.ndarray, ctx: GemmContext, fmt: str, log: FaultLog) -> np.ndarray:
        """``x`` with out-of-range values zeroed or clamped (a copy; ``x`` if nothing changes)."""
        k = self.key(ctx)
        b = self.bounds(k)
        if b is None:
            self.unprofiled.add(k)
            return x
        lo, hi = b
        raw_bf16 = fmt == "bf16" and x.dtype == np.uint16
        v = B.values_of(x, fmt)
        bad = ~np.isfinite(v) | (v < lo) | (v > hi)
        if not np.any(bad):
            return x
        if self.mode == "zero":
            newv = np.zeros(int(bad.sum()))
        elif np.issubdtype(x.dtype, np.integer) and not raw_bf16:
            # integer bounds inside the interval
            newv = np.clip(v[bad], np.ceil(lo), np.floor(hi))
        else:
            newv = np.nan_to_num(np.clip(v[bad], lo, hi), nan=0.0)
        out = np.array(x, copy=True)
        if raw_bf16:
            f32 = newv.astype(np.float32)
            out[bad] = (f32.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
        elif fmt == "bf16":
            # truncate to bf16 toward zero, so a clamped bound stays inside the interval
            f32 = newv.astype(np.float32)
            out[bad] = (f32.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
        else:
            out[bad] = newv.astype(x.dtype)
        if self.log_sites:
            new_vals = B.values_of(out[bad], fmt)
            for flat, o, n in zip(
                np.flatnonzero(bad).tolist(), v[bad].tolist(), new_vals.tolist(), strict=True
            ):
                idx = tuple(int(i) for i in np.unravel_index(flat, x.shape))
                log.add(
                    FaultRecord("clip", self.target, ctx.module, ctx.timestep, idx, None, fmt, o, n)
                )
        return out

    def _hook(
        self, where: str, x: np.ndarray, ctx: GemmContext, fmt: str, log: FaultLog
    ) -> np.ndarray:
        if where != self.target or not self.scope.matches(ctx) or x.size == 0:
            return x
        B.check_array(x, fmt)
        if self.recording:
            self.observe(x, ctx, fmt)
            return x
        return self.clip(x, ctx, fmt, log)

    def on_weights(
        self, w: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return w

    def on_inputs(
        self, a: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._hook("inputs", a, ctx, fmt, log)

    def on_output(
        self, out: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._hook("outputs", out, ctx, fmt, log)
