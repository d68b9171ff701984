"""Projection of the small model's best policies onto a full-size workload's perf model."""

from __future__ import annotations

import csv

from accelsim.cli import main
from accelsim.experiments.explore import COLUMNS


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_projection_onto_the_full_size_workload(capsys, tmp_path):
    rows = [
        dict(
            policy="nominal",
            spec="nominal:mode=undervolt",
            mode="undervolt",
            vdd=0.9,
            freq_ghz=1.0,
            mean_vdd=0.9,
            mean_freq_ghz=1.0,
            meets_quality=True,
            energy_saving=0,
            speedup=1,
            feature_distance=0,
        ),
        dict(
            policy="uniform",
            spec="uniform:mode=undervolt,vdd=0.8",
            mode="undervolt",
            vdd=0.8,
            freq_ghz=1.0,
            mean_vdd=0.8,
            mean_freq_ghz=1.0,
            meets_quality=True,
            energy_saving=0.1,
            speedup=1,
            feature_distance=1e-5,
        ),
        dict(
            policy="drift",
            spec="drift:mode=undervolt,vdd=0.7",
            mode="undervolt",
            vdd=0.7,
            freq_ghz=1.0,
            mean_vdd=0.75,
            mean_freq_ghz=1.0,
            meets_quality=True,
            energy_saving=0.2,
            speedup=1,
            feature_distance=1e-5,
        ),
    ]
    with (tmp_path / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, 0) for k in COLUMNS})
    code, out, _ = run(
        capsys, "explore", "--model", "dit-xl2-256", "--projection", "--out", str(tmp_path)
    )
    assert code == 0
    assert "quality is the small model's" in out
    table = {
        line.split("|")[2].strip(): line
        for line in out.splitlines()
        if line.startswith("| undervolt")
    }
    # drift ran 25% of its MACs at nominal (mean 0.75 V between 0.7 and 0.9 V)
    assert "| 25% |" in table["drift"] and "| 0% |" in table["uniform"]
    saving = {k: float(v.split("|")[8].strip().rstrip("%")) for k, v in table.items()}
    assert saving["nominal"] == 0 and 0 < saving["uniform"] < saving["drift"] < 40
    assert (tmp_path / "projection.md").is_file()
