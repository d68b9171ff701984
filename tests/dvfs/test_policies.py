"""DVFS policies: decisions on synthetic contexts, modes, spec parsing, closed-loop control."""

from __future__ import annotations

import itertools
import math

import pytest

from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.context import GemmContext
from accelsim.dvfs import (
    ClosedLoopPolicy,
    DvfsSpace,
    SensitivityProfile,
    parse_policy,
)
from accelsim.errors import ConfigError
from accelsim.timing.delay import (
    critical_path_ratio,
    default_delay_params,
    zero_margin_frequency,
    zero_margin_voltage,
)

HW = HardwareConfig()
NOM = OperatingPoint(0.9, 1e9)
DP = default_delay_params()


def ctx(block="blocks.0", t=0, layer="fc1", index=None):
    bi = index if index is not None else (int(block.split(".")[-1]) if "." in block else None)
    return GemmContext(
        f"{block}.mlp.{layer}", block=block, block_index=bi, layer_type=layer, timestep=t
    )


def test_nominal():
    for mode in ("undervolt", "overclock"):
        p = parse_policy({"name": "nominal", "mode": mode}, HW)
        assert p.decide(ctx()) == NOM


def test_guardband_is_the_zero_margin_point():
    p = parse_policy("guardband", HW)
    op = p.decide(ctx())
    assert op.freq == 1e9
    assert op.vdd == pytest.approx(zero_margin_voltage(1e9, 0.9, 1e9, DP))
    assert critical_path_ratio(op.vdd, 1e9, 0.9, 1e9, DP) == pytest.approx(1.0, abs=1e-6)
    assert critical_path_ratio(op.vdd - 0.01, 1e9, 0.9, 1e9, DP) > 1.0
    assert op.vdd < 0.9
    oc = parse_policy("guardband:mode=overclock", HW).decide(ctx())
    assert oc.vdd == 0.9
    assert oc.freq == pytest.approx(zero_margin_frequency(0.9, 0.9, 1e9, DP))
    assert oc.freq > 1e9
    backed = parse_policy("guardband:margin=0.02", HW).decide(ctx())
    assert backed.vdd == pytest.approx(op.vdd + 0.018)


def test_uniform_and_mode_semantics():
    uv = parse_policy("uniform:vdd=0.72", HW)
    assert {uv.decide(ctx(b, t)) for b in ("blocks.0", "blocks.5") for t in (0, 9)} == {
        OperatingPoint(0.72, 1e9)
    }
    oc = parse_policy("uniform:mode=overclock,speedup=1.7", HW)
    assert oc.decide(ctx()) == OperatingPoint(0.9, 1.7e9)
    assert parse_policy("uniform:mode=overclock,freq_ghz=1.5", HW).decide(ctx()).freq == 1.5e9
    assert parse_policy("uniform:v_scale=0.8", HW).decide(ctx()).vdd == pytest.approx(0.72)
    with pytest.raises(ConfigError, match="overclock mode"):
        parse_policy("uniform:mode=overclock,vdd=0.7", HW)
    with pytest.raises(ConfigError, match="undervolt mode"):
        parse_policy("uniform:freq=2e9", HW)
    with pytest.raises(ConfigError, match=r"validity range|expected a number"):
        parse_policy("uniform:vdd=0.2", HW)


def test_timestep_ranges():
    p = parse_policy("timestep:vdd=0.7,ranges=10-20;30-40", HW)
    aggressive = OperatingPoint(0.7, 1e9)
    got = {t: p.decide(ctx(t=t)) for t in (0, 9, 10, 19, 20, 30, 39, 40)}
    assert [t for t, op in got.items() if op == aggressive] == [10, 19, 30, 39]
    assert all(op == NOM for t, op in got.items() if op != aggressive)
    assert p.decide(GemmContext("embed", timestep=None)) == NOM
    after = parse_policy({"name": "timestep", "vdd": 0.7, "after": 5, "safe": "guardband"}, HW)
    assert after.decide(ctx(t=4)).vdd == pytest.approx(zero_margin_voltage(1e9, 0.9, 1e9, DP))
    assert after.decide(ctx(t=500)) == aggressive
    oc = parse_policy("timestep:mode=overclock,speedup=1.7,ranges=0-3", HW)
    assert oc.decide(ctx(t=1)) == OperatingPoint(0.9, 1.7e9) and oc.decide(ctx(t=3)) == NOM


def _drift_profile():
    # DRIFT's finding: early blocks and early timesteps are the most sensitive.
    blocks = [f"blocks.{i}" for i in range(4)]
    steps = list(range(10))
    values = [[(4 - i) * (10 - t) / 40.0 for t in steps] for i in range(4)]
    return SensitivityProfile.from_grid(blocks, steps, values)


def test_drift_protects_fragile_cells():
    prof = _drift_profile()
    p = parse_policy("drift:vdd=0.68,threshold=0.5", HW, profile=prof)
    assert p.abft == "drift"
    fragile = {
        (i, t) for i in range(4) for t in range(10) if p.decide(ctx(f"blocks.{i}", t)) == NOM
    }
    expected = {(i, t) for i in range(4) for t in range(10) if (4 - i) * (10 - t) / 40 > 0.5}
    assert fragile == expected
    assert (0, 0) in fragile and (3, 9) not in fragile
    assert p.decide(ctx("blocks.3", 9)) == OperatingPoint(0.68, 1e9)
    # unknown block / timestep outside the table: safe by default, aggressive on request
    assert p.decide(ctx("final_layer", 0, index=None)) == NOM
    loose = parse_policy("drift:vdd=0.68,threshold=0.5,missing=aggressive", HW, profile=prof)
    assert loose.decide(ctx("blocks.1", 50)) == OperatingPoint(0.68, 1e9)
    # protect a fraction of the cells instead of a threshold
    frac = parse_policy("drift:vdd=0.68,protect=0.1", HW, profile=prof)
    n_safe = sum(frac.decide(ctx(f"blocks.{i}", t)) == NOM for i in range(4) for t in range(10))
    assert 4 <= n_safe <= 6  # 10% of 40 cells, plus ties at the cut
    with pytest.raises(ConfigError, match="profile"):
        parse_policy("drift:vdd=0.68", HW)


def test_drift_profile_csv_file(tmp_path):
    path = tmp_path / "prof.csv"
    path.write_text(
        "# block x timestep sensitivity\n"
        "block,t_start,t_stop,sensitivity\n"
        "blocks.0,0,5,0.9\n"
        "blocks.0,5,inf,0.1\n"
        "*,0,inf,0.05\n"
    )
    p = parse_policy({"name": "drift", "vdd": 0.7, "profile": str(path), "threshold": 0.5}, HW)
    assert p.decide(ctx("blocks.0", 3)) == NOM
    assert p.decide(ctx("blocks.0", 7)).vdd == 0.7
    assert p.decide(ctx("blocks.9", 0)).vdd == 0.7  # '*' row
    assert p.decide(GemmContext("blocks.0.attn", block="blocks.0", timestep=None)) == NOM


def test_thundervolt_hints_drop():
    p = parse_policy("thundervolt:vdd=0.66", HW)
    assert p.manifestation == "drop"
    assert p.decide(ctx("blocks.2", 7)) == OperatingPoint(0.66, 1e9)


@pytest.mark.parametrize(
    "spec",
    [
        "nope",
        "uniform",
        "uniform:vdd=0.7,color=red",
        "timestep:vdd=0.7",
        "timestep:vdd=0.7,ranges=20-10",
        "uniform:vdd=0.7,mode=sideways",
        "closed-loop:backoff=0",
        "closed-loop:limit=0.95",
        "guardband:vdd",
    ],
)
def test_bad_specs_raise_one_line(spec):
    with pytest.raises(ConfigError) as exc:
        parse_policy(spec, HW)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- closed loop


def curve(boundary, target=1e-8, decade_v=0.05):
    """Synthetic detection rate per MAC: one decade per 50 mV, equal to target at boundary."""

    def rate(v):
        return target * 10 ** ((boundary - v) / decade_v)

    return rate


def run(policy, rate, n, c, macs=10**9, knob=lambda op: op.vdd):
    trace = []
    for _ in range(n):
        op = policy.decide(c)
        trace.append(knob(op))
        policy.observe(c, detections=math.floor(rate(knob(op)) * macs), macs=macs)
    return trace


def test_closed_loop_converges_to_the_boundary_and_backs_off():
    p = parse_policy("closed-loop:target=1e-8,step=0.01,backoff=3", HW)
    assert isinstance(p, ClosedLoopPolicy) and p.abft == "classic"
    c = ctx("blocks.0")
    trace = run(p, curve(0.70), 120, c)
    assert trace[0] == 0.9
    assert all(a - b == pytest.approx(0.01) for a, b in itertools.pairwise(trace[:6]))
    tail = trace[40:]
    # oscillates just around the boundary: never more than one step past it, never more than
    # the back-off above it
    assert min(tail) >= 0.70 - 0.01 - 1e-9
    assert max(tail) <= 0.70 + 0.03 + 1e-9
    assert p.states["blocks.0"].backoffs >= 5
    # the chip degrades (boundary moves up to 0.78 V): the controller backs off above it
    trace2 = run(p, curve(0.78), 60, c)
    assert min(trace2[20:]) >= 0.78 - 0.01 - 1e-9
    assert trace2[1] > trace2[0]  # immediate back-off


def test_closed_loop_is_per_block_bounded_and_deterministic():
    p = parse_policy("closed-loop:target=1e-8,step=0.01,backoff=2,limit=0.8", HW)
    never = run(p, lambda v: 0.0, 50, ctx("blocks.1"))
    assert min(never) == pytest.approx(0.8)  # bounded by the limit
    assert p.decide(ctx("blocks.2")) == NOM  # other blocks untouched
    a = run(parse_policy("closed-loop", HW), curve(0.7), 80, ctx())
    b = run(parse_policy("closed-loop", HW), curve(0.7), 80, ctx())
    assert a == b
    p.reset()
    assert p.decide(ctx("blocks.1")) == NOM


def test_closed_loop_window_and_guardband_start():
    p = parse_policy("closed-loop:start=guardband,window=3000000000", HW)
    zm = zero_margin_voltage(1e9, 0.9, 1e9, DP)
    v0 = p.decide(ctx()).vdd
    assert zm <= v0 < zm + 0.01 + 1e-9
    c = ctx()
    for _ in range(2):  # window not yet full: no move
        p.observe(c, 0, 10**9)
        assert p.decide(c).vdd == v0
    p.observe(c, 0, 10**9)
    assert p.decide(c).vdd == pytest.approx(v0 - 0.01)


def test_closed_loop_overclock_mode():
    p = parse_policy("closed-loop:mode=overclock,target=1e-8,step=2e7,backoff=3", HW)
    space = DvfsSpace.for_hardware(HW, "overclock")
    assert p.space == space

    def rate(f):  # errors rise with frequency; boundary at 1.5 GHz
        return 1e-8 * 10 ** ((f - 1.5e9) / 1e8)

    trace = run(p, rate, 120, ctx(), knob=lambda op: op.freq)
    assert all(op_v == 0.9 for op_v in [p.decide(ctx()).vdd])
    tail = trace[60:]
    assert min(tail) >= 1.5e9 - 3 * 2e7 - 1
    assert max(tail) <= 1.5e9 + 2e7 + 1
