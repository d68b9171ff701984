"""``accelsim campaign run | status | export``: the command-line face of :mod:`accelsim.campaign`.

Wired into ``accelsim/cli.py`` with ``add_parser(sub)`` (which sets ``func=run_cli``); errors
are :class:`~accelsim.errors.AccelsimError` and reach the user as one line
``accelsim campaign: error: ...`` with exit status 2. ``python -m accelsim.campaign.cli``
runs the same commands standalone.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from accelsim.cli import int_at_least
from accelsim.errors import AccelsimError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


_positive_int = int_at_least(1)
_nonneg_int = int_at_least(0)


def add_parser(subparsers: Any) -> None:
    """Add the ``campaign`` subcommand (and its run/status/export actions) to ``subparsers``."""
    p = subparsers.add_parser(
        "campaign",
        help="run a grid of trials (local processes or Dask), resumable, into a SQLite store",
        description=(
            "Expand a campaign TOML ([campaign] name and trial kind, [grid] lists, [fixed] "
            "constants, [[include]] extra points) into trials, run the ones not yet done on a "
            "local process pool or a Dask cluster, and commit each result to a SQLite store. "
            "Rerunning the same command resumes; finished trials are never run twice."
        ),
        epilog=(
            "examples:\n"
            "  accelsim campaign run campaigns/smoke.toml --store results.db --workers 2\n"
            "  accelsim campaign run campaigns/smoke.toml --store results.db --dask local\n"
            "  accelsim campaign run sweep.toml --store results.db --dask tcp://10.0.0.5:8786\n"
            "  accelsim campaign status --store results.db\n"
            "  accelsim campaign export --store results.db --csv out.csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run_cli, campaign_parser=p, campaign_command=None)
    sub = p.add_subparsers(dest="campaign_command", metavar="ACTION", parser_class=type(p))

    run = sub.add_parser(
        "run",
        help="run (or resume) a campaign",
        description="Run the trials of CAMPAIGN.toml that are not done yet in --store.",
    )
    run.add_argument("campaign", metavar="CAMPAIGN.toml", help="campaign definition")
    run.add_argument("--store", required=True, metavar="FILE.db", help="SQLite results store")
    ex = run.add_argument_group("executor (default: a local process pool)")
    ex.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker processes (pool and --dask local); default: the number of CPUs",
    )
    ex.add_argument(
        "--dask",
        metavar="local|tcp://HOST:PORT",
        help="run on Dask: 'local' starts a LocalCluster, an address connects to a scheduler",
    )
    ex.add_argument("--serial", action="store_true", help="run in this process, one by one")
    run.add_argument("--retry-failed", action="store_true", help="also rerun failed trials")
    run.add_argument(
        "--limit", type=_nonneg_int, metavar="N", help="run at most N of the remaining trials"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")

    status = sub.add_parser(
        "status",
        help="done / failed / pending counts and ETA",
        description="Trial counts per campaign in --store, mean trial time and ETA.",
    )
    status.add_argument("--store", required=True, metavar="FILE.db", help="SQLite results store")
    status.add_argument("--campaign", metavar="NAME", help="only this campaign")
    status.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="workers assumed for the ETA; default 1",
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    export = sub.add_parser(
        "export",
        help="write finished trials as CSV and/or Parquet",
        description=(
            "Write the done and failed trials of --store, one row per trial, one column per "
            "config key and per metric. Parquet needs pyarrow."
        ),
    )
    export.add_argument("--store", required=True, metavar="FILE.db", help="SQLite results store")
    export.add_argument("--csv", metavar="OUT.csv", help="CSV output file")
    export.add_argument("--parquet", metavar="OUT.parquet", help="Parquet output file")
    export.add_argument("--campaign", metavar="NAME", help="only this campaign")


def run_cli(args: argparse.Namespace) -> int:
    """Run ``accelsim campaign ACTION`` for parsed ``args``; returns the exit status."""
    action = getattr(args, "campaign_command", None)
    if action == "run":
        return _cmd_run(args)
    if action == "status":
        return _cmd_status(args)
    if action == "export":
        return _cmd_export(args)
    parser = getattr(args, "campaign_parser", None)
    if parser is not None:
        parser.print_help(sys.stderr)
    return EXIT_USAGE


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .runner import run_campaign
    from .spec import load_campaign
    from .store import Store, TrialResult

    if args.serial and args.workers is not None and args.workers != 1:
        raise AccelsimError("--serial runs one trial at a time; drop --workers or --serial")
    camp = load_campaign(args.campaign)
    console = Console(stderr=True)
    show = not args.quiet and sys.stderr.isatty()
    progress = Progress(
        TextColumn(f"[bold]{escape(camp.name)}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} trials/s"),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=False,
    )
    state: dict[str, Any] = {"task": None, "t0": time.perf_counter(), "n": 0, "failed": 0}

    def on_start(n: int) -> None:
        state["t0"] = time.perf_counter()
        state["task"] = progress.add_task(camp.name, total=n, rate="-", failed="")

    def on_result(result: TrialResult) -> None:
        state["n"] += 1
        state["failed"] += result.status == "failed"
        rate = state["n"] / max(1e-9, time.perf_counter() - state["t0"])
        failed = f"[red]{state['failed']} failed[/red]" if state["failed"] else ""
        progress.update(state["task"], advance=1, rate=f"{rate:.2f}", failed=failed)

    old = signal.getsignal(signal.SIGTERM)
    in_main = _in_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    store = Store(args.store)
    try:
        with progress:
            summary = run_campaign(
                camp,
                store,
                workers=args.workers,
                dask=args.dask,
                serial=args.serial,
                retry_failed=args.retry_failed,
                limit=args.limit,
                on_start=on_start,
                on_result=on_result,
            )
    except KeyboardInterrupt:
        st = store.status(camp.name)[0]
        print(
            f"accelsim campaign: interrupted; {state['n']} trials committed in this run, "
            f"{st.done} done, {st.failed} failed, {st.pending} pending; rerun the same command "
            "to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        store.close()
        if in_main:
            signal.signal(signal.SIGTERM, old)
    if not args.quiet:
        parts = [
            f"campaign {summary.campaign}: {summary.total} trials",
            f"ran {summary.ran} ({summary.done} done, {summary.failed} failed)",
            f"skipped {summary.skipped} already finished",
            f"{summary.pending} pending",
        ]
        line = ", ".join(parts)
        if summary.ran:
            line += (
                f"; {_fmt_s(summary.seconds)}, {summary.trials_per_s:.2f} trials/s on "
                f"{summary.workers} {summary.executor} worker{'s' if summary.workers > 1 else ''}"
            )
        print(line)
        if summary.failed:
            print(
                f"  {summary.failed} trials failed: 'accelsim campaign status --store "
                f"{args.store}' shows the errors; rerun with --retry-failed",
            )
    return 0


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _cmd_status(args: argparse.Namespace) -> int:
    from .store import Store

    with Store(args.store, create=False) as store:
        rows = store.status(args.campaign)
    if args.json:
        out = [
            {
                "campaign": r.name,
                "trial": r.kind,
                "total": r.total,
                "done": r.done,
                "failed": r.failed,
                "pending": r.pending,
                "mean_trial_s": r.mean_wall_s,
                "eta_s": r.eta_s(args.workers),
                "workers": args.workers,
                "last_errors": list(r.last_errors),
            }
            for r in rows
        ]
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print(f"{args.store}: no campaigns")
        return 0
    for r in rows:
        mean = "n/a" if r.mean_wall_s is None else f"{r.mean_wall_s:.3g} s"
        eta = _fmt_s(r.eta_s(args.workers)) if r.pending else "0 s"
        print(
            f"campaign {r.name} (trial {r.kind}): {r.total} trials: {r.done} done, "
            f"{r.failed} failed, {r.pending} pending; mean trial {mean}; "
            f"ETA {eta} at {args.workers} worker{'s' if args.workers > 1 else ''}"
        )
        for err in r.last_errors:
            print(f"  failed {err}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .store import Store

    if not args.csv and not args.parquet:
        raise AccelsimError("give --csv OUT.csv and/or --parquet OUT.parquet")
    with Store(args.store, create=False) as store:
        if args.parquet:
            n = store.export_parquet(args.parquet, args.campaign)
            print(f"wrote {n} trials to {args.parquet}")
        if args.csv:
            n = store.export_csv(args.csv, args.campaign)
            print(f"wrote {n} trials to {args.csv}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m accelsim.campaign.cli ACTION ...``), as ``accelsim campaign``."""
    from accelsim.cli import _Parser

    parser = _Parser(prog="accelsim")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_parser(sub)
    args = parser.parse_args(["campaign", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_cli(args)
    except AccelsimError as exc:
        print(f"accelsim campaign: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("accelsim campaign: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
