"""Sensitivity profile: block x timestep -> how fragile that cell is (higher = more fragile).

DRIFT's resilience analysis (drift.md s1: "early timesteps and early network blocks are the
most sensitive") produces such a table; the ``drift`` DVFS policy protects its fragile cells.
The values are whatever the study measured (e.g. LPIPS increase when only that cell is
faulted); only their order and the threshold matter to the policy.

CSV format (header required; ``#`` lines are comments)::

    block,t_start,t_stop,sensitivity
    blocks.0,0,10,0.31
    blocks.0,10,50,0.02
    *,0,50,0.01

``t_stop`` is exclusive; a ``timestep`` column may replace ``t_start,t_stop`` for single
steps. Block ``*`` is the fallback for blocks not listed; block ``""`` (written ``-``) holds
GEMMs outside any block (embedding, head).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from accelsim.errors import ConfigError

__all__ = ["ProfileCell", "SensitivityProfile", "load_profile"]

_INF = 2**62


@dataclass(frozen=True)
class ProfileCell:
    """Sensitivity of ``block`` for timesteps ``t_start <= t < t_stop``."""

    block: str
    t_start: int
    t_stop: int
    sensitivity: float


@dataclass(frozen=True)
class SensitivityProfile:
    """A block x timestep sensitivity table (see the module docstring)."""

    cells: tuple[ProfileCell, ...]

    def __post_init__(self) -> None:
        if not self.cells:
            raise ConfigError("profile: got no cells, expected at least one row")
        for c in self.cells:
            if c.t_stop <= c.t_start:
                raise ConfigError(
                    f"profile block {c.block!r}: got t_start={c.t_start}, t_stop={c.t_stop}, "
                    "expected t_start < t_stop"
                )
            if not math.isfinite(c.sensitivity):
                raise ConfigError(
                    f"profile block {c.block!r}: got sensitivity {c.sensitivity}, expected a "
                    "finite number"
                )

    @classmethod
    def from_grid(
        cls, blocks: list[str], timesteps: list[int], values: list[list[float]]
    ) -> SensitivityProfile:
        """One cell per (block, timestep): ``values[i][j]`` for ``blocks[i]``, ``timesteps[j]``."""
        if len(values) != len(blocks) or any(len(row) != len(timesteps) for row in values):
            raise ConfigError(
                f"profile grid: got {len(values)} rows, expected {len(blocks)} rows of "
                f"{len(timesteps)} values"
            )
        cells = [
            ProfileCell(b, int(t), int(t) + 1, float(v))
            for b, row in zip(blocks, values, strict=True)
            for t, v in zip(timesteps, row, strict=True)
        ]
        return cls(tuple(cells))

    def lookup(self, block: str, timestep: int | None) -> float | None:
        """Sensitivity of a GEMM context (None if no cell covers it).

        Block ``*`` rows cover blocks not listed. ``timestep=None`` (outside the sampler)
        takes the block's largest sensitivity (the conservative choice).
        """
        rows = [c for c in self.cells if c.block == block]
        if not rows:
            rows = [c for c in self.cells if c.block == "*"]
        if timestep is None:
            return max((c.sensitivity for c in rows), default=None)
        hits = [c.sensitivity for c in rows if c.t_start <= timestep < c.t_stop]
        return max(hits) if hits else None

    def quantile_threshold(self, protect: float) -> float:
        """The sensitivity at or above which the top ``protect`` fraction of cells lies."""
        values = sorted((c.sensitivity for c in self.cells), reverse=True)
        k = max(1, math.ceil(protect * len(values)))
        return values[min(k, len(values)) - 1]

    def to_csv(self) -> str:
        """The profile as CSV text (loadable by :func:`load_profile`)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["block", "t_start", "t_stop", "sensitivity"])
        for c in self.cells:
            stop = "inf" if c.t_stop >= _INF else c.t_stop
            w.writerow([c.block or "-", c.t_start, stop, repr(c.sensitivity)])
        return buf.getvalue()


def _int(where: str, key: str, text: str) -> int:
    if text.strip().lower() in ("inf", "end", ""):
        return _INF
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where}: {key}: got {text!r}, expected an integer") from None


def parse_profile_csv(text: str, where: str = "profile") -> SensitivityProfile:
    """Parse profile CSV text (see the module docstring)."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    header = set(reader.fieldnames or [])
    if "block" not in header or "sensitivity" not in header:
        raise ConfigError(
            f"{where}: got columns {sorted(header)}, expected block, sensitivity and either "
            "timestep or t_start,t_stop"
        )
    has_range = {"t_start", "t_stop"} <= header
    if not has_range and "timestep" not in header:
        raise ConfigError(
            f"{where}: got columns {sorted(header)}, expected timestep or t_start,t_stop"
        )
    cells = []
    for i, row in enumerate(reader, start=2):
        at = f"{where} line {i}"
        block = (row["block"] or "").strip()
        block = "" if block == "-" else block
        if has_range:
            t0 = _int(at, "t_start", row["t_start"] or "0")
            t1 = _int(at, "t_stop", row["t_stop"] or "inf")
        else:
            t0 = _int(at, "timestep", row["timestep"] or "")
            t1 = t0 + 1
        try:
            s = float(row["sensitivity"] or "")
        except ValueError:
            raise ConfigError(
                f"{at}: sensitivity: got {row['sensitivity']!r}, expected a number"
            ) from None
        cells.append(ProfileCell(block, t0, t1, s))
    return SensitivityProfile(tuple(cells))


def load_profile(path: str | Path) -> SensitivityProfile:
    """Load a sensitivity profile CSV file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"profile file {str(p)!r}: not found") from None
    except OSError as exc:
        raise ConfigError(f"profile file {str(p)!r}: cannot read: {exc.strerror}") from None
    return parse_profile_csv(text, where=f"profile file {str(p)!r}")
