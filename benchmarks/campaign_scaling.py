"""Benchmark: campaign throughput of the executors on one campaign, and the store's overhead.

Runs ``campaigns/smoke.toml`` (40 ``gemm-ter`` trials) into fresh SQLite stores with the serial
executor, a 2-process pool and a 2-worker Dask LocalCluster (when dask is installed), and reports
trials/s of each (wall time of ``run_campaign``, worker start-up included) and their speed-up over
serial. The store's overhead per trial is measured separately: committing synthetic results of
the same shape into a store, one transaction per trial, as the campaign does.

Writes ``benchmarks/results/campaign_scaling.json`` (or ``--out``) and prints it.
``--quick`` runs the first 12 trials only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from accelsim.campaign import Store, load_campaign, run_campaign
from accelsim.campaign.store import TrialResult

ROOT = Path(__file__).resolve().parent.parent


def _time_executor(campaign_path: Path, limit: int, **kwargs: object) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        start = time.perf_counter()
        summary = run_campaign(campaign_path, store, limit=limit, **kwargs)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        rows = sorted((t.id, json.dumps(t.metrics, sort_keys=True)) for t in store.trials())
    return {"wall_s": wall, "trials": summary.ran, "trials_per_s": summary.ran / wall, "rows": rows}  # type: ignore[dict-item]


def _store_overhead(n: int) -> float:
    """Seconds per committed trial result (one transaction each)."""
    campaign = load_campaign(ROOT / "campaigns" / "smoke.toml")
    trials = campaign.trials[:n]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "overhead.db")
        store.add_campaign(campaign)
        metrics = {
            "errors": 1,
            "ter": 1e-4,
            "macs": 1 << 25,
            "max_abs_err": 1.0,
            "rel_fro_err": 0.01,
        }
        start = time.perf_counter()
        for t in trials:
            result = TrialResult(
                id=t.id,
                status="done",
                metrics=metrics,
                error=None,
                traceback=None,
                started=0.0,
                finished=0.0,
                wall_s=0.0,
                worker="bench",
            )
            store.record(campaign.name, result)
        return (time.perf_counter() - start) / len(trials)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="12 trials instead of 40")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "campaign_scaling.json"))
    args = p.parse_args(argv)
    path = ROOT / "campaigns" / "smoke.toml"
    limit = 12 if args.quick else 40
    cases: dict[str, dict[str, float]] = {}
    cases["serial"] = _time_executor(path, limit, serial=True)
    cases["pool_2"] = _time_executor(path, limit, workers=2)
    try:
        import distributed  # noqa: F401

        cases["dask_local_2"] = _time_executor(path, limit, dask="local", workers=2)
    except ImportError:
        pass
    base = cases["serial"]
    identical = all(c["rows"] == base["rows"] for c in cases.values())
    result = {
        "benchmark": "campaign_scaling",
        "campaign": "campaigns/smoke.toml",
        "trials": limit,
        **{f"{k}_trials_per_s": v["trials_per_s"] for k, v in cases.items()},
        **{f"{k}_wall_s": v["wall_s"] for k, v in cases.items()},
        **{
            f"{k}_speedup_vs_serial": v["trials_per_s"] / base["trials_per_s"]
            for k, v in cases.items()
        },
        "results_identical_across_executors": identical,
        "store_overhead_s_per_trial": _store_overhead(limit),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
