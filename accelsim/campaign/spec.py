"""Campaign files: a grid of configurations expanded into trials with stable ids.

A campaign TOML (or the same dict)::

    [campaign]
    name = "smoke"              # identifies the campaign inside a results store
    trial = "gemm-ter"          # a registered trial kind (accelsim.campaign.registry)
    description = "..."         # optional

    [grid]                      # Cartesian product, in the order the keys are written
    vdd = [0.7, 0.8, 0.9]
    seed = [0, 1]

    [fixed]                     # constants of every trial
    m = 64

    [[include]]                 # optional extra points ({**fixed, **include}), after the grid
    vdd = 0.65
    seed = 0

Every trial's config is ``{**fixed, **grid point}`` passed through the kind's ``normalize``
(defaults filled in, types canonical; a missing ``seed`` becomes 0). Its id is the SHA-256 of
the canonical JSON (sorted keys, no whitespace) of ``{"config": config, "kind": kind}``, so the
same configuration has the same id in every run, process and machine, and duplicates (an
include equal to a grid point) run once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.config import reject_unknown_keys
from accelsim.errors import ConfigError

from .registry import get_trial_kind

_TOP_KEYS = {"campaign", "grid", "fixed", "include"}
_CAMPAIGN_KEYS = {"name", "trial", "description"}
#: Largest number of trials one campaign may expand to.
MAX_TRIALS = 1_000_000


@dataclass(frozen=True)
class Trial:
    """One point of a campaign: its id, kind and full config (JSON types only)."""

    id: str
    kind: str
    config: dict[str, Any] = field(hash=False, compare=True)


@dataclass(frozen=True)
class Campaign:
    """A parsed campaign: name, trial kind, the source dict and the expanded trials."""

    name: str
    kind: str
    description: str
    source: dict[str, Any] = field(hash=False)
    trials: tuple[Trial, ...] = field(hash=False)

    def source_json(self) -> str:
        """The campaign definition as canonical JSON (what the store keeps)."""
        return canonical_json(self.source)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace (the input of :func:`trial_id`)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def trial_id(kind: str, config: dict[str, Any]) -> str:
    """The stable id of a trial: sha256 hex of ``canonical_json({"config": ..., "kind": ...})``."""
    try:
        text = canonical_json({"config": config, "kind": kind})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"trial config: {exc}; expected TOML values (no NaN)") from None
    return hashlib.sha256(text.encode()).hexdigest()


def _check_value(where: str, value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_value(f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(f"{where}[{i}]", v)
    elif not isinstance(value, str | int | float | bool):
        raise ConfigError(
            f"{where}: got {value!r} ({type(value).__name__}), expected a string, number, "
            "boolean, list or table"
        )


def parse_campaign(data: dict[str, Any]) -> Campaign:
    """Validate a campaign dict (as read from TOML) and expand it into trials."""
    if not isinstance(data, dict):
        raise ConfigError(f"campaign: got {type(data).__name__}, expected a table")
    reject_unknown_keys("", data, _TOP_KEYS)
    head = data.get("campaign")
    if not isinstance(head, dict):
        raise ConfigError("campaign: missing [campaign] table with name and trial")
    reject_unknown_keys("campaign", head, _CAMPAIGN_KEYS)
    name = head.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"campaign.name: got {name!r}, expected a non-empty string")
    kind_name = head.get("trial")
    if not isinstance(kind_name, str):
        raise ConfigError(f"campaign.trial: got {kind_name!r}, expected a trial kind name")
    description = head.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"campaign.description: got {description!r}, expected a string")
    kind = get_trial_kind(kind_name)

    grid = data.get("grid", {})
    fixed = data.get("fixed", {})
    includes = data.get("include", [])
    for sec, val in (("grid", grid), ("fixed", fixed)):
        if not isinstance(val, dict):
            raise ConfigError(f"{sec}: got {val!r}, expected a table")
        _check_value(sec, val)
    if not isinstance(includes, list) or not all(isinstance(i, dict) for i in includes):
        raise ConfigError("include: expected an array of tables ([[include]])")
    _check_value("include", includes)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"grid.{key}: got {values!r}, expected a non-empty list of values "
                f"(put constants in [fixed])"
            )
        if key in fixed:
            raise ConfigError(f"grid.{key}: also in [fixed]; give each key in one place")
    size = 1
    for values in grid.values():
        size *= len(values)
    if size + len(includes) > MAX_TRIALS:
        raise ConfigError(
            f"grid: expands to {size + len(includes)} trials, expected at most {MAX_TRIALS}"
        )

    points: list[dict[str, Any]] = []
    keys = list(grid)
    if grid or not includes:
        for combo in itertools.product(*(grid[k] for k in keys)):
            points.append({**fixed, **dict(zip(keys, combo, strict=True))})
    for inc in includes:
        points.append({**fixed, **inc})

    trials: list[Trial] = []
    seen: set[str] = set()
    for i, point in enumerate(points):
        config = dict(point)
        config.setdefault("seed", 0)
        if kind.normalize is not None:
            try:
                config = kind.normalize(config)
            except ConfigError as exc:
                raise ConfigError(f"trial {i} ({_short(point)}): {exc}") from None
        tid = trial_id(kind.name, config)
        if tid not in seen:
            seen.add(tid)
            trials.append(Trial(tid, kind.name, config))
    return Campaign(
        name=name.strip(),
        kind=kind.name,
        description=description,
        source=data,
        trials=tuple(trials),
    )


def _short(point: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in point.items())
    return text if len(text) < 120 else text[:117] + "..."


def load_campaign(source: str | Path | dict[str, Any]) -> Campaign:
    """Read a campaign TOML file (or take the dict) and expand it; ConfigError on bad input."""
    if isinstance(source, dict):
        return parse_campaign(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"campaign file {str(path)!r}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"campaign file {str(path)!r}: cannot read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"campaign file {str(path)!r}: invalid TOML ({exc})") from None
    try:
        return parse_campaign(data)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
