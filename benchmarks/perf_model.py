"""Benchmark: wall time of the perf model on the whole DiT-XL/2 256 workload, 50 steps, 128x128 WS.

Writes ``benchmarks/results/perf_model.json`` (or ``--out``) and prints it. Baseline: SCALE-Sim
v3's measured speed on this class of machine (../shared/reference/scalesim.md: 100-400 s per
DiT-XL/2 layer on a 128x128 array, about 1e7 simulated MACs per CPU-second). SCALE-Sim simulates
each distinct layer shape once per run, so the fair comparison is our time for the whole run
against SCALE-Sim's time for the distinct layer shapes, at equal compute cycles (our compute
cycles equal SCALE-Sim's CALC-mode Total Cycles; see tests/hw/test_mapping.py).

Cases timed (best of ``--repeat`` runs, after one warm-up):

* ``workload_cached``: ``evaluate_workload`` as ``accelsim perf`` runs it (identical shapes are
  evaluated once);
* ``every_layer_uncached``: every GEMM layer record of the workload evaluated from scratch (mapping
  memo cleared);
* ``sweep_all_workloads_uncached``: every layer of all eight shipped workloads on 8x8, 32x32 and
  128x128 arrays in os/ws/is, no memoization (the per-layer cost of the model);
* ``cli_end_to_end``: ``accelsim perf --model dit-xl2-256 --array 128x128 --dataflow ws --steps 50
  --json`` as a subprocess (Python start-up and imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from accelsim.config import OperatingPoint, load_preset
from accelsim.hw.mapping import clear_mapping_cache
from accelsim.hw.perf import evaluate_layer, evaluate_workload
from accelsim.models.workloads import list_workloads, workload_layers

#: SCALE-Sim v3 seconds per DiT-XL/2 layer on a 128x128 array (scalesim.md, measured range).
SCALESIM_S_PER_LAYER = (100.0, 400.0)
#: SCALE-Sim v3 simulated MACs per CPU-second (scalesim.md).
SCALESIM_MACS_PER_S = 1e7


def _best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Run the benchmark and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "perf_model.json"))
    args = parser.parse_args()

    hw = load_preset("tpu-128x128").with_array(rows=128, cols=128, dataflow="ws")
    op = OperatingPoint.nominal(hw.tech)
    layers = workload_layers("dit-xl2-256")
    steps = 50

    report = evaluate_workload(layers, hw, op, repeats=steps)
    distinct = {(layer.M, layer.N, layer.K) for layer in layers}

    t_cached = _best_of(lambda: evaluate_workload(layers, hw, op, repeats=steps), args.repeat)

    def uncached() -> None:
        clear_mapping_cache()
        for layer in layers:
            evaluate_layer(layer, hw, op)

    t_uncached = _best_of(uncached, args.repeat)

    # Every layer of all eight workloads on 3 array sizes x 3 dataflows, nothing memoized.
    sweep = [
        (layer, hw.with_array(rows=size, cols=size, dataflow=df))
        for info in list_workloads()
        for layer in workload_layers(info.name)
        for size in (8, 32, 128)
        for df in ("os", "ws", "is")
    ]

    def sweep_uncached() -> None:
        clear_mapping_cache()
        for layer, hw_i in sweep:
            evaluate_layer(layer, hw_i, op)

    t_sweep = _best_of(sweep_uncached, args.repeat)
    cmd = [
        sys.executable,
        "-m",
        "accelsim.cli",
        "perf",
        "--model",
        "dit-xl2-256",
        "--array",
        "128x128",
        "--dataflow",
        "ws",
        "--steps",
        str(steps),
        "--json",
    ]
    t_cli = _best_of(
        lambda: subprocess.run(cmd, check=True, capture_output=True), max(1, args.repeat // 2)
    )

    scalesim_distinct_s = [len(distinct) * s for s in SCALESIM_S_PER_LAYER]
    scalesim_macs_s = (
        sum(layer.macs for layer in {(lyr.M, lyr.N, lyr.K): lyr for lyr in layers}.values())
        / SCALESIM_MACS_PER_S
    )
    result = {
        "benchmark": "perf_model",
        "workload": "dit-xl2-256",
        "steps": steps,
        "array": "128x128",
        "dataflow": "ws",
        "layer_records": len(layers),
        "distinct_shapes": len(distinct),
        "gemm_calls_per_run": sum(lp.count for lp in report.layers),
        "total_macs": report.totals.macs,
        "compute_cycles": report.totals.compute_cycles,
        "seconds": {
            "workload_cached": t_cached,
            "every_layer_uncached": t_uncached,
            "cli_end_to_end": t_cli,
            "sweep_all_workloads_uncached": t_sweep,
        },
        "sweep_layer_evaluations": len(sweep),
        "microseconds_per_layer_evaluation": 1e6 * t_sweep / len(sweep),
        "baseline_scalesim": {
            "source": "../shared/reference/scalesim.md (SCALE-Sim v3.0.0 measured on this class of machine)",
            "seconds_per_dit_layer": list(SCALESIM_S_PER_LAYER),
            "seconds_distinct_shapes": scalesim_distinct_s,
            "seconds_from_macs_rate": scalesim_macs_s,
        },
        "speedup_vs_scalesim": {
            "workload_cached_low": scalesim_distinct_s[0] / t_cached,
            "workload_cached_high": scalesim_distinct_s[1] / t_cached,
            "cli_end_to_end_low": scalesim_distinct_s[0] / t_cli,
        },
        "target": "workload under 1 s of compute, >100x faster than SCALE-Sim at equal compute cycles",
        "meets_target": t_cached < 1.0 and scalesim_distinct_s[0] / t_cached > 100,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
