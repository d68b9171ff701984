"""Protection charged like the hardware: ledger invariants, rollback semantics, each overhead once.

The invariant (DESIGN.md, "an honest ledger"): a run without timing errors costs the unprotected
run at the same per-GEMM operating points plus exactly the policy's fixed overheads (checks,
detection latches, checkpoints if it rolls back, regulator transitions), and nothing else.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from accelsim.abft.checker import AbftChecker
from accelsim.abft.cost import rollback_cost
from accelsim.accelerator import Accelerator
from accelsim.config import OperatingPoint, load_preset
from accelsim.context import GemmContext
from accelsim.dvfs.policies import parse_policy
from accelsim.dvfs.profile import ProfileCell, SensitivityProfile
from accelsim.experiments.protect import ProtectedAccelerator
from accelsim.experiments.runner import ModelSession, SessionConfig
from accelsim.hw.energy import OVERHEAD_COMPONENTS, pe_leakage_power
from accelsim.kernels.exact import GemmResult

HW = load_preset("tpu-128x128")
#: A voltage / a clock at which the typical chip has no timing error at all.
SAFE_V = 0.88
SAFE_F_GHZ = 1.02


@pytest.fixture(scope="module")
def session() -> ModelSession:
    return ModelSession(SessionConfig(model="dit-digits", samples=1, steps=3, guidance=1.0))


def _profile() -> SensitivityProfile:
    cells = []
    for b, block in enumerate(("blocks.0", "blocks.1", "blocks.2", "blocks.3", "")):
        for t in range(3):
            cells.append(ProfileCell(block, t, t + 1, float(10 - b - 3 * t)))
    return SensitivityProfile(tuple(cells))


SPECS = [
    f"uniform:vdd={SAFE_V}",
    f"thundervolt:vdd={SAFE_V}",
    f"timestep:vdd={SAFE_V},after=1",
    f"drift:vdd={SAFE_V},protect=0.4,interval=1",
    f"drift:vdd={SAFE_V},protect=0.4,interval=2",
    f"closed-loop:target=1e-6,limit={SAFE_V},step=0.01",
    "guardband:margin=0.1",
    f"uniform:mode=overclock,freq_ghz={SAFE_F_GHZ}",
    f"thundervolt:mode=overclock,freq_ghz={SAFE_F_GHZ}",
    f"drift:mode=overclock,freq_ghz={SAFE_F_GHZ},protect=0.4",
]


class _Recorder(Accelerator):
    """An unprotected accelerator that replays given operating points and records shapes."""

    def __init__(self, ops: list[OperatingPoint]) -> None:
        super().__init__(HW, kernel="fast", seed=0)
        self.ops = iter(ops)
        self.calls: list[tuple[int, int, int, str, OperatingPoint]] = []

    def next_op(self, ctx: GemmContext) -> OperatingPoint:
        return next(self.ops)

    def gemm(self, A, B, ctx, op):  # type: ignore[no-untyped-def]
        self.calls.append((A.shape[0], B.shape[1], A.shape[1], ctx.layer_type, op))
        return super().gemm(A, B, ctx, op)


def _protected_run(session: ModelSession, spec: str, **kw):  # type: ignore[no-untyped-def]
    policy = parse_policy(spec, HW, profile=_profile())
    acc = ProtectedAccelerator(HW, policy=policy, seed=0, **kw)
    ops: list[OperatingPoint] = []

    def decide(ctx: GemmContext) -> OperatingPoint:
        op = acc.decide(ctx)
        ops.append(op)
        return op

    out = session.run(acc, decide, seed=0, guard=acc.guard)
    return acc, out, ops


@pytest.mark.parametrize("spec", SPECS)
def test_error_free_run_costs_the_unprotected_run_plus_exactly_its_fixed_overheads(session, spec):
    acc, out, ops = _protected_run(session, spec)
    rep = out.report
    assert rep.errors_injected == 0, "the test point must be error-free on the typical chip"
    ref = _Recorder(ops)
    ref_out = session.run(ref, ref.next_op, seed=0)
    base = ref_out.report.energy_j
    e = rep.energy_j
    # the array's own lines are those of the unprotected run at the same points
    for c in ("mac", "sram", "dram", "leakage"):
        assert getattr(e, c) == pytest.approx(getattr(base, c), rel=1e-12), c
    assert torch.equal(out.output, ref_out.output)
    # no error: no correction, recompute, rollback or replay
    assert e.recompute == 0 and e.rollback == 0 and e.replay == 0
    assert acc.stats.abft_detections == 0 and acc.stats.rollbacks == 0
    # checks: exactly the checker's overhead of every GEMM, iff the policy uses ABFT
    if acc.checker is not None:
        expect = sum(
            acc.checker.overhead(M, N, K, op, lt).energy_j for M, N, K, lt, op in ref.calls
        )
        assert e.abft == pytest.approx(expect, rel=1e-9)
        assert acc.stats.abft_checks == len(ref.calls)
    else:
        assert e.abft == 0
    # detection latches: a fixed share of the PE array's energy, iff the policy needs them
    if acc.manifestation in ("razor", "drop"):
        pe_leak = sum(
            pe_leakage_power(HW, op.vdd) * ref.layer_perf(M, N, K, op).timing.total_s
            for M, N, K, _, op in ref.calls
        )
        assert e.detection == pytest.approx(HW.tech.detect_overhead * (base.mac + pe_leak))
    else:
        assert e.detection == 0
    # checkpoints only for a policy that rolls back; the kept copy is the output the layer
    # already writes, so only the int8 rows' scales are extra
    if acc.rolls_back:
        assert acc.stats.checkpoints > 0 and 0 < e.checkpoint < 1e-3 * e.total
    else:
        assert e.checkpoint == 0 and acc.stats.checkpoints == 0
    # transitions only for policies that change point
    if len({(op.vdd, op.freq) for op in ops}) == 1:
        assert e.dvfs == 0
    fixed = sum(getattr(e, c) for c in OVERHEAD_COMPONENTS)
    assert e.total == pytest.approx(base.total + fixed, rel=1e-12)
    # the fixed overheads of every policy stay under 3% on dit-digits
    assert fixed / e.total < 0.03, f"{spec}: fixed overheads {100 * fixed / e.total:.2f}%"


def test_thundervolt_costs_more_than_uniform_at_the_same_point(session):
    _, uni, _ = _protected_run(session, f"uniform:vdd={SAFE_V}")
    _, tv, _ = _protected_run(session, f"thundervolt:vdd={SAFE_V}")
    assert tv.report.total_energy_j > uni.report.total_energy_j
    diff = tv.report.total_energy_j - uni.report.total_energy_j
    assert diff == pytest.approx(tv.report.energy_j.detection, rel=1e-9)


def test_offloaded_checkpoints_are_charged_as_whole_dram_writes(session):
    spec = f"drift:vdd={SAFE_V},protect=0.4,interval=1"
    kept, _, _ = _protected_run(session, spec)
    off, out, _ = _protected_run(session, spec, abft="drift:offload_checkpoints=true")
    assert off.stats.checkpoint_bytes == kept.stats.checkpoint_bytes > 0
    per_byte = HW.tech.dram_j_per_byte
    e = out.report.energy_j.checkpoint
    # DRAM write plus the ofmap SRAM read of every stored byte (and leakage of exposed time)
    assert e >= off.stats.checkpoint_bytes * per_byte
    assert e < off.stats.checkpoint_bytes * per_byte * 2


# --------------------------------------------------------------------------- unit level


def _ctx(t: int, call: int, module: str = "blocks.1.mlp.fc1") -> GemmContext:
    return GemmContext(
        module=module, block="blocks.1", block_index=1, layer_type="fc1", timestep=t, call=call
    )


class _Corrupting(ProtectedAccelerator):
    """A protected accelerator whose GEMMs at ``bad_steps`` get one huge accumulator error."""

    def __init__(self, bad_steps: set[int], **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(HW, kernel="reference", **kw)
        self.bad_steps = bad_steps


def _patch_base(monkeypatch, acc: _Corrupting) -> None:  # type: ignore[no-untyped-def]
    """The array under ``acc``'s protection produces one huge error at its bad steps."""
    orig = Accelerator.gemm

    def gemm(self, A, B, ctx, op):  # type: ignore[no-untyped-def]
        r = orig(self, A, B, ctx, op)
        if self is acc and ctx.timestep in acc.bad_steps:
            out = r.out.copy()
            out[3, 5] += np.int32(1 << 30)
            return GemmResult(out, r.errors)
        return r

    monkeypatch.setattr(Accelerator, "gemm", gemm)


def _operands(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.integers(-60, 60, (16, 24), dtype=np.int8)
    B = rng.integers(-60, 60, (24, 12), dtype=np.int8)
    return A, B


def test_rollback_replaces_located_values_with_the_previous_checkpoint(monkeypatch):
    acc = _Corrupting({1}, abft="drift", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint.nominal(HW.tech)
    A0, B = _operands(0)
    A1, _ = _operands(1)
    sa0, sa1 = 0.01, 0.02  # the two steps' activation scales differ
    r0 = acc.gemm(A0, B, _ctx(0, 0), op)
    y0 = acc.finish_output(_ctx(0, 0), torch.from_numpy(r0.out.astype(np.float32) * sa0))
    assert acc.stats.checkpoints == 1 and acc.stats.rollbacks == 0
    r1 = acc.gemm(A1, B, _ctx(1, 1), op)
    assert acc.stats.rollbacks == 1 and acc.stats.rolled_back_elements == 1
    y1 = acc.finish_output(_ctx(1, 1), torch.from_numpy(r1.out.astype(np.float32) * sa1))
    # the located element now holds step 0's *value* (its own dequantization, int8 per row)
    row = y0[3].numpy()
    scale = np.abs(row).max() / 127.0
    expect = np.rint(row[5] / scale) * scale
    assert float(y1[3, 5]) == pytest.approx(expect, rel=1e-6)
    assert abs(float(y1[3, 5]) - float(y0[3, 5])) <= scale / 2 + 1e-9
    # everything else is step 1's own output
    exact1 = (A1.astype(np.int64) @ B.astype(np.int64)).astype(np.float32) * sa1
    mask = np.ones(y1.shape, bool)
    mask[3, 5] = False
    assert np.array_equal(y1.numpy()[mask], exact1[mask])
    # the read of the one element is charged once, to rollback
    expect_e = rollback_cost(1, HW, op, bytes_per_element=1).energy_j
    assert acc.ledger.total.rollback == pytest.approx(expect_e, rel=1e-12)


def test_rollback_without_a_checkpoint_recomputes_at_the_safe_point(monkeypatch):
    acc = _Corrupting({0}, abft="drift", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint(vdd=0.8, freq=1e9)
    A, B = _operands(0)
    before = acc.report().latency_s
    r = acc.gemm(A, B, _ctx(0, 0), op)
    exact = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)
    assert np.array_equal(r.out, exact)
    assert acc.stats.rollbacks == 0 and acc.stats.recomputes == 1
    e = acc.ledger.total
    assert e.recompute > 0 and e.rollback == 0
    # the recompute has MACs, SRAM, leakage and time, not only a DRAM read
    checker = AbftChecker("drift", HW)
    res = checker.check(A, B, r.out.copy(), _ctx(0, 0), op=op)
    assert not res.detected
    lp = acc.layer_perf(A.shape[0], B.shape[1], A.shape[1], op)
    assert acc.report().latency_s - before > lp.timing.total_s


def test_rollback_none_leaves_errors_in_and_charges_no_rollback(monkeypatch):
    acc = _Corrupting({0, 1}, abft="drift", rollback="none", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint.nominal(HW.tech)
    A, B = _operands(0)
    for t in (0, 1):
        r = acc.gemm(A, B, _ctx(t, t), op)
        assert r.out[3, 5] != (A.astype(np.int64) @ B.astype(np.int64))[3, 5]
    e = acc.ledger.total
    assert e.rollback == 0 and e.recompute == 0 and e.checkpoint == 0 and e.abft > 0
    assert not acc.output_hook and acc.stats.checkpoints == 0


def test_classic_abft_corrects_and_never_checkpoints(monkeypatch):
    acc = _Corrupting({0, 1}, abft="classic", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint.nominal(HW.tech)
    A, B = _operands(0)
    for t in (0, 1):
        r = acc.gemm(A, B, _ctx(t, t), op)
        assert np.array_equal(r.out, (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32))
    assert acc.stats.abft_corrections == 2 and acc.stats.recomputes == 0
    assert not acc.output_hook and acc.ledger.total.checkpoint == 0


def test_checkpoint_ordinals_restart_each_step(monkeypatch):
    acc = _Corrupting(set(), abft="drift", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint.nominal(HW.tech)
    A, B = _operands(0)
    keys = []
    for t in (0, 1, 1):  # step 1 redone (latent rollback): ordinals restart with the step
        if keys and keys[-1][0] == t:
            acc._ordinal_step = None
        acc.gemm(A, B, _ctx(t, len(keys)), op)
        keys.append((t, acc._pending[len(keys)].key))
    assert [k for _, k in keys] == [("blocks.1.mlp.fc1", 0)] * 3


def test_razor_replays_cost_time_and_energy():
    op = OperatingPoint(vdd=0.70, freq=1e9)
    rng = np.random.default_rng(3)
    A = rng.integers(-128, 127, (256, 512), dtype=np.int8)
    B = rng.integers(-128, 127, (512, 256), dtype=np.int8)
    ctx = _ctx(0, 0)
    runs = {}
    for man in ("hold", "razor", "drop"):
        acc = Accelerator(HW, kernel="exact", chip=0, seed=0, manifestation=man)
        r = acc.gemm(A, B, ctx, op)
        runs[man] = (acc, r)
    errors = runs["razor"][1].errors.total
    assert errors > 0
    hold, razor, drop = (runs[m][0].report() for m in ("hold", "razor", "drop"))
    assert hold.energy_j.detection == 0 and hold.energy_j.replay == 0
    assert drop.energy_j.detection > 0 and drop.energy_j.replay == 0
    assert razor.energy_j.detection == pytest.approx(drop.energy_j.detection)
    stall = errors * HW.tech.replay_cycles / op.freq
    assert razor.latency_s - hold.latency_s == pytest.approx(stall, rel=1e-9)
    assert razor.energy_j.replay > 0
    # razor's output is correct, drop's is not
    exact = (A.astype(np.int64) @ B.astype(np.int64)).astype(np.int32)
    assert np.array_equal(runs["razor"][1].out, exact)
    assert not np.array_equal(runs["drop"][1].out, exact)


def test_recompute_at_the_safe_point_pays_the_regulator_switch(monkeypatch):
    acc = _Corrupting({0}, abft="drift", checkpoint_interval=1)
    _patch_base(monkeypatch, acc)
    op = OperatingPoint(vdd=0.75, freq=1e9)
    A, B = _operands(0)
    acc.gemm(A, B, _ctx(0, 0), op)  # no checkpoint yet: recompute at 0.9 V and back
    e = acc.ledger.total
    tm = acc.tracker.model
    switch = tm.cost(op, acc.checker.safe_op).energy_j + tm.cost(acc.checker.safe_op, op).energy_j
    assert switch > 0 and e.dvfs == pytest.approx(switch)
    stall = tm.cost(op, acc.checker.safe_op).stall_s + tm.cost(acc.checker.safe_op, op).stall_s
    lp = acc.layer_perf(16, 12, 24, op)
    assert acc.report().latency_s > lp.timing.total_s + stall


def test_latent_rollback_keeps_the_redone_steps_at_the_safe_point():
    acc = ProtectedAccelerator(HW, policy=parse_policy("uniform:vdd=0.75", HW), abft="drift",
                               rollback="latent")  # fmt: skip
    ctx = _ctx(3, 0)
    acc._step_critical = True
    assert acc.guard(3, 0) == "rollback"
    nominal = OperatingPoint.nominal(HW.tech)
    for step in (2, 3):  # redone from the checkpoint at step 2 up to the failed step 3
        assert acc.decide(_ctx(step, 0)) == nominal
        assert acc.guard(step, 0) == "ok"
    assert acc.decide(ctx) == OperatingPoint(vdd=0.75, freq=1e9)


def test_float_formats_refuse_protection():
    from accelsim.errors import ConfigError
    from accelsim.experiments import trials

    with pytest.raises(ConfigError, match="quant: got 'fp16' with a policy or ABFT"):
        trials.normalize({"model": "dit-digits", "quant": "fp16", "policy": "uniform:vdd=0.8"})
