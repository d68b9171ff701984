"""Which denoising steps are fragile, and for which errors: the audit behind explore's profile.

For dit-digits (6 DDIM steps, 4 samples, seeds 1000-1002), each step alone is disturbed in
three ways and the loss (feature distance to the golden samples) per injected error is averaged:

* ``timing``: every GEMM of that step at 0.74 V on chip 0 (the calibrated timing-error model:
  late high accumulator bits hold their previous value, i.e. large errors);
* ``flips-high``: about 10 single-bit flips in int32 accumulator bits 16-31 (what
  ``accelsim study timesteps`` injects);
* ``flips-low``: about 10 flips in bits 8-15 (small errors).

Run at classifier-free guidance 3 (the shipped models' recommended scale, what explore uses)
and 1. Writes ``benchmarks/results/timestep_sensitivity.json``.

    python benchmarks/timestep_sensitivity.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from accelsim.experiments import trials

KINDS = ("timing", "flips-high", "flips-low")


def measure(guidance: float, steps: int, seeds: list[int], samples: int) -> list[dict[str, float]]:
    state = trials.setup()
    base = {"model": "dit-digits", "samples": samples, "steps": steps, "guidance": guidance}
    rows = []
    for t in range(steps):
        for kind in KINDS:
            loss = errors = 0.0
            for seed in seeds:
                if kind == "timing":
                    config = {**base, "seed": seed, "chip": 0}
                    config["policy"] = f"timestep:vdd=0.74,ranges={t}-{t + 1}"
                else:
                    bits = "16-31" if kind == "flips-high" else "8-15"
                    fault = {
                        "fault": "bitflip",
                        "target": "outputs",
                        "format": "int32",
                        "bit": bits,
                        "timestep": t,
                        "flips": 10,
                    }
                    config = {**base, "seed": seed, "faults": [fault]}
                m = trials.run_configuration(trials.normalize(config), state).metrics
                loss += m["feature_distance"] / len(seeds)
                key = "timing_errors" if kind == "timing" else "faults_injected"
                errors += m[key] / len(seeds)
            rows.append(
                {
                    "guidance": guidance,
                    "step": t,
                    "kind": kind,
                    "errors": errors,
                    "loss": loss,
                    "loss_per_error": loss / errors if errors else 0.0,
                }
            )
            print(f"g={guidance:g} step {t} {kind:10s} errors {errors:9.1f} loss {loss:.3g}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="guidance 3 only, 2 seeds")
    args = ap.parse_args()
    start = time.perf_counter()
    seeds = [1000, 1001] if args.quick else [1000, 1001, 1002]
    guidances = [3.0] if args.quick else [3.0, 1.0]
    rows = [r for g in guidances for r in measure(g, 6, seeds, 4)]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = "timestep_sensitivity_quick.json" if args.quick else "timestep_sensitivity.json"
    doc = {
        "what": __doc__.splitlines()[0],
        "model": "dit-digits",
        "steps": 6,
        "samples": 4,
        "seeds": seeds,
        "rows": rows,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "wall_s": time.perf_counter() - start,
    }
    (out / name).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
