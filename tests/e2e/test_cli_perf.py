"""`accelsim perf` and `accelsim workloads` as a user runs them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accelsim.cli", *args], capture_output=True, text=True, timeout=120
    )


def run_json(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_explains_every_option():
    top = run_cli("--help")
    assert top.returncode == 0
    assert "perf" in top.stdout and "workloads" in top.stdout
    perf = run_cli("perf", "--help")
    assert perf.returncode == 0
    for option in (
        "--model",
        "--topology",
        "--topology-format",
        "--scalesim-cfg",
        "--array",
        "--dataflow",
        "--steps",
        "--vdd",
        "--freq",
        "--json",
        "--batch",
        "--cfg",
        "--preset",
        "--config",
        "--seq-len",
        "--group",
    ):
        assert option in perf.stdout, option
    assert "volts" in perf.stdout and "GHz" in perf.stdout


def test_perf_table_dit(capsys):
    assert (
        main(
            [
                "perf",
                "--model",
                "dit-xl2-256",
                "--array",
                "128x128",
                "--dataflow",
                "ws",
                "--steps",
                "50",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for word in ("attn-scores", "fc1", "total", "TOPS", "TOPS/W", "leakage", "dram"):
        assert word in out, word


def test_perf_json_dit_totals(capsys):
    doc = run_json(
        capsys,
        "perf",
        "--model",
        "dit-xl2-256",
        "--array",
        "128x128",
        "--dataflow",
        "ws",
        "--steps",
        "50",
    )
    required = {
        "layer",
        "M",
        "N",
        "K",
        "count",
        "macs",
        "compute_cycles",
        "stall_cycles",
        "mapping_efficiency",
        "dram_reads",
        "dram_writes",
        "energy_j",
    }
    assert doc["layers"], "no layers"
    for layer in doc["layers"]:
        assert required <= set(layer)
        assert layer["count"] % 50 == 0
    totals = doc["totals"]
    assert {"macs", "cycles", "seconds", "energy_j"} <= set(totals)
    assert totals["macs"] == sum(layer["macs"] * layer["count"] for layer in doc["layers"])
    assert totals["macs"] == pytest.approx(50 * 118.6e9, rel=0.01)
    assert totals["cycles"] == sum(
        (layer["compute_cycles"] + layer["stall_cycles"] + layer["fill_cycles"]) * layer["count"]
        for layer in doc["layers"]
    )
    assert totals["energy_j"] == pytest.approx(
        sum(layer["energy_j"] * layer["count"] for layer in doc["layers"])
    )
    assert totals["cycles"] >= totals["macs"] / (128 * 128)


def test_perf_operating_point_scales_energy_and_time(capsys):
    base = run_json(capsys, "perf", "--model", "vit-b16")["totals"]
    low = run_json(capsys, "perf", "--model", "vit-b16", "--vdd", "0.8")["totals"]
    fast = run_json(capsys, "perf", "--model", "vit-b16", "--freq", "2.0")["totals"]
    # Dynamic MAC energy scales exactly with (V/Vnom)^2 (CV^2), independently of the clock.
    assert low["energy_split_j"]["mac"] == pytest.approx(
        base["energy_split_j"]["mac"] * (0.8 / 0.9) ** 2
    )
    assert fast["energy_split_j"]["mac"] == pytest.approx(base["energy_split_j"]["mac"])
    assert low["energy_j"] < base["energy_j"]
    assert fast["compute_s"] == pytest.approx(base["compute_s"] / 2)
    assert fast["seconds"] < base["seconds"]


def test_perf_topology_gemm_matches_scalesim(capsys, tmp_path):
    topo = tmp_path / "small.csv"
    rows = [
        r
        for r in csv.DictReader((DATA / "scalesim_small_gemm.csv").open())
        if r["dataflow"] == "os" and r["array_h"] == "32" and r["bw_mode"] == "CALC"
    ]
    assert rows
    topo.write_text(
        "Layer name, M, N, K,\n"
        + "".join(f"{r['layer']}, {r['M']}, {r['N']}, {r['K']},\n" for r in rows)
    )
    doc = run_json(
        capsys,
        "perf",
        "--topology",
        str(topo),
        "--topology-format",
        "gemm",
        "--array",
        "32x32",
        "--dataflow",
        "os",
    )
    got = {layer["layer"]: layer["compute_cycles"] for layer in doc["layers"]}
    assert got == {r["layer"]: int(r["compute_cycles"]) for r in rows}


def test_perf_scalesim_cfg(capsys, tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(
        "[general]\nrun_name = t\n[architecture_presets]\nArrayHeight : 8\nArrayWidth : 8\n"
        "IfmapSramSzkB : 64\nFilterSramSzkB : 64\nOfmapSramSzkB : 64\nIfmapOffset : 0\n"
        "FilterOffset : 10000000\nOfmapOffset : 20000000\nDataflow : ws\n"
        "[run_presets]\nInterfaceBandwidth : CALC\n"
    )
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, M, N, K,\ng100x37x53, 100, 37, 53,\n")
    doc = run_json(
        capsys,
        "perf",
        "--scalesim-cfg",
        str(cfg),
        "--topology",
        str(topo),
        "--topology-format",
        "gemm",
    )
    assert doc["layers"][0]["compute_cycles"] == 4269  # scalesim_small_gemm.csv, ws 8x8
    assert doc["config"]["array"] == "8x8"


def test_workloads_lists_models_and_presets(capsys):
    assert main(["workloads", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {w["name"] for w in doc["workloads"]}
    assert {
        "dit-xl2-256",
        "dit-xl2-512",
        "pixart-alpha-512",
        "sd2-unet-512",
        "vit-b16",
        "gpt2-small",
        "bart-base",
    } <= names
    assert {"tpu-128x128", "array-32x32", "edge-8x8"} <= {p["name"] for p in doc["presets"]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["perf", "--model", "dit-xl2-256", "--array", "0x4"], "--array"),
        (["perf", "--model", "dit-xl2-256", "--array", "abc"], "ROWSxCOLS"),
        (["perf", "--model", "no-such-model"], "no-such-model"),
        (["perf", "--model", "dit-xl2-256", "--vdd", "5"], "vdd"),
        (["perf", "--model", "dit-xl2-256", "--freq", "0"], "freq"),
        (["perf", "--model", "dit-xl2-256", "--steps", "0"], "--steps"),
        (["perf", "--model", "dit-xl2-256", "--dataflow", "xs"], "--dataflow"),
        (["perf", "--topology", "/nonexistent/topo.csv"], "topo.csv"),
        (["perf"], "--model"),
        (["perf", "--model", "dit-xl2-256", "--preset", "nope"], "preset"),
        (["perf", "--model", "dit-xl2-256", "--config", "/nonexistent.toml"], "nonexistent.toml"),
        (["perf", "--model", "dit-xl2-256", "--bogus"], "--bogus"),
    ],
)
def test_bad_input_is_one_line_error(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert proc.stdout == ""


def test_malformed_topology_is_one_line_error(tmp_path):
    topo = tmp_path / "bad.csv"
    topo.write_text("Layer name, M, N, K,\nl1, 10, abc, 3,\n")
    proc = run_cli("perf", "--topology", str(topo), "--topology-format", "gemm")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "bad.csv" in proc.stderr and "Traceback" not in proc.stderr


def test_perf_does_not_import_heavy_modules():
    """`accelsim perf` must stay fast: torch, numba and matplotlib are imported lazily."""
    code = (
        "import sys; from accelsim.cli import main; import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['perf', '--model', 'dit-xl2-256', '--json'])\n"
        "print(sorted(m for m in ('torch', 'numba', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
