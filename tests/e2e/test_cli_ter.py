"""`accelsim ter` and `accelsim calibrate` as a user runs them."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from accelsim.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accelsim.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_ter_json_exactly_as_documented(capsys):
    assert (
        main(["ter", "--vdd", "0.60:0.95:0.05", "--freq", "1.0", "--json", "--samples", "262144"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["vdd"] for r in rows] == pytest.approx(
        [0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95]
    )
    for r in rows:
        assert {"vdd", "freq_ghz", "mac_error_prob", "errors_per_million_macs"} <= set(r)
        assert r["freq_ghz"] == 1.0
    ter = [r["mac_error_prob"] for r in rows]
    assert ter == sorted(ter, reverse=True)


def test_typical_chip_error_onset_is_calibrated_to_silicon_margins(capsys):
    """Typical chip: no errors down to 1e-9 per MAC at 0.81 V (10% below nominal) and above,
    errors from 0.72 V (20% below) down; the slope stays one decade per 25-50 mV."""
    vdd = "0.65,0.70,0.72,0.81,0.85,0.90,0.95"
    assert main(["ter", "--vdd", vdd, "--freq", "1.0", "--json"]) == 0
    ter = {round(r["vdd"], 2): r["mac_error_prob"] for r in json.loads(capsys.readouterr().out)}
    assert all(ter[v] < 1e-9 for v in (0.81, 0.85, 0.90, 0.95))
    assert ter[0.72] > 1e-9 and ter[0.70] > ter[0.72]
    decades_per_50mv = math.log10(ter[0.65] / ter[0.70])
    assert 1.0 <= decades_per_50mv <= 2.0


def test_ter_plot_is_written(tmp_path, capsys):
    png = tmp_path / "ter.png"
    assert (
        main(
            [
                "ter",
                "--vdd",
                "0.60:0.95:0.05",
                "--freq",
                "0.8,1.0,1.2",
                "--plot",
                str(png),
                "--samples",
                "262144",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "wrote" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ter", "--vdd", "0.2:0.9:0.05"], "vdd"),
        (["ter", "--vdd", "0.9:0.6:0.05"], "--vdd"),
        (["ter", "--vdd", "abc"], "--vdd"),
        (["ter", "--vdd", "0.6:0.9:0"], "STEP > 0"),
        (["ter", "--freq", "0"], "--freq"),
        (["ter", "--freq", "-1"], "--freq"),
    ],
)
def test_ter_bad_input_one_line(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


def test_calibrate_prints_fit_and_writes_reproducibly(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    a = run_cli("calibrate", "--write", "--out", str(first))
    b = run_cli("calibrate", "--write", "--out", str(second))
    assert a.returncode == 0 and b.returncode == 0, a.stderr
    assert "alpha" in a.stdout and "rms" in a.stdout
    for name in ("delay.toml", "energy.toml"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    bad = run_cli("calibrate", "--out", str(tmp_path / "missing"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_ter_uses_hardware_file_timing_overrides(tmp_path):
    """A larger guardband (sign-off at a lower voltage) lowers the TER at the same point."""
    cfg = tmp_path / "hw.toml"
    cfg.write_text('[array]\nrows = 32\ncols = 32\ndataflow = "ws"\n[delay]\nguardband = 0.25\n')
    base = ["ter", "--vdd", "0.68", "--samples", "20000", "--cycles", "2000", "--json"]
    default = json.loads(run_cli(*base).stdout)[0]
    wide = json.loads(run_cli(*base, "--config", str(cfg)).stdout)[0]
    assert wide["critical_path_ratio"] < default["critical_path_ratio"]
    assert wide["mac_error_prob"] < default["mac_error_prob"]
