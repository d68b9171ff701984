"""Subcommands of the ``accelsim`` CLI that run models (torch imported lazily)."""

from __future__ import annotations

import argparse
from typing import Any


def add_hardware_args(p: argparse.ArgumentParser, helpers: Any) -> None:
    """The hardware options shared by run, explore and study (read by ``cli._load_hardware``)."""
    hw = p.add_argument_group("hardware")
    hw.add_argument(
        "--preset",
        default="tpu-128x128",
        metavar="NAME",
        help="hardware preset; default tpu-128x128",
    )
    hw.add_argument("--config", metavar="FILE.toml", help="hardware TOML (replaces --preset)")
    hw.add_argument("--array", type=helpers._array_size, metavar="RxC", help="array size override")
    hw.add_argument("--dataflow", choices=("os", "ws", "is"), help="dataflow override")
    p.set_defaults(scalesim_cfg=None)
