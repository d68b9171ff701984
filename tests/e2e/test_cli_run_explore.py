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
        "0.70",
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
        "timing_errors",
        "energy_by_component",
        "errors_by_layer_type",
    ):
        assert key in m
    assert m["timing_errors"] > 0 and sum(m["errors_by_layer_type"].values()) == m["timing_errors"]
    assert 0 < m["energy_saving"] < 0.5 and m["energy_j"] < m["nominal_energy_j"]
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in out
    parts = m["energy_by_component"]
    assert set(parts) >= {
        "mac", "sram", "dram", "leakage", "abft", "rollback", "checkpoint", "detection", "dvfs"
    }  # fmt: skip
    assert sum(parts.values()) == pytest.approx(m["energy_j"], rel=1e-12)


@pytest.mark.parametrize(
    "spec",
    [
        "nominal",
        "guardband:margin=0.1",
        "uniform",
        "thundervolt",
        "timestep:after=1",
        "closed-loop:target=1e-6,limit=0.88",
        "drift:protect=0.5",
    ],
)
def test_run_every_policy_at_an_error_free_point(capsys, tmp_path, spec):
    """At a point with zero timing errors every policy costs uniform's energy at the same mean
    point plus its documented fixed overheads; thundervolt costs more than uniform."""
    profile = tmp_path / "prof.csv"
    profile.write_text(
        "block,t_start,t_stop,sensitivity\n"
        + "".join(f"blocks.{b},0,inf,{b}\n" for b in range(4))
        + "-,0,inf,9\n"
    )
    name = spec.partition(":")[0]
    point = [] if name in ("nominal", "guardband", "closed-loop") else ["--vdd", "0.88"]
    base = ["run", "--model", "dit-digits", "--steps", "2", "--samples", "1", "--json"]
    code, out, err = (
        run(
            capsys,
            *base,
            "--policy",
            spec,
            *point,
            "--profile",
            str(profile),
            "--out",
            str(tmp_path),
        )
        if name == "drift"
        else run(capsys, *base, "--policy", spec, *point, "--out", str(tmp_path))
    )
    assert code == 0, err
    m = json.loads(out)
    assert m["timing_errors"] == 0
    code, out, _ = run(
        capsys, *base, "--policy", "uniform", "--vdd", f"{m['mean_vdd']:.12g}", "--out",
        str(tmp_path / "u"),
    )  # fmt: skip
    u = json.loads(out)
    parts = m["energy_by_component"]
    fixed = sum(v for k, v in parts.items() if k not in ("mac", "sram", "dram", "leakage"))
    assert fixed / m["energy_j"] < 0.03
    if name in ("nominal", "guardband", "uniform", "thundervolt"):  # one point for every GEMM
        assert m["energy_j"] == pytest.approx(u["energy_j"] + fixed, rel=1e-9)
    if name == "thundervolt":
        assert m["energy_j"] > u["energy_j"] and parts["detection"] > 0
    else:
        assert parts["detection"] == 0
    assert (parts["abft"] > 0) == (name in ("drift", "closed-loop"))
    assert (m["checkpoints"] > 0) == (name == "drift")


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
    assert m["psnr_db"] is None and m["feature_distance"] == 0 and m["timing_errors"] == 0
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
                "--target",
                "inputs",
                "--format",
                "int8",
                "--bit",
                "9",
            ],
            "bit",
        ),
        (
            ["run", "--model", "vit-digits", "--fault", "bitflip", "--format", "int8"],
            "faults.format: got 'int8' for outputs in a w8a8 run, expected int32",
        ),
        (
            ["run", "--model", "dit-digits", "--policy", "uniform:vdd=0.8", "--vdd", "0.8"],
            "--policy: got 'uniform:vdd=0.8' with its own point (vdd)",
        ),
        (["run", "--model", "dit-digits", "--policy", "drift:vdd=0.8"], "drift.profile"),
        (["run", "--model", "dit-digits", "--policy", "fancy:vdd=0.8"], "policy: got 'fancy'"),
        (["explore", "--policies", "nominal,fancy"], "--policies: got 'fancy'"),
        (["explore", "--mode", "sideways"], "invalid choice"),
        (["explore", "--chips", "atypical"], "invalid choice"),
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


def _explore_args(tmp_path, *extra: str) -> list[str]:
    return [
        "explore",
        "--mode",
        "both",
        "--vdd",
        "0.7",
        "--freq",
        "1.5",
        "--steps",
        "2",
        "--samples",
        "2",
        "--chips",
        "typical",
        "--seeds",
        "1",
        "--intervals",
        "1,2",
        "--out",
        str(tmp_path),
        "--quiet",
        *extra,
    ]


def test_explore_every_policy_on_a_tiny_grid_then_resumes_exactly(capsys, tmp_path):
    code, out, _ = run(capsys, *_explore_args(tmp_path))
    assert code == 0, out
    with (tmp_path / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS
    got = sorted((r["policy"], r["mode"], r["interval"]) for r in rows)
    want = [("nominal", "both", "")]
    for mode in ("undervolt", "overclock"):
        want += [(p, mode, "") for p in ("guardband", "uniform", "timestep", "thundervolt")]
        want += [("drift", mode, "1"), ("drift", mode, "2"), ("closed-loop", mode, "")]
    assert got == sorted(want)
    by = {(r["policy"], r["mode"], r["interval"]): r for r in rows}
    nominal = by[("nominal", "both", "")]
    assert float(nominal["energy_saving"]) == 0 and float(nominal["feature_distance"]) == 0
    assert float(nominal["energy_j"]) == float(nominal["nominal_energy_j"])
    uniform = by[("uniform", "undervolt", "")]
    assert float(uniform["energy_saving"]) > 0.05 and int(uniform["timing_errors"]) > 0
    assert float(by[("uniform", "overclock", "")]["speedup"]) > 1.1
    # each policy pays for the hardware it uses, and only for that
    for r in rows:
        uses_abft = r["policy"] in ("drift", "closed-loop")
        assert (float(r["energy_abft_j"]) > 0) == uses_abft, r["spec"]
        assert (float(r["energy_detection_j"]) > 0) == (r["policy"] == "thundervolt"), r["spec"]
        assert (int(r["checkpoints"]) > 0) == (r["policy"] == "drift"), r["spec"]
        assert float(r["guidance"]) == 3.0  # the model's recommended scale
    tv, uni = by[("thundervolt", "undervolt", "")], by[("uniform", "undervolt", "")]
    assert float(tv["energy_j"]) > float(uni["energy_j"])  # the detection latches
    report = (tmp_path / "report.md").read_text()
    assert "## undervolt" in report and "## overclock" in report and "drift K=2" in report
    assert "classifier-free guidance 3.0" in report
    # the three verdicts, and the robustness section with its one-line conclusion per mode
    for criterion in ("**dataset**", "| image |", "| strict |"):
        assert criterion in report
    assert "## Robustness" in report and "measured guardband 10% (typical chip)" in report
    assert "holds in" in report and "of 7 settings" in report
    for col in ("fd", "fd_threshold", "image_distance_mean", "image_distance_max"):
        assert all(r[col] != "" for r in rows), col
    for col in ("meets_dataset", "meets_image", "meets_strict"):
        assert all(r[col] in ("true", "false") for r in rows), col
    for name in ("pareto.png", "sensitivity.png", "robustness.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    # a rerun finds every configuration done: nothing runs, the same rows come out
    code, out, _ = run(capsys, *_explore_args(tmp_path))
    assert code == 0 and f"0 run, {len(rows)} reused" in out
    with (tmp_path / "results.csv").open() as fh:
        again = list(csv.DictReader(fh))
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in again] == [
        {k: v for k, v in r.items() if k != "wall_s"} for r in rows
    ]


def test_explore_rerun_with_other_settings_reuses_no_row(capsys, tmp_path):
    args = [a for a in _explore_args(tmp_path) if a not in ("both",)]
    args[args.index("--mode") + 1 : args.index("--mode") + 1] = ["undervolt"]
    args += ["--policies", "nominal,uniform"]
    code, out, _ = run(capsys, *args)
    assert code == 0 and "(2 rows: 2 run, 0 reused" in out
    steps = args.index("--steps") + 1
    args[steps] = "3"
    code, out, _ = run(capsys, *args)
    assert code == 0 and "(2 rows: 2 run, 0 reused" in out
    with (tmp_path / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 2  # only this grid's rows are exported
    code, out, _ = run(capsys, *args, "--guidance", "1")
    assert code == 0 and "(2 rows: 2 run, 0 reused" in out


def test_explore_rows_do_not_depend_on_the_worker_count(tmp_path):
    from accelsim.config import load_preset
    from accelsim.experiments.explore import ExploreConfig, explore

    cfg = ExploreConfig(
        modes=("undervolt",),
        policies=("nominal", "uniform", "thundervolt"),
        vdd=(0.7,),
        chips=(0, 1),
        seeds=(0,),
        steps=2,
        samples=2,
        threshold=0.01,
        robustness=False,
    )
    hw = load_preset("tpu-128x128")
    serial = explore(cfg, hw, tmp_path / "w1", workers=1).rows
    pooled = explore(cfg, hw, tmp_path / "w2", workers=2).rows

    def key(rows):
        return sorted(tuple(str(r[k]) for k in COLUMNS if k != "wall_s") for r in rows)

    assert len(serial) == 6 and key(serial) == key(pooled)
