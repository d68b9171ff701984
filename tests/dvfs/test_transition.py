"""Transition costs: regulator latency per step, sequencing stalls, energy, counting, ledger."""

from __future__ import annotations

import pytest

from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.context import GemmContext
from accelsim.dvfs import (
    SensitivityProfile,
    TransitionModel,
    TransitionTracker,
    parse_policy,
    transition_model,
)
from accelsim.errors import ConfigError
from accelsim.hw.energy import EnergyLedger

NOM = OperatingPoint(0.9, 1e9)


def test_no_change_costs_nothing():
    c = TransitionModel().cost(NOM, OperatingPoint(0.9, 1e9))
    assert c.transitions == 0 and c.latency_s == 0 and c.energy_j == 0


def test_on_chip_steps_and_sequencing():
    m = TransitionModel()  # 50 ns per 100 mV step, divider clock switch 1 ns
    down = m.cost(NOM, OperatingPoint(0.7, 1e9))
    assert down.transitions == 1 and down.v_steps == 2
    assert down.latency_s == pytest.approx(100e-9)
    assert down.stall_s == 0.0  # lowering V: keep computing at the higher voltage
    up = m.cost(OperatingPoint(0.7, 1e9), NOM)
    assert up.stall_s == pytest.approx(100e-9)  # raising V: wait for the ramp
    small = m.cost(NOM, OperatingPoint(0.88, 1e9))
    assert small.v_steps == 1 and small.latency_s == pytest.approx(50e-9)
    oc = m.cost(NOM, OperatingPoint(0.9, 1.7e9))
    assert oc.v_steps == 0 and oc.stall_s == pytest.approx(1e-9)
    strict = TransitionModel(stall_on_lower=True).cost(NOM, OperatingPoint(0.7, 1e9))
    assert strict.stall_s == pytest.approx(100e-9)


def test_transition_energy_formula():
    m = TransitionModel(efficiency=0.8, c_domain_f=10e-9)
    c = m.cost(NOM, OperatingPoint(0.7, 1e9))
    assert c.energy_j == pytest.approx(0.2 * 10e-9 * (0.81 - 0.49))
    assert m.cost(OperatingPoint(0.7, 1e9), NOM).energy_j == pytest.approx(c.energy_j)
    fixed = TransitionModel(energy_per_transition_j=1e-9).cost(NOM, OperatingPoint(0.9, 2e9))
    assert fixed.energy_j == pytest.approx(1e-9)


def test_off_chip_and_pll_presets():
    off = transition_model("off-chip")
    c = off.cost(NOM, OperatingPoint(0.6, 1e9))
    assert c.v_steps == 1 and c.latency_s == pytest.approx(30e-6)
    pll = transition_model({"regulator": "on-chip-pll"})
    assert pll.cost(NOM, OperatingPoint(0.9, 1.5e9)).stall_s == pytest.approx(20e-6)
    assert transition_model({"regulator": "on-chip", "latency_per_step_s": 100e-9}).cost(
        NOM, OperatingPoint(0.8, 1e9)
    ).latency_s == pytest.approx(100e-9)
    for bad in ("warp-drive", {"regulator": "on-chip", "latency": 1}, {"step_v": 0}):
        with pytest.raises(ConfigError) as exc:
            transition_model(bad)
        assert "\n" not in str(exc.value)


def test_tracker_counts_and_charges_policy_changes():
    # 10 timesteps x 3 GEMMs, aggressive in timesteps 3-6: one change in, one change out.
    policy = parse_policy("timestep:vdd=0.7,ranges=3-7", HardwareConfig())
    tracker = TransitionTracker(initial=NOM)
    ledger = EnergyLedger()
    for t in range(10):
        for layer in ("qkv", "proj", "fc1"):
            c = GemmContext(f"blocks.0.{layer}", block="blocks.0", layer_type=layer, timestep=t)
            tracker.step(policy.decide(c), ledger=ledger, key="dvfs", leak_w=2.0)
    assert tracker.total.transitions == 2
    assert tracker.total.v_steps == 4
    assert tracker.total.stall_s == pytest.approx(100e-9)  # only the way back up stalls
    per = 0.2 * 10e-9 * (0.81 - 0.49)
    assert ledger.total.dvfs == pytest.approx(2 * per + 2.0 * 100e-9)
    # a per-cell drift policy on interleaved blocks switches far more often
    prof = SensitivityProfile.from_grid(
        ["blocks.0", "blocks.1"], list(range(10)), [[1.0] * 10, [0.0] * 10]
    )
    drift = parse_policy("drift:vdd=0.7,threshold=0.5", HardwareConfig(), profile=prof)
    tr = TransitionTracker()
    for t in range(10):
        for b in ("blocks.0", "blocks.1"):
            tr.step(drift.decide(GemmContext(f"{b}.fc1", block=b, timestep=t)))
    assert tr.total.transitions == 19  # no cost for the first GEMM without an initial point
    tr.reset()
    assert tr.total.transitions == 0 and tr.current is None
