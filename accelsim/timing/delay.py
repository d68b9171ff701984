"""Gate delay versus supply voltage, and the clock period relative to the critical path.

Delay follows the alpha-power law (Sakurai and Newton, JSSC 1990), normalized at the nominal
voltage, with an exponential tail near threshold where the law breaks down
(../shared/reference/timing.md sections 1.1, 1.2 and 9)::

    d(V) / d(Vnom) = [V / (V - Vt)^alpha] / [Vnom / (Vnom - Vt)^alpha]        V >= v_tail
    d(V) / d(Vnom) = d(v_tail) / d(Vnom) * exp((v_tail - V) / tail_volts_per_efold)   V < v_tail

Defaults (``calib/delay.toml``, refit by ``accelsim calibrate``): alpha 1.4, Vt 0.40 V, tail below
0.55 V at one e-fold per 60 mV (one decade per ~140 mV), valid from 0.40 to 1.20 V.

**Sign-off.** The array is signed off with a voltage guardband: its static critical path,
at the worst corner ``(1 - guardband) * Vnom``, just meets the nominal clock period ``1/fnom``.
At supply ``V`` and clock ``f`` the typical-corner critical path therefore takes::

    CP(V) / T(f) = d(V) / d((1 - guardband) * Vnom) * f / fnom

of the clock period (0.84 at the nominal point with the default 10% guardband, matching
timing.md section 9's "typical-corner critical delay ~0.85 T_clk at V0"). A MAC fails in a
cycle when its *sensitized* delay (a fraction of CP, see :mod:`accelsim.timing.sensitized`)
times this ratio, times the PE's variation factor and the momentary supply factor, exceeds 1.

Units: volts (V), hertz (Hz); delays are dimensionless ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from accelsim.config import ConfigError, check_float, params_from_calib

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DelayParams:
    """Parameters of the delay-versus-voltage model (see the module docstring).

    ``alpha`` (dimensionless) and ``vt`` (V) are the alpha-power law's exponent and effective
    threshold; ``guardband`` is the typical-corner timing margin as a fraction of Vnom (the
    typical static critical path meets ``1/fnom`` at ``(1 - guardband) * Vnom``; calib derives
    it from the sign-off stack of ``calib/signoff.toml``); below
    ``v_tail`` (V) delay grows by one e-fold per ``tail_volts_per_efold`` (V); the model is
    valid for supplies in ``[v_min, v_max]`` (V).
    """

    alpha: float = 1.4
    vt: float = 0.40
    guardband: float = 0.10
    v_tail: float = 0.55
    tail_volts_per_efold: float = 0.06
    v_min: float = 0.40
    v_max: float = 1.20

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_float("delay.alpha", self.alpha, 0.5, 3.0))
        object.__setattr__(self, "vt", check_float("delay.vt", self.vt, 0.0, 1.0, unit="V"))
        object.__setattr__(
            self, "guardband", check_float("delay.guardband", self.guardband, 0.0, 0.5)
        )
        object.__setattr__(
            self, "v_tail", check_float("delay.v_tail", self.v_tail, 0.0, 2.0, unit="V")
        )
        object.__setattr__(
            self,
            "tail_volts_per_efold",
            check_float("delay.tail_volts_per_efold", self.tail_volts_per_efold, 0.001, 1.0),
        )
        object.__setattr__(self, "v_min", check_float("delay.v_min", self.v_min, 0.0, 2.0))
        object.__setattr__(self, "v_max", check_float("delay.v_max", self.v_max, 0.0, 3.0))
        if self.v_tail <= self.vt:
            raise ConfigError(
                f"delay.v_tail: got {self.v_tail:g} V, expected a voltage above delay.vt "
                f"({self.vt:g} V): the alpha-power law is undefined at and below Vt"
            )
        if not self.v_min < self.v_max:
            raise ConfigError(
                f"delay.v_min: got {self.v_min:g} V, expected less than delay.v_max ({self.v_max:g} V)"
            )


def default_delay_params() -> DelayParams:
    """DelayParams from ``calib/delay.toml`` (fit results with their sources)."""
    return params_from_calib(DelayParams, "delay.toml")


def check_vdd(vdd: float, params: DelayParams) -> float:
    """Return ``vdd`` if it lies in the model's validity range, else raise a one-line error."""
    if isinstance(vdd, bool) or not isinstance(vdd, int | float) or not math.isfinite(vdd):
        raise ConfigError(f"vdd: got {vdd!r}, expected a number in volts")
    if not params.v_min <= vdd <= params.v_max:
        raise ConfigError(
            f"vdd: got {vdd:g} V, expected a number in [{params.v_min:g}, {params.v_max:g}] V "
            "(the delay model's validity range)"
        )
    return float(vdd)


def _alpha_law(v: FloatArray, params: DelayParams) -> FloatArray:
    result: FloatArray = v / (v - params.vt) ** params.alpha
    return result


def _raw_delay(v: FloatArray, params: DelayParams) -> FloatArray:
    """Unnormalized delay ``V/(V-Vt)^alpha`` with the exponential tail below ``v_tail``."""
    v_alpha = np.maximum(v, params.v_tail)
    d = _alpha_law(v_alpha, params)
    tail = np.exp(np.maximum(params.v_tail - v, 0.0) / params.tail_volts_per_efold)
    result: FloatArray = d * tail
    return result


@overload
def normalized_delay(vdd: float, vnom: float, params: DelayParams) -> float: ...
@overload
def normalized_delay(vdd: FloatArray, vnom: float, params: DelayParams) -> FloatArray: ...
def normalized_delay(
    vdd: float | FloatArray, vnom: float, params: DelayParams
) -> float | FloatArray:
    """Gate delay at ``vdd`` relative to the delay at ``vnom`` (both in V).

    Accepts a float or an array; values are not range-checked here (see :func:`check_vdd`).
    """
    v = np.asarray(vdd, dtype=np.float64)
    ratio = _raw_delay(v, params) / _raw_delay(np.asarray(vnom, dtype=np.float64), params)
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def signoff_voltage(vnom: float, params: DelayParams) -> float:
    """Worst-corner voltage at which the static critical path meets ``1/fnom``, V."""
    return (1.0 - params.guardband) * vnom


@overload
def critical_path_ratio(
    vdd: float, freq: float, vnom: float, fnom: float, params: DelayParams
) -> float: ...
@overload
def critical_path_ratio(
    vdd: FloatArray, freq: float | FloatArray, vnom: float, fnom: float, params: DelayParams
) -> FloatArray: ...
def critical_path_ratio(
    vdd: float | FloatArray,
    freq: float | FloatArray,
    vnom: float,
    fnom: float,
    params: DelayParams,
) -> float | FloatArray:
    """Typical-corner critical-path delay over the clock period at ``vdd`` (V) and ``freq`` (Hz).

    ``> 1`` means the static critical path no longer fits in a cycle. 0.84 at the nominal point
    with the default 10% guardband.
    """
    v_signoff = signoff_voltage(vnom, params)
    ratio = normalized_delay(vdd, v_signoff, params) * (np.asarray(freq, dtype=np.float64) / fnom)
    return float(ratio) if np.ndim(ratio) == 0 else ratio


def zero_margin_frequency(vdd: float, vnom: float, fnom: float, params: DelayParams) -> float:
    """Clock (Hz) at which the typical-corner static critical path exactly fills a cycle at ``vdd``."""
    return fnom / normalized_delay(vdd, signoff_voltage(vnom, params), params)


def zero_margin_voltage(freq: float, vnom: float, fnom: float, params: DelayParams) -> float:
    """Supply (V) at which the typical-corner static critical path exactly fills a cycle at ``freq``.

    Below it the longest paths fail first; sensitized paths shorter than the static critical
    path fail later. Solved by bisection on the monotone delay curve; clamped to the validity
    range.
    """
    lo, hi = params.v_min, params.v_max
    target = 1.0

    def excess(v: float) -> float:
        return critical_path_ratio(v, freq, vnom, fnom, params) - target

    if excess(hi) > 0:
        return hi
    if excess(lo) < 0:
        return lo
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def sigma_scale(vdd: float | FloatArray, vnom: float, params: DelayParams) -> float | FloatArray:
    """Growth of delay variation with falling voltage: ``[alpha/(V-Vt)] / [alpha/(Vnom-Vt)]``.

    From the alpha-power law, sigma_d/d = alpha * sigma_Vt / (V - Vt) (timing.md section 4.1):
    x1.25 at 0.8 V, x1.67 at 0.7 V, x2.5 at 0.6 V with the defaults. Below ``v_tail`` the value
    at ``v_tail`` is extended by the ratio of the tail slope to avoid the singularity at Vt.
    """
    v = np.asarray(vdd, dtype=np.float64)
    v_eff = np.maximum(v, params.v_tail)
    scale = (vnom - params.vt) / (v_eff - params.vt)
    below = v < params.v_tail
    if np.any(below):
        # In the exponential regime d ln d / dV = -1/tail_volts_per_efold; sigma grows with it.
        at_tail = (vnom - params.vt) / (params.v_tail - params.vt)
        tail_sens = 1.0 / params.tail_volts_per_efold
        law_sens = params.alpha / (params.v_tail - params.vt) - 1.0 / params.v_tail
        scale = np.where(below, at_tail * max(tail_sens / law_sens, 1.0), scale)
    return float(scale) if np.ndim(scale) == 0 else scale
