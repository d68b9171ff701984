"""Benchmark: a dit-digits sampling run through the interceptor, with and without timing errors.

Times the same DDIM sampling run (``--samples`` images, ``--steps`` steps, seed 0) four ways on
the default array (tpu-128x128, WS):

* ``float``: the plain torch model (no interceptor);
* ``w8a8_reference``: the interceptor with the W8A8 reference path (exact int GEMMs, no books);
* ``quantized_no_injection``: the accelerator at the nominal point (no MAC can fail), books kept;
* ``fast_ter_1e-5``: the accelerator with the fast kernel on chip 0 at the undervolted point
  whose per-MAC error rate is about 1e-5 (0.837 V at 1 GHz; the achieved rate is reported).

Reports seconds and the ratio of the fast run to the quantized run without injection (target
<= 3x, issue 5) and to the float model; the same run on the exact kernel (one repeat) gives the
fast mode's speed-up and the error count it should reproduce. Writes ``benchmarks/results/model_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from accelsim.config import OperatingPoint, load_preset
from accelsim.diffusion.sampler import SamplerConfig, sample
from accelsim.diffusion.schedule import NoiseSchedule
from accelsim.experiments.runner import ModelSession, SessionConfig, make_accelerator
from accelsim.rng import torch_generator
from accelsim.torch.intercept import w8a8_reference

ROOT = Path(__file__).resolve().parent.parent
#: Undervolted point with a per-MAC timing-error rate of 1e-5 on chip 0 at 1 GHz (its slow PEs and
#: droop make errors start above the typical chip's zero-margin 0.81 V). Measured on this run
#: (8 samples, 10 steps): fast kernel 1.01e-5, exact kernel 9.5e-6; 0.835 V gives 1.5e-5 / 1.3e-5.
VDD_TER_1E5 = 0.837
CHIP = 0


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best = float("inf")
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="4 samples, 4 steps, 1 repeat")
    p.add_argument(
        "--out",
        default=None,
        help="JSON file (default results/model_throughput.json; --quick: "
        "results/model_throughput_quick.json, so a quick check never replaces the full run's)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.steps, args.repeat = 4, 4, 1
    hw = load_preset("tpu-128x128")
    session = ModelSession(
        SessionConfig(model="dit-digits", samples=args.samples, steps=args.steps, guidance=1.0)
    )
    inputs = session.inputs()
    mconf = dict(session.model.accelsim_config)

    def float_run() -> torch.Tensor:
        with torch.no_grad():
            return sample(
                session.model,
                (args.samples, 1, 16, 16),
                inputs["cond"],
                schedule=NoiseSchedule.from_config(mconf),
                config=SamplerConfig(steps=args.steps),
                generator=torch_generator(0, "sampler", "dit-digits"),
            ).x

    def reference_run() -> torch.Tensor:
        with torch.no_grad(), w8a8_reference():
            return float_run()

    nominal = OperatingPoint.nominal(hw.tech)
    acc_nom = make_accelerator(hw, kernel="fast", seed=0)
    acc_err = make_accelerator(hw, kernel="fast", seed=0, chip=CHIP)
    session.run(acc_nom, nominal, seed=0)  # warm-up: JIT caches, torch
    t_float, _ = _best(float_run, args.repeat)
    t_ref, _ = _best(reference_run, args.repeat)
    # the two runs of the ratio alternate, so a change of the machine's speed during the
    # benchmark (common on a shared VM) affects both alike; best of each
    t_nom = t_err = float("inf")
    out = None
    for _ in range(args.repeat):
        t, _ = _best(lambda: session.run(acc_nom, nominal, seed=0), 1)
        t_nom = min(t_nom, t)
        t, out = _best(lambda: session.run(acc_err, OperatingPoint(VDD_TER_1E5, 1e9), seed=0), 1)
        t_err = min(t_err, t)
    rep = out.report  # type: ignore[attr-defined]
    acc_exact = make_accelerator(hw, kernel="exact", seed=0, chip=CHIP)
    t_exact, out_exact = _best(
        lambda: session.run(acc_exact, OperatingPoint(VDD_TER_1E5, 1e9), seed=0), 1
    )
    rep_exact = out_exact.report  # type: ignore[attr-defined]
    result = {
        "benchmark": "model_throughput",
        "model": "dit-digits",
        "samples": args.samples,
        "steps": args.steps,
        "array": "tpu-128x128 ws",
        "float_s": t_float,
        "w8a8_reference_s": t_ref,
        "quantized_no_injection_s": t_nom,
        "fast_ter_1e-5_s": t_err,
        "fast_ter_1e-5_vdd": VDD_TER_1E5,
        "fast_ter_1e-5_chip": CHIP,
        "fast_ter_1e-5_errors": rep.errors_injected,
        "fast_ter_1e-5_achieved": rep.errors_injected / rep.macs,
        "exact_ter_1e-5_s": t_exact,
        "exact_ter_1e-5_errors": rep_exact.errors_injected,
        "fast_vs_quantized_ratio": t_err / t_nom,
        "fast_vs_exact_speedup": t_exact / t_err,
        "fast_vs_float_ratio": t_err / t_float,
        "target": "fast_vs_quantized_ratio <= 3",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
    }
    name = "model_throughput_quick.json" if args.quick else "model_throughput.json"
    out_path = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
