"""Sensitized delay of one int8 x int8 -> int32 MAC cycle: a cheap 2-vector bit-level model.

A PE computes ``psum_out = psum_in + w*a``. How long a cycle takes depends on the *transition*
from the previous cycle's inputs ``(pw, pa, ppsum_in)`` to the current ones: unchanged inputs
excite nothing, a short carry run settles early, a carry that ripples through the sign-extension
region of the accumulator (psum or product changing sign) arrives late (timing.md sections 3.1
and 3.2). This module gives every accumulator output bit an arrival time, as a fraction of the
MAC's static critical path (CP), from the operand pair alone; the cycle's *sensitized delay* is
``s = max_j arrival(j)`` in [0, 1] (``s = 1`` is the static critical path, ``s = 0`` nothing
toggles). A MAC fails in a cycle when ``s * critical_path_ratio * pe_factor * supply_factor > 1``
(:mod:`accelsim.timing.delay`); the bits whose arrival exceeds the threshold
``theta = 1 / (critical_path_ratio * pe_factor * supply_factor)`` are the late bits
(:func:`late_mask`), which keep the previous cycle's value.

Model (glitches ignored: a bit whose final value does not change has no transition)
-------------------------------------------------------------------------------------
Times are in units of CP. ``x``/``x'`` = current/previous value of a signal, ``d(x) = x XOR
x'`` its toggles, bit ``j`` written ``x_j``. ``NONE`` = no transition (-infinity).

*Multiplier.* The 16-bit product ``p = w*a`` is formed by two sub-arrays and a ripple merge
adder: ``u = w * (a mod 2^k)``, ``v = w * floor(a / 2^k) * 2^k`` (``k = mult_split``), ``p = u +
v``. A toggled bit of ``u`` or ``v`` arrives at ``t_h(j) = t_sub0 + t_sub_slope * j``; the merge
adder is a 2-vector ripple adder (below) with carry delay ``t_merge_carry`` and sum delay
``t_merge_sum``, giving ``t_p(j)``, the arrival of product bit ``j`` (``NONE`` if it does not
toggle). Sign-extension bits ``j >= 16`` of the product arrive with bit 15.

*2-vector ripple adder* ``z = x + y`` (used for the merge adder and the accumulator). With
``c_j`` the carry into bit ``j`` (``c = z XOR x XOR y``), ``P_j = x_j XOR y_j`` the *current*
propagate and ``A_in(j)`` the latest arrival of a toggled input bit ``j``::

    A_c(j+1) = NONE                                             if c_{j+1} does not toggle
             = hop(j+1) + max(A_c(j), A_in(j))                  if P_j = 1 (carry waits for c_j)
             = hop(j+1) + A_in(j)                               if P_j = 0 (generate / kill)
    arrival(j) = t_sum + max(A_in(j), A_c(j))   if z_j toggles, else 0

(``A_c(j) = NONE`` when ``c_j`` does not toggle.) A run of toggled carries ripples serially,
one ``hop`` per bit, so its delay is the run length times the carry delay, launched by the
input that started it (a product bit at ``t_p(i)`` or a psum bit from a register at 0). When the
psum and the product have opposite signs, every bit of the sign-extension region propagates,
and a change of the carry into that region ripples to the top: the heavy tail.

*Accumulator.* ``x = psum_in`` (register, toggled bits arrive at 0), ``y = sext(p)``; width
``acc_bits = 32``. timing.md's reference accumulator is 24 bits wide; ours is 32. Mapping: the
low ``ripple_bits = 24`` bits are a ripple-carry adder with ``hop = t_carry``; the upper 8 bits
are a sign-extension / carry-select section whose carries cost no extra delay (``hop = 0``), so
bits 24..31 toggle together with the carry into bit 23 and the static critical path is the
reference's 24-bit one. (Arithmetic is always exact int32; only timing uses this mapping.)

*Normalization.* All six constants are fitted in free units and divided by the model's static
critical path (the same recurrences with every input toggling at once and every bit
propagating), so ``s <= 1`` always and ``s = 1`` only on the structural critical path.
:func:`static_critical_path` computes it; :func:`kernel_constants` normalizes.

Fast path of :func:`late_mask` (the exact systolic kernel calls it for every MAC)
--------------------------------------------------------------------------------
Three conservative early exits run before any per-bit loop (:func:`accelsim.kernels._mac.
_late_mask`); each only uses upper bounds of arrivals, so none can hide a late bit:

1. ``theta >= 1``: no arrival exceeds the static critical path.
2. *Static bound per cause*: output bit ``j`` arrives at ``t_sum + max(A_in(j), A_c(j))`` and
   every arrival is at most its static value (the recurrences with everything toggling and
   propagating). Bit masks of the carries / product bits / psum bits whose static arrival
   plus ``t_sum`` exceeds theta are precomputed for 256 theta bins (rounded down); if no
   toggling output bit has such a toggled cause, the mask is 0. A few ANDs; this function is
   small enough for LLVM to inline it into the caller's loop.
3. *Chain bound*: by induction over the recurrence, a carry at the top of a chain of ``C``
   toggled carries linked by a current propagate (into bits 1..R-1) arrives no later than
   ``P + C * t_carry``, where ``P`` bounds every input: 0 if the product did not change, else
   ``t_merge_sum + max_j t_h(j) + t_merge_carry * Cm`` with ``Cm`` the same chain length in the
   merge adder. Chain lengths are longest runs of ones of ``link = dc & (prop << 1) & (dc <<
   1)`` (``dc`` the carry-toggle vector, ``prop`` the current propagate vector), computed branch-free with five shift-and-AND steps. If
   ``t_sum + P + C * t_carry <= theta`` the mask is 0.

``tests/timing/test_sensitized.py`` checks on random and adversarial operands that the fast
path returns exactly what the full evaluation (and a pure-Python reference) returns.

Cost (AMD EPYC VM, one core, 10^7 MACs, best of 3, ``_late_mask`` called from an njit loop
with a scalar theta as the systolic kernel does): DNN-WS with signed weights 7.1 ns/MAC at
theta 0.9 and 23 ns at theta 0.6 (at 0.6, 5.8 % of the MACs are late and take the per-bit walk,
~150-200 ns); with non-negative weights 3.7 / 11 ns. Random operands: ~20 / 26 ns.

Calibration (:func:`fit_sensitized_params`)
-------------------------------------------
The six time constants are fitted with scipy's Nelder-Mead (from the start ``_FIT_START``,
about 320 evaluations, ~20 s) to timing.md section 3.2's table (``calib/
sensitized_targets.csv``) on 200 000 cycles per scenario (``SeedSequence(0)``): the random
scenario and the DNN-WS scenario with non-negative weights, the variant that reproduces the
published DNN-WS row in a gate-level replica of the reference MAC (see
:mod:`accelsim.timing.operands`). The loss weights the tail first: ``6 * log2(model /
target)^2`` per tail probability (floor 3/n), ``3 * (delta / 0.03)^2`` for p99.9, ``(delta /
0.05)^2`` for mean, p50, p90, p99 and ``0.5 * (delta / 0.05)^2`` for the max. The structural
``mult_split`` was chosen by the same loss: k = 1..5 give 15.1, 10.9, 15.1, 20.6, 27.3.

Shipped constants (``calib/sensitized.toml``; fractions of CP): t_sub0 0.0568, t_sub_slope
0.00064, t_merge_sum 0.0262, t_merge_carry 0.0367, t_carry 0.0335, t_sum 0.0985 (the
reference's AND+OR carry is 2/77 = 0.026 CP). Fit on seed 0, 200 000 cycles per row; the last
column is the gate-level replica with the same operands, for comparison:

=========  =========  =======  =======  =========
row        statistic  target   model    replica
=========  =========  =======  =======  =========
DNN-WS     mean       0.20     0.212    0.198
DNN-WS     p50        0.17     0.217    0.169
DNN-WS     p90        0.40     0.317    0.377
DNN-WS     p99        0.61     0.659    0.610
DNN-WS     p99.9      0.82     0.823    0.844
DNN-WS     max        0.95     0.918    0.948
DNN-WS     P>0.5      3.9e-2   3.27e-2  3.15e-2
DNN-WS     P>0.7      4.0e-3   6.11e-3  5.2e-3
DNN-WS     P>0.8      1.4e-3   1.37e-3  2.4e-3
random     mean       0.28     0.310    0.264
random     p50        0.25     0.293    0.247
random     p90        0.44     0.404    0.403
random     p99        0.56     0.547    0.558
random     p99.9      0.64     0.650    0.643
random     max        0.79     0.820    0.818
random     P>0.5      3.6e-2   2.80e-2  2.66e-2
random     P>0.7      1.7e-4   2.1e-4   2.0e-4
random     P>0.8      0        5e-6     0
=========  =========  =======  =======  =========

Tolerances checked by the tests (held-out seed 1): tail probabilities within a factor 2 (a
zero target: <= 5e-5), p99.9 within 0.05, p99, max and p50 within 0.06, mean within 0.05 and
p90 within 0.10 of CP. Known limit: the model's DNN-WS body is narrower than the reference's
(p90 low by 0.08 CP, p50 high by 0.05): the reference's multiplier delays vary with the
operands in ways two sub-arrays and one merge adder do not capture. The tail, which sets the
timing-error rate at realistic operating points, is what the fit favours.

With signed weights (``scenario="dnn-ws"``, timing.md's text) the model predicts a heavier
tail: mean 0.237, p99 0.724, P(s>0.5) 7.5e-2, P(s>0.7) 1.3e-2, P(s>0.8) 1.6e-3 (the replica:
8.4e-2, 2.2e-2, 7.1e-3): a negative product added to a positive psum ripples through the
sign-extension region whenever the activation switches between zero and non-zero.

Late bits: at thresholds 0.5-0.7 CP the late bits of DNN-WS are the top accumulator bits
(31..24 together with 23, then 22, 21, ...), with late probability falling monotonically with
bit index, as timing.md s3.2 reports for the reference's bits 23..18; with random operands
they spread over bits 17..23 (and the upper byte when the sign changes).
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from accelsim.config import check_choice, check_float, check_int, params_from_calib
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels import _mac
from accelsim.timing.operands import OperandStream, dnn_ws_stream, random_stream

FloatArray = npt.NDArray[np.float64]
UInt32Array = npt.NDArray[np.uint32]

#: Scenarios accepted by :func:`sample_sensitized_delays`.
SCENARIOS: tuple[str, ...] = ("dnn-ws", "dnn-ws-nonneg", "random")
#: Table row (``calib/sensitized_targets.csv``) -> scenario it is fitted on.
CALIBRATION_SCENARIOS: dict[str, str] = {"dnn-ws": "dnn-ws-nonneg", "random": "random"}
#: Statistics of :func:`distribution_stats`, in table order.
STATISTICS: tuple[str, ...] = (
    "mean",
    "p50",
    "p90",
    "p99",
    "p99.9",
    "max",
    "P>0.5",
    "P>0.7",
    "P>0.8",
)
_TAIL = ("P>0.5", "P>0.7", "P>0.8")
_FITTED = ("t_sub0", "t_sub_slope", "t_merge_sum", "t_merge_carry", "t_carry", "t_sum")


@dataclass(frozen=True)
class SensitizedParams:
    """Constants of the sensitized-delay model (see the module docstring), in units of CP.

    ``t_sub0`` and ``t_sub_slope``: arrival of sub-product bit j, ``t_sub0 + t_sub_slope * j``;
    ``t_merge_sum`` and ``t_merge_carry``: sum and per-bit carry delay of the multiplier's
    merge adder; ``t_carry`` and ``t_sum``: per-bit carry and sum delay of the accumulator.
    ``acc_bits`` is the accumulator width, ``ripple_bits`` the width of its ripple section
    (carries above cost nothing) and ``mult_split`` the activation bit at which the multiplier
    splits into two sub-arrays. The values are renormalized so that the static critical path
    is exactly 1 (:func:`kernel_constants`).
    """

    t_sub0: float = 0.056767
    t_sub_slope: float = 0.00063749
    t_merge_sum: float = 0.026155
    t_merge_carry: float = 0.036728
    t_carry: float = 0.033460
    t_sum: float = 0.098488
    acc_bits: int = 32
    ripple_bits: int = 24
    mult_split: int = 2

    def __post_init__(self) -> None:
        for name in _FITTED:
            lo_open = name in ("t_carry", "t_merge_carry")
            value = check_float(
                f"sensitized.{name}", getattr(self, name), 0.0, 1.0, lo_open=lo_open
            )
            object.__setattr__(self, name, value)
        object.__setattr__(
            self, "acc_bits", check_int("sensitized.acc_bits", self.acc_bits, 16, 32)
        )
        object.__setattr__(
            self,
            "ripple_bits",
            check_int("sensitized.ripple_bits", self.ripple_bits, 2, self.acc_bits),
        )
        object.__setattr__(
            self, "mult_split", check_int("sensitized.mult_split", self.mult_split, 1, 7)
        )


@functools.lru_cache(maxsize=1)
def default_sensitized_params() -> SensitizedParams:
    """SensitizedParams from ``calib/sensitized.toml`` (fitted constants with their sources)."""
    return params_from_calib(SensitizedParams, "sensitized.toml")


def _sub_arrivals(params: SensitizedParams) -> list[float]:
    return [params.t_sub0 + params.t_sub_slope * j for j in range(16)]


def _static_paths(params: SensitizedParams) -> tuple[list[float], list[float], list[float]]:
    """Static arrivals (units of ``params``): product bits (0..15), carries into accumulator
    bit j and accumulator output bits j. The recurrences of the module docstring with every
    input toggling at its latest time and every bit propagating: upper bounds of the
    corresponding arrivals in any cycle."""
    neg = -math.inf
    acm = neg
    tp = []
    for j, th in enumerate(_sub_arrivals(params)):
        tp.append(params.t_merge_sum + max(th, acm))
        acm = params.t_merge_carry + max(acm, th) if j < 15 else neg
    ac = neg
    carries = []
    outs = []
    for j in range(params.acc_bits):
        ain = max(0.0, tp[min(j, 15)])
        carries.append(ac)
        outs.append(params.t_sum + max(ain, ac))
        hop = params.t_carry if j + 1 < params.ripple_bits else 0.0
        ac = hop + max(ac, ain)
    return tp, carries, outs


def static_bit_arrivals(params: SensitizedParams) -> list[float]:
    """Static (structural) arrival of every accumulator output bit, in the units of ``params``.

    An upper bound of the bit's arrival in any cycle.
    """
    return _static_paths(params)[2]


def static_critical_path(params: SensitizedParams) -> float:
    """Static critical path of the model in the units of ``params`` (1.0 when normalized)."""
    return max(static_bit_arrivals(params))


def normalized(params: SensitizedParams) -> SensitizedParams:
    """``params`` with the six time constants divided by the static critical path."""
    cp = static_critical_path(params)
    return replace(params, **{name: getattr(params, name) / cp for name in _FITTED})


def kernel_constants(params: SensitizedParams) -> FloatArray:
    """The float64 array the numba kernels of :mod:`accelsim.kernels._mac` take (a copy).

    Times are normalized so that the static critical path is exactly 1; the layout is
    documented in :mod:`accelsim.kernels._mac`.
    """
    if not isinstance(params, SensitizedParams):
        raise ConfigError(f"params: got {type(params).__name__}, expected SensitizedParams")
    return _kernel_constants(params).copy()


@functools.lru_cache(maxsize=64)
def _kernel_constants(params: SensitizedParams) -> FloatArray:
    p = normalized(params)
    consts = np.zeros(_mac.N_CONSTS, dtype=np.float64)
    th = _sub_arrivals(p)
    consts[:16] = th
    consts[_mac._TX] = p.t_merge_sum
    consts[_mac._TCM] = p.t_merge_carry
    consts[_mac._TC] = p.t_carry
    consts[_mac._TS] = p.t_sum
    consts[_mac._RIPPLE] = p.ripple_bits
    consts[_mac._SPLIT] = p.mult_split
    consts[_mac._THMAX] = max(th)
    consts[_mac._ACC] = p.acc_bits
    # Early exit 2 of _late_mask: which toggles could make a bit late at theta >= i / _NBIN.
    tp, carries, _ = _static_paths(p)
    theta_lo = np.arange(_mac._NBIN)[:, None] / _mac._NBIN
    weights = 2.0 ** np.arange(p.acc_bits)  # bit masks as exact float64 integers (< 2**53)
    t_carry = p.t_sum + np.asarray(carries)
    t_prod = p.t_sum + np.maximum(0.0, np.asarray([tp[min(j, 15)] for j in range(p.acc_bits)]))
    consts[_mac._CMASK : _mac._CMASK + _mac._NBIN] = (t_carry > theta_lo) @ weights
    consts[_mac._PMASK : _mac._PMASK + _mac._NBIN] = (t_prod > theta_lo) @ weights
    consts[_mac._XMASK : _mac._XMASK + _mac._NBIN] = np.where(
        p.t_sum > theta_lo[:, 0], 2.0**p.acc_bits - 1, 0.0
    )
    return consts


# --------------------------------------------------------------------------- public wrappers

_OPERANDS = (
    ("w", -128, 127, np.int8),
    ("a", -128, 127, np.int8),
    ("psum_in", -(1 << 31), (1 << 31) - 1, np.int32),
    ("pw", -128, 127, np.int8),
    ("pa", -128, 127, np.int8),
    ("ppsum_in", -(1 << 31), (1 << 31) - 1, np.int32),
)


def _check_operands(values: tuple[Any, ...]) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Validate the six operand arrays; return their common shape and flat contiguous copies."""
    arrays = []
    shape: tuple[int, ...] | None = None
    first = ""
    for (name, lo, hi, dtype), value in zip(_OPERANDS, values, strict=True):
        arr = np.asarray(value)
        kind = np.dtype(dtype).name
        if not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(
                f"{name}: got dtype {arr.dtype}, expected an integer array (e.g. .astype(np.{kind}))"
            )
        if arr.dtype != dtype and arr.size and (arr.min() < lo or arr.max() > hi):
            raise ConfigError(
                f"{name}: got values in [{arr.min()}, {arr.max()}], expected {kind} values in "
                f"[{lo}, {hi}]"
            )
        if shape is None:
            shape, first = arr.shape, name
        elif arr.shape != shape:
            raise ShapeError(
                f"{name}: got shape {arr.shape}, expected the shape of {first} {shape}"
            )
        arrays.append(np.ascontiguousarray(arr.reshape(-1), dtype=dtype))
    assert shape is not None
    return shape, arrays


def _params_or_default(params: SensitizedParams | None) -> SensitizedParams:
    if params is None:
        return default_sensitized_params()
    if not isinstance(params, SensitizedParams):
        raise ConfigError(f"params: got {type(params).__name__}, expected SensitizedParams")
    return params


def sensitized_delay(
    w: Any,
    a: Any,
    psum_in: Any,
    pw: Any,
    pa: Any,
    ppsum_in: Any,
    params: SensitizedParams | None = None,
) -> FloatArray:
    """Sensitized delay of each MAC cycle, as a fraction of the static critical path.

    Parameters
    ----------
    w, a, pw, pa : array_like of int
        Current and previous weight and activation (int8 values).
    psum_in, ppsum_in : array_like of int
        Current and previous incoming partial sum (int32 values).
    params : SensitizedParams, optional
        Model constants; default :func:`default_sensitized_params`.

    Returns
    -------
    numpy.ndarray of float64
        ``s`` in [0, 1], the shape of the inputs (all six must have the same shape).

    Raises
    ------
    ConfigError
        A non-integer dtype or values outside int8 / int32.
    ShapeError
        The six inputs do not have the same shape.
    """
    shape, ops = _check_operands((w, a, psum_in, pw, pa, ppsum_in))
    consts = _kernel_constants(_params_or_default(params))
    out = np.empty(ops[0].shape[0], dtype=np.float64)
    w_, a_, ps_, pw_, pa_, pps_ = ops
    kernel = (
        _mac._sensitized_delays if out.size >= _mac.PARALLEL_MIN else _mac._sensitized_delays_serial
    )
    kernel(w_, a_, ps_, pw_, pa_, pps_, consts, out)
    return out.reshape(shape)


def bit_arrivals(
    w: Any,
    a: Any,
    psum_in: Any,
    pw: Any,
    pa: Any,
    ppsum_in: Any,
    params: SensitizedParams | None = None,
) -> FloatArray:
    """Arrival time of every accumulator output bit, shape ``input_shape + (32,)``.

    0 where the bit does not toggle; fractions of the static critical path. Inputs and errors
    as for :func:`sensitized_delay`.
    """
    shape, ops = _check_operands((w, a, psum_in, pw, pa, ppsum_in))
    consts = _kernel_constants(_params_or_default(params))
    out = np.empty((ops[0].shape[0], 32), dtype=np.float64)
    w_, a_, ps_, pw_, pa_, pps_ = ops
    _mac._mac_arrivals_many(w_, a_, ps_, pw_, pa_, pps_, consts, out)
    return out.reshape((*shape, 32))


def late_mask(
    w: Any,
    a: Any,
    psum_in: Any,
    pw: Any,
    pa: Any,
    ppsum_in: Any,
    theta: float | npt.ArrayLike,
    params: SensitizedParams | None = None,
) -> UInt32Array:
    """Mask of the accumulator output bits that arrive after ``theta`` (fraction of CP).

    Parameters
    ----------
    w, a, psum_in, pw, pa, ppsum_in : array_like of int
        As for :func:`sensitized_delay`.
    theta : float or array_like of float
        Threshold ``1 / (critical_path_ratio * pe_factor * supply_factor)``, >= 0;
        a scalar or an array of the inputs' shape.
    params : SensitizedParams, optional
        Model constants; default :func:`default_sensitized_params`.

    Returns
    -------
    numpy.ndarray of uint32
        Bit ``j`` set if output bit ``j`` toggles and arrives after ``theta``.

    Raises
    ------
    ConfigError
        Bad dtypes or values, or ``theta`` negative or not finite.
    ShapeError
        Mismatched shapes (of the operands or of ``theta``).
    """
    shape, ops = _check_operands((w, a, psum_in, pw, pa, ppsum_in))
    th = np.asarray(theta, dtype=np.float64) if _is_number_like(theta) else None
    if th is None:
        raise ConfigError(f"theta: got {theta!r}, expected a number >= 0 or an array of them")
    if th.ndim and th.shape != shape:
        raise ShapeError(f"theta: got shape {th.shape}, expected a scalar or shape {shape}")
    if th.size and (not np.all(np.isfinite(th)) or th.min() < 0.0):
        raise ConfigError("theta: got a negative or non-finite value, expected numbers >= 0")
    th_flat = np.ascontiguousarray(np.broadcast_to(th, shape).reshape(-1))
    consts = _kernel_constants(_params_or_default(params))
    out = np.empty(ops[0].shape[0], dtype=np.uint32)
    w_, a_, ps_, pw_, pa_, pps_ = ops
    _mac._late_masks(w_, a_, ps_, pw_, pa_, pps_, th_flat, consts, out, False)
    return out.reshape(shape)


def _is_number_like(value: object) -> bool:
    if isinstance(value, bool):
        return False
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return bool(np.issubdtype(arr.dtype, np.number)) and not np.issubdtype(
        arr.dtype, np.complexfloating
    )


# --------------------------------------------------------------------------- distributions


def distribution_stats(s: npt.ArrayLike) -> dict[str, float]:
    """Summary of a sample of sensitized delays, keys as :data:`STATISTICS`.

    ``mean``, quantiles ``p50 p90 p99 p99.9`` (numpy's linear interpolation), ``max`` and the
    tail probabilities ``P>0.5 P>0.7 P>0.8`` (fractions of cycles with ``s`` above).
    """
    arr = np.asarray(s, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ShapeError("s: got an empty array, expected at least one sensitized delay")
    q = np.quantile(arr, [0.5, 0.9, 0.99, 0.999])
    return {
        "mean": float(arr.mean()),
        "p50": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "p99.9": float(q[3]),
        "max": float(arr.max()),
        "P>0.5": float(np.mean(arr > 0.5)),
        "P>0.7": float(np.mean(arr > 0.7)),
        "P>0.8": float(np.mean(arr > 0.8)),
    }


def scenario_stream(n: int, rng: np.random.Generator, scenario: str) -> OperandStream:
    """Operands of ``scenario`` (one of :data:`SCENARIOS`), see :mod:`accelsim.timing.operands`."""
    check_choice("scenario", scenario, SCENARIOS)
    if scenario == "random":
        return random_stream(n, rng)
    return dnn_ws_stream(n, rng, weights="nonnegative" if scenario == "dnn-ws-nonneg" else "signed")


def sample_sensitized_delays(
    n: int,
    rng: np.random.Generator,
    scenario: str = "dnn-ws",
    params: SensitizedParams | None = None,
) -> FloatArray:
    """``n`` sensitized delays of independent MAC cycles of ``scenario``.

    Used for timing-error rates: ``TER(V, f) = P(s > theta)``.

    Parameters
    ----------
    n : int
        Number of cycles.
    rng : numpy.random.Generator
        Source of the operands.
    scenario : {"dnn-ws", "dnn-ws-nonneg", "random"}
        Operand scenario (:mod:`accelsim.timing.operands`); ``dnn-ws`` has signed weights,
        ``dnn-ws-nonneg`` is the variant the constants were calibrated on.
    params : SensitizedParams, optional
        Model constants; default :func:`default_sensitized_params`.

    Returns
    -------
    numpy.ndarray of float64
        Shape ``(n,)``, values in [0, 1].

    Raises
    ------
    ConfigError
        Unknown scenario, bad ``n`` or ``rng``.
    """
    ops = scenario_stream(n, rng, scenario)
    return sensitized_delay(*ops, params=_params_or_default(params))


# --------------------------------------------------------------------------- calibration


def load_targets(name: str = "sensitized_targets.csv") -> dict[str, dict[str, float]]:
    """The published distribution table from ``calib/``: ``{scenario: {statistic: value}}``."""
    text = resources.files("accelsim.calib").joinpath(name).read_text()
    targets: dict[str, dict[str, float]] = {}
    for i, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        stat = row.get("statistic", "")
        if stat not in STATISTICS:
            raise ConfigError(
                f"calib/{name} line {i}: statistic {stat!r}, expected one of {', '.join(STATISTICS)}"
            )
        targets.setdefault(row["scenario"], {})[stat] = check_float(
            f"calib/{name} line {i} value", float(row["value"])
        )
    return targets


def fit_loss(model: dict[str, float], target: dict[str, float], n: int) -> float:
    """The calibration loss of one scenario (weights in the module docstring)."""
    loss = 0.0
    floor = 3.0 / n
    for stat, value in target.items():
        got = model[stat]
        if stat in _TAIL:
            loss += 6.0 * math.log2(max(got, floor) / max(value, floor)) ** 2
        elif stat == "p99.9":
            loss += 3.0 * ((got - value) / 0.03) ** 2
        elif stat == "max":
            loss += 0.5 * ((got - value) / 0.05) ** 2
        else:
            loss += ((got - value) / 0.05) ** 2
    return loss


@dataclass(frozen=True)
class FitReport:
    """Outcome of :func:`fit_sensitized_params`: target and model statistics per table row."""

    params: SensitizedParams
    loss: float
    n: int
    seed: int
    evaluations: int
    target: dict[str, dict[str, float]]
    model: dict[str, dict[str, float]]

    def format_table(self) -> str:
        """Target vs model, one line per statistic (plain text)."""
        rows = [f"{'scenario':9s} {'statistic':9s} {'target':>9s} {'model':>9s}"]
        for scen, stats in self.target.items():
            for stat in STATISTICS:
                if stat in stats:
                    rows.append(
                        f"{scen:9s} {stat:9s} {stats[stat]:9.3g} {self.model[scen][stat]:9.3g}"
                    )
        return "\n".join(rows)


def evaluate_params(
    params: SensitizedParams, n: int = 200_000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Model statistics per calibration table row on the fit's operand streams (same seeds)."""
    streams = _calibration_streams(n, seed)
    consts = kernel_constants(params)
    return {row: distribution_stats(_delays(ops, consts)) for row, ops in streams.items()}


def _calibration_streams(n: int, seed: int) -> dict[str, OperandStream]:
    rows = sorted(CALIBRATION_SCENARIOS)
    children = np.random.SeedSequence(seed).spawn(len(rows))
    return {
        row: scenario_stream(n, np.random.default_rng(child), CALIBRATION_SCENARIOS[row])
        for row, child in zip(rows, children, strict=True)
    }


def _delays(ops: OperandStream, consts: FloatArray) -> FloatArray:
    out = np.empty(ops[0].shape[0], dtype=np.float64)
    kernel = (
        _mac._sensitized_delays if out.size >= _mac.PARALLEL_MIN else _mac._sensitized_delays_serial
    )
    kernel(*ops, consts, out)
    return out


# Start of the search: free units, roughly the reference's gate delays / 77 (AND=OR=1, XOR=2).
_FIT_START = (0.05, 0.007, 0.022, 0.040, 0.035, 0.05)


def fit_sensitized_params(n: int = 200_000, seed: int = 0) -> tuple[SensitizedParams, FitReport]:
    """Fit the six time constants to ``calib/sensitized_targets.csv`` (deterministic).

    Parameters
    ----------
    n : int
        Cycles per scenario (>= 1000).
    seed : int
        Seed of the operand streams (``numpy.random.SeedSequence(seed)``, one child per row).

    Returns
    -------
    (SensitizedParams, FitReport)
        Normalized fitted constants (static critical path 1) and the fit's report.
    """
    from scipy.optimize import minimize

    count = check_int("n", n, 1000, 1 << 26)
    seed = check_int("seed", seed, 0)
    targets = load_targets()
    missing = sorted(set(CALIBRATION_SCENARIOS) - set(targets))
    if missing:
        raise ConfigError(f"calib/sensitized_targets.csv: no rows for scenario {missing[0]!r}")
    streams = _calibration_streams(count, seed)
    base = SensitizedParams()

    def to_params(z: FloatArray) -> SensitizedParams:
        values: dict[str, Any] = dict(zip(_FITTED, (float(v) for v in np.exp(z)), strict=True))
        raw = replace(base, **values)
        return normalized(raw)

    def objective(z: FloatArray) -> float:
        try:
            params = to_params(z)
        except ConfigError:
            return 1e9
        consts = kernel_constants(params)
        return sum(
            fit_loss(distribution_stats(_delays(ops, consts)), targets[row], count)
            for row, ops in streams.items()
        )

    result = minimize(
        objective,
        np.log(np.asarray(_FIT_START)),
        method="Nelder-Mead",
        options={"maxfev": 400, "xatol": 1e-3, "fatol": 1e-3},
    )
    params = to_params(result.x)
    consts = kernel_constants(params)
    model = {row: distribution_stats(_delays(ops, consts)) for row, ops in streams.items()}
    report = FitReport(
        params=params,
        loss=float(result.fun),
        n=count,
        seed=seed,
        evaluations=int(result.nfev),
        target={row: dict(targets[row]) for row in sorted(CALIBRATION_SCENARIOS)},
        model=model,
    )
    return params, report


def params_table(params: SensitizedParams) -> list[tuple[str, float | int]]:
    """``(field, value)`` pairs of ``params`` (for writing calib files and reports)."""
    return [(f.name, getattr(params, f.name)) for f in fields(params)]
