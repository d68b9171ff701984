"""Seeded random generators keyed by a stable context (never global state).

``rng_for(seed, "gemm", "blocks.3.attn.qkv", 7)`` always gives the same stream for the same
seed and keys, in any process, executor or thread count: keys are hashed with SHA-256 (not
Python's salted ``hash``) into ``numpy.random.SeedSequence``'s ``spawn_key``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def stable_key(*keys: str | int | None) -> tuple[int, ...]:
    """A tuple of 32-bit words identifying ``keys`` (stable across runs and machines)."""
    digest = hashlib.sha256("\x1f".join(repr(k) for k in keys).encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def seed_sequence(seed: int, *keys: str | int | None) -> np.random.SeedSequence:
    """The ``SeedSequence`` of ``seed`` specialised to ``keys``."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        from accelsim.errors import ConfigError

        raise ConfigError(f"seed: got {seed!r}, expected an integer >= 0")
    return np.random.SeedSequence(int(seed), spawn_key=stable_key(*keys))


def rng_for(seed: int, *keys: str | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` for ``seed`` and the context ``keys``."""
    return np.random.default_rng(seed_sequence(seed, *keys))


def torch_generator(seed: int, *keys: str | int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``seed`` and ``keys`` (torch imported lazily)."""
    import torch

    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed_sequence(seed, *keys).generate_state(1, np.uint64)[0] >> 1))
    return g
