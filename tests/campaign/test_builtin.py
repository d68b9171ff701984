"""Built-in trial kinds: synthetic is deterministic; gemm-ter counts real timing errors."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.campaign import get_trial_kind, parse_campaign, register_trial, trial_kinds
from accelsim.campaign.builtin import gemm_setup, gemm_ter_trial, synthetic_trial
from accelsim.campaign.executors import run_trial
from accelsim.errors import ConfigError


@pytest.fixture(scope="module")
def state():
    return gemm_setup()


def _config(**kw: object) -> dict[str, object]:
    camp = parse_campaign(
        {"campaign": {"name": "g", "trial": "gemm-ter"}, "fixed": {"freq": 1.0, **kw}}
    )
    return dict(camp.trials[0].config)


def test_registry_lists_builtins_and_rejects_conflicts():
    assert {"synthetic", "gemm-ter"} <= set(trial_kinds())
    kind = get_trial_kind("synthetic")
    assert kind.fn is synthetic_trial
    register_trial("synthetic", synthetic_trial, normalize=kind.normalize)  # same: a no-op
    with pytest.raises(ConfigError, match="already registered"):
        register_trial("synthetic", gemm_ter_trial)


def test_synthetic_is_deterministic_and_seed_dependent():
    a = synthetic_trial({"seed": 3, "x": 1}, None)
    assert a == synthetic_trial({"seed": 3, "x": 1}, None)
    assert a == synthetic_trial({"seed": 3, "x": 1, "sleep": 0.0}, None)  # control key ignored
    assert a["u"] != synthetic_trial({"seed": 4, "x": 1}, None)["u"]
    assert a["u"] != synthetic_trial({"seed": 3, "x": 2}, None)["u"]
    # u is uniform: a Kolmogorov-Smirnov test over 400 seeds on the fixed seeds 0..399
    from scipy import stats

    us = [synthetic_trial({"seed": s}, None)["u"] for s in range(400)]
    assert stats.kstest(us, "uniform").pvalue > 0.01
    assert stats.kstest(np.array(us) ** 2, "uniform").pvalue < 1e-3  # a wrong variant fails


def test_gemm_ter_safe_point_is_exact(state):
    m = gemm_ter_trial(_config(vdd=0.9, freq=0.8, m=32, k=64, n=24), state)
    assert m["critical_path_ratio"] < 0.84
    assert (m["errors"], m["wrong_outputs"], m["max_abs_err"], m["rel_fro_err"]) == (0, 0, 0, 0.0)
    assert m["macs"] == 32 * 64 * 24


def test_gemm_ter_errors_grow_as_voltage_falls(state):
    cfg = {"m": 48, "k": 96, "n": 32, "rows": 16, "cols": 16, "chip": 5}
    ters = [gemm_ter_trial(_config(vdd=v, **cfg), state)["ter"] for v in (0.80, 0.68, 0.60)]
    assert ters[2] > ters[1] > 0
    assert ters[1] >= ters[0]
    low = gemm_ter_trial(_config(vdd=0.60, **cfg), state)
    assert low["wrong_outputs"] > 0 and low["rel_fro_err"] > 0
    assert low == gemm_ter_trial(_config(vdd=0.60, **cfg), state)  # deterministic
    other = gemm_ter_trial(_config(vdd=0.60, seed=1, **cfg), state)
    assert other["errors"] != low["errors"]


def test_gemm_ter_razor_counts_errors_but_output_exact(state):
    cfg = {"vdd": 0.65, "m": 32, "k": 64, "n": 32, "rows": 8, "cols": 8}
    razor = gemm_ter_trial(_config(manifestation="razor", **cfg), state)
    hold = gemm_ter_trial(_config(manifestation="hold", **cfg), state)
    assert razor["errors"] > 0 and razor["wrong_outputs"] == 0
    assert hold["wrong_outputs"] > 0


def test_run_trial_wraps_errors_and_caches_state():
    kind = get_trial_kind("gemm-ter")
    trial = parse_campaign(
        {"campaign": {"name": "g", "trial": "gemm-ter"}, "fixed": {"vdd": 0.9, "freq": 1.0}}
    ).trials[0]
    res = run_trial(kind, trial)
    assert res.status == "done" and res.error is None and res.wall_s >= 0
    from accelsim.campaign import executors

    cached = executors._STATE["gemm-ter"]
    assert run_trial(kind, trial).metrics == res.metrics
    assert executors._STATE["gemm-ter"] is cached  # setup ran once in this process
    broken = type(trial)(trial.id, trial.kind, {**trial.config, "rows": 0})
    bad = run_trial(kind, broken)
    assert bad.status == "failed" and bad.error and "\n" not in bad.error
    assert bad.traceback and "Traceback" in bad.traceback
