"""Per-MAC timing-error probability (TER) at an operating point (V, f).

A MAC fails in a cycle when its sensitized delay ``s`` (a fraction of the MAC's static critical
path, :mod:`accelsim.timing.sensitized`) stretched by the operating point, the PE's variation
factor and the momentary supply factor exceeds the clock period::

    s * CP(V)/T(f) * pe * g(t) > 1        CP(V)/T(f) = critical_path_ratio(V, f)   (delay.py)

so the per-MAC error probability for a stream of operands is ``E[ SF_s(1 / (ratio * pe * g)) ]``
with ``SF_s`` the survival function of ``s`` over the operand stream, the expectation taken over
the PEs of the chip and the cycles of the supply trace:

* ``s``: ``n_samples`` MAC transitions of the DNN weight-stationary operand scenario of
  timing.md section 3.2 (``sample_sensitized_delays``), drawn once per seed; their empirical
  survival function resolves probabilities down to ``1/n_samples``;
* ``pe``: for the *typical chip* (the median die, ``d2d = 0``) the within-die log-normal spread
  ``sigma(V) = sigma_scale(V) * sqrt(sigma_sys^2 + sigma_rnd^2)`` is integrated with
  Gauss-Hermite quadrature; for a given chip seed, the chip's own PE map is averaged;
* ``g``: the delay factor of a representative supply trace: first-droop events at the fold
  boundaries of a reference GEMM (DiT-XL/2's fc1, 256 x 4608 x 1152) on the array, plus the
  background noise, both from :mod:`accelsim.timing.supply`, over ``n_cycles`` cycles.

Everything is deterministic given ``seed`` (``numpy.random.SeedSequence``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from accelsim.config import (
    ArrayConfig,
    HardwareConfig,
    TechParams,
    default_tech,
    params_from_calib,
)
from accelsim.errors import ConfigError
from accelsim.timing.delay import (
    DelayParams,
    check_vdd,
    critical_path_ratio,
    default_delay_params,
    sigma_scale,
    signoff_voltage,
)
from accelsim.timing.sensitized import (
    SensitizedParams,
    default_sensitized_params,
    sample_sensitized_delays,
)
from accelsim.timing.supply import droop_triggers, supply_delay_factor, supply_droop
from accelsim.timing.variation import (
    VariationParams,
    chip_map,
    default_variation_params,
    pe_delay_factor,
)

FloatArray = npt.NDArray[np.float64]

#: The reference GEMM whose fold boundaries trigger droops in the representative supply trace:
#: DiT-XL/2's MLP fc1 at 256 px (M tokens, N outputs, K inputs).
REFERENCE_GEMM = (256, 4608, 1152)
#: Gauss-Hermite nodes for the within-die variation integral.
_HERMITE_NODES = 32


@dataclass(frozen=True)
class TimingModel:
    """Everything that turns (V, f) into timing errors: nominal point, delay, data, variation."""

    vnom: float
    fnom: float
    delay: DelayParams
    sensitized: SensitizedParams
    variation: VariationParams

    @classmethod
    def default(cls, tech: TechParams | None = None) -> TimingModel:
        """The shipped model: nominal point from ``tech`` (default calib/energy.toml), the rest
        from calib/delay.toml, calib/sensitized.toml and calib/variation.toml."""
        tech = tech or default_tech()
        return cls(
            vnom=tech.vnom,
            fnom=tech.fnom,
            delay=default_delay_params(),
            sensitized=default_sensitized_params(),
            variation=default_variation_params(),
        )

    @classmethod
    def for_hardware(cls, hw: HardwareConfig) -> TimingModel:
        """The shipped model with ``hw``'s nominal point and its ``[delay]``, ``[variation]``
        and ``[sensitized]`` overrides applied."""
        return cls(
            vnom=hw.tech.vnom,
            fnom=hw.tech.fnom,
            delay=params_from_calib(DelayParams, "delay.toml", hw.timing.section("delay")),
            sensitized=params_from_calib(
                SensitizedParams, "sensitized.toml", hw.timing.section("sensitized")
            ),
            variation=params_from_calib(
                VariationParams, "variation.toml", hw.timing.section("variation")
            ),
        )


@dataclass(frozen=True)
class TerPoint:
    """Timing-error statistics at one operating point."""

    vdd: float
    freq: float
    critical_path_ratio: float
    mac_error_prob: float
    chip: int | None
    resolution: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def errors_per_million_macs(self) -> float:
        """Expected timing errors per 10^6 MACs."""
        return self.mac_error_prob * 1e6

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (``freq_ghz`` in GHz)."""
        return {
            "vdd": self.vdd,
            "freq_ghz": self.freq / 1e9,
            "mac_error_prob": self.mac_error_prob,
            "errors_per_million_macs": self.errors_per_million_macs,
            "critical_path_ratio": self.critical_path_ratio,
            "chip": "typical" if self.chip is None else self.chip,
            "resolution": self.resolution,
            **self.extra,
        }


@dataclass(frozen=True)
class _Ingredients:
    s_sorted: FloatArray
    delta: FloatArray
    chip_seed: int | None
    array: ArrayConfig


def _ingredients(
    model: TimingModel,
    array: ArrayConfig,
    chip: int | None,
    n_samples: int,
    n_cycles: int,
    seed: int,
) -> _Ingredients:
    from accelsim.hw.mapping import map_gemm

    root = np.random.SeedSequence(seed)
    s_seq, supply_seq = root.spawn(2)
    s = sample_sensitized_delays(
        n_samples, np.random.default_rng(s_seq), scenario="dnn-ws", params=model.sensitized
    )
    s_sorted = np.sort(np.asarray(s, dtype=np.float64))
    m, n, k = REFERENCE_GEMM
    mapping = map_gemm(m, n, k, array)
    cycles, steps = droop_triggers(mapping)
    keep = cycles < n_cycles
    delta = supply_droop(
        n_cycles,
        model.fnom,
        cycles[keep],
        steps[keep],
        model.variation,
        np.random.default_rng(supply_seq),
    )
    return _Ingredients(s_sorted, np.asarray(delta, dtype=np.float64), chip, array)


def _survival(s_sorted: FloatArray, threshold: FloatArray) -> FloatArray:
    """Empirical P(s > threshold) from sorted samples."""
    idx = np.searchsorted(s_sorted, threshold, side="right")
    result: FloatArray = 1.0 - idx / s_sorted.size
    return result


def _pe_factors(model: TimingModel, ing: _Ingredients, vdd: float) -> tuple[FloatArray, FloatArray]:
    """PE delay factors and their weights (summing to 1)."""
    if ing.chip_seed is None:
        v = model.variation
        sigma = float(sigma_scale(vdd, model.vnom, model.delay)) * math.hypot(
            v.sigma_sys, v.sigma_rnd
        )
        x, w = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
        return np.exp(sigma * x), w / w.sum()
    chip = chip_map(ing.array.rows, ing.array.cols, ing.chip_seed, model.variation)
    pe = np.asarray(
        pe_delay_factor(chip, vdd, model.vnom, model.delay, model.variation), dtype=np.float64
    ).ravel()
    # Group PEs whose factors agree to 1e-4 (relative effect on the threshold <= 1e-4).
    values, counts = np.unique(np.round(pe, 4), return_counts=True)
    return values, counts / counts.sum()


def ter_points(
    points: Sequence[tuple[float, float]],
    model: TimingModel | None = None,
    *,
    array: ArrayConfig | None = None,
    chip: int | None = None,
    n_samples: int = 1 << 21,
    n_cycles: int = 20_000,
    seed: int = 0,
) -> list[TerPoint]:
    """Per-MAC timing-error probability at each ``(vdd [V], freq [Hz])`` point.

    ``chip=None`` is the typical chip (median die, within-die spread integrated); an integer is
    a chip seed (that die's PE map, including its die-to-die offset). ``array`` (default
    128x128 WS) sets the PE map's shape and the fold structure of the supply trace.
    """
    model = model or TimingModel.default()
    array = array or ArrayConfig(128, 128, "ws")
    if n_samples < 1000:
        raise ConfigError(f"n_samples: got {n_samples}, expected an integer >= 1000")
    if n_cycles < 100:
        raise ConfigError(f"n_cycles: got {n_cycles}, expected an integer >= 100")
    ing = _ingredients(model, array, chip, n_samples, n_cycles, seed)
    out: list[TerPoint] = []
    for vdd, freq in points:
        check_vdd(vdd, model.delay)
        if not (isinstance(freq, int | float) and 1e6 <= freq <= 1e10):
            raise ConfigError(f"freq: got {freq!r} Hz, expected a number in [0.001, 10] GHz")
        ratio = critical_path_ratio(vdd, freq, model.vnom, model.fnom, model.delay)
        g = np.asarray(
            supply_delay_factor(ing.delta, vdd, model.vnom, model.delay), dtype=np.float64
        )
        # Group cycles whose supply factors agree to 1e-4 (relative threshold error <= 1e-4).
        g_vals, g_counts = np.unique(np.round(g, 4), return_counts=True)
        pe, pe_w = _pe_factors(model, ing, vdd)
        threshold = 1.0 / (ratio * np.outer(g_vals, pe))
        sf = _survival(ing.s_sorted, threshold)
        prob = float((g_counts / g_counts.sum()) @ sf @ pe_w)
        out.append(
            TerPoint(
                vdd=float(vdd),
                freq=float(freq),
                critical_path_ratio=float(ratio),
                mac_error_prob=prob,
                chip=chip,
                resolution=1.0 / n_samples,
                extra={
                    "margin_to_signoff_v": float(vdd - signoff_voltage(model.vnom, model.delay))
                },
            )
        )
    return out


#: Work of the measured-guardband definition: a workload of this many MACs must see fewer than
#: one expected timing error (DESIGN.md: "largest error-free undervolt").
GUARDBAND_WORKLOAD_MACS = 1e9


@dataclass(frozen=True)
class MeasuredGuardband:
    """The typical chip's measured guardband (DESIGN.md, "calibrated to silicon").

    ``vdd`` (V) is the lowest supply at ``freq`` (Hz) at which the typical chip (median die,
    within-die variation, droop and supply noise on) runs ``workload_macs`` MACs with less than
    one expected timing error; ``fraction`` is ``1 - vdd / vnom``. ``curve`` holds the
    ``(V, TER)`` grid the crossing was interpolated on (log-linear between grid points).
    """

    vdd: float
    fraction: float
    freq: float
    workload_macs: float
    curve: tuple[tuple[float, float], ...]


def measured_guardband(
    model: TimingModel | None = None,
    *,
    array: ArrayConfig | None = None,
    chip: int | None = None,
    freq: float | None = None,
    workload_macs: float = GUARDBAND_WORKLOAD_MACS,
    step_v: float = 0.0025,
    n_samples: int = 1 << 21,
    seed: int = 0,
) -> MeasuredGuardband:
    """Largest undervolt at ``freq`` (default fnom) with ``TER * workload_macs < 1`` on the
    typical chip, or on chip seed ``chip`` (see :class:`MeasuredGuardband`)."""
    model = model or TimingModel.default()
    freq = model.fnom if freq is None else freq
    target = 1.0 / workload_macs
    lo = max(model.delay.v_min, 0.5 * model.vnom)

    def evaluate(volts: FloatArray) -> list[tuple[float, float]]:
        pts = ter_points(
            [(float(v), freq) for v in volts],
            model,
            array=array,
            chip=chip,
            n_samples=n_samples,
            seed=seed,
        )
        return [(p.vdd, p.mac_error_prob) for p in pts]

    # coarse grid to bracket the crossing, then ``step_v`` inside the bracket
    coarse = evaluate(np.arange(model.vnom, lo - 1e-12, -8 * step_v))
    hi_v, lo_v = coarse[0][0], coarse[-1][0]
    for (v_hi, _), (v_lo, p_lo) in itertools.pairwise(coarse):
        if p_lo >= target:
            hi_v, lo_v = v_hi, v_lo
            break
    fine = evaluate(np.arange(hi_v, lo_v - 1e-12, -step_v))
    curve = tuple(sorted({*coarse, *fine}, reverse=True))
    v_cross = float(curve[-1][0])
    for (v_hi, p_hi), (v_lo, p_lo) in itertools.pairwise(curve):
        if p_lo >= target:
            if p_hi <= 0.0:
                v_cross = v_hi
            else:
                # log-linear interpolation of TER between the two grid voltages
                a, b = math.log(p_hi), math.log(p_lo)
                v_cross = v_hi + (math.log(target) - a) / (b - a) * (v_lo - v_hi)
            break
    return MeasuredGuardband(
        vdd=v_cross,
        fraction=1.0 - v_cross / model.vnom,
        freq=freq,
        workload_macs=workload_macs,
        curve=curve,
    )
