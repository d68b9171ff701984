"""Resilience profiling: cells, the timestep policy restricted to a block, the measured profile."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from accelsim.config import OperatingPoint, load_preset
from accelsim.context import GemmContext
from accelsim.dvfs.policies import parse_policy
from accelsim.experiments.explore import ExploreConfig, profile_campaign, profile_from_trials
from accelsim.experiments.profiling import cell_policy, measure_sensitivity, timestep_groups
from accelsim.experiments.runner import ModelSession, SessionConfig

HW = load_preset("tpu-128x128")


def test_timestep_groups_cover_every_step_once():
    for steps in (1, 3, 6, 10, 20):
        for groups in (1, 2, 5, 30):
            ranges = timestep_groups(steps, groups)
            covered = [t for a, b in ranges for t in range(a, b)]
            assert covered == list(range(steps)) and len(ranges) == min(groups, steps)


def test_block_restricted_timestep_policy_is_the_profiling_cell():
    hot = OperatingPoint(vdd=0.8, freq=1e9)
    cold = OperatingPoint.nominal(HW.tech)
    cell = cell_policy("blocks.1", 2, 4, hot, cold)
    policy = parse_policy("timestep:vdd=0.8,ranges=2-4,blocks=blocks.1", HW)
    outside = parse_policy("timestep:vdd=0.8,ranges=0-1,blocks=-", HW)
    for block in ("blocks.0", "blocks.1", ""):
        for t in (None, 0, 1, 2, 3, 4, 5):
            ctx = GemmContext(module="m", block=block, layer_type="fc1", timestep=t)
            assert policy.decide(ctx) == cell(ctx)
            assert (outside.decide(ctx) == hot) == (block == "" and t == 0)


def test_measured_profile_is_loss_per_error_of_each_cell():
    session = ModelSession(SessionConfig(model="dit-digits", samples=1, steps=2, guidance=1.0))
    profile, cells = measure_sensitivity(
        session,
        HW,
        OperatingPoint(vdd=0.7, freq=1e9),
        blocks=["blocks.0", "blocks.3"],
        groups=2,
        seeds=(5,),
        chip=0,
    )
    assert [(c.block, c.t_start, c.t_stop) for c in cells] == [
        ("blocks.0", 0, 1),
        ("blocks.0", 1, 2),
        ("blocks.3", 0, 1),
        ("blocks.3", 1, 2),
    ]
    assert all(c.errors > 0 for c in cells)  # 0.7 V on chip 0 fails
    for c, p in zip(cells, profile.cells, strict=True):
        assert p.sensitivity == pytest.approx(c.quality_loss / c.errors)
        assert profile.lookup(c.block, c.t_start) == p.sensitivity


def test_profile_campaign_and_its_reduction():
    from accelsim.experiments.explore import base_config

    cfg = ExploreConfig(steps=4, profile_groups=2, vdd=(0.84, 0.8, 0.82), chips=("typical",))
    camp = profile_campaign(cfg, base_config(cfg, HW), ["blocks.0", ""])
    specs = [t.config["policy"] for t in camp.trials]
    assert specs == [
        "timestep:vdd=0.8,ranges=0-2,blocks=blocks.0",
        "timestep:vdd=0.8,ranges=2-4,blocks=blocks.0",
        "timestep:vdd=0.8,ranges=0-2,blocks=-",
        "timestep:vdd=0.8,ranges=2-4,blocks=-",
    ]
    assert {t.config["seed"] for t in camp.trials} == {cfg.profile_seed}
    stored = [
        SimpleNamespace(config=t.config, metrics={"timing_errors": e, "feature_distance": q})
        for t, (e, q) in zip(camp.trials, [(10, 0.5), (0, 0.0), (4, 0.2), (2, 0.0)], strict=True)
    ]
    profile, _ = profile_from_trials(stored)
    assert [c.sensitivity for c in profile.cells] == [0.05, 0.0, 0.05, 0.0]
    assert profile.lookup("", 3) == 0.0 and profile.lookup("blocks.0", 1) == 0.05
