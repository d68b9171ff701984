"""`accelsim campaign run | status | export` as a user runs them, incl. kill and resume."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelsim.campaign import Store, load_campaign
from accelsim.campaign.builtin import synthetic_trial

ROOT = Path(__file__).resolve().parents[2]


def _wired() -> bool:
    from accelsim.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "campaign" in action.choices
    return False


def _argv(*args: str) -> list[str]:
    """``accelsim campaign ARGS`` (through accelsim.cli once the lead has wired it in)."""
    if _wired():
        return [sys.executable, "-m", "accelsim.cli", "campaign", *args]
    return [sys.executable, "-m", "accelsim.campaign.cli", *args]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_status_export_as_documented(tmp_path):
    camp = _write(
        tmp_path / "c.toml",
        """
[campaign]
name = "tiny"
trial = "gemm-ter"
[grid]
vdd = [0.65, 0.9]
chip = ["typical", 1]
[fixed]
freq = 1.2
m = 16
k = 32
n = 16
rows = 8
cols = 8
""",
    )
    db = tmp_path / "results.db"
    r = run_cli("run", str(camp), "--store", str(db), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "campaign tiny: 4 trials, ran 4 (4 done, 0 failed)" in r.stdout
    assert "trials/s on 2 pool workers" in r.stdout
    r = run_cli("run", str(camp), "--store", str(db), "--workers", "2")
    assert "ran 0 (0 done, 0 failed), skipped 4 already finished" in r.stdout
    r = run_cli("status", "--store", str(db))
    assert r.returncode == 0
    assert "campaign tiny (trial gemm-ter): 4 trials: 4 done, 0 failed, 0 pending" in r.stdout
    r = run_cli("status", "--store", str(db), "--json")
    (row,) = json.loads(r.stdout)
    assert (row["done"], row["pending"], row["eta_s"]) == (4, 0, 0.0)
    out = tmp_path / "out.csv"
    r = run_cli("export", "--store", str(db), "--csv", str(out))
    assert r.returncode == 0 and "wrote 4 trials" in r.stdout
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {"vdd", "chip", "freq", "m", "seed", "errors", "ter", "wrong_outputs"} <= set(rows[0])
    assert {r["vdd"] for r in rows} == {"0.65", "0.9"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--store", "{tmp}/missing.db"], "not found"),
        (["export", "--store", "{tmp}/missing.db"], "give --csv"),
        (["run", "{tmp}/typo.toml", "--store", "{tmp}/r.db"], "did you mean 'grid'"),
        (["run", "{tmp}/ok.toml", "--store", "{tmp}/r.db", "--dask", "nowhere"], "--dask: got"),
        (
            ["run", "{tmp}/ok.toml", "--store", "{tmp}/r.db", "--serial", "--workers", "3"],
            "--serial",
        ),
        (["run", "{tmp}/ok.toml", "--store", "{tmp}/r.db", "--workers", "0"], "--workers"),
        (["run", "{tmp}/none.toml", "--store", "{tmp}/r.db"], "not found"),
        (["status", "--store", "{tmp}/typo.toml"], "not an accelsim results store"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, args, message):
    _write(tmp_path / "typo.toml", '[campaign]\nname = "x"\ntrial = "synthetic"\n[gird]\na = [1]\n')
    _write(tmp_path / "ok.toml", '[campaign]\nname = "x"\ntrial = "synthetic"\n[grid]\na = [1]\n')
    r = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("accelsim campaign")
    assert "error:" in lines[0] and message in lines[0]


def _counts(db: Path) -> tuple[int, int, int]:
    with Store(db, create=False) as st:
        s = st.status()[0]
    return s.done, s.failed, s.pending


def _wait_done(db: Path, proc: subprocess.Popen[str], at_least: int, timeout: float = 60) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if db.exists():
            with contextlib.suppress(Exception):
                done = _counts(db)[0]
                if done >= at_least:
                    return done
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} trials done after {timeout} s")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def test_sigint_and_sigkill_then_resume_runs_every_trial_once(tmp_path):
    n = 30
    camp = _write(
        tmp_path / "k.toml",
        f"""
[campaign]
name = "killme"
trial = "synthetic"
[grid]
seed = {list(range(n))}
[fixed]
sleep = 0.25
x = 2.5
""",
    )
    db = tmp_path / "k.db"
    args = _argv("run", str(camp), "--store", str(db), "--workers", "2", "--quiet")

    # 1) Ctrl-C in the middle: exit 130, finished trials committed, the rest pending
    proc = subprocess.Popen(
        args, cwd=ROOT, text=True, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_done(db, proc, 4)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "rerun the same command to resume" in err
    done1, failed1, pending1 = _counts(db)
    assert 4 <= done1 < n and failed1 == 0 and done1 + pending1 == n
    with Store(db) as st:
        first = {t.id: t for t in st.trials() if t.status == "done"}

    # 2) SIGKILL of the parent (no cleanup at all), then of its orphaned workers
    proc = subprocess.Popen(
        args, cwd=ROOT, text=True, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_done(db, proc, done1 + 3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _kill_group(proc)
    done2, failed2, pending2 = _counts(db)
    assert done1 + 3 <= done2 < n and failed2 == 0 and done2 + pending2 == n
    with Store(db) as st:
        second = {t.id: t for t in st.trials() if t.status == "done"}

    # 3) resume to the end
    r = subprocess.run(args, cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert _counts(db) == (n, 0, 0)
    with Store(db) as st:
        final = {t.id: t for t in st.trials()}
    # trials done before an interruption were never run again (same finish time and worker)
    for before in (first, second):
        for tid, t in before.items():
            assert (final[tid].finished, final[tid].worker) == (t.finished, t.worker)
            assert final[tid].metrics == t.metrics
    # and every metric equals an uninterrupted run's (the trial function on each config)
    for trial in load_campaign(camp).trials:
        assert final[trial.id].metrics == synthetic_trial(dict(trial.config, sleep=0.0), None)
