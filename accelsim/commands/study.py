"""``accelsim study NAME``: one of the field's standard resilience studies as a campaign."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from accelsim.commands import add_hardware_args
from accelsim.errors import AccelsimError


def _seeds(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo or lo < 0:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                v = int(part)
                if v < 0:
                    raise ValueError
                out.append(v)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"got {text!r}, expected seeds >= 0 like 0,1,2 or 0-4"
            ) from None
    return tuple(dict.fromkeys(out))


def add_parser(sub: Any, helpers: Any) -> None:
    """Register ``accelsim study`` (``helpers``: the cli module, for its argument types)."""
    from accelsim.studies.defs import STUDIES

    names = ", ".join(STUDIES)
    p = sub.add_parser(
        "study",
        help="run a standard resilience study (bitpos, formats, blocks, timesteps, layers, ...)",
        description=(
            "Run one of the field's standard resilience studies on a shipped model as a "
            "resumable campaign (SQLite store DIR/NAME.db: rerunning skips finished trials). "
            "Writes DIR/NAME.csv (one row per studied cell with trials and quality_drop), "
            f"DIR/NAME.png and DIR/NAME.md. Studies: {names}."
        ),
        epilog=(
            "examples:\n"
            "  accelsim study bitpos --model vit-digits --quick --out studies\n"
            "  accelsim study timesteps --model unet-digits --quick --out studies\n"
            "  accelsim study layers --model vit-digits --seeds 0-4 --workers 2 --out studies"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help=f"study: {names}")
    p.add_argument("--model", default=None, help="shipped model; default per study")
    p.add_argument("--quick", action="store_true", help="small grid and inputs (about a minute)")
    p.add_argument("--out", metavar="DIR", default="accelsim-out/studies", help="output dir")
    p.add_argument(
        "--workers",
        type=helpers._positive_int,
        default=None,
        help="worker processes (1 = serial in this process); default: all cores",
    )
    p.add_argument("--dask", metavar="ADDRESS", help="'local' or tcp://HOST:PORT")
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        help="seeds (fault sites, sampler noise): 0,1,2 or 0-4; default 0 (quick) or 0-2",
    )
    p.add_argument("--samples", type=helpers._positive_int, default=None, help="inputs per trial")
    p.add_argument("--steps", type=helpers._positive_int, default=None, help="sampler steps")
    p.add_argument("--retry-failed", action="store_true", help="rerun failed trials too")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_hardware_args(p, helpers)
    p.set_defaults(func=cmd_study, scalesim_cfg=None)


def cmd_study(args: argparse.Namespace) -> int:
    """Run the study and print where its files are."""
    from accelsim import cli
    from accelsim.studies import STUDIES, run_study

    if args.name not in STUDIES:
        raise AccelsimError(f"study: got {args.name!r}, expected one of {', '.join(STUDIES)}")
    hw = cli._load_hardware(args)
    from pathlib import Path

    hardware = {
        "preset": args.preset,
        "hardware": str(Path(args.config).resolve()) if args.config else "",
        "array": f"{args.array[0]}x{args.array[1]}" if args.array else "",
        "dataflow": args.dataflow or "",
    }
    show = not args.quiet and sys.stderr.isatty()
    state = {"n": 0, "total": 0}

    def on_start(n: int) -> None:
        state["total"] = n
        if not args.quiet:
            print(f"study {args.name}: {n} trials to run", file=sys.stderr)

    def on_result(_: Any) -> None:
        state["n"] += 1
        if show:
            print(f"\r  {state['n']}/{state['total']} trials", end="", file=sys.stderr)

    res = run_study(
        args.name,
        args.model,
        args.out,
        quick=args.quick,
        workers=args.workers,
        seeds=args.seeds,
        samples=args.samples,
        steps=args.steps,
        hw=hw,
        hardware=hardware,
        dask=args.dask,
        retry_failed=args.retry_failed,
        on_start=on_start,
        on_result=on_result,
    )
    if show:
        print(file=sys.stderr)
    print(
        f"study {res.name}: {len(res.rows)} cells from {res.total} trials ({res.ran} run now, "
        f"{res.skipped} already done, {res.failed} failed) in {res.seconds:.1f} s; wrote "
        f"{res.csv}, {res.png}, {res.md} (store {res.store})"
    )
    if res.failed:
        print(
            f"study {res.name}: {res.failed} trials failed; see `accelsim campaign status "
            f"--store {res.store}`, rerun with --retry-failed",
            file=sys.stderr,
        )
    return 0 if res.failed == 0 else 1
