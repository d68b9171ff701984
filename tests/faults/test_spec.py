"""CLI-like fault specs: every kind parses; bad input is a one-line ConfigError."""

from __future__ import annotations

import pytest

from accelsim.errors import ConfigError
from accelsim.faults import (
    ActivationClipping,
    BitFlip,
    RandomValues,
    RowColumnFault,
    StuckAt,
    Target,
    TimingErrors,
    fault_from_dict,
    parse_fault_spec,
)


def test_bitflip_spec():
    f = parse_fault_spec("--fault bitflip --target weights --bit 30 --format fp32 --count 1")
    # weights are faulted in memory: the count is per run unless --per call says otherwise
    assert f == BitFlip(target="weights", fmt="fp32", bits=(30,), count=1, per="run")
    g = parse_fault_spec("--fault bitflip --target weights --bit 30 --count 1 --per call")
    assert g.per == "call"
    h = parse_fault_spec("--fault bitflip --target outputs --bit 30 --count 1")
    assert h.per == "call"
    g = parse_fault_spec(
        "--fault bitflip --bit 24-26,30 --rate 1e-6 --multiplicity 2 --adjacent "
        "--module blocks.*.attn.* --module head --timestep 0-2,9 --block 3 --layer-type qkv"
    )
    assert isinstance(g, BitFlip)
    assert g.bits == (24, 25, 26, 30) and g.rate == 1e-6 and g.pattern == "adjacent"
    assert g.scope == Target(
        modules=("blocks.*.attn.*", "head"),
        blocks=(3,),
        layer_types=("qkv",),
        timesteps=(0, 1, 2, 9),
    )


def test_other_kinds():
    assert isinstance(
        parse_fault_spec("--fault rowcol --array 8x8 --axis column --line 2"), RowColumnFault
    )
    r = parse_fault_spec(["--fault", "random-values", "--n", "5", "--value", "zero"])
    assert isinstance(r, RandomValues) and r.n == 5
    s = parse_fault_spec("--fault stuck-at --pe 1,2 --bit 31 --value 1 --array 4x4 --dataflow os")
    assert s == StuckAt(pe=(1, 2), bit=31, value=1, array=(4, 4), dataflow="os")
    assert parse_fault_spec("--fault timing --manifestation razor") == TimingErrors(
        manifestation="razor"
    )
    c = parse_fault_spec("--fault clip --mode clamp --margin 0.1")
    assert isinstance(c, ActivationClipping) and c.mode == "clamp"
    d = fault_from_dict(
        {"fault": "bitflip", "bit": [3, 4], "format": "int8", "count": 2, "per": "run"}
    )
    assert d == BitFlip(fmt="int8", bits=(3, 4), count=2, per="run")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "--fault bitflip --bit 31 --format int8",
            r"--bit: got 31 for int8, expected an integer in 0\.\.7",
        ),
        ("--fault bitflip --bit 16 --format bf16", r"0\.\.15"),
        ("--fault laser", "--fault: got 'laser', expected one of bitflip"),
        ("--fault bitflip --format fp64", "--format: got 'fp64'"),
        ("--fault bitflip --count two", "--count: got 'two', expected an integer"),
        ("--fault bitflip --pe 1,2", "--pe: not an option of --fault bitflip"),
        ("--fault bitflip --count", "--count: got no value"),
        ("--fault bitflip --rate 2", r"rate: got 2\.0, expected a probability"),
        ("--fault stuck-at --bit 3 --value 2 --pe 0,0", "--value: got '2', expected 0 or 1"),
        ("--fault bitflip --layer-type mlp", "layer_types: got 'mlp'"),
        ("fault bitflip", "expected an option like --fault"),
    ],
)
def test_errors_are_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_fault_spec(spec)
    assert "\n" not in str(e.value)
