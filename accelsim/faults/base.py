"""The one small interface every fault model implements.

The interceptor calls the hooks of every active fault model at three places of a GEMM
``out = A @ W^T`` (A: activations, W: weights):

* :meth:`FaultModel.on_weights` once per weight tensor per run, before the first use (faults in
  memory are persistent: the corrupted tensor replaces the weight for the whole run);
* :meth:`FaultModel.on_inputs` on the quantized (or float-format) input operand of each call;
* :meth:`FaultModel.on_output` on the int32 accumulators (or float outputs) of each call.

Each hook gets the call's :class:`~accelsim.context.GemmContext`, the tensor's number format
(``int8``, ``int32``, ``fp16``, ``bf16``, ``fp32``) and a ``numpy.random.Generator`` derived from
the run's seed and the context (never global state), and returns the (possibly) corrupted
tensor, appending what it did to the :class:`FaultLog`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from accelsim.context import GemmContext

FORMATS = ("int8", "int32", "fp16", "bf16", "fp32")


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault: where, which bit, old and new value (as the format's bit pattern
    reinterpreted to a Python number)."""

    kind: str
    target: str  # "weights" | "inputs" | "outputs"
    module: str
    timestep: int | None
    index: tuple[int, ...]
    bit: int | None
    fmt: str
    old: float
    new: float


@dataclass
class FaultLog:
    """All faults injected in a run, in injection order."""

    records: list[FaultRecord] = field(default_factory=list)

    def add(self, record: FaultRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def as_rows(self) -> list[dict[str, Any]]:
        """JSON/CSV-ready rows."""
        return [
            {
                "kind": r.kind,
                "target": r.target,
                "module": r.module,
                "timestep": r.timestep,
                "index": list(r.index),
                "bit": r.bit,
                "format": r.fmt,
                "old": _json_number(r.old),
                "new": _json_number(r.new),
            }
            for r in self.records
        ]


def _json_number(x: float) -> float | str:
    """``x``, or its string form when it is not finite (JSON has no NaN/inf)."""
    return x if math.isfinite(x) else str(x)


class FaultModel(Protocol):
    """Hooks called by the interceptor; a model that does not act at a place returns its input."""

    def on_weights(
        self, w: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray: ...

    def on_inputs(
        self, a: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray: ...

    def on_output(
        self, out: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray: ...
