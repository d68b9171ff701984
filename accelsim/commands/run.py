"""``accelsim run``: one shipped model, one configuration, quality against the golden run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from accelsim.commands import add_hardware_args
from accelsim.errors import AccelsimError

#: Fault options of ``accelsim run`` (passed to :func:`accelsim.faults.spec.fault_from_dict`).
#: The array geometry and dataflow of row/column and stuck-at faults come from the hardware.
FAULT_OPTIONS: dict[str, str] = {
    "fault": "fault model: bitflip | rowcol | random-values | single-value | stuck-at | clip",
    "target": "weights | inputs | outputs",
    "format": "number format of the target (int8 | int32 | fp16 | bf16 | fp32); fp16/bf16/fp32 "
    "also run the model un-quantized in that format",
    "bit": "bit position(s): 30, 23,30 or 24-30",
    "bit-weights": "weights of the --bit candidates",
    "multiplicity": "bits flipped per site",
    "rate": "per-value fault probability",
    "count": "exact number of fault sites",
    "per": "call | run: what --count / --rate count over",
    "n": "values corrupted per call (random-values)",
    "value": "bitflip | random | zero (or 0|1 for stuck-at)",
    "axis": "row | column (rowcol)",
    "tile": "i,j output tile (rowcol)",
    "line": "row/column index inside the tile (rowcol)",
    "pe": "r,c stuck PE (stuck-at)",
    "mode": "zero | clamp (clip)",
    "module": "module glob(s) to target",
    "block": "block name(s) or index(es) to target",
    "layer-type": "layer type(s) to target (qkv, proj, fc1, fc2, attn-scores, ...)",
    "timestep": "sampler step(s) to target",
}


def add_parser(sub: Any, helpers: Any) -> None:
    """Register ``accelsim run`` (``helpers``: the cli module, for its argument types)."""
    p = sub.add_parser(
        "run",
        help="run a shipped model at one operating point / fault configuration vs its golden run",
        description=(
            "Run a shipped model (accelsim models list) with every GEMM on the simulated array: "
            "W8A8, timing errors from --vdd/--freq on the chosen chip, optional injected faults. "
            "The golden run is the same quantized model at the nominal point without faults, "
            "with the same seed. Writes metrics.json (and samples.png for generators) to --out."
        ),
        epilog=(
            "examples:\n"
            "  accelsim run --model dit-digits --vdd 0.75 --freq 1.0 --steps 20 --seed 0 --out runs/r1\n"
            "  accelsim run --model vit-digits --fault bitflip --target weights --bit 30 --format fp32 --count 1 --seed 3\n"
            "  accelsim run --model gpt-tiny --vdd 0.72 --kernel exact --chip 4"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="dit-digits", help="shipped model; default dit-digits")
    p.add_argument(
        "--vdd", type=helpers._float, metavar="V", help="supply voltage in volts; default nominal"
    )
    p.add_argument(
        "--freq", type=helpers._float, metavar="GHZ", help="clock in GHz; default nominal"
    )
    p.add_argument(
        "--steps",
        type=helpers._positive_int,
        default=20,
        help="sampler steps (generators); default 20",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="images/clips to generate (default 10), test inputs (default: the whole test split) "
        "or token windows (default 32)",
    )
    p.add_argument(
        "--method", choices=("ddim", "ddpm"), default="ddim", help="sampler; default ddim"
    )
    p.add_argument(
        "--guidance",
        type=helpers._float,
        default=3.0,
        help="classifier-free guidance scale of diffusion models; default 3 (the shipped "
        "models' recommended value; 1 = off)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of noise, supply traces and fault sites; default 0",
    )
    p.add_argument(
        "--chip",
        type=int,
        metavar="SEED",
        help="chip seed (PE variation map); default: typical chip",
    )
    p.add_argument(
        "--kernel",
        choices=("fast", "exact"),
        default="fast",
        help="timing-error kernel; default fast",
    )
    p.add_argument(
        "--manifestation",
        choices=("hold", "flip", "razor", "drop"),
        default="hold",
        help="what a late MAC latches; default hold",
    )
    add_hardware_args(p, helpers)
    f = p.add_argument_group("injected faults (optional; see accelsim.faults.spec)")
    for key, text in FAULT_OPTIONS.items():
        f.add_argument(f"--{key}", dest=f"fault_{key.replace('-', '_')}", metavar="X", help=text)
    f.add_argument(
        "--adjacent", dest="fault_adjacent", action="store_true", help="flip adjacent bits"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        metavar="DIR",
        default="accelsim-out/run",
        help="output directory; default accelsim-out/run",
    )
    out.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run, scalesim_cfg=None)


def _fault_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for key in FAULT_OPTIONS:
        value = getattr(args, f"fault_{key.replace('-', '_')}")
        if value is not None:
            opts[key] = value
    if args.fault_adjacent:
        opts["adjacent"] = True
    if opts and "fault" not in opts:
        given = ", ".join(f"--{k}" for k in opts)
        raise AccelsimError(f"{given}: given without --fault, expected --fault KIND as well")
    return opts


def cmd_run(args: argparse.Namespace) -> int:
    from accelsim import cli

    hw = cli._load_hardware(args)
    fault_opts = _fault_options(args)
    # validate cheap things before loading torch models
    from accelsim.config import OperatingPoint

    vdd = hw.tech.vnom if args.vdd is None else args.vdd
    freq = hw.tech.fnom if args.freq is None else args.freq * 1e9
    if args.freq is not None and not 0.001 <= args.freq <= 10:
        raise AccelsimError(f"--freq: got {args.freq:g} GHz, expected a number in [0.001, 10] GHz")
    from accelsim.timing.delay import check_vdd
    from accelsim.timing.errors import TimingModel

    check_vdd(vdd, TimingModel.for_hardware(hw).delay)
    op = OperatingPoint(vdd=vdd, freq=freq)
    result = run_configuration(
        args.model,
        hw,
        op,
        fault_options=fault_opts,
        steps=args.steps,
        samples=args.samples,
        method=args.method,
        guidance=args.guidance,
        seed=args.seed,
        chip=args.chip,
        kernel=args.kernel,
        manifestation=args.manifestation,
        out_dir=Path(args.out),
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_summary(result)
    return 0


def run_configuration(
    model: str,
    hw: Any,
    op: Any,
    *,
    fault_options: dict[str, Any] | None = None,
    steps: int = 20,
    samples: int | None = None,
    method: str = "ddim",
    guidance: float = 1.0,
    seed: int = 0,
    chip: int | None = None,
    kernel: str = "fast",
    manifestation: str = "hold",
    out_dir: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Golden and test run of ``model``; returns (and writes to ``out_dir``) the metrics."""
    from accelsim.config import OperatingPoint
    from accelsim.runner import ModelSession, SessionConfig, make_accelerator
    from accelsim.torch.quant import QuantConfig

    faults = []
    fmt = None
    if fault_options:
        from accelsim.faults.spec import fault_from_dict

        opts = dict(fault_options)
        kind = opts.get("fault")
        if kind in ("rowcol", "stuck-at"):
            opts.setdefault("array", f"{hw.array.rows}x{hw.array.cols}")
        if kind == "stuck-at":
            opts.setdefault("dataflow", hw.array.dataflow)
        fmt = opts.get("format")
        faults.append(fault_from_dict(opts))
    quant = QuantConfig(mode=fmt) if fmt in ("fp16", "bf16", "fp32") else QuantConfig()
    with _Progress(progress) as bar:
        session = ModelSession(
            SessionConfig(
                model=model,
                samples=samples or 0,
                steps=steps,
                method=method,
                guidance=guidance,
            ),
            progress=bar.update,
        )
        nominal = OperatingPoint.nominal(hw.tech)
        bar.start("golden run (nominal, no faults)")
        golden_acc = make_accelerator(
            hw, kernel=kernel, chip=chip, seed=seed, manifestation=manifestation
        )
        golden = session.run(golden_acc, nominal, seed=seed, quant=quant)
        bar.start(f"test run ({op.vdd:.3f} V, {op.freq / 1e9:.3g} GHz)")
        test_acc = make_accelerator(
            hw, kernel=kernel, chip=chip, seed=seed, manifestation=manifestation
        )
        test = session.run(test_acc, op, faults=faults, seed=seed, quant=quant)
    quality = session.compare(golden, test)
    assert golden.report is not None and test.report is not None
    rep = test.report
    g = golden.report
    metrics: dict[str, Any] = {
        "model": model,
        "kind": session.kind,
        "vdd": op.vdd,
        "freq_ghz": op.freq / 1e9,
        "chip": chip,
        "seed": seed,
        "kernel": kernel,
        "manifestation": manifestation,
        "array": f"{hw.array.rows}x{hw.array.cols} {hw.array.dataflow}",
        "format": fmt or "w8a8",
        **quality,
        "energy_j": rep.total_energy_j,
        "latency_s": rep.latency_s,
        "nominal_energy_j": g.total_energy_j,
        "nominal_latency_s": g.latency_s,
        "energy_saving": 1.0 - rep.total_energy_j / g.total_energy_j if g.total_energy_j else None,
        "speedup": g.latency_s / rep.latency_s if rep.latency_s else None,
        "energy_split_j": rep.energy_j.as_dict(),
        "macs": rep.macs,
        "gemm_calls": rep.gemm_calls,
        "errors_injected": rep.errors_injected,
        "errors_by_layer_type": dict(rep.errors_by_layer_type),
        "errors_by_block": dict(rep.errors_by_block),
        "errors_by_timestep": {
            ("none" if k is None else str(k)): v for k, v in rep.errors_by_timestep.items()
        },
        "faults_injected": len(test.faults),
        "fault_log": test.faults.as_rows()[:100],
        "wall_s": golden.wall_s + test.wall_s,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        if session.kind in ("diffusion", "video-diffusion"):
            from accelsim.report.samples import save_comparison

            save_comparison(
                golden.output,
                test.output,
                out_dir / "samples.png",
                title=f"{model}: golden (nominal) vs {op.vdd:.3f} V / {op.freq / 1e9:.3g} GHz",
            )
        metrics["out_dir"] = str(out_dir)
    return metrics


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _print_summary(m: dict[str, Any]) -> None:
    lines = [
        f"{m['model']} on {m['array']} at {m['vdd']:.3f} V / {m['freq_ghz']:.3g} GHz "
        f"({'typical chip' if m['chip'] is None else 'chip ' + str(m['chip'])}, seed {m['seed']}, {m['format']})",
    ]
    if m["kind"] in ("diffusion", "video-diffusion"):
        lines.append(
            f"  quality vs golden: PSNR {_fmt(m['psnr_db'], '.2f')} dB, SSIM {_fmt(m['ssim'])}, "
            f"feature distance {_fmt(m['feature_distance'])}; class accuracy {_fmt(m['class_accuracy'], '.3f')} "
            f"(golden {_fmt(m['golden_class_accuracy'], '.3f')})"
        )
    elif m["kind"] in ("classifier", "features"):
        lines.append(
            f"  accuracy {m['accuracy']:.4f} (golden {m['golden_accuracy']:.4f}), top-1 flips "
            f"{m['top1_flips']}/{m['inputs']}, critical SDC {m['critical_sdc']}"
        )
    else:
        lines.append(
            f"  loss {m['loss']:.4f} (golden {m['golden_loss']:.4f}), top-1 flips "
            f"{m['top1_flips']}/{m['tokens']}"
        )
    lines.append(
        f"  energy {m['energy_j']:.4g} J (nominal {m['nominal_energy_j']:.4g} J, saving "
        f"{100 * (m['energy_saving'] or 0):.1f}%), latency {m['latency_s']:.4g} s "
        f"(speed-up {_fmt(m['speedup'], '.3f')}x)"
    )
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(m["errors_by_layer_type"].items()) if v)
    lines.append(
        f"  timing errors: {m['errors_injected']} over {m['macs']:.3g} MACs"
        + (f" ({by_type})" if by_type else "")
        + f"; injected faults: {m['faults_injected']}"
    )
    if "out_dir" in m:
        lines.append(
            f"  wrote {m['out_dir']}/metrics.json"
            + (" and samples.png" if m["kind"] in ("diffusion", "video-diffusion") else "")
        )
    print("\n".join(lines))


class _Progress:
    """A rich progress bar over steps/batches (no-op when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def start(self, description: str) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(description, total=None)

    def update(self, done: int, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)
