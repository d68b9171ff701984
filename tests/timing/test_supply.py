"""Supply processes: droop shape and statistics, AR(1) noise, triggers from a mapping, delay factor."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate, optimize

from accelsim.config import ArrayConfig, ConfigError
from accelsim.hw.mapping import map_gemm
from accelsim.timing.delay import DelayParams
from accelsim.timing.supply import (
    droop_response,
    droop_triggers,
    droop_waveform,
    fold_utilizations,
    quiet_supply,
    supply_delay_factor,
    supply_droop,
)
from accelsim.timing.variation import VariationParams

P = VariationParams()
# Deterministic amplitude (typical, no spread) and no background noise.
FIXED = replace(P, droop_amp_spread=0.0, droop_worst_prob=0.0, noise_sigma=0.0)
NOISE_ONLY = replace(P, droop_amp_typical=0.0, droop_amp_worst=0.0)
DP = DelayParams()
ZETA = P.droop_zeta
FD = P.droop_f_res * math.sqrt(1 - ZETA**2)  # ringing (damped) frequency, 93.7 MHz


def _single_event(freq: float, n: int = 400, at: int = 10, step: float = 1.0) -> np.ndarray:
    return supply_droop(n, freq, [at], [step], FIXED, np.random.default_rng(0))


# --------------------------------------------------------------------------- droop shape


def test_continuous_waveform_starts_at_zero_and_peaks_at_one():
    a = ZETA * 2 * math.pi * P.droop_f_res
    t_peak = math.atan2(math.sqrt(1 - ZETA**2), ZETA) / (2 * math.pi * FD)
    assert t_peak == pytest.approx(2.06e-9, rel=0.01)  # just under a quarter period (2.5 ns)
    t = np.linspace(0, 60e-9, 60001)
    w = droop_waveform(t, P)
    assert w[0] == 0.0 and droop_waveform(-1e-9, P) == 0.0
    assert w.max() == pytest.approx(1.0, abs=1e-6)
    assert t[w.argmax()] == pytest.approx(t_peak, abs=2e-12)
    # envelope exp(-zeta w0 t) / w_peak (w_peak = 0.596): below 2.1 % of the peak after 20 ns
    envelope = np.exp(-a * t) / 0.5955
    assert np.all(np.abs(w) <= envelope * (1 + 1e-3))
    assert np.abs(w[t >= 20e-9]).max() < 0.021


@pytest.mark.parametrize("freq", [1e9, 2e9, 3.3e8])
def test_cycle_values_are_cycle_averages_of_the_waveform(freq):
    resp = droop_response(40, freq, P)
    quad = [
        integrate.quad(lambda t: float(droop_waveform(t, P)), k / freq, (k + 1) / freq)[0] * freq
        for k in range(40)
    ]
    np.testing.assert_allclose(resp, quad, atol=1e-10)
    delta = _single_event(freq, n=60, at=7)
    np.testing.assert_array_equal(delta[:7], 0.0)
    np.testing.assert_allclose(delta[7:47], P.droop_amp_typical * resp, atol=1e-12)


def test_same_waveform_in_seconds_at_1_and_2_ghz():
    d1 = _single_event(1e9, n=200, at=10)
    d2 = _single_event(2e9, n=400, at=20)
    # Two 0.5 ns cycles average to one 1 ns cycle.
    np.testing.assert_allclose(d2.reshape(-1, 2).mean(axis=1), d1, atol=1e-12)


@pytest.mark.parametrize(("freq", "lo"), [(1e9, 0.94), (2e9, 0.985)])
def test_peak_droop_is_about_the_amplitude(freq, lo):
    d = _single_event(freq, at=10)
    amp = P.droop_amp_typical
    assert lo * amp <= d.max() <= amp
    t_peak = (d.argmax() - 10 + 0.5) / freq  # cycle midpoint
    assert t_peak == pytest.approx(2.06e-9, abs=0.5 / freq)


@pytest.mark.parametrize("freq", [1e9, 2e9])
def test_ringing_frequency_from_zero_crossings(freq):
    d = _single_event(freq, n=80, at=0)
    s = np.sign(d)
    idx = np.nonzero(s[:-1] * s[1:] < 0)[0][:5]
    assert idx.size == 5
    # linear interpolation of the crossing times (cycle midpoints)
    t = (idx + 0.5 + d[idx] / (d[idx] - d[idx + 1])) / freq
    half_period = np.diff(t).mean()
    assert 1 / (2 * half_period) == pytest.approx(FD, rel=0.02)


@pytest.mark.parametrize("freq", [1e9, 2e9])
def test_decay_and_resonance_from_a_fit(freq):
    d = _single_event(freq, n=int(40e-9 * freq), at=0) / P.droop_amp_typical
    t = np.arange(d.size) / freq

    def model(t, c, a, b, phase):
        return c * np.exp(-a * t * 1e9) * np.sin(b * t * 1e9 + phase)

    (_, a, b, _), _ = optimize.curve_fit(model, t, d, p0=[1.0, 0.2, 0.6, 0.0])
    a, b = a * 1e9, b * 1e9
    zeta = a / math.hypot(a, b)
    f0 = math.hypot(a, b) / (2 * math.pi)
    assert zeta == pytest.approx(ZETA, rel=1e-3)
    assert f0 == pytest.approx(P.droop_f_res, rel=1e-3)


@pytest.mark.parametrize("freq", [1e9, 2e9])
def test_successive_swings_shrink_by_the_damping_ratio(freq):
    d = _single_event(freq, n=int(30e-9 * freq), at=0)
    s = np.sign(d)
    edges = np.concatenate([[0], np.nonzero(s[:-1] * s[1:] < 0)[0] + 1, [d.size]])
    swings = np.array([np.abs(d[a:b]).max() for a, b in itertools.pairwise(edges)])
    ratio = math.exp(-math.pi * ZETA / math.sqrt(1 - ZETA**2))  # 0.309
    measured = swings[1:4] / swings[0:3]
    np.testing.assert_allclose(measured, ratio, rtol=0.12)


def test_load_release_mirrors_the_droop():
    up = _single_event(1e9, step=0.8)
    down = _single_event(1e9, step=-0.8)
    np.testing.assert_allclose(down, -up, atol=1e-15)
    assert up.max() == pytest.approx(0.8 * P.droop_amp_typical, rel=0.06)


# --------------------------------------------------------------------------- amplitudes


def test_small_steps_trigger_nothing():
    d = supply_droop(
        300, 1e9, [0, 50, 100, 150], [0.3, 0.29, -0.3, 0.1], FIXED, np.random.default_rng(0)
    )
    np.testing.assert_array_equal(d, 0.0)
    d = supply_droop(300, 1e9, [0, 50], [0.3, 0.31], FIXED, np.random.default_rng(0))
    assert d[:50].max() == 0.0 and d[50:].max() > 0.0


def test_amplitude_cap_holds():
    worst = replace(FIXED, droop_worst_prob=1.0, droop_amp_worst=0.3)
    d = supply_droop(200, 2e9, [10], [1.0], worst, np.random.default_rng(0))
    assert d.max() <= P.droop_amp_cap + 1e-15
    assert d.max() > 0.98 * P.droop_amp_cap
    # Overlapping events add, and their sum is clipped at the cap too.
    big = replace(FIXED, droop_amp_typical=0.1)
    d = supply_droop(200, 2e9, [10, 11, 12], [1.0, 1.0, 1.0], big, np.random.default_rng(0))
    assert d.max() == pytest.approx(P.droop_amp_cap)
    assert d.min() >= -P.droop_amp_cap


def test_worst_events_are_rare_and_amplitudes_scale_with_step():
    n_events = 4000
    cycles = np.arange(n_events) * 100
    rng = np.random.default_rng(5)
    params = replace(P, noise_sigma=0.0)
    d = supply_droop(n_events * 100, 1e9, cycles, np.full(n_events, 0.8), params, rng)
    peaks = d.reshape(n_events, 100).max(axis=1) / 0.9516  # cycle-averaged peak at 1 GHz
    worst = peaks > 0.8 * 0.095
    # P(worst) = 1 %; a lognormal(0.2) typical amplitude reaches 9.5 % only with P ~ 7e-4.
    assert 0.004 < worst.mean() < 0.02
    typical = peaks[~worst] / 0.8
    assert np.median(typical) == pytest.approx(P.droop_amp_typical, rel=0.02)
    assert np.std(np.log(typical)) == pytest.approx(P.droop_amp_spread, rel=0.06)


def test_events_outside_the_window_leave_no_trace():
    d = supply_droop(50, 1e9, [60, 1000], [1.0, 1.0], FIXED, np.random.default_rng(0))
    np.testing.assert_array_equal(d, 0.0)
    assert supply_droop(0, 1e9, [0], [1.0], P, np.random.default_rng(0)).shape == (0,)


# --------------------------------------------------------------------------- noise


def _bartlett_se(phi: float, k: int, n: int) -> float:
    """Standard error of the lag-k sample autocorrelation of an AR(1) series (Bartlett)."""
    var = ((1 + phi**2) * (1 - phi ** (2 * k)) / (1 - phi**2) - 2 * k * phi ** (2 * k)) / n
    return math.sqrt(var)


@pytest.mark.parametrize("freq", [1e9, 2e9])
def test_noise_std_and_autocorrelation(freq):
    n = 1_000_000
    x = supply_droop(n, freq, [], [], NOISE_ONLY, np.random.default_rng(11))
    phi = math.exp(-1.0 / (freq * P.noise_tau))
    # Sample variance of AR(1): effective sample size n (1 - phi^2) / (1 + phi^2).
    n_eff = n * (1 - phi**2) / (1 + phi**2)
    assert x.std() == pytest.approx(P.noise_sigma, rel=5 * math.sqrt(0.5 / n_eff))
    assert abs(x.mean()) < 5 * P.noise_sigma * math.sqrt((1 + phi) / (1 - phi) / n)
    xc = x - x.mean()
    var = float(np.dot(xc, xc)) / n
    for k in (1, 5, 10, 20, 40):
        r_k = float(np.dot(xc[:-k], xc[k:])) / n / var
        expected = math.exp(-k / (freq * P.noise_tau))
        assert abs(r_k - expected) < 5 * _bartlett_se(phi, k, n) + 1e-3, k


def test_noise_is_stationary_from_the_first_cycle():
    rng = np.random.default_rng(3)
    first = np.array([supply_droop(3, 1e9, [], [], NOISE_ONLY, rng)[0] for _ in range(4000)])
    assert first.std() == pytest.approx(P.noise_sigma, rel=5 * math.sqrt(0.5 / first.size))


def test_same_rng_seed_same_supply():
    args = (5000, 1e9, [0, 700, 1400, 2100], [1.0, 0.9, 0.5, -0.5], P)
    a = supply_droop(*args, np.random.default_rng(42))
    b = supply_droop(*args, np.random.default_rng(42))
    c = supply_droop(*args, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float64 and a.shape == (5000,)


def test_long_window_is_fast():
    import time

    t0 = time.perf_counter()
    d = supply_droop(
        2_000_000, 1e9, np.arange(0, 2_000_000, 500), np.ones(4000), P, np.random.default_rng(0)
    )
    assert time.perf_counter() - t0 < 2.0
    assert np.all(np.isfinite(d))


# --------------------------------------------------------------------------- triggers


def test_triggers_from_a_serialized_mapping():
    m = map_gemm(300, 200, 500, ArrayConfig(128, 128, "ws"))
    cycles, steps = droop_triggers(m)
    assert cycles.dtype == np.int64 and steps.dtype == np.float64
    u = fold_utilizations(m)
    assert u.size == m.folds and u.mean() == pytest.approx(m.mapping_efficiency)
    np.testing.assert_array_equal(cycles[:-1], np.arange(m.folds) * m.cycles_per_fold)
    assert cycles[0] == 0 and cycles[-1] == m.folds * m.cycles_per_fold
    np.testing.assert_allclose(steps[:-1], u)
    assert steps[-1] == -u[-1]
    assert np.all(np.abs(steps) <= 1.0)
    # Row folds innermost: K=500 -> 4 row folds (128,128,128,116 rows), N=200 -> 2 col folds.
    np.testing.assert_allclose(u[:4], [1, 1, 1, 116 / 128])
    np.testing.assert_allclose(u[4:], np.array([1, 1, 1, 116 / 128]) * 72 / 128)


def test_triggers_with_overlapped_folds_are_activity_changes():
    m = map_gemm(1000, 256, 256, ArrayConfig(128, 128, "ws"), overlap_folds=True)
    cycles, steps = droop_triggers(m)
    np.testing.assert_array_equal(cycles[:-1], np.arange(m.folds) * m.fold_interval)
    np.testing.assert_allclose(steps, [1, 0, 0, 0, -1])  # full folds: only start and stop


def test_mapping_triggers_drive_the_droop():
    m = map_gemm(300, 200, 500, ArrayConfig(128, 128, "ws"))
    cycles, steps = droop_triggers(m)
    d = supply_droop(m.compute_cycles, 1e9, cycles, steps, FIXED, np.random.default_rng(0))
    for c, s in zip(cycles[:-1], steps[:-1], strict=True):
        window = d[c : c + 10]
        assert window.max() == pytest.approx(0.9516 * P.droop_amp_typical * s, rel=1e-3)


# --------------------------------------------------------------------------- delay factor


def test_quiet_supply_has_unit_delay_factor():
    q = quiet_supply(100)
    assert q.shape == (100,) and q.dtype == np.float64 and not q.any()
    np.testing.assert_array_equal(supply_delay_factor(q, 0.9, 0.9, DP), 1.0)
    np.testing.assert_array_equal(supply_delay_factor(q, 0.7, 0.9, DP), 1.0)


def test_delay_factor_of_a_5_percent_droop_at_0_9_v():
    g = supply_delay_factor(np.array([0.05, 0.0, -0.05]), 0.9, 0.9, DP)
    # 1.7 % per 10 mV (timing.md s1.2): 45 mV -> ~1.08
    assert g[0] == pytest.approx(1.08, abs=0.01)
    assert g[1] == 1.0 and g[2] < 1.0
    # deeper droops and lower supplies hurt more
    g2 = supply_delay_factor(np.array([0.05]), 0.7, 0.9, DP)
    assert g2[0] > g[0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 1e9, [], []), r"^n_cycles: got -1"),
        ((10, 0.0, [], []), r"^freq_hz: got 0"),
        ((10, 1e9, [0, 1], [1.0]), r"^trigger_cycles: got shapes"),
        ((10, 1e9, [-3], [1.0]), r"^trigger_cycles: got -3"),
        ((10, 1e9, [0.5], [1.0]), r"^trigger_cycles: got dtype float64"),
        ((10, 1e9, [0], [1.5]), r"^trigger_steps: got 1.5"),
        ((10, 1e9, [0], [float("nan")]), r"^trigger_steps: got nan"),
    ],
)
def test_bad_arguments_raise_one_line_errors(args, match):
    with pytest.raises(ConfigError, match=match) as err:
        n, freq, cycles, steps = args
        supply_droop(n, freq, cycles, steps, P, np.random.default_rng(0))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("rng", [None, 42, np.random.RandomState(0)])
def test_rng_must_be_a_generator(rng):
    with pytest.raises(ConfigError, match=r"^rng: got .*expected a numpy.random.Generator"):
        supply_droop(10, 1e9, [], [], P, rng)


def test_bad_delta_and_vdd():
    with pytest.raises(ConfigError, match=r"^delta: got 1.0"):
        supply_delay_factor(np.array([0.0, 1.0]), 0.9, 0.9, DP)
    with pytest.raises(ConfigError, match=r"^vdd: got 2 V"):
        supply_delay_factor(np.zeros(3), 2.0, 0.9, DP)
