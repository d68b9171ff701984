"""``accelsim models list``: the shipped small models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``accelsim models``."""
    p = sub.add_parser(
        "models",
        help="the shipped small models (digits, tiny LM): parameters, GEMM MACs, metrics",
        description="List the shipped models with parameter counts, GEMM MACs per forward pass "
        "(batch 1), checkpoint status and recorded training metrics.",
    )
    p.add_argument("action", nargs="?", choices=("list",), default="list", help="list (default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from accelsim.models.zoo import list_models

    infos = list_models()
    rows = [
        {
            "name": i.name,
            "kind": i.kind,
            "params": i.params,
            "gemm_macs_per_forward": i.gemm_macs_per_forward,
            "checkpoint": str(i.checkpoint),
            "checkpoint_present": i.checkpoint_present,
            "metrics": i.metrics,
            "description": i.description,
        }
        for i in infos
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="Shipped models (python -m accelsim.models.train NAME regenerates a checkpoint)"
    )
    for col in ("model", "kind", "params", "GEMM MACs/forward", "checkpoint", "metrics"):
        table.add_column(col, justify="right" if col in ("params", "GEMM MACs/forward") else "left")
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in list(r["metrics"].items())[:3])
        table.add_row(
            r["name"],
            r["kind"],
            f"{r['params']:,}",
            f"{r['gemm_macs_per_forward']:,}",
            "yes" if r["checkpoint_present"] else "MISSING",
            metrics or "-",
        )
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    return 0
