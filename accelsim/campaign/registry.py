"""Registry of trial kinds: what one trial of a campaign runs.

A trial kind is a module-level function ``fn(config, state) -> metrics`` plus an optional
``setup() -> state`` that builds per-worker state once (load a model, read calibration files,
warm up numba) and an optional ``normalize(config) -> config`` that validates a trial's config
in the parent before anything runs (raise :class:`~accelsim.errors.ConfigError`) and returns
it with defaults filled in and types made canonical (the trial id hashes the returned dict).

Registering a kind from another module::

    # accelsim/run_trials.py (any importable module)
    from accelsim.campaign import register_trial

    def _setup() -> MyState: ...                     # once per worker process
    def _run(config: dict, state: MyState) -> dict:   # one trial, deterministic in config
        return {"psnr": ..., "energy_j": ...}

    register_trial("run", _run, setup=_setup, normalize=_check)

and add the module's name to :data:`KIND_MODULES` (or import it before running) so that
``trial = "run"`` in a campaign TOML finds it. ``fn``/``setup`` must be module-level functions:
they travel to worker processes (process pool, Dask) pickled by reference, so the workers only
need the module importable, not the registry filled in.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from accelsim.errors import ConfigError

#: A metric value: the trial functions' results must be flat dicts of these.
Metric = float | int | str | None
TrialFn = Callable[[dict[str, Any], Any], Mapping[str, Any]]
SetupFn = Callable[[], Any]
NormalizeFn = Callable[[dict[str, Any]], dict[str, Any]]

#: Modules imported (once, on the first lookup of an unknown kind) to register their kinds.
#: Append a module name here to make its kinds available to campaign files by name.
KIND_MODULES: list[str] = ["accelsim.campaign.builtin", "accelsim.experiments.trials"]


@dataclass(frozen=True)
class TrialKind:
    """A registered trial kind (picklable when its functions are module-level)."""

    name: str
    fn: TrialFn
    setup: SetupFn | None = None
    normalize: NormalizeFn | None = None


_REGISTRY: dict[str, TrialKind] = {}
_IMPORTED: set[str] = set()


def register_trial(
    kind: str,
    fn: TrialFn,
    setup: SetupFn | None = None,
    *,
    normalize: NormalizeFn | None = None,
    replace: bool = False,
) -> TrialKind:
    """Register ``fn`` as trial kind ``kind``; returns the :class:`TrialKind`.

    Raises ConfigError if ``kind`` is already registered with other functions (unless
    ``replace``); registering the same functions again (a module imported twice) is a no-op.
    """
    if not isinstance(kind, str) or not kind or kind.strip() != kind:
        raise ConfigError(f"trial kind: got {kind!r}, expected a non-empty name")
    if not callable(fn) or (setup is not None and not callable(setup)):
        raise ConfigError(f"trial kind {kind!r}: fn and setup must be callables")
    new = TrialKind(kind, fn, setup, normalize)
    old = _REGISTRY.get(kind)
    if old is not None and old != new and not replace:
        raise ConfigError(f"trial kind {kind!r}: already registered by {old.fn.__module__}")
    _REGISTRY[kind] = new
    return new


def _import_kind_modules() -> None:
    for name in list(KIND_MODULES):
        if name not in _IMPORTED:
            _IMPORTED.add(name)
            importlib.import_module(name)


def trial_kinds() -> list[str]:
    """Names of all registered trial kinds (after importing :data:`KIND_MODULES`)."""
    _import_kind_modules()
    return sorted(_REGISTRY)


def get_trial_kind(kind: str) -> TrialKind:
    """The registered kind ``kind``; ConfigError with a hint if unknown."""
    if kind not in _REGISTRY:
        _import_kind_modules()
    if kind not in _REGISTRY:
        import difflib

        names = sorted(_REGISTRY)
        hint = difflib.get_close_matches(str(kind), names, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(
            f"campaign.trial: got {kind!r}, unknown trial kind{more}; registered: {', '.join(names)}"
        )
    return _REGISTRY[kind]


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Metric]:
    """``metrics`` as a JSON-ready flat dict; ValueError for anything else.

    numpy scalars become Python numbers, booleans 0/1, NaN becomes None (SQL NULL, an empty
    CSV cell); infinities are kept.
    """
    if not isinstance(metrics, Mapping):
        raise ValueError(f"trial returned {type(metrics).__name__}, expected a dict of metrics")
    out: dict[str, Metric] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise ValueError(f"metric name {key!r}: expected a string")
        if hasattr(value, "item") and callable(value.item):  # numpy scalar
            value = value.item()
        if isinstance(value, bool):
            value = int(value)
        if value is not None and not isinstance(value, int | float | str):
            raise ValueError(
                f"metric {key!r}: got {type(value).__name__}, expected float, int, str or None"
            )
        if isinstance(value, float) and not math.isfinite(value):
            value = None if math.isnan(value) else value
        out[key] = value
    return out
