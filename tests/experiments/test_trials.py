"""The ``model-run`` trial kind: config validation, fault budgets, head slices, known answers."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.experiments import trials as M
from accelsim.faults.base import FaultLog
from accelsim.faults.models import BitFlip


def test_normalize_fills_defaults_and_rejects_bad_input() -> None:
    cfg = M.normalize({"model": "vit-digits"})
    assert cfg["quant"] == "w8a8" and cfg["vdd"] == "nominal" and cfg["faults"] == []
    with pytest.raises(ConfigError, match="model"):
        M.normalize({"model": "nope"})
    with pytest.raises(ConfigError, match="quant"):
        M.normalize({"model": "vit-digits", "quant": "int4"})
    with pytest.raises(ConfigError, match="colour"):
        M.normalize({"model": "vit-digits", "colour": 1})
    with pytest.raises(ConfigError, match="vdd"):
        M.normalize({"model": "vit-digits", "vdd": 9.0})
    # a fault whose format does not match the place's format in this quant mode
    with pytest.raises(ConfigError, match="format"):
        M.normalize(
            {"model": "vit-digits", "faults": [{"fault": "bitflip", "format": "fp32", "bit": 3}]}
        )


def test_flips_become_a_rate_over_the_counted_values() -> None:
    counter = M.ValueCounter()
    ctx = GemmContext(module="blocks.0.mlp.fc1", block="blocks.0", block_index=0, layer_type="fc1")
    rng = np.random.default_rng(0)
    counter.on_output(np.zeros((10, 100), np.int32), ctx, "int32", rng, FaultLog())
    other = GemmContext(module="head", layer_type="head")
    counter.on_output(np.zeros((10, 300), np.int32), other, "int32", rng, FaultLog())
    spec = {"fault": "bitflip", "target": "outputs", "format": "int32", "flips": 20}
    assert M.build_fault(spec, "w8a8", counter).rate == pytest.approx(20 / 4000)
    scoped = M.build_fault({**spec, "layer-type": "fc1"}, "w8a8", counter)
    assert scoped.rate == pytest.approx(20 / 1000)
    ber = M.build_fault(
        {"fault": "bitflip", "target": "inputs", "format": "int8", "ber": 1e-3}, "w8a8", counter
    )
    assert ber.rate == pytest.approx(8e-3)


def test_head_slice_only_touches_its_head() -> None:
    inner = BitFlip(target="inputs", fmt="int8", rate=1.0, bits=(7,))
    fault = M.HeadSlice(inner, head=2, heads=4)
    a = np.zeros((5, 16), np.int8)
    ctx = GemmContext(module="blocks.0.attn.proj", layer_type="proj")
    out = fault.on_inputs(a, ctx, "int8", np.random.default_rng(1), FaultLog())
    changed = np.flatnonzero((out != a).any(axis=0))
    assert changed.tolist() == [8, 9, 10, 11]
    wrong = M.HeadSlice(inner, head=1, heads=4).on_inputs(
        a, ctx, "int8", np.random.default_rng(1), FaultLog()
    )
    assert np.flatnonzero((wrong != a).any(axis=0)).tolist() != [8, 9, 10, 11]
    with pytest.raises(ConfigError, match="head"):
        M.build_fault(
            {"fault": "bitflip", "target": "outputs", "format": "int32", "head": 5, "heads": 4},
            "w8a8",
            None,
        )


def _trial(bit: int, fmt: str, state: M.ModelState) -> dict[str, object]:
    quant = "w8a8" if fmt == "int8" else fmt
    spec = {"fault": "bitflip", "target": "weights", "format": fmt, "bit": bit, "flips": 200}
    cfg = M.normalize({"model": "vit-digits", "samples": 8, "quant": quant, "faults": [spec]})
    return dict(M.run_trial(cfg, state))


def test_known_answers_sign_and_exponent_bits_dominate() -> None:
    state = M.setup()
    b7, b0 = _trial(7, "int8", state), _trial(0, "int8", state)
    # int8 weights: the sign bit (value +-128) corrupts the logits far more than the LSB
    assert float(b7["logits_mean_abs"]) > 3 * float(b0["logits_mean_abs"])  # type: ignore[arg-type]
    assert float(b7["quality_drop"]) >= float(b0["quality_drop"]) == 0.0  # type: ignore[arg-type]
    e30, m0 = _trial(30, "fp32", state), _trial(0, "fp32", state)
    # fp32: the exponent MSB turns weights into huge values / inf; mantissa LSBs are harmless
    assert float(e30["quality_drop"]) > 30.0  # type: ignore[arg-type]
    assert m0["quality_drop"] == 0.0 and m0["top1_flips"] == 0
    # one golden run per (model, inputs, format): w8a8 and fp32, not one per trial
    assert state.golden_runs == 2


def test_chip_populations_are_reproducible_from_their_seeds() -> None:
    """A chip is its seed: the same seed gives the same run in a fresh state (and 'typical'
    the same median die); different seeds give different dies."""
    base = {"model": "dit-digits", "samples": 2, "steps": 1, "seed": 0, "vdd": 0.72}
    runs = {}
    for chip in ("typical", 3, 5):
        cfg = M.normalize({**base, "chip": chip})
        a = M.run_configuration(cfg, M.setup())
        b = M.run_configuration(cfg, M.setup())
        assert a.metrics["timing_errors"] == b.metrics["timing_errors"] > 0
        assert bool((a.test.output == b.test.output).all())
        runs[chip] = a.metrics["timing_errors"]
    assert len(set(runs.values())) == 3


def test_measured_guardband_of_a_chip_follows_its_die_to_die_offset() -> None:
    from accelsim.timing.errors import TimingModel, measured_guardband
    from accelsim.timing.variation import chip_map

    model = TimingModel.default()
    kw = {"n_samples": 1 << 17, "step_v": 0.005}
    typical = measured_guardband(model, **kw).fraction
    out = {}
    for seed in (0, 1):
        d2d = chip_map(128, 128, seed, model.variation).d2d
        out[seed] = (d2d, measured_guardband(model, chip=seed, **kw).fraction)
    # chip 0 is a slow die (positive offset): less guardband than typical; chip 1 a fast one
    assert out[0][0] > 1 and out[0][1] < typical
    assert out[1][0] < 0 and out[1][1] > typical
    assert measured_guardband(model, chip=0, **kw).fraction == out[0][1]
