"""Resilience profiling: how much quality each block x timestep cell loses per timing error.

For every cell (block ``b``, timesteps ``t0 <= t < t1``) the model is sampled with only that
cell's GEMMs at an aggressive reference operating point (everything else nominal), on the
profiling seeds, and compared with the golden run of the same seed. The cell's sensitivity is
the mean quality loss (feature distance vs golden) per timing error that occurred in the cell;
cells where no error occurred get the loss itself (normally 0). This is DRIFT's resilience
analysis (drift.md s1: early timesteps and early blocks are the most sensitive) measured with
the simulator's own error model instead of uniform bit flips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from accelsim.config import HardwareConfig, OperatingPoint, check_int
from accelsim.context import GemmContext
from accelsim.dvfs.profile import ProfileCell, SensitivityProfile


@dataclass(frozen=True)
class CellResult:
    """Measured loss of one block x timestep-range cell, averaged over the profiling seeds."""

    block: str
    t_start: int
    t_stop: int
    errors: float
    quality_loss: float

    @property
    def sensitivity(self) -> float:
        """Quality loss per timing error (the loss itself when no error occurred)."""
        return self.quality_loss / self.errors if self.errors > 0 else self.quality_loss


def timestep_groups(steps: int, groups: int) -> list[tuple[int, int]]:
    """``groups`` contiguous ranges ``[t0, t1)`` of sampler steps covering ``0..steps-1``."""
    steps = check_int("steps", steps, 1)
    groups = min(check_int("groups", groups, 1), steps)
    edges = [round(i * steps / groups) for i in range(groups + 1)]
    return [(edges[i], edges[i + 1]) for i in range(groups)]


def cell_policy(
    block: str, t0: int, t1: int, hot: OperatingPoint, cold: OperatingPoint
) -> Callable[[GemmContext], OperatingPoint]:
    """``hot`` for the GEMMs of ``block`` at steps ``t0 <= t < t1``, ``cold`` elsewhere."""

    def decide(ctx: GemmContext) -> OperatingPoint:
        t = ctx.timestep
        if ctx.block == block and t is not None and t0 <= t < t1:
            return hot
        return cold

    return decide


def measure_sensitivity(
    session: Any,
    hw: HardwareConfig,
    hot: OperatingPoint,
    *,
    blocks: Sequence[str],
    groups: int = 5,
    seeds: Sequence[int] = (0,),
    chip: int | None = None,
    kernel: str = "fast",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SensitivityProfile, list[CellResult]]:
    """Profile ``session`` (a :class:`accelsim.experiments.runner.ModelSession` of a diffusion model) at
    the reference point ``hot``; returns the profile table and the per-cell measurements."""
    from accelsim.experiments.runner import make_accelerator

    cold = OperatingPoint.nominal(hw.tech)
    ranges = timestep_groups(session.config.steps, groups)
    goldens = {}
    for seed in seeds:
        acc = make_accelerator(hw, kernel=kernel, chip=chip, seed=seed)
        goldens[seed] = session.run(acc, cold, seed=seed)
    results: list[CellResult] = []
    total = len(blocks) * len(ranges)
    done = 0
    for block in blocks:
        for t0, t1 in ranges:
            errors = 0.0
            loss = 0.0
            for seed in seeds:
                acc = make_accelerator(hw, kernel=kernel, chip=chip, seed=seed)
                out = session.run(acc, cell_policy(block, t0, t1, hot, cold), seed=seed)
                metrics = session.compare(goldens[seed], out)
                errors += out.report.errors_injected
                loss += float(metrics.get("feature_distance") or 0.0)
            n = len(seeds)
            results.append(CellResult(block, t0, t1, errors / n, loss / n))
            done += 1
            if progress is not None:
                progress(done, total)
    cells = tuple(
        ProfileCell(block=r.block, t_start=r.t_start, t_stop=r.t_stop, sensitivity=r.sensitivity)
        for r in results
    )
    return SensitivityProfile(cells), results
