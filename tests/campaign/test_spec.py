"""Campaign expansion: Cartesian grid, fixed/include, stable trial ids, rejected keys."""

from __future__ import annotations

import hashlib

import pytest

from accelsim.campaign import canonical_json, load_campaign, parse_campaign, trial_id
from accelsim.errors import ConfigError


def _camp(**sections: object) -> dict[str, object]:
    data: dict[str, object] = {"campaign": {"name": "t", "trial": "synthetic"}}
    data.update(sections)
    return data


def test_trial_id_is_fixed_sha256_of_canonical_json():
    config = {"x": 1.5, "seed": 7, "name": "a"}
    expected = "de57bcca9aeea718a75ca41ac55edb377497bdd85b3db2a95a9a7a0bfae88e9c"
    assert trial_id("synthetic", config) == expected
    text = '{"config":{"name":"a","seed":7,"x":1.5},"kind":"synthetic"}'
    assert canonical_json({"kind": "synthetic", "config": config}) == text
    assert hashlib.sha256(text.encode()).hexdigest() == expected
    # key order does not matter; every value, the seed and the kind do
    assert trial_id("synthetic", {"name": "a", "seed": 7, "x": 1.5}) == expected
    assert trial_id("synthetic", {**config, "seed": 8}) != expected
    assert trial_id("synthetic", {**config, "x": 1.25}) != expected
    assert trial_id("gemm-ter", config) != expected


def test_gemm_ter_id_fixed_and_includes_defaults():
    camp = parse_campaign(
        {"campaign": {"name": "g", "trial": "gemm-ter"}, "fixed": {"vdd": 0.8, "freq": 1.0}}
    )
    (trial,) = camp.trials
    assert trial.id == "4919692370df9b169747e2e8468ac66e0896fecb379843a4de63fa3374950d36"
    assert trial.config["seed"] == 0 and trial.config["m"] == 64
    # int and float spellings of the same operating point are the same trial
    same = parse_campaign(
        {"campaign": {"name": "g", "trial": "gemm-ter"}, "fixed": {"vdd": 0.8, "freq": 1}}
    )
    assert same.trials[0].id == trial.id


def test_grid_is_cartesian_product_in_written_order_then_includes():
    camp = parse_campaign(
        _camp(
            grid={"a": [1, 2, 3], "b": ["x", "y"]},
            fixed={"c": 0.5},
            include=[{"a": 9, "b": "z"}, {"a": 1, "b": "x"}],  # the 2nd duplicates a grid point
        )
    )
    points = [(t.config["a"], t.config["b"]) for t in camp.trials]
    assert points == [(1, "x"), (1, "y"), (2, "x"), (2, "y"), (3, "x"), (3, "y"), (9, "z")]
    assert all(t.config["c"] == 0.5 and t.config["seed"] == 0 for t in camp.trials)
    assert len({t.id for t in camp.trials}) == 7
    # the same definition gives the same ids again
    again = parse_campaign(
        _camp(
            grid={"a": [1, 2, 3], "b": ["x", "y"]}, fixed={"c": 0.5}, include=[{"a": 9, "b": "z"}]
        )
    )
    assert [t.id for t in again.trials] == [t.id for t in camp.trials]


def test_fixed_only_is_one_trial_and_seed_grid_multiplies():
    assert len(parse_campaign(_camp(fixed={"a": 1})).trials) == 1
    assert len(parse_campaign(_camp(grid={"seed": list(range(5)), "a": [1, 2]})).trials) == 10


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_camp(grdi={"a": [1]}), r"grdi: unknown key \(did you mean 'grid'\?\)"),
        ({"campaign": {"name": "t", "trail": "synthetic"}}, r"did you mean 'trial'"),
        (_camp(grid={"a": 1}), r"grid\.a: got 1, expected a non-empty list"),
        (_camp(grid={"a": []}), r"grid\.a: got \[\], expected a non-empty list"),
        (_camp(grid={"a": [1]}, fixed={"a": 2}), r"grid\.a: also in \[fixed\]"),
        ({"campaign": {"name": "t", "trial": "synthetc"}}, r"did you mean 'synthetic'"),
        ({"campaign": {"trial": "synthetic"}}, r"campaign\.name"),
        ({"grid": {}}, r"missing \[campaign\]"),
        (_camp(fixed={"seed": -1}), r"seed: got -1"),
    ],
)
def test_bad_campaigns_rejected_with_one_line(data, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_campaign(data)
    assert "\n" not in str(info.value)


def test_gemm_ter_rejects_unknown_and_bad_keys():
    base = {"campaign": {"name": "g", "trial": "gemm-ter"}}
    with pytest.raises(ConfigError, match=r"vdd_: unknown key \(did you mean 'vdd'\?\)"):
        parse_campaign({**base, "fixed": {"vdd_": 0.8, "vdd": 0.8, "freq": 1.0}})
    with pytest.raises(ConfigError, match=r"freq: missing"):
        parse_campaign({**base, "fixed": {"vdd": 0.8}})
    with pytest.raises(ConfigError, match=r"trial 1 \(freq=1\.0, vdd=5\.0\): vdd: got 5 V"):
        parse_campaign({**base, "grid": {"vdd": [0.8, 5.0]}, "fixed": {"freq": 1.0}})
    with pytest.raises(ConfigError, match=r"chip: got 'fast'"):
        parse_campaign({**base, "fixed": {"vdd": 0.8, "freq": 1.0, "chip": "fast"}})
    with pytest.raises(ConfigError, match=r"dataflow: got 'xs'"):
        parse_campaign({**base, "fixed": {"vdd": 0.8, "freq": 1.0, "dataflow": "xs"}})


def test_load_campaign_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_campaign(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign\nname = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_campaign(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[campaign]\nname = "x"\ntrial = "synthetic"\n[fixd]\na = 1\n')
    with pytest.raises(ConfigError, match=r"typo\.toml: fixd: unknown key \(did you mean 'fixed'"):
        load_campaign(typo)


def test_shipped_campaigns_expand():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "campaigns"
    smoke = load_campaign(root / "smoke.toml")
    assert smoke.kind == "gemm-ter" and len(smoke.trials) == 40
    sweep = load_campaign(root / "gemm-ter-sweep.toml")
    assert len(sweep.trials) == 16 * 4 * 9 * 2 * 2 + 2
