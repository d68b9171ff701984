"""Temporal supply processes over array cycles: first droop and background noise (timing.md 4.2, 9).

The supply of the array's domain is ``V(n) = vdd * (1 - delta[n])`` in cycle ``n``; ``delta`` is
a fraction of the supply, positive when the voltage is *lower*, and global to the domain (all PEs
see it at once). It is the sum of two processes, both drawn from an explicit ``rng``:

**First droop** (event-triggered). A current step of ``s`` (fraction of peak array current,
signed: > 0 load rises, < 0 load falls) with ``|s| > droop_threshold`` starts an event at the
beginning of its cycle. The PDN (package inductance resonating with on-die decap) is a
second-order system; its voltage response to a current step is the damped sinusoid (the
impulse response of the resonator)::

    delta(t) = sign(s) * A * w(t),   w(t) = exp(-zeta*w0*t) * sin(wd*t) / w_peak,   t >= 0
    w0 = 2*pi*droop_f_res,   wd = w0*sqrt(1 - zeta**2),
    t_peak = atan(sqrt(1 - zeta**2)/zeta) / wd,   w_peak = sqrt(1 - zeta**2) * exp(-zeta*w0*t_peak)

so ``w`` starts at 0, dips to exactly 1 at ``t_peak`` (2.06 ns, just under a quarter period, for
100 MHz and zeta 0.35), then rings at ``wd / 2 pi`` (93.7 MHz) with the envelope
``exp(-zeta*w0*t)`` (e-fold 4.5 ns; below 2 % of the peak after 20 ns); successive half-swings shrink by
``exp(-pi*zeta/sqrt(1 - zeta**2))`` (0.31). A load release (``s < 0``) gives the mirror image:
an overshoot, then a smaller undershoot. The amplitude is drawn per event::

    A = min(droop_amp_cap, |s| * a),  a = droop_amp_worst        with probability droop_worst_prob
                                      a = droop_amp_typical * exp(droop_amp_spread * N(0, 1)) otherwise

(5 % typical, 10 % rare worst, 14 % cap: Reddi et al. via timing.md). Overlapping events add
linearly; their sum is clipped to ``[-droop_amp_cap, droop_amp_cap]``.

**Per-cycle value.** ``delta[n]`` is the *mean over cycle n*, ``[n/f, (n+1)/f)``, of the
continuous waveform: the path delay integrates the supply over the cycle, and averaging never
aliases the ~100 MHz ringing at slow clocks. So the same event gives the same waveform in
seconds at every clock, sampled into more cycles at a faster clock; the cycle-averaged peak is a
little below ``A`` (0.95 A at 1 GHz, 0.99 A at 2 GHz). In closed form, with ``s = -zeta*w0 +
i*wd``, ``z = exp(s/f)`` and ``K = f*(z - 1)/s``, the response ``k`` cycles after the event is
``Im(K*z**k) / w_peak`` (:func:`droop_response`); :func:`supply_droop` evaluates it for all
events at once as a second-order IIR filter (``scipy.signal.lfilter``'s difference equations,
in the numba kernel :func:`accelsim.kernels._supply._supply_trace`) driven by the impulse train
of signed amplitudes, which is exact, O(n) and has no kernel truncation.

**Background noise**: Gaussian AR(1) sampled once per cycle, stationary from the first cycle::

    x[0] ~ N(0, sigma**2),   x[n] = phi*x[n-1] + sigma*sqrt(1 - phi**2)*N(0, 1),   phi = exp(-1/(f*tau))

so ``std = noise_sigma`` (1 %) and the lag-k autocorrelation is ``phi**k = exp(-k/(f*tau))``
(tau 10 ns). It is not clipped.

Parameters live in :class:`~accelsim.timing.variation.VariationParams` (``calib/variation.toml``).
Units: cycles of the array clock, Hz, V, s; ``delta`` and step sizes are fractions.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from accelsim.config import ConfigError, check_float, check_int
from accelsim.hw.mapping import Mapping
from accelsim.kernels._supply import _supply_trace
from accelsim.timing.delay import DelayParams, check_vdd, normalized_delay
from accelsim.timing.variation import VariationParams

__all__ = [
    "droop_response",
    "droop_triggers",
    "droop_waveform",
    "fold_utilizations",
    "quiet_supply",
    "supply_delay_factor",
    "supply_droop",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Largest number of cycles :func:`supply_droop` accepts (about 1.6 GB of float64 work arrays).
MAX_CYCLES = 200_000_000


# --------------------------------------------------------------------------- triggers


def fold_utilizations(mapping: Mapping) -> FloatArray:
    """Fraction of the array's PEs busy in each fold, in SCALE-Sim's fold order.

    Folds iterate ``for col_fold: for row_fold:`` (row folds innermost); fold ``(c, r)`` uses
    ``min(R, Sr - r*R)`` rows and ``min(C, Sc - c*C)`` columns. The mean over folds equals
    ``mapping.mapping_efficiency``.
    """
    r_idx = np.arange(mapping.row_folds, dtype=np.int64)
    c_idx = np.arange(mapping.col_folds, dtype=np.int64)
    rows_used = np.minimum(mapping.rows, mapping.Sr - r_idx * mapping.rows) / mapping.rows
    cols_used = np.minimum(mapping.cols, mapping.Sc - c_idx * mapping.cols) / mapping.cols
    result: FloatArray = np.outer(cols_used, rows_used).ravel().astype(np.float64)
    return result


def droop_triggers(mapping: Mapping) -> tuple[IntArray, FloatArray]:
    """Cycles at which the array's current steps, and the signed step sizes.

    The array current is taken proportional to the busy PEs (fraction of peak current ``u_f``
    in fold ``f``, :func:`fold_utilizations`). Fold ``f`` starts at cycle
    ``f * mapping.fold_interval`` (``f * cycles_per_fold`` for SCALE-Sim's serialized folds):

    * serialized folds (default): each fold starts from a nearly idle array (the previous fold
      has drained, the new one loads its stationary operand and fills), a step of ``+u_f``;
      the gradual drain at a fold's end triggers nothing;
    * ``overlap_folds``: activity continues across folds, a step of ``u_f - u_{f-1}``
      (``+u_0`` at cycle 0);
    * the array stops (is clock-gated) after the last fold's ``cycles_per_fold`` cycles, a step
      of ``-u_last`` (a load release: overshoot, then a smaller undershoot).

    Returns
    -------
    (cycles, steps)
        int64 cycle indices (ascending) and float64 steps in ``[-1, 1]`` (fraction of peak
        current; positive = more current). Pass them to :func:`supply_droop`, which ignores
        steps with ``|step| <= droop_threshold`` and cycles past its window.
    """
    u = fold_utilizations(mapping)
    folds = u.shape[0]
    starts = np.arange(folds, dtype=np.int64) * mapping.fold_interval
    stop = (folds - 1) * mapping.fold_interval + mapping.cycles_per_fold
    if mapping.overlap_folds:
        start_steps = np.diff(u, prepend=0.0)
    else:
        start_steps = u.copy()
    cycles = np.append(starts, np.int64(stop)).astype(np.int64)
    steps = np.append(start_steps, -u[-1]).astype(np.float64)
    return cycles, steps


# --------------------------------------------------------------------------- droop shape


def _droop_constants(params: VariationParams) -> tuple[float, float, float]:
    """``(a, b, w_peak)``: decay rate zeta*w0 (1/s), ringing wd (rad/s), peak of the raw shape."""
    w0 = 2.0 * math.pi * params.droop_f_res
    zeta = params.droop_zeta
    root = math.sqrt(1.0 - zeta * zeta)
    a = zeta * w0
    b = w0 * root
    t_peak = math.atan2(root, zeta) / b
    w_peak = root * math.exp(-a * t_peak)
    return a, b, w_peak


def droop_waveform(t: npt.ArrayLike, params: VariationParams) -> FloatArray:
    """Continuous unit droop ``w(t)`` at times ``t`` (s) after the event; 0 for ``t < 0``, peak 1."""
    a, b, w_peak = _droop_constants(params)
    tt = np.asarray(t, dtype=np.float64)
    tp = np.maximum(tt, 0.0)
    result: FloatArray = np.where(tt >= 0.0, np.exp(-a * tp) * np.sin(b * tp) / w_peak, 0.0)
    return result


def iir_coefficients(freq_hz: float, params: VariationParams) -> tuple[FloatArray, FloatArray]:
    """IIR ``(b, a)`` whose impulse response is the cycle-averaged unit droop (module doc)."""
    a_rate, b_rate, w_peak = _droop_constants(params)
    s = complex(-a_rate, b_rate)
    z = np.exp(s / freq_hz)
    k = freq_hz * (z - 1.0) / s
    num = np.array([k.imag, -(k * np.conj(z)).imag], dtype=np.float64) / w_peak
    den = np.array([1.0, -2.0 * z.real, abs(z) ** 2], dtype=np.float64)
    return num, den


def droop_response(n_cycles: int, freq_hz: float, params: VariationParams) -> FloatArray:
    """Cycle-averaged response to one unit-amplitude droop event at cycle 0, ``n_cycles`` long.

    ``Im(K*z**k) / w_peak`` for ``k = 0 .. n_cycles-1`` (closed form; see the module docstring).
    """
    n = check_int("n_cycles", n_cycles, 0)
    f = check_float("freq_hz", freq_hz, 0.0, 1e12, lo_open=True, unit="Hz")
    a_rate, b_rate, w_peak = _droop_constants(params)
    s = complex(-a_rate, b_rate)
    z = np.exp(s / f)
    k = f * (z - 1.0) / s
    result: FloatArray = (k * z ** np.arange(n)).imag / w_peak
    return result


# --------------------------------------------------------------------------- supply process


def _check_triggers(
    trigger_cycles: npt.ArrayLike, trigger_steps: npt.ArrayLike
) -> tuple[IntArray, FloatArray]:
    cyc = np.asarray(trigger_cycles)
    stp = np.asarray(trigger_steps, dtype=np.float64)
    if cyc.ndim != 1 or stp.ndim != 1 or cyc.shape != stp.shape:
        raise ConfigError(
            f"trigger_cycles: got shapes {cyc.shape} and {stp.shape} (steps), expected two "
            "1-D arrays of equal length"
        )
    if cyc.size and not np.issubdtype(cyc.dtype, np.integer):
        raise ConfigError(f"trigger_cycles: got dtype {cyc.dtype}, expected integers >= 0")
    cyc = cyc.astype(np.int64)
    if cyc.size and int(cyc.min()) < 0:
        raise ConfigError(f"trigger_cycles: got {int(cyc.min())}, expected integers >= 0")
    if stp.size and not (np.all(np.isfinite(stp)) and float(np.abs(stp).max()) <= 1.0):
        bad = stp[~(np.isfinite(stp) & (np.abs(stp) <= 1.0))][0]
        raise ConfigError(f"trigger_steps: got {float(bad)!r}, expected numbers in [-1, 1]")
    return cyc, stp


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"rng: got {type(rng).__name__}, expected a numpy.random.Generator "
            "(np.random.default_rng(seed))"
        )
    return rng


def supply_droop(
    n_cycles: int,
    freq_hz: float,
    trigger_cycles: npt.ArrayLike,
    trigger_steps: npt.ArrayLike,
    params: VariationParams,
    rng: np.random.Generator,
) -> FloatArray:
    """Relative supply droop ``delta[n]`` (fraction of V, > 0 = lower) for ``n_cycles`` cycles.

    Parameters
    ----------
    n_cycles
        Length of the window in cycles of the array clock (0 to 2e8).
    freq_hz
        Array clock, Hz (converts the droop's ns time scales and the noise correlation time).
    trigger_cycles, trigger_steps
        Current steps, e.g. from :func:`droop_triggers`: cycle indices (>= 0) and signed step
        sizes in ``[-1, 1]``. Steps with ``|step| <= droop_threshold`` are ignored; events past
        the window draw their amplitude but leave no trace.
    params
        Droop and noise parameters (``droop_*``, ``noise_*``).
    rng
        Source of all randomness: first one uniform and one normal number per event (in the
        given order), then ``n_cycles + 1`` normals for the noise (none if ``noise_sigma`` is 0).

    Returns
    -------
    numpy.ndarray
        float64, length ``n_cycles``: clipped first-droop sum plus AR(1) noise (module doc).
    """
    n = check_int("n_cycles", n_cycles, 0, MAX_CYCLES)
    f = check_float("freq_hz", freq_hz, 0.0, 1e12, lo_open=True, unit="Hz")
    cyc, stp = _check_triggers(trigger_cycles, trigger_steps)
    gen = _check_rng(rng)
    return supply_droop_checked(n, f, cyc, stp, params, gen)


def supply_droop_checked(
    n: int,
    f: float,
    cyc: IntArray,
    stp: FloatArray,
    params: VariationParams,
    gen: np.random.Generator,
    coeffs: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    """:func:`supply_droop` on validated arguments (``int`` cycles, Hz, int64 trigger cycles,
    float64 steps): the per-GEMM path of a caller that validated them once. ``coeffs``: the
    resonator's ``iir_coefficients(f, params)`` if the caller keeps them."""
    # First droop: per-event amplitudes, then the impulse train through the resonator.
    active = np.abs(stp) > params.droop_threshold
    ev_cycles, ev_steps = cyc[active], stp[active]
    worst = gen.random(ev_steps.size) < params.droop_worst_prob
    spread = np.exp(params.droop_amp_spread * gen.standard_normal(ev_steps.size))
    amp = np.where(worst, params.droop_amp_worst, params.droop_amp_typical * spread)
    amp = np.minimum(np.abs(ev_steps) * amp, params.droop_amp_cap)
    num, den = iir_coefficients(f, params) if coeffs is None else coeffs
    # Background noise: stationary Gaussian AR(1).
    phi = sigma = b0 = 0.0
    e = np.zeros(0)
    if params.noise_sigma > 0.0 and n > 0:
        phi = math.exp(-1.0 / (f * params.noise_tau))
        e = gen.standard_normal(n + 1)
        sigma = params.noise_sigma
        b0 = sigma * math.sqrt(1.0 - phi * phi)
    delta: FloatArray = _supply_trace(
        n, np.ascontiguousarray(ev_cycles, dtype=np.int64), np.sign(ev_steps) * amp, num, den,
        float(params.droop_amp_cap), e, b0, phi, sigma,
    )  # fmt: skip
    return delta


def quiet_supply(n_cycles: int) -> FloatArray:
    """A perfectly quiet supply: ``delta = 0`` for ``n_cycles`` cycles."""
    return np.zeros(check_int("n_cycles", n_cycles, 0, MAX_CYCLES), dtype=np.float64)


def supply_delay_factor(
    delta: npt.ArrayLike, vdd: float, vnom: float, delay_params: DelayParams
) -> FloatArray:
    """Momentary delay factor ``g = d(vdd * (1 - delta)) / d(vdd)`` (> 1 during droops).

    ``d`` is :func:`~accelsim.timing.delay.normalized_delay` (alpha-power law with the
    exponential tail), so ``g`` is about 1.08 for a 5 % droop at 0.9 V (1.7 % per 10 mV,
    timing.md section 1.2). ``vnom`` (V) only normalizes both delays and cancels.
    """
    v = check_vdd(vdd, delay_params)
    d = np.asarray(delta, dtype=np.float64)
    if d.size and not (np.all(np.isfinite(d)) and float(d.max()) < 1.0):
        bad = d[~(np.isfinite(d) & (d < 1.0))].ravel()[0]
        raise ConfigError(
            f"delta: got {float(bad)!r}, expected finite fractions of the supply below 1"
        )
    base = normalized_delay(v, vnom, delay_params)
    result: FloatArray = np.asarray(
        normalized_delay(v * (1.0 - d), vnom, delay_params) / base, dtype=np.float64
    )
    return result
