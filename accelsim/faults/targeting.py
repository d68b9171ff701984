"""Which GEMM calls a fault model acts on: a filter over :class:`~accelsim.context.GemmContext`."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from accelsim.context import LAYER_TYPES, GemmContext
from accelsim.errors import ConfigError


def _as_tuple(value: object, key: str) -> tuple[object, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int):
        return (value,)
    if isinstance(value, list | tuple | set | frozenset | range):
        return tuple(sorted(value, key=str)) if isinstance(value, set | frozenset) else tuple(value)
    raise ConfigError(f"{key}: got {value!r}, expected a value or a list of values")


@dataclass(frozen=True)
class Target:
    """A filter on GEMM contexts; an empty field matches everything.

    ``modules``: glob patterns on the dotted module path (``blocks.*.attn.qkv``, fnmatch rules);
    ``blocks``: block names (``blocks.3``) or block indices (ints, ``ctx.block_index``);
    ``layer_types``: names from :data:`accelsim.context.LAYER_TYPES`; ``timesteps``: sampler step
    indices (a context without a timestep matches only if ``timesteps`` is empty); ``calls``:
    running GEMM-call indices of the run (``ctx.call``).
    """

    modules: tuple[str, ...] = ()
    blocks: tuple[str | int, ...] = ()
    layer_types: tuple[str, ...] = ()
    timesteps: tuple[int, ...] = ()
    calls: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for key in ("modules", "blocks", "layer_types", "timesteps", "calls"):
            object.__setattr__(self, key, _as_tuple(getattr(self, key), key))
        for p in self.modules:
            if not isinstance(p, str) or not p:
                raise ConfigError(f"modules: got {p!r}, expected non-empty glob strings")
        for b in self.blocks:
            if isinstance(b, bool) or not isinstance(b, str | int):
                raise ConfigError(f"blocks: got {b!r}, expected block names or indices")
        for lt in self.layer_types:
            if lt not in LAYER_TYPES:
                raise ConfigError(
                    f"layer_types: got {lt!r}, expected one of {', '.join(LAYER_TYPES)}"
                )
        for key in ("timesteps", "calls"):
            for t in getattr(self, key):
                if isinstance(t, bool) or not isinstance(t, int) or t < 0:
                    raise ConfigError(f"{key}: got {t!r}, expected integers >= 0")

    def matches(self, ctx: GemmContext) -> bool:
        """True if ``ctx`` passes every non-empty field."""
        if self.modules and not any(fnmatch.fnmatchcase(ctx.module, p) for p in self.modules):
            return False
        if self.blocks and not any(
            (isinstance(b, str) and b == ctx.block)
            or (isinstance(b, int) and ctx.block_index is not None and b == ctx.block_index)
            for b in self.blocks
        ):
            return False
        if self.layer_types and ctx.layer_type not in self.layer_types:
            return False
        if self.timesteps and (ctx.timestep is None or ctx.timestep not in self.timesteps):
            return False
        return not (self.calls and ctx.call not in self.calls)


#: Matches every GEMM.
EVERYWHERE = Target()
