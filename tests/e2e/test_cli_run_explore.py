"""`accelsim run`, `accelsim models` and `accelsim explore` from the command line (small sizes)."""

from __future__ import annotations

import csv
import json

import pytest

from accelsim.cli import main
from accelsim.experiments.explore import COLUMNS


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_json(capsys):
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {
        "dit-digits",
        "unet-digits",
        "vdit-digits",
        "vit-digits",
        "gpt-tiny",
        "feature-net",
    }
    assert all(
        r["checkpoint_present"] and r["params"] > 0 and r["gemm_macs_per_forward"] > 0
        for r in rows.values()
    )


def test_run_classifier_with_one_weight_flip(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "run",
        "--model",
        "vit-digits",
        "--samples",
        "24",
        "--fault",
        "bitflip",
        "--target",
        "weights",
        "--bit",
        "30",
        "--format",
        "fp32",
        "--count",
        "1",
        "--seed",
        "3",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    m = json.loads(out)
    assert m["faults_injected"] == 1 and m["format"] == "fp32"
    assert m["fault_log"][0]["bit"] == 30 and m["fault_log"][0]["target"] == "weights"
    for key in (
        "accuracy",
        "golden_accuracy",
        "top1_flips",
        "critical_sdc",
        "energy_j",
        "latency_s",
    ):
        assert key in m
    assert json.loads((tmp_path / "metrics.json").read_text())["critical_sdc"] == m["critical_sdc"]


def test_run_diffusion_undervolted_writes_metrics_and_samples(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "run",
        "--model",
        "dit-digits",
        "--vdd",
        "0.78",
        "--freq",
        "1.0",
        "--steps",
        "2",
        "--samples",
        "2",
        "--guidance",
        "1",
        "--seed",
        "0",
        "--out",
        str(tmp_path),
    )
    assert code == 0, out
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "psnr_db",
        "ssim",
        "feature_distance",
        "energy_j",
        "latency_s",
        "errors_injected",
        "errors_by_layer_type",
    ):
        assert key in m
    assert (
        m["errors_injected"] > 0 and sum(m["errors_by_layer_type"].values()) == m["errors_injected"]
    )
    assert 0 < m["energy_saving"] < 0.5 and m["energy_j"] < m["nominal_energy_j"]
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in out


def test_run_at_nominal_equals_golden(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "run",
        "--model",
        "dit-digits",
        "--steps",
        "2",
        "--samples",
        "1",
        "--guidance",
        "1",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    m = json.loads(out)
    assert m["psnr_db"] is None and m["feature_distance"] == 0 and m["errors_injected"] == 0
    assert m["energy_saving"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--model", "nope"], "nope"),
        (["run", "--model", "vit-digits", "--vdd", "0.1"], "vdd: got 0.1"),
        (["run", "--model", "vit-digits", "--bit", "3"], "--bit: given without --fault"),
        (
            [
                "run",
                "--model",
                "vit-digits",
                "--fault",
                "bitflip",
                "--format",
                "int8",
                "--bit",
                "9",
            ],
            "bit",
        ),
        (["explore", "--policies", "nominal,fancy"], "--policies: got 'fancy'"),
        (["explore", "--mode", "sideways"], "invalid choice"),
        (["explore", "--chips", "0"], "invalid choice"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, tmp_path, args, needle):
    with pytest.raises(SystemExit) if "invalid choice" in needle else _nullcontext():
        code, _, err = run(
            capsys, *args, *(["--out", str(tmp_path)] if args[0] in ("run", "explore") else [])
        )
        assert code == 2
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_explore_small_grid_writes_everything_and_resumes(capsys, tmp_path):
    args = [
        "explore",
        "--mode",
        "undervolt",
        "--policies",
        "nominal,uniform,thundervolt",
        "--vdd",
        "0.8",
        "--steps",
        "2",
        "--samples",
        "2",
        "--chips",
        "1",
        "--seeds",
        "1",
        "--threshold",
        "0.01",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    code, out, _ = run(capsys, *args)
    assert code == 0, out
    with (tmp_path / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS
    assert [r["policy"] for r in rows] == ["nominal", "uniform", "thundervolt"]
    nominal = rows[0]
    assert float(nominal["energy_saving"]) == 0 and float(nominal["feature_distance"]) == 0
    uniform = rows[1]
    assert float(uniform["energy_saving"]) > 0.05 and int(uniform["timing_errors"]) > 0
    assert "Best policy" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun finds every configuration done and adds no row
    code, out, _ = run(capsys, *args)
    assert code == 0
    with (tmp_path / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 3


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


def test_explore_rows_do_not_depend_on_the_worker_count(tmp_path):
    from accelsim.config import load_preset
    from accelsim.experiments.explore import ExploreConfig, explore

    cfg = ExploreConfig(
        modes=("undervolt",),
        policies=("nominal", "uniform", "thundervolt"),
        vdd=(0.8,),
        chips=(0, 1),
        seeds=(0,),
        steps=2,
        samples=1,
        threshold=0.01,
    )
    hw = load_preset("tpu-128x128")
    serial, _ = explore(cfg, hw, tmp_path / "w1", workers=1)
    pooled, _ = explore(cfg, hw, tmp_path / "w2", workers=2)

    def key(rows):
        return sorted(tuple(str(r[k]) for k in COLUMNS if k != "wall_s") for r in rows)

    assert len(serial) == 6 and key(serial) == key(pooled)
