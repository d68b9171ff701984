"""``accelsim explore``: the main job (see :mod:`accelsim.experiments.explore`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from accelsim.commands import add_hardware_args
from accelsim.errors import AccelsimError


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a comma list of numbers"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected at least one number")
    return values


def _chips(text: str) -> tuple[int | str, ...]:
    """``typical``, a count N (chip seeds 0..N-1), or a comma list of seeds and ``typical``."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected typical, a count or a list")
    if len(items) == 1 and items[0].isdigit() and "," not in text:
        return _ints(text)
    out: list[int | str] = []
    for item in items:
        if item == "typical":
            out.append("typical")
        elif item.isdigit():
            out.append(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"got {item!r}, expected 'typical' or a chip seed (integer >= 0)"
            )
    return tuple(out)


def _ints(text: str) -> tuple[int, ...]:
    text = text.strip()
    try:
        if text.isdigit():
            if int(text) < 1:
                raise argparse.ArgumentTypeError(
                    f"got {text!r}, expected a count >= 1 or a comma list such as 0,3 (one seed: '7,')"
                )
            return tuple(range(int(text)))
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a count N or a comma list of integers"
        ) from None


def _ints_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a comma list of integers"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected at least one integer")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_parser(sub: Any, helpers: Any) -> None:
    """Register ``accelsim explore``."""
    p = sub.add_parser(
        "explore",
        help="the main job: DVFS/ABFT policies over V/f points, chips and seeds; Pareto plot",
        description=(
            "Run a shipped diffusion model on the array across a grid of operating points and all "
            "DVFS policies (nominal, guardband, uniform, timestep, drift, thundervolt, closed-loop), "
            "on several chips (PE variation seeds) and sampling seeds, in undervolt and overclock "
            "mode. Writes results.csv, pareto.png, sensitivity.png/.csv and report.md to --out. "
            "Interrupted runs keep their finished rows and resume."
        ),
        epilog=(
            "examples:\n"
            "  accelsim explore                         # the default grid (8 chips; ~45 min on 2 cores)\n"
            "  accelsim explore --quick                 # 3 chips, 2 points per mode (~4 min)\n"
            "  accelsim explore --mode undervolt --policies nominal,uniform,drift --vdd 0.78,0.75,0.72\n"
            "  accelsim explore --model unet-digits --array 32x32 --chips 4 --seeds 2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", default="dit-digits", help="shipped diffusion model; default dit-digits"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small grid: 2 points per mode, chips typical,0,1, 6 steps, 8 samples",
    )
    p.add_argument(
        "--mode", choices=("undervolt", "overclock", "both"), default="both", help="default both"
    )
    p.add_argument("--policies", type=_names, metavar="A,B", help="policies to run; default all")
    p.add_argument("--vdd", type=_floats, metavar="V,V", help="undervolt grid in volts")
    p.add_argument("--freq", type=_floats, metavar="GHZ,GHZ", help="overclock grid in GHz")
    p.add_argument(
        "--chips",
        type=_chips,
        metavar="N|A,B",
        help="chips: a count N (chip seeds 0..N-1) or a comma list of seeds and 'typical' "
        "(the median die); default typical,0,...,6 (typical,0,1 with --quick)",
    )
    p.add_argument(
        "--seeds",
        type=_ints,
        metavar="N|A,B",
        help="sampling seeds: a count or a list; default 1 (seed 0)",
    )
    p.add_argument(
        "--steps", type=helpers._positive_int, help="sampler steps; default 10 (6 with --quick)"
    )
    p.add_argument(
        "--samples",
        type=helpers._positive_int,
        help="images per run (>= 2: the dataset criterion's Frechet distance); default 16 (8 with --quick)",
    )
    p.add_argument(
        "--guidance",
        type=helpers._float,
        help="classifier-free guidance scale; default: the model's recommended value (3)",
    )
    p.add_argument(
        "--intervals",
        type=_ints_list,
        metavar="K,K",
        help="drift's activation-checkpoint intervals in steps, one configuration each; "
        "default 1,2,5 (1,2 with --quick)",
    )
    p.add_argument(
        "--quality",
        choices=("dataset", "image", "strict"),
        help="the criterion that decides 'quality maintained' (all three are reported): "
        "dataset (Frechet distance and class accuracy within the noise of independent golden "
        "sets, as FID/CLIP-score studies; default), image (per-image distance to golden within "
        "--image-fraction of the seed-to-seed distance, as LPIPS studies), strict (within the "
        "float-vs-W8A8 quantization noise)",
    )
    p.add_argument(
        "--image-fraction",
        type=helpers._float,
        help="image criterion: allowed fraction of the seed-to-seed feature distance; default 0.1",
    )
    p.add_argument(
        "--threshold",
        type=helpers._float,
        help="strict criterion's threshold (feature distance); default: measured",
    )
    p.add_argument(
        "--kernel",
        choices=("fast", "exact"),
        default="fast",
        help="timing-error kernel; default fast",
    )
    p.add_argument(
        "--workers",
        type=helpers._positive_int,
        default=None,
        help="worker processes; default: one per CPU core (rows do not depend on it)",
    )
    p.add_argument(
        "--dask",
        metavar="ADDR",
        help="run the trials on a Dask cluster: 'local' or tcp://HOST:PORT",
    )
    add_hardware_args(p, helpers)
    p.add_argument(
        "--out",
        default="accelsim-out/explore",
        metavar="DIR",
        help="output directory; default accelsim-out/explore",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--projection",
        action="store_true",
        help="with a full-size --model (e.g. dit-xl2-256): project the best policies of the "
        "small-model run in --out onto that workload's perf/energy model",
    )
    p.set_defaults(func=cmd_explore, scalesim_cfg=None)


def cmd_explore(args: argparse.Namespace) -> int:
    from accelsim import cli
    from accelsim.experiments.explore import MODES, STORE_NAME, ExploreConfig, explore, finish

    hw = cli._load_hardware(args)
    if args.projection:
        from accelsim.experiments.projection import run_projection
        from accelsim.models.workloads import list_workloads

        names = [w.name for w in list_workloads()]
        if args.model not in names:
            raise AccelsimError(
                f"--model: got {args.model!r} with --projection, expected a full-size workload: "
                + ", ".join(names)
            )
        print(run_projection(Path(args.out), args.model, hw))
        return 0
    overrides: dict[str, Any] = {"model": args.model, "kernel": args.kernel}
    if args.mode != "both":
        overrides["modes"] = (args.mode,)
    else:
        overrides["modes"] = MODES
    for key, value in (
        ("policies", args.policies),
        ("vdd", args.vdd),
        ("freq_ghz", args.freq),
        ("chips", args.chips),
        ("seeds", args.seeds),
        ("steps", args.steps),
        ("samples", args.samples),
        ("guidance", args.guidance),
        ("intervals", args.intervals),
        ("quality", args.quality),
        ("image_fraction", args.image_fraction),
        ("threshold", args.threshold),
    ):
        if value is not None:
            overrides[key] = value
    cfg = ExploreConfig.quick(**overrides) if args.quick else ExploreConfig(**overrides)
    from accelsim.models.zoo import model_module

    if str(getattr(model_module(cfg.model), "KIND", "")) != "diffusion":
        raise AccelsimError(
            f"--model: got {cfg.model!r}, expected a shipped diffusion model "
            "(dit-digits, unet-digits)"
        )
    out = Path(args.out)
    with _Bars(not args.quiet and sys.stderr.isatty()) as bars:
        workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
        result = explore(cfg, hw, out, progress=bars.update, workers=workers, dask=args.dask)
    text = finish(result, hw, out)
    print(text)
    for line in result.failed[:5]:
        print(f"failed: {line}", file=sys.stderr)
    robust = (
        f"; robustness: {result.variant_ran} run, {result.variant_reused} reused"
        if result.variant_rows
        else ""
    )
    print(
        f"wrote {out}/results.csv ({len(result.rows)} rows: {result.ran} run, {result.reused} "
        f"reused from {STORE_NAME}{robust}), pareto.png, robustness.png, sensitivity.png, "
        "report.md"
    )
    return 1 if result.failed else 0


class _Bars:
    """One rich progress bar per phase (no-op when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def update(self, phase: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)
