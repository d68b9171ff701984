"""Static PE variation maps: determinism, marginals, spatial correlation, voltage scaling, errors.

Statistical checks use fixed seeds and tolerances derived from the sample (standard errors over
independent chips, or exact chi-square / KS tests at p > 1e-3), so a wrong field fails them.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from accelsim.config import ConfigError, load_calib_params, params_from_calib
from accelsim.timing.delay import DelayParams, sigma_scale
from accelsim.timing.variation import (
    CORR_KINDS,
    ChipMap,
    VariationParams,
    _dense_factor,
    _embedding,
    _sys_field,
    chip_map,
    correlation,
    default_variation_params,
    pe_delay_factor,
    typical_chip,
)

P = VariationParams()
DP = DelayParams()
VNOM = 0.9
N_CHIPS = 200
SIDE = 32  # range 0.5 = 16 PEs
# Positions at least 20 PEs apart (0.625 array widths > range 0.5): independent for spherical.
FAR = ((0, 0), (0, 20), (20, 0), (20, 20))


def _chips(params: VariationParams, n: int = N_CHIPS, rows: int = SIDE, cols: int = SIDE):
    return [chip_map(rows, cols, seed, params) for seed in range(1000, 1000 + n)]


@pytest.fixture(scope="module")
def chips() -> list[ChipMap]:
    return _chips(P)


# --------------------------------------------------------------------------- calib + params


def test_calib_file_loads_with_source_for_every_field():
    entries = load_calib_params("variation.toml")
    for key, entry in entries.items():
        assert {"value", "unit", "source", "confidence"} <= set(entry), key
        assert len(entry["source"]) > 20, key
    params = default_variation_params()
    assert set(entries) == set(VariationParams.__dataclass_fields__)
    assert params == VariationParams()  # dataclass defaults mirror the calib file


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"sigma_sys": -0.01}, "variation.sigma_sys"),
        ({"sigma_rnd": -1.0}, "variation.sigma_rnd"),
        ({"sigma_d2d": float("nan")}, "variation.sigma_d2d"),
        ({"corr_kind": "linear"}, "variation.corr_kind"),
        ({"corr_range": 0.0}, "variation.corr_range"),
        ({"droop_zeta": 0.0}, "variation.droop_zeta"),
        ({"droop_zeta": -0.3}, "variation.droop_zeta"),
        ({"droop_zeta": 1.0}, "variation.droop_zeta"),
        ({"noise_tau": 0.0}, "variation.noise_tau"),
        ({"droop_worst_prob": 1.5}, "variation.droop_worst_prob"),
    ],
)
def test_bad_params_raise_one_line_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        params_from_calib(VariationParams, "variation.toml", override)
    assert str(err.value).startswith(key + ":")
    assert "\n" not in str(err.value)


def test_unknown_override_key_is_rejected():
    with pytest.raises(ConfigError, match=r"sigma_sy.*did you mean 'sigma_sys'"):
        params_from_calib(VariationParams, "variation.toml", {"sigma_sy": 0.02})


@pytest.mark.parametrize(
    ("args", "key"),
    [((0, 8, 1), "array.rows"), ((8, 2000, 1), "array.cols"), ((8, 8, -1), "chip_seed")],
)
def test_bad_chip_arguments(args, key):
    with pytest.raises(ConfigError, match=rf"^{key}: got"):
        rows, cols, seed = args
        chip_map(rows, cols, seed, P)


def test_bad_seed_type():
    with pytest.raises(ConfigError, match=r"^chip_seed: got 1.5"):
        chip_map(4, 4, 1.5, P)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_chip_and_different_seeds_differ():
    a = chip_map(48, 40, 7, P)
    b = chip_map(48, 40, 7, P)
    c = chip_map(48, 40, 8, P)
    np.testing.assert_array_equal(a.sys, b.sys)
    np.testing.assert_array_equal(a.rnd, b.rnd)
    assert a.d2d == b.d2d and a.seed == 7
    assert not np.array_equal(a.sys, c.sys)
    assert not np.array_equal(a.rnd, c.rnd)
    assert a.d2d != c.d2d
    assert a.shape == (48, 40)


def test_components_come_from_separate_streams():
    # The random part does not depend on the correlation model of the systematic part.
    a = chip_map(16, 16, 3, P)
    b = chip_map(16, 16, 3, replace(P, corr_kind="gaussian", corr_range=0.2))
    np.testing.assert_array_equal(a.rnd, b.rnd)
    assert a.d2d == b.d2d
    assert not np.array_equal(a.sys, b.sys)


def test_chip_map_is_read_only():
    chip = chip_map(8, 8, 1, P)
    with pytest.raises(ValueError, match="read-only"):
        chip.sys[0, 0] = 1.0
    with pytest.raises(AttributeError):
        chip.d2d = 0.0  # type: ignore[misc]


def test_typical_chip_is_all_ones_at_any_voltage():
    chip = typical_chip(4, 6)
    assert chip.seed is None and chip.shape == (4, 6)
    for v in (0.6, 0.9, 1.0):
        np.testing.assert_array_equal(pe_delay_factor(chip, v, VNOM, DP, P), np.ones((4, 6)))


def test_typical_chip_is_the_median_die_with_exact_within_die_quantiles():
    """The typical chip: no die-to-die offset, PE log factors at the exact quantiles of the
    within-die distribution (so its spread matches the TER integral), in a die's spatial order;
    deterministic, and different from every seeded chip."""
    from scipy import stats

    params = default_variation_params()
    chip = typical_chip(64, 64, params)
    assert chip.d2d == 0.0 and chip.seed is None
    again = typical_chip(64, 64, params)
    assert np.array_equal(chip.sys, again.sys) and np.array_equal(chip.rnd, again.rnd)
    f = pe_delay_factor(chip, 0.9, 0.9, DP, params)
    logs = np.sort(np.log(f).ravel())
    s_wid = math.hypot(params.sigma_sys, params.sigma_rnd)
    q = stats.norm.ppf((np.arange(logs.size) + 0.5) / logs.size) * s_wid
    assert np.allclose(logs, q, atol=1e-12)
    assert np.median(f) == pytest.approx(1.0, abs=1e-3)
    # a die's spatial structure: neighbours are correlated, as in a seeded chip's field
    z = np.log(f) / s_wid
    assert np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1] > 0.5
    # a wrong variant (iid quantiles in random order) has no spatial correlation
    shuffled = np.random.default_rng(0).permutation(z.ravel()).reshape(z.shape)
    assert abs(np.corrcoef(shuffled[:, :-1].ravel(), shuffled[:, 1:].ravel())[0, 1]) < 0.1
    for seed in range(3):
        assert not np.array_equal(chip_map(64, 64, seed, params).sys, chip.sys)


def test_generation_is_fast_for_128_and_works_for_512():
    chip_map(128, 128, 0, P)  # warm the spectrum cache
    t0 = time.perf_counter()
    chip = chip_map(128, 128, 1, P)
    assert time.perf_counter() - t0 < 0.5
    assert chip.sys.shape == (128, 128)
    big = chip_map(512, 512, 1, P)
    assert big.sys.shape == (512, 512) and np.all(np.isfinite(big.sys))


# --------------------------------------------------------------------------- marginals


def test_sys_marginal_is_standard_normal(chips):
    # Far-apart positions are independent under the spherical model: 800 iid N(0, 1) draws.
    x = np.array([c.sys[i, j] for c in chips for (i, j) in FAR])
    assert stats.kstest(x, "norm").pvalue > 1e-3
    chi2 = float(np.sum(x**2))
    p_var = stats.chi2.cdf(chi2, df=x.size)
    assert 5e-4 < p_var < 1 - 5e-4
    assert abs(x.mean()) < 4.0 / np.sqrt(x.size)


def test_rnd_marginal_is_standard_normal(chips):
    x = np.concatenate([c.rnd.ravel() for c in chips])
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(x.mean()) < 4.0 / np.sqrt(x.size)
    assert abs(x.var() - 1.0) < 4.0 * np.sqrt(2.0 / x.size)
    d2d = np.array([c.d2d for c in chips])
    assert stats.kstest(d2d, "norm").pvalue > 1e-3


# --------------------------------------------------------------------------- correlation


LAGS = [(0, 1), (0, 4), (0, 8), (0, 12), (0, 20), (1, 0), (8, 0), (16, 0), (3, 3), (8, 8)]


def _lag_products(field: np.ndarray, di: int, dj: int) -> float:
    r, c = field.shape
    return float(np.mean(field[: r - di, : c - dj] * field[di:, dj:]))


def _correlation_matches(
    chips: list[ChipMap], kind: str, corr_range: float, lags=LAGS, z: float = 4.0
) -> bool:
    """Mean lag products over chips match rho within z standard errors (over chips) + 1e-3."""
    rows, cols = chips[0].shape
    pitch = 1.0 / max(rows, cols)
    ok = True
    for di, dj in lags:
        per_chip = np.array([_lag_products(c.sys, di, dj) for c in chips])
        se = per_chip.std(ddof=1) / np.sqrt(per_chip.size)
        target = float(correlation(np.hypot(di, dj) * pitch, kind, corr_range))
        ok &= abs(per_chip.mean() - target) <= z * se + 1e-3
    return bool(ok)


@pytest.mark.parametrize("kind", CORR_KINDS)
def test_sys_correlation_matches_the_model(kind, chips):
    params = replace(P, corr_kind=kind)
    sample = chips if kind == P.corr_kind else _chips(params)
    assert _correlation_matches(sample, kind, 0.5)


@pytest.mark.parametrize("kind", CORR_KINDS)
def test_wrong_range_fails_the_same_check(kind):
    short = _chips(replace(P, corr_kind=kind, corr_range=0.1))
    assert _correlation_matches(short, kind, 0.1)  # it is a good field with range 0.1 ...
    assert not _correlation_matches(short, kind, 0.5)  # ... and not one with range 0.5


def test_non_square_array_is_isotropic_in_units_of_the_longer_side():
    # 16 x 64: pitch 1/64 in both directions, range 0.5 = 32 PEs.
    sample = _chips(P, rows=16, cols=64)
    lags = [(0, 4), (4, 0), (0, 12), (12, 0), (8, 8), (0, 40)]
    assert _correlation_matches(sample, P.corr_kind, P.corr_range, lags)


def test_rnd_is_uncorrelated_between_neighbours(chips):
    for di, dj in [(0, 1), (1, 0), (1, 1)]:
        per_chip = np.array(
            [float(np.mean(c.rnd[: SIDE - di, : SIDE - dj] * c.rnd[di:, dj:])) for c in chips]
        )
        assert abs(per_chip.mean()) <= 4.0 * per_chip.std(ddof=1) / np.sqrt(per_chip.size)


def test_sys_and_rnd_are_independent(chips):
    per_chip = np.array([float(np.mean(c.sys * c.rnd)) for c in chips])
    assert abs(per_chip.mean()) <= 4.0 * per_chip.std(ddof=1) / np.sqrt(per_chip.size)


@pytest.mark.parametrize("kind", CORR_KINDS)
@pytest.mark.parametrize(
    ("rows", "cols", "corr_range"),
    [(1, 1, 0.5), (1, 64, 0.5), (16, 128, 0.5), (128, 128, 0.5), (40, 40, 0.1), (64, 64, 1.0)],
)
def test_circulant_embedding_reproduces_the_covariance_exactly(kind, rows, cols, corr_range):
    emb = _embedding(rows, cols, kind, corr_range)
    assert emb is not None and emb.neg_fraction <= 1e-6
    implied = np.fft.fft2(emb.sqrt_spectrum**2).real[:rows, :cols]
    n = max(rows, cols)
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    target = correlation(np.hypot(i, j) / n, kind, corr_range)
    np.testing.assert_allclose(implied, target, atol=2e-6)


@pytest.mark.parametrize("kind", CORR_KINDS)
def test_dense_fallback_has_the_same_covariance(kind):
    rows, cols = 6, 9
    factor = _dense_factor(rows, cols, kind, 0.5)
    pts = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    dist = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=-1) / max(rows, cols)
    np.testing.assert_allclose(factor @ factor.T, correlation(dist, kind, 0.5), atol=1e-8)
    field = _sys_field(rows, cols, kind, 0.5, np.random.default_rng(1), method="dense")
    assert field.shape == (rows, cols)


# --------------------------------------------------------------------------- delay factor


def test_log_factor_sigma_at_nominal(chips):
    within = np.hypot(P.sigma_sys, P.sigma_rnd)
    assert within == pytest.approx(0.02915, abs=1e-4)
    # Without the die-to-die part: 800 independent PEs (far apart, distinct chips).
    no_d2d = replace(P, sigma_d2d=0.0)
    logs = np.array(
        [np.log(pe_delay_factor(c, VNOM, VNOM, DP, no_d2d))[i, j] for c in chips for (i, j) in FAR]
    )
    p_var = stats.chi2.cdf(np.sum((logs / within) ** 2), df=logs.size)
    assert 5e-4 < p_var < 1 - 5e-4
    # With it, one PE across chips has sigma sqrt(sys^2 + rnd^2 + d2d^2).
    total = np.sqrt(within**2 + P.sigma_d2d**2)
    logs = np.array([np.log(pe_delay_factor(c, VNOM, VNOM, DP, P))[5, 5] for c in chips])
    p_var = stats.chi2.cdf(np.sum((logs / total) ** 2), df=logs.size)
    assert 5e-4 < p_var < 1 - 5e-4


@pytest.mark.parametrize(("vdd", "growth"), [(0.8, 1.25), (0.7, 5.0 / 3.0)])
def test_variation_grows_at_low_voltage(chips, vdd, growth):
    assert sigma_scale(vdd, VNOM, DP) == pytest.approx(growth)
    chip = chips[0]
    log_nom = np.log(pe_delay_factor(chip, VNOM, VNOM, DP, P))
    log_low = np.log(pe_delay_factor(chip, vdd, VNOM, DP, P))
    np.testing.assert_allclose(log_low, growth * log_nom, rtol=1e-9, atol=1e-15)
    assert np.std(log_low) == pytest.approx(growth * np.std(log_nom), rel=1e-12)


def test_slow_pes_stay_in_the_same_places(chips):
    chip = chips[3]
    f9 = pe_delay_factor(chip, 0.9, VNOM, DP, P)
    f7 = pe_delay_factor(chip, 0.7, VNOM, DP, P)
    assert stats.spearmanr(f9.ravel(), f7.ravel()).statistic == pytest.approx(1.0)
    slow = f9 > 1.0
    assert np.all(f7[slow] > f9[slow]) and np.all(f7[~slow] <= f9[~slow])


def test_delay_factor_dtype_shape_and_bad_vdd():
    chip = chip_map(8, 12, 5, P)
    f = pe_delay_factor(chip, 0.85, VNOM, DP, P)
    assert f.dtype == np.float64 and f.shape == (8, 12) and np.all(f > 0)
    with pytest.raises(ConfigError, match=r"^vdd: got 0.1 V"):
        pe_delay_factor(chip, 0.1, VNOM, DP, P)
