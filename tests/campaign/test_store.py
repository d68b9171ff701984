"""Results store: resume, retry, failure recording, foreign/corrupted files, export."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from accelsim.campaign import Store, run_campaign
from accelsim.errors import StoreError


def _synthetic(name: str = "s", n: int = 6, **fixed: object) -> dict[str, object]:
    return {
        "campaign": {"name": name, "trial": "synthetic"},
        "grid": {"seed": list(range(n))},
        "fixed": {"x": 1.0, **fixed},
    }


def _rows(path):
    with Store(path, create=False) as st:
        return {t.id: t for t in st.trials()}


def test_store_is_wal_and_marked(tmp_path):
    db = tmp_path / "r.db"
    run_campaign(_synthetic(), db, serial=True)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x4143534D
    (name, kind, cfg) = con.execute("SELECT name, kind, config_json FROM campaign").fetchone()
    assert (name, kind) == ("s", "synthetic") and '"grid"' in cfg
    con.close()


def test_rerun_skips_done_trials_and_limit(tmp_path):
    db = tmp_path / "r.db"
    first = run_campaign(_synthetic(n=6), db, serial=True, limit=4)
    assert (first.ran, first.done, first.pending, first.new) == (4, 4, 2, 6)
    before = _rows(db)
    second = run_campaign(_synthetic(n=6), db, serial=True)
    assert (second.ran, second.skipped, second.pending, second.new) == (2, 4, 0, 0)
    after = _rows(db)
    for tid, row in before.items():
        if row.status == "done":  # not run again: same finish time and metrics
            assert after[tid].finished == row.finished
            assert after[tid].metrics == row.metrics
    assert all(r.status == "done" for r in after.values())
    third = run_campaign(_synthetic(n=6), db, serial=True)
    assert third.ran == 0 and third.skipped == 6
    # a grown grid adds only the new trials
    fourth = run_campaign(_synthetic(n=8), db, serial=True)
    assert (fourth.new, fourth.ran) == (2, 2)


def test_failures_are_recorded_and_do_not_stop_the_campaign(tmp_path):
    db = tmp_path / "r.db"
    data = _synthetic(n=4)
    data["include"] = [{"seed": 99, "fail": True}]
    s = run_campaign(data, db, serial=True)
    assert (s.done, s.failed) == (4, 1)
    (failed,) = [r for r in _rows(db).values() if r.status == "failed"]
    assert failed.error == "RuntimeError: synthetic failure (seed 99)"
    assert failed.metrics is None
    with Store(db) as st:
        tb = st.traceback("s", failed.id[:10])
        assert tb is not None and "Traceback" in tb and "synthetic_trial" in tb
        status = st.status("s")[0]
        assert (status.done, status.failed, status.pending) == (4, 1, 0)
        assert status.last_errors == (f"{failed.id[:12]}: {failed.error}",)
    # failed trials are not rerun unless asked
    assert run_campaign(data, db, serial=True).ran == 0
    assert run_campaign(data, db, serial=True, retry_failed=True).failed == 1


def test_retry_failed_reruns_and_fixes(tmp_path):
    db = tmp_path / "r.db"
    flag = tmp_path / "broken"
    flag.write_text("x")
    data = _synthetic(n=3, fail_while_exists=str(flag))
    s = run_campaign(data, db, serial=True)
    assert (s.done, s.failed) == (0, 3)
    flag.unlink()
    assert run_campaign(data, db, serial=True).ran == 0
    s = run_campaign(data, db, serial=True, retry_failed=True)
    assert (s.ran, s.done, s.failed, s.pending) == (3, 3, 0, 0)
    assert all(r.error is None and r.metrics for r in _rows(db).values())


def test_bad_metrics_fail_the_trial_only(tmp_path):
    from accelsim.campaign import register_trial

    register_trial("bad-metrics", _bad_metrics, replace=True)
    data = {"campaign": {"name": "b", "trial": "bad-metrics"}, "grid": {"seed": [0, 1]}}
    s = run_campaign(data, tmp_path / "r.db", serial=True)
    assert (s.done, s.failed) == (1, 1)
    errors = [r.error for r in _rows(tmp_path / "r.db").values() if r.error]
    assert errors == ["ValueError: metric 'v': got list, expected float, int, str or None"]


def _bad_metrics(config, state):
    import numpy as np

    if config["seed"] == 0:
        return {"v": np.float32(0.5), "n": np.int64(3), "flag": True}
    return {"v": [1, 2]}


def test_foreign_and_corrupted_files_raise_store_error(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("hello, not sqlite\n" * 100)
    with pytest.raises(StoreError, match="not an accelsim results store"):
        Store(text)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"not an accelsim results store \(tables: people\)"):
        Store(other)
    with pytest.raises(StoreError, match="not found"):
        Store(tmp_path / "missing.db", create=False)
    good = tmp_path / "good.db"
    run_campaign(_synthetic(n=50), good, serial=True)
    raw = bytearray(good.read_bytes())
    raw[:16] = b"garbage garbage!"
    good.write_bytes(bytes(raw))
    with pytest.raises(StoreError) as info:
        Store(good)
    assert "\n" not in str(info.value)


def test_same_name_other_kind_is_refused(tmp_path):
    db = tmp_path / "r.db"
    run_campaign(_synthetic(name="x", n=1), db, serial=True)
    other = {"campaign": {"name": "x", "trial": "gemm-ter"}, "fixed": {"vdd": 0.9, "freq": 1.0}}
    with pytest.raises(StoreError, match=r"already in .* with trial kind 'synthetic'"):
        run_campaign(other, db, serial=True)
    with Store(db) as st, pytest.raises(StoreError, match="campaign: got 'y', not in"):
        st.status("y")


def test_export_csv_one_column_per_config_key_and_metric(tmp_path):
    db = tmp_path / "r.db"
    data = _synthetic(n=3)
    data["include"] = [{"seed": 7, "fail": True}]
    run_campaign(data, db, serial=True, limit=3)
    out = tmp_path / "out.csv"
    with Store(db) as st:
        assert st.export_csv(out) == 3
        run_campaign(data, st, serial=True)
        assert st.export_csv(out) == 4
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = list(rows[0])
    assert cols[:4] == ["campaign", "id", "kind", "status"]
    for key in ("seed", "x", "fail", "u", "z", "count", "label", "missing", "error", "wall_s"):
        assert key in cols
    done = {r["seed"]: r for r in rows if r["status"] == "done"}
    assert set(done) == {"0", "1", "2"}
    stored = {str(t.config["seed"]): t for t in _rows(db).values()}
    for seed, row in done.items():
        assert float(row["u"]) == stored[seed].metrics["u"]  # repr round-trips exactly
        assert row["missing"] == "" and row["error"] == ""
    (failed,) = [r for r in rows if r["status"] == "failed"]
    assert failed["u"] == "" and failed["error"].startswith("RuntimeError")


def test_export_parquet_needs_pyarrow_or_writes(tmp_path):
    db = tmp_path / "r.db"
    run_campaign(_synthetic(n=2), db, serial=True)
    out = tmp_path / "out.parquet"
    with Store(db) as st:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            with pytest.raises(StoreError, match="needs pyarrow"):
                st.export_parquet(out)
            return
        assert st.export_parquet(out) == 2
        table = pq.read_table(out)
        assert table.num_rows == 2 and "u" in table.column_names
