"""User-facing error types.

Every error a user can cause (bad config value, unknown key, malformed topology CSV, unknown
model) is raised as a subclass of :class:`AccelsimError`. The CLI catches exactly this class and
prints its message as a single line on stderr with a non-zero exit; anything else is a bug and
keeps its traceback.

Messages name the key (or file and line), the offending value and what is allowed, e.g.
``array.rows: got 0, expected an integer >= 1``.
"""

from __future__ import annotations


class AccelsimError(ValueError):
    """Base class of all errors caused by user input. The message is one line."""


class ConfigError(AccelsimError):
    """An invalid or unknown configuration key or value."""


class ShapeError(AccelsimError):
    """An invalid GEMM / convolution shape (zero or negative sizes, filter larger than input)."""


class TopologyError(AccelsimError):
    """A malformed SCALE-Sim topology CSV or .cfg file."""


class WorkloadError(AccelsimError):
    """An unknown workload / model name or invalid workload parameter."""


class CheckpointError(AccelsimError):
    """A missing or corrupted model checkpoint (the message says how to regenerate it)."""


class StoreError(AccelsimError):
    """A missing, corrupted or incompatible results store."""
