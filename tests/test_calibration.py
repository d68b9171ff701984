"""Calibration data (calib/*.csv), the delay and energy fits, and `accelsim calibrate`'s writer."""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import fields, replace

import pytest

from accelsim.calib.fit_delay import (
    ALPHA_RANGE,
    JOINT_MAX_TOL,
    JOINT_RMS_TOL,
    PER_NODE_MAX_ERR,
    PUBLISHED_FITS,
    VT_RANGE,
    CalibrationError,
    fit_delay,
    load_delay_points,
    model_quality,
    read_calib_csv,
)
from accelsim.calib.fit_energy import (
    derive_energy,
    load_energy_rows,
    load_leakage_rows,
    stillmaker_factor,
)
from accelsim.calibration import format_report, run_calibration, ter_points
from accelsim.config import TechParams, load_calib_params
from accelsim.timing.delay import DelayParams, normalized_delay

CSV_COLUMNS = {
    "delay_vs_voltage.csv": ("node", "temperature_c", "vnom", "vdd", "normalized_delay"),
    "leakage_vs_voltage.csv": (
        "node",
        "v_from",
        "v_to",
        "current_factor",
        "k_per_v",
        "power_factor",
    ),
    "ter_vs_voltage.csv": ("scenario", "vdd", "ter", "signoff"),
    "energy_per_op.csv": ("operation", "node_nm", "vdd", "energy_pj", "unit_note"),
}


@pytest.fixture(scope="module")
def fit():
    return fit_delay()


@pytest.fixture(scope="module")
def report():
    return run_calibration()


# --------------------------------------------------------------------------- data files


@pytest.mark.parametrize("name", sorted(CSV_COLUMNS))
def test_csv_loads_with_source_and_confidence_on_every_row(name):
    rows = read_calib_csv(name, (*CSV_COLUMNS[name], "confidence"))
    assert rows
    for row in rows:
        assert len(row["source"].strip()) > 20, row
        assert "timing.md" in row["source"], row
        assert row["confidence"] in {"V", "S", "M"}, row


def test_delay_csv_is_the_whole_s1_2_table():
    points = load_delay_points()
    assert len(points) == 24
    table = {(p.node, p.vdd): p for p in points}
    # timing.md s1.2 spot checks, including the normalization points.
    assert table[("32nm_HP", 0.6)].normalized_delay == 2.59
    assert table[("45nm_HP", 0.4)].normalized_delay == 60.2
    assert table[("22nm_HP", 1.1)].normalized_delay == 0.60
    for node, vnom in (("45nm_HP", 1.0), ("32nm_HP", 0.9), ("22nm_HP", 0.8)):
        assert table[(node, vnom)].normalized_delay == 1.0
        assert {p.vnom for p in points if p.node == node} == {vnom}
        assert sorted(p.vdd for p in points if p.node == node) == pytest.approx(
            [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
        )


def test_ter_points_match_s2_4():
    dnn = {p.vdd: p.ter for p in ter_points("dnn-ws")}
    rnd = {p.vdd: p.ter for p in ter_points("random")}
    assert dnn[0.70] == 8.5e-3
    assert dnn == {
        0.85: 2.5e-5,
        0.80: 8e-4,
        0.75: 3.1e-3,
        0.70: 8.5e-3,
        0.65: 2.8e-2,
        0.60: 8.9e-2,
        0.55: 0.24,
    }
    assert rnd[0.75] == 6e-5 and rnd[0.65] == 2.1e-2 and rnd[0.55] == 0.35
    assert rnd[0.85] == 0.0  # "first errors at 0.75 V"
    assert all(p.signoff == "signed off at 0.9 V with no extra margin" for p in ter_points())
    # TER rises monotonically as the supply falls.
    for series in (dnn, rnd):
        volts = sorted(series, reverse=True)
        assert [series[v] for v in volts] == sorted(series[v] for v in volts)


def test_leakage_rows_are_self_consistent():
    rows = load_leakage_rows()
    assert [(r.node, r.k_per_v) for r in rows] == [
        ("45nm_HP", 4.2),
        ("32nm_HP", 6.8),
        ("22nm_HP", 8.4),
    ]
    for r in rows:
        dv = r.v_to - r.v_from
        # k = ln(current factor)/dV, and the power factor = (V ratio) x current factor (s1.3's
        # factors are printed to 2 digits).
        assert math.log(r.current_factor) / dv == pytest.approx(r.k_per_v, abs=0.15)
        assert (r.v_to / r.v_from) * r.current_factor == pytest.approx(r.power_factor, rel=0.03)


def test_energy_rows_spot_checks():
    rows = load_energy_rows()
    by = {(r.operation, r.node_nm, r.size_kb): r for r in rows}
    assert by[("int8_mult", 45, None)].energy_pj == 0.2
    assert by[("int32_add", 45, None)].energy_pj == 0.1
    assert by[("fp32_mult", 45, None)].energy_pj == 3.7
    assert [by[("sram_read_64b", 45, kb)].energy_pj for kb in (8, 32, 1024)] == [10, 20, 100]
    dram = by[("dram_access_64b", 45, None)]
    assert (dram.energy_pj, dram.energy_pj_max) == (1300, 2600)
    assert by[("fp32_add", 7, None)].confidence == "V"
    assert by[("bf16_mult", 7, None)].energy_pj == 0.21
    assert by[("register", 45, None)].energy_pj == 0.009
    assert by[("multiplier_32b", 45, None)].energy_pj == 12.68
    # timing.md s1.3: Stillmaker 45->28 nm (interpolated) ~0.51x.
    assert stillmaker_factor(rows) == pytest.approx(0.51, abs=0.005)
    # timing.md s1.3 also says "45 nm@0.9 V -> 7 nm@0.7 V ~17.7x", but its own factors give
    # 0.844/0.0566 = 14.9x; 17.7 is 1/0.0566 (relative to the factors' reference, not 45 nm).
    f45 = by[("stillmaker_energy_factor", 45, None)].energy_pj
    f7 = by[("stillmaker_energy_factor", 7, None)].energy_pj
    assert f45 / f7 == pytest.approx(14.9, abs=0.05)
    assert 1 / f7 == pytest.approx(17.7, abs=0.05)


# --------------------------------------------------------------------------- delay fit


def test_per_node_fits_reproduce_timing_md_table(fit):
    # Absolute-weighted least squares with a free scale is timing.md s1.2's method.
    for f in fit.per_node_published_method:
        alpha, vt = PUBLISHED_FITS[(f.label.split("@")[0], 27)]
        assert f.alpha == pytest.approx(alpha, abs=0.01), f
        assert f.vt == pytest.approx(vt, abs=0.005), f
    # Relative-weighted per-node fits stay within the published fit error (<= 4%, 0.5-1.1 V).
    for f in fit.per_node:
        assert f.n_points == 7
        assert f.max_err <= PER_NODE_MAX_ERR, f


def test_joint_fit_within_timing_md_ranges_and_stated_tolerance(fit):
    assert ALPHA_RANGE[0] <= fit.params["alpha"] <= ALPHA_RANGE[1]
    assert VT_RANGE[0] <= fit.params["vt"] <= VT_RANGE[1]
    q = fit.quality
    # Joint tolerance (stated in fit_delay): rms <= 7%, max <= 20% over 0.5-1.1 V.
    assert q.rms_alpha_range <= JOINT_RMS_TOL
    assert q.max_alpha_range <= JOINT_MAX_TOL
    assert fit.quality_failures() == []
    # Written values are the joint fit rounded to 3 significant digits.
    for key, raw in fit.raw.items():
        assert fit.params[key] == float(f"{raw:.3g}")
    # The final model beats timing.md's rounded defaults on every node.
    previous = model_quality(DelayParams())
    for new, old in zip(q.nodes, previous.nodes, strict=True):
        assert new.rms_alpha_range < old.rms_alpha_range, new.node


def test_tail_fit_matches_published_slope_and_is_smooth(fit):
    # timing.md s1.2: below ~0.5 V one e-fold per 57-65 mV (one decade per 130-150 mV).
    for efold in fit.tail.node_efold.values():
        assert 0.056 <= efold <= 0.066
    s = fit.params["tail_volts_per_efold"]
    assert 0.057 <= s <= 0.065
    assert 130 <= 1000 * s * math.log(10) <= 150
    assert fit.tail.slope_matched
    p = fit.delay_params()
    assert p.v_tail > p.vt
    # Continuous in value and (to the rounding of the written parameters) in log-slope.
    h = 1e-6
    below = normalized_delay(p.v_tail - h, 0.9, p)
    above = normalized_delay(p.v_tail + h, 0.9, p)
    assert below == pytest.approx(above, rel=1e-4)
    law_slope = p.alpha / (p.v_tail - p.vt) - 1 / p.v_tail
    assert law_slope == pytest.approx(1 / s, rel=0.02)


def test_residual_table_covers_every_point(fit):
    res = fit.residuals
    assert len(res) == 24
    for r in res:
        assert r.model / r.measured - 1 == pytest.approx(r.rel_error)
        assert r.regime == ("tail" if r.vdd < fit.params["v_tail"] else "alpha")
    # Each node's nominal point is exact by construction.
    exact = [r for r in res if r.measured == 1.0]
    assert len(exact) == 3 and all(r.rel_error == 0.0 for r in exact)


def test_wrong_model_fails_the_quality_check(fit):
    wrong = fit_delay(fixed_alpha=2.0)
    assert wrong.params["alpha"] == 2.0
    failures = wrong.quality_failures()
    assert any("per-node" in f for f in failures)
    assert any("joint fit: rms" in f for f in failures)
    # Much worse than the free fit: per node >= 3x the max error, jointly >= 1.8x the rms.
    for bad, good in zip(wrong.per_node, fit.per_node, strict=True):
        assert bad.max_err > 3 * good.max_err
        assert bad.max_err > PER_NODE_MAX_ERR
    assert wrong.quality.rms_alpha_range > 1.8 * fit.quality.rms_alpha_range


def test_fit_is_deterministic(fit):
    again = fit_delay()
    assert again.raw == fit.raw and again.params == fit.params


# --------------------------------------------------------------------------- energy


def test_energy_derivation_reproduces_energy_toml():
    shipped = load_calib_params("energy.toml")
    e = derive_energy(fnom=shipped["fnom"]["value"])
    # timing.md s9: 0.25 pJ/MAC; the unrounded component sum is within 5% of it.
    assert e.value("e_mac_int8") == pytest.approx(0.25e-12, rel=0.05)
    assert e.values["e_mac_int8"].unrounded == pytest.approx(0.25e-12, rel=0.05)
    assert e.value("e_mac_int8") == shipped["e_mac_int8"]["value"]
    assert e.value("sram_read_pj_per_64b") == [[8.0, 5.0], [32.0, 10.0], [1024.0, 50.0]]
    assert e.value("sram_read_pj_per_64b") == shipped["sram_read_pj_per_64b"]["value"]
    for key in ("dram_j_per_byte", "leak_w_per_pe", "leak_w_per_sram_kb", "leak_k"):
        assert e.value(key) == shipped[key]["value"], key
    # leak_k: the s9 default lies inside the PTM range; the PTM mean is reported.
    assert 4.2 <= e.value("leak_k") <= 8.4
    assert e.leak_k_ptm_mean == pytest.approx((4.2 + 6.8 + 8.4) / 3)
    assert derive_energy(leak_k_rule="ptm-mean").value("leak_k") == 6.5
    # Every derived field is a TechParams field and carries a real source.
    names = {f.name for f in fields(TechParams)}
    for key, d in e.values.items():
        assert key in names and len(d.source) > 40


# --------------------------------------------------------------------------- run / write


def test_run_calibration_writes_identical_loadable_files(tmp_path):
    first = run_calibration(write=True, out_dir=tmp_path / "a")
    second = run_calibration(write=True, out_dir=tmp_path / "b")
    assert [p.name for p in first.written] == ["delay.toml", "energy.toml"]
    for a, b in zip(first.written, second.written, strict=True):
        assert a.read_bytes() == b.read_bytes()
    # Rewriting in place is idempotent too.
    third = run_calibration(write=True, out_dir=tmp_path / "a")
    assert third.written[0].read_bytes() == second.written[0].read_bytes()

    delay = tomllib.loads((tmp_path / "a" / "delay.toml").read_text(encoding="utf-8"))
    shipped_delay = load_calib_params("delay.toml")
    assert list(delay) == list(shipped_delay)  # every field kept, same order
    for entry in delay.values():
        assert {"value", "unit", "source", "confidence"} <= set(entry)
    params = DelayParams(**{k: v["value"] for k, v in delay.items()})
    assert params == replace(first.delay.delay_params(), guardband=params.guardband)
    assert "rms/max" in delay["alpha"]["source"]
    for key in ("guardband", "v_min", "v_max"):
        assert delay[key] == shipped_delay[key]
    # the guardband is the sign-off stack's, and the typical chip's measured guardband lands
    # inside the published 10-20% of Vnom
    assert params.guardband == round(first.signoff.guardband, 3)
    assert 0.10 <= first.guardband_measured.fraction <= 0.20
    assert "measured guardband" in delay["guardband"]["source"]

    energy = tomllib.loads((tmp_path / "a" / "energy.toml").read_text(encoding="utf-8"))
    shipped_energy = load_calib_params("energy.toml")
    assert list(energy) == list(shipped_energy)
    for key, entry in energy.items():
        assert entry["value"] == shipped_energy[key]["value"], key
        assert entry["unit"] == shipped_energy[key]["unit"], key
    values = {k: v["value"] for k, v in energy.items()}
    values["sram_read_pj_per_64b"] = tuple(tuple(p) for p in values["sram_read_pj_per_64b"])
    assert TechParams(**values).e_mac_int8 == 0.25e-12


def test_dry_run_writes_nothing_and_report_is_readable(report, tmp_path):
    assert report.written == ()
    text = format_report(report)
    for needle in (
        "alpha",
        "vt",
        "v_tail",
        "45nm_HP@27C",
        "32nm_HP@27C",
        "22nm_HP@27C",
        "all nodes",
        "e_mac_int8",
        "leak_k",
        "previous",
        "pass",
        "TER data: 14 points",
    ):
        assert needle in text, needle
    assert "Not written" in text
    written = run_calibration(write=True, out_dir=tmp_path)
    assert str(tmp_path / "delay.toml") in format_report(written)


def test_bad_csv_is_a_one_line_error():
    with pytest.raises(CalibrationError, match=r"^calib/nope\.csv: not found$"):
        read_calib_csv("nope.csv", ("a",))
    with pytest.raises(CalibrationError, match=r"missing column\(s\) not_a_column"):
        read_calib_csv("ter_vs_voltage.csv", ("not_a_column",))


def test_ter_comparison_with_the_published_table():
    """The sensitized-delay model under the published sign-off reproduces the published TER
    table (timing.md s2.4) within a factor ~2 (rms over the resolvable points)."""
    import math

    from accelsim.calibration import compare_ter, ter_points

    rows = compare_ter(n_samples=1 << 18)
    assert len(rows) == len(ter_points())
    for scenario, tol in (("dnn-ws", 0.35), ("random", 0.5)):
        sub = [r for r in rows if r.point.scenario == scenario]
        logs = [r.log10_ratio for r in sub if r.log10_ratio is not None]
        assert len(logs) >= 4
        assert math.sqrt(sum(x * x for x in logs) / len(logs)) <= tol
        # TER rises as V falls, in the model as in the data
        model = [r.model for r in sorted(sub, key=lambda r: -r.point.vdd)]
        assert all(b >= a for a, b in itertools.pairwise(model))
    # where the source saw no error the model stays below ~1e-4
    assert all(r.model < 1e-4 for r in rows if r.point.ter == 0)
