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
        default=None,
        help="classifier-free guidance scale of diffusion models; default: the model's "
        "recommended value (3 for the shipped ones; 1 = off)",
    )
    p.add_argument(
        "--policy",
        metavar="SPEC",
        help="DVFS/protection policy instead of a fixed point, e.g. thundervolt:vdd=0.8, "
        "drift:vdd=0.84,protect=0.3,interval=2 (needs --profile), closed-loop:target=1e-6, "
        "uniform:mode=overclock,freq_ghz=1.3; --vdd or --freq fill in a spec without a point",
    )
    p.add_argument(
        "--profile",
        metavar="CSV",
        help="block x timestep sensitivity profile for --policy drift (explore writes one: "
        "sensitivity.csv)",
    )
    p.add_argument(
        "--abft",
        metavar="SPEC",
        help="checksum ABFT preset (classic, drift, realm, detect; or preset:key=value,...) "
        "overriding the policy's",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of noise, supply traces and fault sites; default 0",
    )
    p.add_argument(
        "--chip",
        type=helpers._chip,
        metavar="SEED|typical",
        help="chip seed (PE variation map and die-to-die offset) or 'typical' (the median die); "
        "default: typical",
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
    from accelsim.experiments import trials

    hw = cli._load_hardware(args)
    fault_opts = _fault_options(args)
    config = run_config(args, hw, fault_opts)
    config = trials.normalize(config)  # validates everything before any model loads
    result = run_configuration(
        config, hw, out_dir=Path(args.out), progress=not args.quiet and sys.stderr.isatty()
    )
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_summary(result)
    return 0


def run_config(
    args: argparse.Namespace, hw: Any, fault_options: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``model-run`` config of an ``accelsim run`` command line (not yet normalized)."""
    from accelsim.experiments.trials import hardware_to_dict

    config: dict[str, Any] = {
        "model": args.model,
        "samples": args.samples or 0,
        "steps": args.steps,
        "method": args.method,
        "guidance": "model" if args.guidance is None else args.guidance,
        "seed": args.seed,
        "hardware": hardware_to_dict(hw),
        "chip": "typical" if args.chip is None else args.chip,
        "kernel": args.kernel,
        "manifestation": args.manifestation,
    }
    if args.freq is not None and not 0.001 <= args.freq <= 10:
        raise AccelsimError(f"--freq: got {args.freq:g} GHz, expected a number in [0.001, 10] GHz")
    if args.policy:
        config["policy"] = _policy_spec(args.policy, args.vdd, args.freq)
        if args.profile:
            config["profile"] = args.profile
        if args.manifestation != "hold":
            raise AccelsimError(
                "--manifestation: given with --policy, expected the policy's own (thundervolt "
                "drops late updates; the others hold)"
            )
    else:
        if args.profile:
            raise AccelsimError("--profile: given without --policy, expected --policy drift:...")
        if args.vdd is not None:
            config["vdd"] = args.vdd
        if args.freq is not None:
            config["freq"] = args.freq
    if args.abft:
        config["abft"] = args.abft
    if fault_options:
        opts = dict(fault_options)
        kind = opts.get("fault")
        if kind in ("rowcol", "stuck-at"):
            opts.setdefault("array", f"{hw.array.rows}x{hw.array.cols}")
        if kind == "stuck-at":
            opts.setdefault("dataflow", hw.array.dataflow)
        fmt = opts.get("format")
        config["quant"] = fmt if fmt in ("fp16", "bf16", "fp32") else "w8a8"
        config["faults"] = [opts]
    return config


def _policy_spec(spec: str, vdd: float | None, freq: float | None) -> str:
    """``spec`` with ``--vdd`` (undervolt) or ``--freq`` (overclock, GHz) filled in when the
    spec gives no operating point of its own."""
    if vdd is None and freq is None:
        return spec
    name, _, rest = spec.partition(":")
    keys = {item.partition("=")[0].strip() for item in rest.split(",") if item.strip()}
    given = keys & {"vdd", "v_scale", "freq", "freq_ghz", "speedup"}
    if given:
        raise AccelsimError(
            f"--policy: got {spec!r} with its own point ({', '.join(sorted(given))}) and "
            "--vdd/--freq, expected the point in one place"
        )
    if vdd is not None and freq is not None:
        raise AccelsimError(
            "--vdd, --freq: got both with --policy, expected one (undervolt: --vdd, "
            "overclock: --freq)"
        )
    extra = f"vdd={vdd:g}" if vdd is not None else f"freq_ghz={freq:g}"
    if "mode" not in keys:
        extra = ("mode=undervolt," if vdd is not None else "mode=overclock,") + extra
    return f"{name}:{rest + ',' if rest.strip() else ''}{extra}"


def run_configuration(
    config: dict[str, Any],
    hw: Any,
    *,
    out_dir: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run a normalized ``model-run`` config (:func:`accelsim.experiments.trials.
    run_configuration`) and write ``metrics.json`` (and ``samples.png`` for generators)."""
    from accelsim.experiments import trials

    state = trials.setup()
    with _Progress(progress) as bar:
        session = trials.session_for(config, state)
        session.progress = bar.update
        bar.start(f"golden, then test run of {config['model']}")
        result = trials.run_configuration(config, state)
    m = result.metrics
    session = result.session
    policy = config["policy"] or None
    metrics: dict[str, Any] = {
        "model": config["model"],
        "kind": session.kind,
        "policy": policy,
        "vdd": m.get("mean_vdd"),
        "freq_ghz": m.get("mean_freq_ghz"),
        "chip": None if config["chip"] == "typical" else config["chip"],
        "seed": config["seed"],
        "steps": config["steps"],
        "kernel": config["kernel"],
        "array": f"{hw.array.rows}x{hw.array.cols} {hw.array.dataflow}",
        "format": _format_name(config),
        **m,
        "fault_log": result.test.faults.as_rows()[:100],
        "wall_s": result.golden.wall_s + result.test.wall_s,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        if session.kind in ("diffusion", "video-diffusion"):
            from accelsim.report.samples import save_comparison

            where = (
                f"policy {policy}"
                if policy
                else f"{metrics['vdd']:.3f} V / {metrics['freq_ghz']:.3g} GHz"
            )
            save_comparison(
                result.golden.output,
                result.test.output,
                out_dir / "samples.png",
                title=f"{config['model']}: golden (nominal) vs {where}",
            )
        metrics["out_dir"] = str(out_dir)
    return metrics


def _format_name(config: dict[str, Any]) -> str:
    for f in config["faults"]:
        if f.get("format"):
            return str(f["format"])
    return "w8a8" if config["quant"] == "w8a8" else str(config["quant"])


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _print_summary(m: dict[str, Any]) -> None:
    where = (
        f"policy {m['policy']} (mean {m['vdd']:.3f} V / {m['freq_ghz']:.3g} GHz)"
        if m.get("policy")
        else f"{m['vdd']:.3f} V / {m['freq_ghz']:.3g} GHz"
    )
    lines = [
        f"{m['model']} on {m['array']} at {where} "
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
    over = {
        k: v
        for k, v in m["energy_by_component"].items()
        if k not in ("mac", "sram", "dram", "leakage") and v
    }
    if over:
        lines.append(
            "  protection: "
            + ", ".join(f"{k} {100 * v / m['energy_j']:.2f}%" for k, v in over.items())
            + f" of the energy; {m['abft_detections']} detections, {m['abft_corrections']} "
            f"corrected, {m['recomputes']} recomputes, {m['rollbacks']} rollbacks"
        )
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(m["errors_by_layer_type"].items()) if v)
    lines.append(
        f"  timing errors: {m['timing_errors']} over {m['macs']:.3g} MACs"
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
