"""AbftChecker: actions, classification thresholds, presets, and detection of real timing
errors from the exact systolic kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.abft import AbftChecker, AbftConfig, abft_config
from accelsim.abft.classify import REALM_BMM, REALM_LINEAR
from accelsim.config import ArrayConfig, HardwareConfig, OperatingPoint, default_tech
from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels.exact import exact_gemm
from accelsim.timing.delay import critical_path_ratio, default_delay_params
from accelsim.timing.sensitized import default_sensitized_params, kernel_constants

HW = HardwareConfig(array=ArrayConfig(8, 8, "ws"))
CTX = GemmContext("blocks.0.mlp.fc1", block="blocks.0", block_index=0, layer_type="fc1")


def gemm32(A, B):
    x = A.astype(np.int64) @ B.astype(np.int64)
    return (((x + 2**31) % 2**32) - 2**31).astype(np.int32)


def corrupt(C, errs):
    F = C.astype(np.int64).copy()
    for m, n, d in errs:
        F[m, n] += d
    return (((F + 2**31) % 2**32) - 2**31).astype(np.int32)


@pytest.fixture(scope="module")
def gemm():
    rng = np.random.default_rng(11)
    A = rng.integers(-40, 41, (64, 96)).astype(np.int8)
    B = rng.integers(-20, 21, (96, 48)).astype(np.int8)
    return A, B, gemm32(A, B)


def test_clean_gemm_charges_only_the_check(gemm):
    A, B, C = gemm
    r = AbftChecker("classic", HW).check(A, B, C, CTX)
    assert not r.detected and r.n_detected == 0 and r.actions == ()
    assert r.out is C
    assert r.cost == r.check_cost and r.cost.energy.abft > 0 and r.cost.energy.rollback == 0


def test_classic_corrects_single_and_recomputes_unlocatable(gemm):
    A, B, C = gemm
    ch = AbftChecker("classic", HW)
    r = ch.check(A, B, corrupt(C, [(10, 20, 1 << 21)]), CTX)
    assert r.detected and r.located and r.corrected == 1 and not r.residual
    assert [a.kind for a in r.actions] == ["correct"]
    np.testing.assert_array_equal(r.out, C)
    # three errors in a 2x2 pattern: cannot be located -> rows recomputed at the safe point
    F = corrupt(C, [(1, 2, 5), (1, 9, 7), (30, 2, 11)])
    r = ch.check(A, B, F, CTX)
    assert r.detected and not r.located
    assert r.actions[0].kind == "recompute" and r.actions[0].op == OperatingPoint(0.9, 1e9)
    assert r.actions[0].cost.cycles > 0
    np.testing.assert_array_equal(r.out, C)


def test_magnitude_threshold_benign_vs_critical(gemm):
    A, B, C = gemm
    ch = AbftChecker("drift", HW)
    scale = int(np.abs(C).max())
    small = ch.check(A, B, corrupt(C, [(3, 4, 1 << 4)]), CTX)
    assert small.detected and not small.critical
    assert small.actions[0].kind == "ignore" and small.residual and not small.rollback
    assert small.classification.threshold == pytest.approx(0.5 * scale)
    big = ch.check(A, B, corrupt(C, [(3, 4, 1 << 22)]), CTX)  # timing errors hit bits 18-23
    assert big.critical and big.rollback and big.actions[0].kind == "rollback"
    assert big.cost.energy.rollback > 0
    mask = big.suspect_mask()
    assert mask.sum() == 1 and mask[3, 4]
    np.testing.assert_array_equal(big.out, corrupt(C, [(3, 4, 1 << 22)]))  # sampler replaces
    # the cut sits exactly at rel_threshold * scale
    cut = int(0.5 * scale)
    assert not ch.check(A, B, corrupt(C, [(0, 0, cut)]), CTX).critical
    assert ch.check(A, B, corrupt(C, [(0, 0, cut + 1)]), CTX).critical
    # absolute threshold in int32 units
    absolute = AbftChecker("drift:rel_threshold=0,abs_threshold=1000", HW)
    assert not absolute.check(A, B, corrupt(C, [(5, 5, -1000)]), CTX).critical
    assert absolute.check(A, B, corrupt(C, [(5, 5, -1001)]), CTX).critical


def _realm_expected(errs, p):
    """ReaLM's severity_estimation, written out independently for distinct rows/cols."""
    S = sum(d for _, _, d in errs)
    log2s = math.log2(abs(S))
    lb = p.b - (p.a - 1) * log2s
    freq = sum(1 for *_, d in errs if math.log2(abs(d)) > lb)
    region = freq > 0 and math.log2(freq) > p.F
    msd = log2s > (p.F + p.b) / p.a
    return region, msd


@pytest.mark.parametrize(
    ("n_err", "delta", "alternate", "region", "msd"),
    [
        (1, 1 << 24, False, False, True),  # one huge error: only the MSD test fires
        (1, 1 << 12, False, False, False),
        (100, 1 << 16, False, True, True),  # many moderate errors: critical region
        (101, 1 << 16, True, True, False),  # same, signs alternate: small total deviation
        (80, 1 << 13, False, False, False),
        (40, 1 << 8, False, False, False),
    ],
)
def test_realm_rule_matches_reference(n_err, delta, alternate, region, msd):
    rng = np.random.default_rng(3)
    A = rng.integers(-40, 41, (128, 32)).astype(np.int8)
    B = rng.integers(-20, 21, (32, 128)).astype(np.int8)
    C = gemm32(A, B)
    errs = [(i, (i * 7) % 128, delta * (-1 if alternate and i % 2 else 1)) for i in range(n_err)]
    assert _realm_expected(errs, REALM_LINEAR) == (region, msd)
    F = corrupt(C, errs)
    for rule, want in (("region", region), ("msd", msd), ("either", region or msd)):
        ch = AbftChecker(f"realm:realm_rule={rule}", HW)
        r = ch.check(A, B, F, CTX)
        assert r.detected and r.critical == want, rule
        if want:
            assert r.actions[0].kind == "recompute"
            np.testing.assert_array_equal(r.out, C)
        else:
            assert r.actions[0].kind == "ignore"


def test_realm_uses_bmm_constants_for_attention():
    cfg = AbftConfig(classifier="realm")
    assert cfg.realm_params("attn-scores") == REALM_BMM
    assert cfg.realm_params("fc1") == REALM_LINEAR
    assert AbftConfig(classifier="realm", realm_b=10.0).realm_params("qkv").b == 10.0


def test_presets_and_spec_errors():
    assert abft_config("drift").on_critical == "rollback"
    assert abft_config({"preset": "realm", "realm_rule": "msd"}).realm_rule == "msd"
    assert abft_config("classic:placement=dedicated").placement == "dedicated"
    for bad in ("nope", "drift:threshold=3", "drift:on_critical=explode", "drift:rel"):
        with pytest.raises(ConfigError) as exc:
            abft_config(bad)
        assert "\n" not in str(exc.value)


def test_shape_errors(gemm):
    A, B, C = gemm
    ch = AbftChecker(None, HW)
    with pytest.raises(ShapeError):
        ch.check(A.astype(np.int16), B, C)
    with pytest.raises(ShapeError):
        ch.check(A, B, C[:, :-1])
    with pytest.raises(ShapeError):
        ch.check(A, B, C.astype(np.int64))


# ------------------------------------------------------- real timing errors (exact kernel)


def test_exact_gemm_timing_errors_detected_at_the_rate_they_occur():
    tech = default_tech()
    ratio = critical_path_ratio(0.70, tech.fnom, tech.vnom, tech.fnom, default_delay_params())
    consts = kernel_constants(default_sensitized_params())
    rng = np.random.default_rng(2024)
    checker = AbftChecker("classic", HW)
    faulty_gemms = detected = corrupted = counted = located_fixed = 0
    for _ in range(30):
        A = rng.integers(-60, 61, (16, 64)).astype(np.int8)
        B = rng.integers(-30, 31, (64, 16)).astype(np.int8)
        gold = gemm32(A, B)
        res = exact_gemm(A, B, HW.array, ratio=ratio, consts=consts)
        wrong = int(np.count_nonzero(res.out != gold))
        r = checker.check(A, B, res.out, CTX, op=OperatingPoint(0.70, tech.fnom))
        faulty_gemms += wrong > 0
        detected += r.detected
        assert r.detected == (wrong > 0)  # no false alarm, no miss
        corrupted += wrong
        counted += r.n_detected
        if r.located:
            assert r.n_detected == wrong
            located_fixed += 1
        assert r.n_detected <= wrong
        np.testing.assert_array_equal(r.out, gold)  # corrected or recomputed
    assert faulty_gemms >= 8  # the point really produces errors
    assert detected == faulty_gemms
    assert counted >= 0.9 * corrupted
    assert located_fixed >= 22


def test_recompute_at_safe_point_pays_the_switch(gemm):
    from accelsim.dvfs import TransitionModel

    A, B, C = gemm
    F = corrupt(C, [(1, 2, 5), (1, 9, 7), (30, 2, 11)])  # unlocatable -> recompute
    low = OperatingPoint(0.7, 1e9)
    plain = AbftChecker("classic", HW).check(A, B, F, CTX, op=low)
    tm = TransitionModel()
    switched = AbftChecker("classic", HW, transitions=tm).check(A, B, F, CTX, op=low)
    extra = switched.cost.seconds - plain.cost.seconds
    assert extra == pytest.approx(tm.cost(OperatingPoint(0.9, 1e9), low).latency_s)  # ramp up
    assert switched.cost.energy.dvfs == pytest.approx(2 * 0.2 * 10e-9 * (0.81 - 0.49))
    same = AbftChecker("classic", HW, transitions=tm).check(A, B, F, CTX)  # already nominal
    assert same.cost.energy.dvfs == 0
    s = switched.summary()
    assert s["actions"] == "recompute" and s["pattern"] == "ambiguous" and s["detected"]
