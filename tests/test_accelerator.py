"""Accelerator: error inputs, kernels, books equal to accelsim.hw.perf, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.accelerator import Accelerator, expected_no_fail, int_gemm
from accelsim.config import OperatingPoint, load_preset
from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.hw.layer import GemmLayer
from accelsim.hw.perf import evaluate_workload

HW = load_preset("edge-8x8")
NOMINAL = OperatingPoint(HW.tech.vnom, HW.tech.fnom)
LOW = OperatingPoint(0.62, HW.tech.fnom)


def _ops(seed: int, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (m, k)).astype(np.int8)
    B = rng.integers(-128, 128, (k, n)).astype(np.int8)
    return A, B


def _ref(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return A.astype(np.int64) @ B.astype(np.int64)


def test_int_gemm_is_exact_with_int32_wraparound():
    A, B = _ops(0, 7, 33, 5)
    np.testing.assert_array_equal(int_gemm(A, B), _ref(A, B))
    # -128 * -128 * 140000 = 2.29e9 > 2**31 - 1: the hardware's int32 accumulator wraps.
    A = np.full((2, 140_000), -128, np.int8)
    B = np.full((140_000, 3), -128, np.int8)
    want = (_ref(A, B) % 2**32).astype(np.uint32).view(np.int32)
    np.testing.assert_array_equal(int_gemm(A, B), want)
    assert int(int_gemm(A, B)[0, 0]) < 0


def test_books_equal_hw_perf_for_the_same_shapes():
    shapes = [(16, 24, 40), (5, 7, 9), (16, 24, 40), (64, 8, 3)]
    for op in (NOMINAL, OperatingPoint(0.8, 1.2e9)):
        acc = Accelerator(HW, kernel="reference")
        for i, (m, n, k) in enumerate(shapes):
            A, B = _ops(i, m, k, n)
            res = acc.gemm(A, B, GemmContext(f"l{i}", layer_type="fc1", call=i), op)
            np.testing.assert_array_equal(res.out, _ref(A, B))
        rep = acc.report()
        perf = evaluate_workload([GemmLayer(f"l{i}", *s) for i, s in enumerate(shapes)], HW, op)
        assert rep.gemm_calls == 4
        assert rep.macs == perf.totals.macs
        assert rep.cycles == perf.totals.cycles
        assert rep.latency_s == pytest.approx(perf.totals.seconds, rel=1e-12)
        for comp, value in perf.totals.energy.as_dict().items():
            assert getattr(rep.energy_j, comp) == pytest.approx(value, rel=1e-12)
        assert rep.energy_j.total > 0


def test_lower_voltage_costs_less_energy_per_gemm():
    A, B = _ops(1, 32, 64, 32)
    e = []
    for v in (0.9, 0.8):
        acc = Accelerator(HW, kernel="reference")
        acc.gemm(A, B, GemmContext("x"), OperatingPoint(v, 1e9))
        e.append(acc.report().energy_j.mac)
    assert e[1] == pytest.approx(e[0] * (0.8 / 0.9) ** 2)


def test_nominal_point_is_error_free_and_exact():
    acc = Accelerator(HW, kernel="exact", chip=None)
    A, B = _ops(2, 40, 96, 24)
    res = acc.gemm(A, B, GemmContext("x", layer_type="qkv"), NOMINAL)
    np.testing.assert_array_equal(res.out, _ref(A, B))
    assert res.errors.total == 0
    assert acc.report().errors_injected == 0


def test_safe_point_skips_the_supply_trace():
    acc = Accelerator(HW, kernel="exact")
    slow = OperatingPoint(1.0, 5e8)  # large margin: no MAC can fail even at the supply bound
    assert expected_no_fail(acc, slow)
    inputs = acc.error_inputs(8, 8, 8, GemmContext("x"), slow)
    assert not inputs.can_fail and inputs.supply_factor is None
    assert not expected_no_fail(acc, LOW)
    low = acc.error_inputs(8, 8, 8, GemmContext("x"), LOW)
    assert low.can_fail and low.supply_factor is not None and low.supply_factor.min() > 0


def test_undervolted_errors_are_counted_per_context_and_deterministic():
    A, B = _ops(3, 24, 64, 16)

    def run(seed: int) -> tuple[list[np.ndarray], object]:
        acc = Accelerator(HW, kernel="exact", seed=seed)
        outs = []
        for call, (lt, block, t) in enumerate(
            [("fc1", "blocks.0", 0), ("qkv", "blocks.1", 0), ("fc1", "blocks.0", 1)]
        ):
            ctx = GemmContext("m", block=block, layer_type=lt, timestep=t, call=call)
            outs.append(acc.gemm(A, B, ctx, LOW).out)
        return outs, acc.report()

    outs, rep = run(0)
    assert rep.errors_injected > 0
    assert sum(rep.errors_by_layer_type.values()) == rep.errors_injected
    assert set(rep.errors_by_layer_type) == {"fc1", "qkv"}
    assert set(rep.errors_by_block) == {"blocks.0", "blocks.1"}
    assert set(rep.errors_by_timestep) == {0, 1}
    assert sum(c.errors for c in rep.by_context) == rep.errors_injected
    assert any(not np.array_equal(o, _ref(A, B)) for o in outs)
    outs2, rep2 = run(0)
    assert rep2 == rep
    for a, b in zip(outs, outs2, strict=True):
        np.testing.assert_array_equal(a, b)
    # another seed draws other supply traces: different errors (negative control)
    outs3, rep3 = run(7)
    assert rep3.errors_injected != rep.errors_injected or any(
        not np.array_equal(a, b) for a, b in zip(outs, outs3, strict=True)
    )


def test_reference_kernel_never_errs_and_razor_does_not_corrupt():
    A, B = _ops(4, 24, 64, 16)
    acc = Accelerator(HW, kernel="reference")
    assert acc.gemm(A, B, GemmContext("x"), LOW).errors.total == 0
    razor = Accelerator(HW, kernel="exact", manifestation="razor")
    res = razor.gemm(A, B, GemmContext("x"), LOW)
    assert res.errors.total > 0
    np.testing.assert_array_equal(res.out, _ref(A, B))


def test_chip_variation_changes_errors():
    A, B = _ops(5, 24, 64, 16)
    ctx = GemmContext("x")
    counts = {
        c: Accelerator(HW, kernel="exact", chip=c).gemm(A, B, ctx, LOW).errors.total
        for c in (None, 1, 2)
    }
    assert len(set(counts.values())) > 1, counts


def test_charge_adds_energy_and_time():
    acc = Accelerator(HW, kernel="reference")
    acc.charge("dvfs", 1e-9, seconds=2e-6)
    rep = acc.report()
    assert rep.energy_j.dvfs == pytest.approx(1e-9)
    assert rep.latency_s == pytest.approx(2e-6)
    with pytest.raises(ConfigError, match="component"):
        acc.charge("nonsense", 1.0)


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ConfigError, match="kernel"):
        Accelerator(HW, kernel="magic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="manifestation"):
        Accelerator(HW, manifestation="melt")
    with pytest.raises(ConfigError, match="hw"):
        Accelerator("edge-8x8")  # type: ignore[arg-type]
    acc = Accelerator(HW, kernel="reference")
    A, B = _ops(6, 4, 5, 6)
    with pytest.raises(ShapeError, match="A @ B"):
        acc.gemm(A, B[:3], GemmContext("x"), NOMINAL)
    with pytest.raises(ShapeError, match="int8"):
        acc.gemm(A.astype(np.int16), B, GemmContext("x"), NOMINAL)
    with pytest.raises(ConfigError, match="op"):
        acc.gemm(A, B, GemmContext("x"), (0.9, 1e9))  # type: ignore[arg-type]


def test_supply_trace_equals_the_public_supply_functions():
    """The accelerator's per-GEMM supply trace (validated once per shape and op) is bit for bit
    ``supply_droop`` + ``supply_delay_factor`` on the GEMM's mapping and context stream."""
    from accelsim.rng import rng_for
    from accelsim.timing.supply import droop_triggers, supply_delay_factor, supply_droop

    hw = load_preset("tpu-128x128")
    acc = Accelerator(hw, kernel="exact", chip=0, seed=3)
    checked = 0
    for op in (OperatingPoint(0.83, 1e9), OperatingPoint(0.9, 1.3e9)):
        for M, N, K in ((64, 64, 32), (512, 384, 128)):
            for call in range(2):
                ctx = GemmContext(
                    module="blocks.0.attn", layer_type="qkv", timestep=call, call=call
                )
                inp = acc.error_inputs(M, N, K, ctx, op)
                assert inp.supply_factor is not None
                mapping = acc.layer_perf(M, N, K, op).mapping
                cyc, stp = droop_triggers(mapping)
                rng = rng_for(3, "supply", ctx.module, ctx.timestep, ctx.call)
                tm = acc.timing
                delta = supply_droop(
                    mapping.compute_cycles + 1, op.freq, cyc, stp, tm.variation, rng
                )
                want = supply_delay_factor(delta, op.vdd, tm.vnom, tm.delay)
                np.testing.assert_array_equal(inp.supply_factor, want)
                checked += 1
    assert checked == 8
