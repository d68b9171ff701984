"""The public entry point: run any torch model's GEMMs on the simulated accelerator.

Example::

    import torch, accelsim
    from accelsim.config import load_preset, OperatingPoint

    hw = load_preset("array-32x32")
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 10))
    x = torch.randn(8, 64)

    with accelsim.on(hw, OperatingPoint(vdd=0.72, freq=1e9), kernel="exact", seed=1) as run:
        for t in range(3):              # a sampler sets the timestep before each step
            run.timestep = t
            y = model(x)
    rep = run.report()
    rep.energy_j.total, rep.latency_s, rep.errors_injected, rep.errors_by_layer_type
    rep.fault_log.as_rows()           # faults injected by the fault models

``op`` may also be a function ``GemmContext -> OperatingPoint`` (a DVFS policy deciding per
block / layer type / timestep). ``faults`` are :class:`accelsim.faults.base.FaultModel` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from accelsim.accelerator import Accelerator, AcceleratorReport, Kernel
from accelsim.config import HardwareConfig, OperatingPoint
from accelsim.context import GemmContext
from accelsim.errors import ConfigError
from accelsim.faults.base import FaultLog, FaultModel
from accelsim.torch.intercept import Interceptor, InterceptStats, PostGemm
from accelsim.torch.quant import QuantConfig


@dataclass(frozen=True)
class RunReport:
    """Everything a run produced: the accelerator's books (energy by component in J, latency
    in s, MACs, GEMM calls, timing errors by layer type / block / timestep, per-context rows),
    the fault log and the interceptor's counts."""

    accelerator: AcceleratorReport
    fault_log: FaultLog
    intercept: InterceptStats

    def __getattr__(self, name: str) -> Any:
        # Convenience: run.report().energy_j, .latency_s, .errors_injected, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.accelerator, name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the accelerator summary plus fault rows and intercept counts."""
        d = self.accelerator.as_dict()
        d["faults"] = self.fault_log.as_rows()
        d["faults_injected"] = len(self.fault_log)
        d["accel_gemms"] = self.intercept.accel_gemms
        d["float_gemms"] = self.intercept.float_gemms
        return d


class Run:
    """Handle of an active :func:`on` block: set :attr:`timestep`, read :meth:`report`."""

    def __init__(self, accelerator: Accelerator, interceptor: Interceptor) -> None:
        self.accelerator = accelerator
        self.interceptor = interceptor

    @property
    def timestep(self) -> int | None:
        """Sampler timestep attached to the following GEMMs (None outside a sampler)."""
        return self.interceptor.timestep

    @timestep.setter
    def timestep(self, t: int | None) -> None:
        self.interceptor.timestep = t

    @property
    def fault_log(self) -> FaultLog:
        """Faults injected so far."""
        return self.interceptor.fault_log

    def report(self) -> RunReport:
        """Books so far (may be called inside or after the ``with`` block)."""
        return RunReport(self.accelerator.report(), self.fault_log, self.interceptor.stats())


@contextmanager
def on(
    accel_or_hw: Accelerator | HardwareConfig,
    op: OperatingPoint | Callable[[GemmContext], OperatingPoint] | None = None,
    *,
    faults: Sequence[FaultModel] = (),
    kernel: Kernel = "fast",
    seed: int = 0,
    quant: QuantConfig | None = None,
    chip: int | None = None,
    manifestation: str = "hold",
    select: Callable[[GemmContext], bool] | None = None,
    smoothing: Mapping[str, torch.Tensor] | None = None,
    post_gemm: PostGemm | None = None,
) -> Iterator[Run]:
    """Run every GEMM of the torch code inside the block on the simulated accelerator.

    Parameters
    ----------
    accel_or_hw
        An :class:`~accelsim.accelerator.Accelerator` (used as is: its kernel, chip, seed and
        books; ``kernel``/``chip``/``manifestation`` are then ignored) or a
        :class:`~accelsim.config.HardwareConfig` (a new Accelerator is built from it).
    op
        Operating point (V, Hz) of every GEMM, or ``ctx -> OperatingPoint``; default nominal.
    faults
        Fault models applied to weights, inputs and outputs of every GEMM.
    kernel
        ``fast``, ``exact`` or ``reference`` (no timing errors).
    seed
        Seed of supply traces, the fast kernel and the fault models.
    quant
        :class:`~accelsim.torch.quant.QuantConfig` (W8A8 per-token by default, or fp formats).
    chip
        Chip seed of the PE variation map (None: typical chip).
    manifestation
        ``hold``, ``flip``, ``razor`` or ``drop``.
    select
        ``ctx -> bool``: run only the accepted GEMMs on the accelerator (others in float).
    smoothing
        SmoothQuant activation maxima from :class:`~accelsim.torch.quant.SmoothingCalibrator`.
    post_gemm
        ``(A, B, out, ctx, op) -> out`` on every int8 GEMM after faults (ABFT hook;
        :data:`accelsim.torch.intercept.PostGemm`).

    Yields
    ------
    Run
        ``run.timestep = t`` tags the following GEMMs; ``run.report()`` gives a
        :class:`RunReport`.
    """
    if isinstance(accel_or_hw, Accelerator):
        accel = accel_or_hw
    elif isinstance(accel_or_hw, HardwareConfig):
        accel = Accelerator(
            accel_or_hw, kernel=kernel, chip=chip, manifestation=manifestation, seed=seed
        )
    else:
        raise ConfigError(
            f"accel_or_hw: got {type(accel_or_hw).__name__}, expected an Accelerator or a "
            "HardwareConfig"
        )
    interceptor = Interceptor(
        accel,
        op,
        faults=faults,
        quant=quant,
        seed=seed,
        select=select,
        smoothing=smoothing,
        post_gemm=post_gemm,
    )
    with torch.no_grad(), interceptor:
        yield Run(accel, interceptor)
