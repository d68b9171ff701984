"""Delay-versus-voltage model against timing.md's derived table and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.config import ConfigError
from accelsim.timing.delay import (
    DelayParams,
    check_vdd,
    critical_path_ratio,
    default_delay_params,
    normalized_delay,
    sigma_scale,
    signoff_voltage,
    zero_margin_frequency,
    zero_margin_voltage,
)

# Rounded defaults of timing.md section 9 (alpha 1.4, Vt 0.40), so these checks do not move
# when `accelsim calibrate` refits calib/delay.toml.
P = DelayParams(alpha=1.4, vt=0.40)
VNOM, FNOM = 0.9, 1e9


@pytest.mark.parametrize(
    ("vdd", "published"),
    [
        (1.0, 0.86),
        (0.85, 1.10),
        (0.8, 1.22),
        (0.75, 1.37),
        (0.7, 1.59),
        (0.65, 1.91),
        (0.6, 2.40),
        (0.55, 3.30),
    ],
)
def test_matches_timing_md_resulting_table(vdd, published):
    # timing.md s9 "Resulting d/d0" row, printed to 2 decimals.
    assert normalized_delay(vdd, VNOM, P) == pytest.approx(published, abs=0.006)


def test_sensitivity_near_nominal_closed_form():
    # timing.md s1.2: d ln d / dV = 1/V - alpha/(V - Vt) = -1.69 /V at 0.9 V: ~1.7% per 10 mV.
    h = 1e-5
    slope = (
        math.log(normalized_delay(VNOM + h, VNOM, P))
        - math.log(normalized_delay(VNOM - h, VNOM, P))
    ) / (2 * h)
    assert slope == pytest.approx(1 / 0.9 - 1.4 / 0.5, rel=1e-6)
    assert slope == pytest.approx(-1.69, abs=0.01)


def test_tail_is_continuous_and_one_decade_per_140mv():
    below, above = (
        normalized_delay(P.v_tail - 1e-9, VNOM, P),
        normalized_delay(P.v_tail + 1e-9, VNOM, P),
    )
    assert below == pytest.approx(above, rel=1e-6)
    decade_mv = 1000 * P.tail_volts_per_efold * math.log(10)
    assert 130 <= decade_mv <= 150  # timing.md s1.2: one decade per 130-150 mV below 0.5 V
    assert normalized_delay(0.45, VNOM, P) / normalized_delay(0.55, VNOM, P) == pytest.approx(
        math.exp(0.1 / 0.06)
    )


def test_monotone_and_array_input():
    v = np.linspace(0.4, 1.2, 200)
    d = normalized_delay(v, VNOM, P)
    assert isinstance(d, np.ndarray) and d.shape == v.shape
    assert np.all(np.diff(d) < 0)
    assert normalized_delay(VNOM, VNOM, P) == 1.0


def test_signoff_and_critical_path_ratio():
    assert signoff_voltage(VNOM, P) == pytest.approx(0.81)
    # timing.md s9: typical-corner critical delay ~0.85 T_clk at V0 with a 10% guardband.
    assert critical_path_ratio(VNOM, FNOM, VNOM, FNOM, P) == pytest.approx(0.84, abs=0.01)
    assert critical_path_ratio(0.81, FNOM, VNOM, FNOM, P) == pytest.approx(1.0)
    # Overclocking scales the ratio linearly with f; undervolting through the delay curve.
    assert critical_path_ratio(VNOM, 1.2e9, VNOM, FNOM, P) == pytest.approx(1.2 * 0.842, abs=0.002)
    assert zero_margin_voltage(FNOM, VNOM, FNOM, P) == pytest.approx(0.81, abs=1e-6)
    f0 = zero_margin_frequency(VNOM, VNOM, FNOM, P)
    assert critical_path_ratio(VNOM, f0, VNOM, FNOM, P) == pytest.approx(1.0)
    # Without a guardband the typical critical path fills the nominal cycle exactly.
    assert critical_path_ratio(VNOM, FNOM, VNOM, FNOM, DelayParams(guardband=0.0)) == pytest.approx(
        1.0
    )


@pytest.mark.parametrize(("vdd", "published"), [(0.8, 1.25), (0.7, 1.67), (0.6, 2.5)])
def test_sigma_scale_matches_timing_md(vdd, published):
    # timing.md s9 "Variation vs voltage": x1.25 @0.8, x1.67 @0.7, x2.5 @0.6.
    assert sigma_scale(vdd, VNOM, P) == pytest.approx(published, abs=0.01)


def test_check_vdd_and_param_errors():
    p = default_delay_params()
    assert check_vdd(0.7, p) == 0.7
    with pytest.raises(
        ConfigError, match=r"^vdd: got 0\.3 V, expected a number in \[0\.4, 1\.2\] V"
    ):
        check_vdd(0.3, p)
    with pytest.raises(ConfigError, match=r"^vdd: got nan"):
        check_vdd(float("nan"), p)
    with pytest.raises(
        ConfigError, match=r"^delay\.v_tail: got 0\.3 V, expected a voltage above delay\.vt"
    ):
        DelayParams(v_tail=0.3)
    with pytest.raises(ConfigError, match=r"^delay\.alpha: got 5"):
        DelayParams(alpha=5)
