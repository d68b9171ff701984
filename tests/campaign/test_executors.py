"""Serial, process-pool and Dask executors give bit-identical metrics rows."""

from __future__ import annotations

import pytest

from accelsim.campaign import Store, run_campaign
from accelsim.campaign.executors import make_executor
from accelsim.errors import ConfigError

GEMM = {
    "campaign": {"name": "ex", "trial": "gemm-ter"},
    "grid": {"vdd": [0.65, 0.75, 0.9], "chip": ["typical", 4]},
    "fixed": {"freq": 1.2, "m": 24, "k": 40, "n": 20, "rows": 8, "cols": 8},
    "include": [
        {"vdd": 0.7, "freq": 1.0, "dataflow": "os", "chip": 2, "operands": "random"},
        {"vdd": 0.7, "freq": 1.0, "dataflow": "is", "chip": 2, "manifestation": "flip"},
    ],
}


def _rows(path):
    """(id, status, raw metrics JSON) sorted by id: what must be identical across executors."""
    with Store(path, create=False) as st:
        rows = [(t.id, t.status, t.metrics, t.config) for t in st.trials()]
    return sorted((r[0], r[1], repr(sorted(r[2].items())) if r[2] else None) for r in rows)


def test_serial_pool_and_dask_give_identical_metrics(tmp_path):
    serial = run_campaign(GEMM, tmp_path / "serial.db", serial=True)
    assert (serial.done, serial.failed, serial.executor) == (8, 0, "serial")
    pool = run_campaign(GEMM, tmp_path / "pool.db", workers=2)
    assert (pool.done, pool.executor, pool.workers) == (8, "pool", 2)
    pytest.importorskip("distributed")
    dask = run_campaign(GEMM, tmp_path / "dask.db", dask="local", workers=2)
    assert (dask.done, dask.executor) == (8, "dask")
    # a running scheduler reached by address (what --dask tcp://HOST:PORT does)
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        tcp = run_campaign(GEMM, tmp_path / "tcp.db", dask=cluster.scheduler_address)
    assert (tcp.done, tcp.executor, tcp.workers) == (8, "dask", 1)
    ref = _rows(tmp_path / "serial.db")
    assert _rows(tmp_path / "pool.db") == ref
    assert _rows(tmp_path / "dask.db") == ref
    assert _rows(tmp_path / "tcp.db") == ref
    # the rows are not trivially equal: errors happen at low voltage and differ across points
    with Store(tmp_path / "serial.db") as st:
        errors = [t.metrics["errors"] for t in st.trials()]
        workers = {t.worker for t in st.trials()}
    assert max(errors) > 0 and len(set(errors)) > 3
    with Store(tmp_path / "pool.db") as st:
        assert len({t.worker for t in st.trials()} - workers) >= 1  # really other processes


def test_pool_records_failures_like_serial(tmp_path):
    data = {
        "campaign": {"name": "f", "trial": "synthetic"},
        "grid": {"seed": [0, 1, 2, 3]},
        "include": [{"seed": 5, "fail": True}],
    }
    s = run_campaign(data, tmp_path / "p.db", workers=2)
    assert (s.done, s.failed) == (4, 1)
    with Store(tmp_path / "p.db") as st:
        (bad,) = [t for t in st.trials() if t.status == "failed"]
    assert bad.error == "RuntimeError: synthetic failure (seed 5)"


def test_worker_death_is_one_line_error_and_resumable(tmp_path):
    from accelsim.campaign.executors import WorkerLostError

    data = {"campaign": {"name": "c", "trial": "synthetic"}, "grid": {"seed": [0, 1, 2, 3]}}
    crashing = {**data, "include": [{"seed": 9, "crash": True}]}
    db = tmp_path / "c.db"
    with pytest.raises(WorkerLostError, match="a worker process died"):
        run_campaign(crashing, db, workers=2)
    with Store(db) as st:
        rows = {t.config["seed"]: t.status for t in st.trials()}
    assert rows[9] == "pending" and "failed" not in rows.values()
    s = run_campaign(data, db, workers=2)  # the rest resumes without the crashing trial
    with Store(db) as st:
        status = st.status("c")[0]
    assert (status.done, status.failed, status.pending) == (4, 0, 1)
    assert s.ran == 4 - sum(v == "done" for k, v in rows.items() if k != 9)


def test_unreachable_scheduler_is_one_line_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from accelsim.campaign import executors

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    data = {"campaign": {"name": "u", "trial": "synthetic"}, "fixed": {"a": 1}}
    with pytest.raises(ConfigError, match=r"--dask: cannot connect to the scheduler"):
        run_campaign(data, tmp_path / "u.db", dask="tcp://127.0.0.1:9")


def test_executor_options_validated():
    with pytest.raises(ConfigError, match="--workers: got 0"):
        make_executor(workers=0)
    with pytest.raises(ConfigError, match="--serial and --dask"):
        make_executor(serial=True, dask="local")
    with pytest.raises(ConfigError, match="--dask: got 'localhost'"):
        make_executor(dask="localhost")
