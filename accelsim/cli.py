"""The ``accelsim`` command line.

Subcommands import what they need lazily (torch, numba and matplotlib only where a command uses
them), so ``accelsim perf`` answers in well under a second. Every user error is printed as ONE
line on stderr (``accelsim <cmd>: error: ...``) with exit status 2; tracebacks are for bugs only.

Units on the command line: ``--vdd`` in volts, ``--freq`` in GHz, everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from accelsim import __version__
from accelsim.errors import AccelsimError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are a single line pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _array_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"got {text!r}, expected ROWSxCOLS such as 128x128")
    rows, cols = (int(p) for p in parts)
    if rows < 1 or cols < 1 or rows > 65536 or cols > 65536:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected rows and cols in [1, 65536]")
    return rows, cols


def int_at_least(lo: int) -> Any:
    """An argparse type: an integer >= ``lo`` (one-line message otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected an integer >= {lo}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected an integer >= {lo}")
        return value

    return parse


_positive_int = int_at_least(1)


def _chip(text: str) -> int | None:
    """A chip: ``typical`` (the median die, None) or a chip seed >= 0."""
    if text.strip() == "typical":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected 'typical' or a chip seed (integer >= 0)"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"got {value}, expected 'typical' or a seed >= 0")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a number") from None


# --------------------------------------------------------------------------- perf


def _add_perf(sub: Any) -> None:
    p = sub.add_parser(
        "perf",
        help="cycles, utilization, traffic and energy of a model's GEMMs on an array",
        description=(
            "Evaluate the performance model (SCALE-Sim-exact compute cycles, DRAM traffic and "
            "stalls, energy ledger) for a full-size model's GEMMs or a SCALE-Sim topology, at "
            "the nominal operating point or at --vdd/--freq. Timing errors are not applied here."
        ),
        epilog=(
            "examples:\n"
            "  accelsim perf --model dit-xl2-256 --array 128x128 --dataflow ws --steps 50\n"
            "  accelsim perf --model dit-xl2-256 --vdd 0.8 --freq 1.2\n"
            "  accelsim perf --topology net.csv --topology-format gemm --array 32x32 --dataflow os --json\n"
            "  accelsim perf --scalesim-cfg scale.cfg --topology net.csv\n"
            "  accelsim workloads            # the model names and hardware presets"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("workload (one of)")
    src.add_argument(
        "--model",
        metavar="NAME",
        help="full-size model workload, e.g. dit-xl2-256 (see 'accelsim workloads')",
    )
    src.add_argument("--topology", metavar="FILE.csv", help="SCALE-Sim topology CSV")
    src.add_argument(
        "--topology-format",
        choices=("conv", "gemm"),
        default="conv",
        help="format of --topology: conv rows (H, W, Fh, Fw, C, filters, stride) or gemm rows (M, N, K); default conv, as SCALE-Sim",
    )
    wl = p.add_argument_group("workload options")
    wl.add_argument(
        "--steps",
        type=_positive_int,
        default=1,
        metavar="N",
        help="forward passes (diffusion steps) to run; default 1",
    )
    wl.add_argument(
        "--batch",
        type=_positive_int,
        default=1,
        metavar="B",
        help="batch size of --model; default 1",
    )
    wl.add_argument(
        "--cfg", action="store_true", help="classifier-free guidance (doubles the batch of --model)"
    )
    wl.add_argument(
        "--seq-len",
        type=_positive_int,
        metavar="L",
        help="sequence length of language models (gpt2-small, bart-base)",
    )
    hw = p.add_argument_group("hardware")
    hw.add_argument(
        "--preset",
        metavar="NAME",
        default="tpu-128x128",
        help="shipped hardware preset; default tpu-128x128 (see 'accelsim workloads')",
    )
    hw.add_argument(
        "--config",
        metavar="FILE.toml",
        help="hardware TOML with [array], [memory], [tech] sections (replaces --preset)",
    )
    hw.add_argument(
        "--scalesim-cfg",
        metavar="FILE.cfg",
        help="SCALE-Sim .cfg file (replaces --preset/--config)",
    )
    hw.add_argument(
        "--array",
        type=_array_size,
        metavar="RxC",
        help="array size, e.g. 128x128 (overrides the config)",
    )
    hw.add_argument(
        "--dataflow", choices=("os", "ws", "is"), help="dataflow (overrides the config)"
    )
    opg = p.add_argument_group("operating point")
    opg.add_argument(
        "--vdd", type=_float, metavar="V", help="supply voltage in volts; default: nominal (0.9)"
    )
    opg.add_argument(
        "--freq", type=_float, metavar="GHZ", help="array clock in GHz; default: nominal (1.0)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"layers": [...], "totals": {...}}',
    )
    out.add_argument(
        "--group",
        choices=("type", "block", "layer"),
        default="type",
        help="rows of the table: per layer type (default), per block, or per layer",
    )
    p.set_defaults(func=_cmd_perf)


def _load_hardware(args: argparse.Namespace) -> Any:
    from accelsim.config import load_hardware, load_preset

    if args.scalesim_cfg and args.config:
        raise AccelsimError("--scalesim-cfg and --config both give the hardware; use one")
    if args.scalesim_cfg:
        from accelsim.hw.scalesim import read_scalesim_cfg

        hw = read_scalesim_cfg(args.scalesim_cfg)[0]
    elif args.config:
        hw = load_hardware(args.config)
    else:
        hw = load_preset(args.preset)
    changes: dict[str, Any] = {}
    if args.array:
        changes["rows"], changes["cols"] = args.array
    if args.dataflow:
        changes["dataflow"] = args.dataflow
    return hw.with_array(**changes) if changes else hw


def _load_layers(args: argparse.Namespace) -> tuple[list[Any], str]:
    if bool(args.model) == bool(args.topology):
        raise AccelsimError("give exactly one of --model NAME or --topology FILE.csv")
    if args.topology:
        from accelsim.hw.scalesim import read_topology

        if args.batch != 1 or args.cfg or args.seq_len:
            raise AccelsimError(
                "--batch, --cfg and --seq-len apply to --model only, not to --topology"
            )
        return read_topology(args.topology, args.topology_format), args.topology
    from accelsim.models.workloads import workload_layers

    layers = workload_layers(args.model, batch=args.batch, cfg=args.cfg, seq_len=args.seq_len)
    return layers, args.model


def _cmd_perf(args: argparse.Namespace) -> int:
    from accelsim.config import OperatingPoint
    from accelsim.hw.perf import evaluate_workload

    hw = _load_hardware(args)
    layers, name = _load_layers(args)
    vdd = args.vdd if args.vdd is not None else hw.tech.vnom
    freq = args.freq * 1e9 if args.freq is not None else hw.tech.fnom
    op = OperatingPoint(vdd=vdd, freq=freq)
    report = evaluate_workload(layers, hw, op, repeats=args.steps)
    if args.json:
        doc = report.as_dict()
        doc["config"]["workload"] = name
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from accelsim.report.perf_table import print_perf_report

    group = {"type": "layer_type", "block": "block", "layer": "layer"}[args.group]
    print_perf_report(report, name, group)
    return 0


# --------------------------------------------------------------------------- workloads


def _add_workloads(sub: Any) -> None:
    p = sub.add_parser(
        "workloads",
        help="list the full-size model workloads and the hardware presets",
        description="List the full-size model workloads (for 'accelsim perf --model') and hardware presets.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_workloads)


def _cmd_workloads(args: argparse.Namespace) -> int:
    from accelsim.config import load_preset, preset_names
    from accelsim.models.workloads import list_workloads, workload_layers

    wls: list[dict[str, Any]] = []
    for info in list_workloads():
        layers = workload_layers(info.name)
        macs = sum(layer.macs * layer.count for layer in layers)
        wls.append(
            {
                "name": info.name,
                "gmacs": macs / 1e9,
                "description": info.description,
                "source": info.source,
            }
        )
    presets: list[dict[str, Any]] = []
    for name in preset_names():
        hw = load_preset(name)
        m = hw.memory
        presets.append(
            {
                "name": name,
                "array": f"{hw.array.rows}x{hw.array.cols}",
                "dataflow": hw.array.dataflow,
                "sram_kb": [m.ifmap_sram_kb, m.filter_sram_kb, m.ofmap_sram_kb],
                "dram_gbps": m.dram_bandwidth / 1e9,
            }
        )
    if args.json:
        json.dump({"workloads": wls, "presets": presets}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 130)
    table = Table(title="Workloads (one forward pass, batch 1)")
    for col in ("name", "GMACs", "description"):
        table.add_column(col, justify="right" if col == "GMACs" else "left")
    for w in wls:
        table.add_row(w["name"], f"{w['gmacs']:.1f}", w["description"])
    console.print(table)
    table = Table(title="Hardware presets")
    for col in ("name", "array", "dataflow", "SRAM kB (ifmap/filter/ofmap)", "DRAM GB/s"):
        table.add_column(col)
    for pr in presets:
        table.add_row(
            pr["name"],
            pr["array"],
            pr["dataflow"],
            "/".join(f"{s:g}" for s in pr["sram_kb"]),
            f"{pr['dram_gbps']:g}",
        )
    console.print(table)
    return 0


# --------------------------------------------------------------------------- ter


def _value_list(text: str, what: str, unit: str) -> list[float]:
    """Parse ``START:STOP:STEP`` (inclusive) or a comma list of numbers."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise argparse.ArgumentTypeError(
                    f"got {text!r}, expected START:STOP:STEP with STEP > 0 and STOP >= START"
                )
            count = round((stop - start) / step) + 1
            if start + (count - 1) * step > stop + 1e-9 * max(1.0, abs(stop)):
                count -= 1
            if count > 10_000:
                raise argparse.ArgumentTypeError(f"got {text!r}: {count} values, at most 10000")
            return [round(start + i * step, 10) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected {what} in {unit} as START:STOP:STEP or a comma list"
        ) from None


def _add_ter(sub: Any) -> None:
    p = sub.add_parser(
        "ter",
        help="per-MAC timing-error probability over supply voltage and clock frequency",
        description=(
            "Per-MAC timing-error probability (TER) for realistic DNN operands on a typical chip "
            "(or a given chip seed) over a grid of supply voltages and clock frequencies: "
            "alpha-power delay, data-dependent sensitized delay, PE variation, droop and noise."
        ),
        epilog=(
            "examples:\n"
            "  accelsim ter --vdd 0.60:0.95:0.05 --freq 1.0 --json\n"
            "  accelsim ter --vdd 0.60:0.95:0.01 --freq 0.8,1.0,1.2 --plot ter.png\n"
            "  accelsim ter --vdd 0.7 --freq 1.0 --chip 7      # one die of the Monte Carlo"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--vdd",
        type=lambda t: _value_list(t, "supply voltages", "volts"),
        default=_value_list("0.60:0.95:0.05", "", ""),
        metavar="V",
        help="supply voltages in volts: START:STOP:STEP (inclusive) or a comma list; default 0.60:0.95:0.05",
    )
    p.add_argument(
        "--freq",
        type=lambda t: _value_list(t, "clock frequencies", "GHz"),
        default=[1.0],
        metavar="GHZ",
        help="clock frequencies in GHz: a comma list or START:STOP:STEP; default 1.0",
    )
    p.add_argument(
        "--chip",
        type=_chip,
        metavar="SEED|typical",
        help="a chip seed (its PE variation map and die-to-die offset) or 'typical' (the median "
        "die with the within-die spread); default: typical",
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        help="hardware TOML: its nominal point, array and [delay]/[variation]/[sensitized] "
        "overrides of the timing model; default: the shipped model on a 128x128 ws array",
    )
    p.add_argument(
        "--array",
        type=_array_size,
        metavar="RxC",
        help="array size for the PE map and the droop trace; default 128x128 (or the config's)",
    )
    p.add_argument(
        "--dataflow",
        choices=("os", "ws", "is"),
        help="dataflow of the reference GEMM whose folds trigger droops; default ws (or the config's)",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=1 << 21,
        metavar="N",
        help="sampled MAC transitions (resolution 1/N); default 2097152",
    )
    p.add_argument(
        "--cycles",
        type=_positive_int,
        default=20_000,
        metavar="N",
        help="cycles of the supply trace; default 20000",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the operand and supply samples; default 0"
    )
    p.add_argument(
        "--json", action="store_true", help="print a JSON list, one object per operating point"
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="write a log-scale TER-vs-V plot, one curve per frequency",
    )
    p.set_defaults(func=_cmd_ter)


def _cmd_ter(args: argparse.Namespace) -> int:
    from accelsim.config import ArrayConfig
    from accelsim.timing.delay import check_vdd, signoff_voltage
    from accelsim.timing.errors import TimingModel, ter_points

    if args.config:
        from accelsim.config import load_hardware

        hw = load_hardware(args.config)
        model = TimingModel.for_hardware(hw)
        base = hw.array
    else:
        model = TimingModel.default()
        base = ArrayConfig(128, 128, "ws")
    for vdd in args.vdd:
        check_vdd(vdd, model.delay)
    for f in args.freq:
        if not 0.001 <= f <= 10:
            raise AccelsimError(f"--freq: got {f:g} GHz, expected a number in [0.001, 10] GHz")
    rows_cols = args.array or (base.rows, base.cols)
    array = ArrayConfig(rows_cols[0], rows_cols[1], args.dataflow or base.dataflow)
    grid = [(v, f * 1e9) for f in args.freq for v in args.vdd]
    points = ter_points(
        grid,
        model,
        array=array,
        chip=args.chip,
        n_samples=args.samples,
        n_cycles=args.cycles,
        seed=args.seed,
    )
    rows = [p.as_dict() for p in points]
    if args.plot:
        from accelsim.report.ter_plot import plot_ter

        chip = "typical chip" if args.chip is None else f"chip {args.chip}"
        plot_ter(
            rows,
            args.plot,
            vnom=model.vnom,
            fnom_ghz=model.fnom / 1e9,
            signoff_v=signoff_voltage(model.vnom, model.delay),
            title=f"Per-MAC timing-error probability, DNN operands, {chip}, {array.rows}x{array.cols}",
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    table = Table(
        title=f"Timing errors per MAC ({'typical chip' if args.chip is None else f'chip {args.chip}'})"
    )
    for col in ("V", "GHz", "CP/T", "TER", "errors per 1e6 MACs"):
        table.add_column(col, justify="right")
    for r in rows:
        ter = r["mac_error_prob"]
        table.add_row(
            f"{r['vdd']:.3f}",
            f"{r['freq_ghz']:g}",
            f"{r['critical_path_ratio']:.3f}",
            f"{ter:.3g}" if ter > 0 else f"< {r['resolution']:.1g}",
            f"{r['errors_per_million_macs']:.3g}",
        )
    console.print(table)
    if args.plot:
        console.print(f"wrote {args.plot}", highlight=False)
    return 0


# --------------------------------------------------------------------------- calibrate


def _add_calibrate(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="refit the timing and energy defaults from the published data in calib/",
        description=(
            "Refit the delay-vs-voltage model and rederive the energy parameters from the CSV "
            "data points in calib/ (each with its source), print the fit quality and, with "
            "--write, rewrite the parameter files. Deterministic: the same data give the same files."
        ),
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="write the parameter files (default: only print the fit)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="directory for the written files; default: the installed calib/ directory",
    )
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from accelsim.calibration import format_report, run_calibration

    out = Path(args.out) if args.out else None
    if out is not None and not out.is_dir():
        raise AccelsimError(f"--out: got {args.out!r}, expected an existing directory")
    report = run_calibration(write=args.write, out_dir=out)
    print(format_report(report))
    return 0


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with all subcommands."""
    parser = _Parser(
        prog="accelsim",
        description=(
            "Systolic-array accelerator simulator: performance, energy and (in later commands) "
            "timing errors of diffusion and transformer models run below the safe voltage or "
            "above the safe clock."
        ),
        epilog="Run 'accelsim COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_perf(sub)
    _add_ter(sub)
    _add_calibrate(sub)
    _add_workloads(sub)
    from accelsim.campaign.cli import add_parser as add_campaign_parser
    from accelsim.commands import explore as explore_cmd
    from accelsim.commands import models as models_cmd
    from accelsim.commands import run as run_cmd
    from accelsim.commands import study as study_cmd

    explore_cmd.add_parser(sub, sys.modules[__name__])
    add_campaign_parser(sub)
    run_cmd.add_parser(sub, sys.modules[__name__])
    models_cmd.add_parser(sub)
    study_cmd.add_parser(sub, sys.modules[__name__])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``accelsim`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    prog = f"accelsim {args.command}"
    try:
        return int(args.func(args))
    except AccelsimError as exc:
        message = " ".join(str(exc).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
