"""Sensitivity profile table: lookup rules, CSV round trip, one-line errors."""

from __future__ import annotations

import pytest

from accelsim.dvfs.profile import (
    ProfileCell,
    SensitivityProfile,
    load_profile,
    parse_profile_csv,
)
from accelsim.errors import ConfigError


def test_lookup_ranges_wildcard_and_outside():
    prof = SensitivityProfile(
        (
            ProfileCell("blocks.0", 0, 5, 0.9),
            ProfileCell("blocks.0", 5, 50, 0.1),
            ProfileCell("", 0, 50, 0.7),
            ProfileCell("*", 0, 50, 0.2),
        )
    )
    assert prof.lookup("blocks.0", 4) == 0.9
    assert prof.lookup("blocks.0", 5) == 0.1
    assert prof.lookup("blocks.0", 50) is None
    assert prof.lookup("blocks.0", None) == 0.9  # conservative outside the sampler
    assert prof.lookup("", 3) == 0.7
    assert prof.lookup("blocks.7", 3) == 0.2
    assert prof.quantile_threshold(0.25) == 0.9
    assert prof.quantile_threshold(0.5) == 0.7


def test_csv_round_trip_and_timestep_column(tmp_path):
    prof = SensitivityProfile.from_grid(
        ["blocks.0", "blocks.1"], [0, 1, 2], [[3, 2, 1], [0.5, 0.25, 0]]
    )
    again = parse_profile_csv(prof.to_csv())
    assert again == prof
    path = tmp_path / "p.csv"
    path.write_text("block,timestep,sensitivity\n-,0,1.5\nblocks.3,2,0.25\n")
    loaded = load_profile(path)
    assert loaded.lookup("", 0) == 1.5 and loaded.lookup("blocks.3", 2) == 0.25
    assert loaded.lookup("blocks.3", 3) is None


@pytest.mark.parametrize(
    "text",
    [
        "block,sensitivity\nblocks.0,1\n",
        "block,t_start,t_stop,sensitivity\nblocks.0,5,3,1\n",
        "block,t_start,t_stop,sensitivity\nblocks.0,0,3,high\n",
        "block,timestep,sensitivity\nblocks.0,x,1\n",
        "block,t_start,t_stop,sensitivity\n",
    ],
)
def test_bad_csv_one_line_errors(text):
    with pytest.raises(ConfigError) as exc:
        parse_profile_csv(text)
    assert "\n" not in str(exc.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_profile("/nonexistent/profile.csv")
