"""Fault models: bit flips, row/column faults, random values, stuck-at PE bits, timing errors.

Every model implements :class:`accelsim.faults.base.FaultModel` (``on_weights``, ``on_inputs``,
``on_output``), acts only at its ``target`` place and on calls its ``scope``
(:class:`~accelsim.faults.targeting.Target`) matches, never mutates its argument (it returns a
corrupted copy, or the input itself when it does nothing) and logs one
:class:`~accelsim.faults.base.FaultRecord` per changed bit or value: for a site with several
flipped bits, one record per bit (bits in ascending order per site), ``old``/``new`` being the
value before and after that bit's flip (replaying the records in order reproduces the tensor).

Tensors follow the dtype conventions of :mod:`accelsim.faults.bits` (int8, int32, float16,
float32, bf16 as bf16-exact float32 or raw ``uint16``). Output tensors of any rank are treated
as 2-D ``(M, N)`` matrices ``out.reshape(-1, out.shape[-1])`` (leading dims folded into M, as
the GEMM ``(..., K) @ (K, N)`` sees them) for array-geometry models.

Randomness comes only from the ``rng`` the hook gets (the interceptor derives it from the run
seed and the GEMM context; :func:`apply_hooks` gives each model of a list its own child stream).
Models with ``per="run"`` keep a small mutable run state: call :meth:`reset` before reusing a
model object for another run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.faults import bits as B
from accelsim.faults.base import FaultLog, FaultModel, FaultRecord
from accelsim.faults.targeting import EVERYWHERE, Target

TARGETS = ("weights", "inputs", "outputs")
ValueModel = Literal["bitflip", "random", "zero"]
VALUE_MODELS = ("bitflip", "random", "zero")
DATAFLOWS = ("ws", "os", "is")
MANIFESTATIONS = ("hold", "flip", "razor", "drop")


@dataclass
class RunState:
    """Mutable per-run bookkeeping of a fault model (``per="run"`` budgets)."""

    injected: int = 0

    def reset(self) -> None:
        self.injected = 0


def _check_choice(value: object, allowed: Sequence[str], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: got {value!r}, expected one of {', '.join(allowed)}")


def _check_int(value: object, key: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ConfigError(f"{key}: got {value!r}, expected an integer >= {lo}")
    return int(value)


def _check_bits(bits: Sequence[int] | None, fmt: str | None) -> None:
    if bits is None:
        return
    if len(bits) == 0:
        raise ConfigError("bits: got an empty list, expected at least one bit position")
    if len(set(bits)) != len(bits):
        raise ConfigError(f"bits: got {list(bits)}, expected distinct positions")
    for b in bits:
        if fmt is None:
            _check_int(b, "bit")
            if b >= 32:
                raise ConfigError(f"bit: got {b}, expected an integer in 0..31")
        else:
            B.check_bit(b, fmt)


def _record(
    kind: str,
    target: str,
    ctx: GemmContext,
    shape: tuple[int, ...],
    flat: int,
    bit: int | None,
    fmt: str,
    old: float,
    new: float,
) -> FaultRecord:
    index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
    return FaultRecord(kind, target, ctx.module, ctx.timestep, index, bit, fmt, old, new)


def sample_bits(
    n: int,
    fmt: str,
    rng: np.random.Generator,
    *,
    bits: Sequence[int] | None = None,
    bit_weights: Sequence[float] | None = None,
    multiplicity: int = 1,
    pattern: str = "random",
) -> np.ndarray:
    """``(n, multiplicity)`` bit positions for ``n`` sites.

    Candidates are ``bits`` (default: all bits of ``fmt``), drawn with probabilities
    ``bit_weights`` (default uniform). ``pattern="random"``: ``multiplicity`` distinct candidates
    per site (successive draws without replacement, weighted: Gumbel top-k); ``"adjacent"``: a
    start bit ``s`` drawn among the candidates with ``s + multiplicity <= width``, then bits
    ``s .. s + multiplicity - 1``.
    """
    width = B.FORMAT_BITS[B.check_format(fmt)]
    cand = np.arange(width) if bits is None else np.asarray(bits, dtype=np.int64)
    for b in cand:
        B.check_bit(int(b), fmt)
    if bit_weights is None:
        w = np.ones(cand.size)
    else:
        w = np.asarray(bit_weights, dtype=np.float64)
        if w.shape != cand.shape or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ConfigError(
                f"bit_weights: got {list(w.ravel())}, expected {cand.size} finite weights >= 0 "
                "with a positive sum (one per candidate bit)"
            )
    m = _check_int(multiplicity, "multiplicity", 1)
    if pattern == "adjacent":
        ok = cand + m <= width
        if not np.any(ok & (w > 0)):
            raise ConfigError(
                f"multiplicity: got {m} adjacent bits, no candidate start bit of {fmt} leaves "
                f"room (expected start + {m} <= {width})"
            )
        cand, w = cand[ok], w[ok]
        start = rng.choice(cand, size=n, p=w / w.sum())
        return np.asarray(start)[:, None] + np.arange(m)[None, :]
    _check_choice(pattern, ("random", "adjacent"), "pattern")
    if m > np.count_nonzero(w > 0):
        raise ConfigError(
            f"multiplicity: got {m}, expected at most the {np.count_nonzero(w > 0)} candidate bits"
        )
    if m == 1:
        return np.asarray(rng.choice(cand, size=n, p=w / w.sum())).reshape(n, 1)
    with np.errstate(divide="ignore"):
        keys = np.log(w)[None, :] + rng.gumbel(size=(n, cand.size))
    top = np.argsort(-keys, axis=1, kind="stable")[:, :m]
    return np.sort(cand[top], axis=1)


def _flip_sites(
    x: np.ndarray,
    fmt: str,
    flat: np.ndarray,
    site_bits: np.ndarray,
    kind: str,
    target: str,
    ctx: GemmContext,
    log: FaultLog,
) -> np.ndarray:
    """Flip the bits ``site_bits[i]`` (distinct, ascending) at the distinct sites ``flat[i]``.

    Bit column by bit column (vectorised), one log record per flipped bit.
    """
    out = np.array(x, copy=True, order="C")
    flat_out = out.reshape(-1)
    sb = np.sort(np.asarray(site_bits, dtype=np.int64).reshape(flat.size, -1), axis=1)
    for j in range(sb.shape[1]):
        old = B.values_of(flat_out[flat], fmt)
        B.xor_patterns(out, fmt, flat, B.bits_to_mask(sb[:, j], fmt), copy=False)
        new = B.values_of(flat_out[flat], fmt)
        for f, bit, o, v in zip(
            flat.tolist(), sb[:, j].tolist(), old.tolist(), new.tolist(), strict=True
        ):
            log.add(_record(kind, target, ctx, x.shape, f, bit, fmt, o, v))
    return out


def _corrupt_values(
    x: np.ndarray,
    fmt: str,
    flat: np.ndarray,
    value: str,
    site_bits: np.ndarray | None,
    kind: str,
    target: str,
    ctx: GemmContext,
    rng: np.random.Generator,
    log: FaultLog,
) -> np.ndarray:
    """Apply a value model (bitflip with ``site_bits``, random pattern, zero) at ``flat``."""
    if value == "bitflip":
        assert site_bits is not None
        return _flip_sites(x, fmt, flat, site_bits, kind, target, ctx, log)
    out = np.array(x, copy=True, order="C")
    flat_out = out.reshape(-1)
    if value == "random":
        new = B.random_patterns(flat.size, fmt, x, rng)
    else:
        new = np.zeros(flat.size, dtype=x.dtype)
    old_vals = B.values_of(flat_out[flat], fmt)
    flat_out[flat] = new
    new_vals = B.values_of(flat_out[flat], fmt)
    for f, o, v in zip(flat.tolist(), old_vals.tolist(), new_vals.tolist(), strict=True):
        log.add(_record(kind, target, ctx, x.shape, f, None, fmt, o, v))
    return out


class _Hooks:
    """Dispatch of the three hooks to ``_apply`` when the place and the scope match."""

    target: str
    scope: Target
    fmt: str | None

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        raise NotImplementedError

    def _maybe(
        self,
        where: str,
        x: np.ndarray,
        ctx: GemmContext,
        fmt: str,
        rng: np.random.Generator,
        log: FaultLog,
    ) -> np.ndarray:
        if where != self.target or not self.scope.matches(ctx):
            return x
        B.check_array(x, fmt)
        if fmt == "bf16" and x.dtype == np.float32 and np.any(x.view(np.uint32) & 0xFFFF):
            raise ShapeError(
                f"tensor: got bf16 {where} at {ctx.module!r} with values not representable in "
                "bf16 (low 16 float32 bits set), expected bf16-exact float32 or uint16 bits"
            )
        if self.fmt is not None and fmt != self.fmt:
            raise ConfigError(
                f"format: got {fmt} {where} at {ctx.module!r}, the fault expects {self.fmt} "
                "(omit the format to accept any)"
            )
        if x.size == 0:
            return x
        return self._apply(x, ctx, fmt, rng, log)

    def on_weights(
        self, w: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._maybe("weights", w, ctx, fmt, rng, log)

    def on_inputs(
        self, a: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._maybe("inputs", a, ctx, fmt, rng, log)

    def on_output(
        self, out: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return self._maybe("outputs", out, ctx, fmt, rng, log)

    def reset(self) -> None:
        """Forget per-run state (``per="run"`` budgets); call before reusing the model."""
        state = getattr(self, "state", None)
        if isinstance(state, RunState):
            state.reset()


def _budget(per: str, count: int, state: RunState) -> int:
    """Sites to inject now: ``count`` per call, or what is left of the per-run budget."""
    return count if per == "call" else max(count - state.injected, 0)


@dataclass(frozen=True)
class BitFlip(_Hooks):
    """Bit flips in weights, inputs or outputs.

    How many sites: ``rate`` (each value of a matching tensor independently, probability per
    value per call; the site count is Binomial(size, rate)) or ``count`` (exactly ``count``
    distinct values per matching call, ``per="call"``, or in the whole run, ``per="run"``:
    the first matching calls take the budget, so pin the call with ``scope``). Neither given:
    ``count=1``. Which bits: ``multiplicity`` bits per site from ``bits`` (default all bits of
    the format) with ``bit_weights`` (default uniform), ``pattern`` random or adjacent (see
    :func:`sample_bits`). ``fmt`` None accepts any format (bits checked per call), otherwise a
    call in another format is a ConfigError. With a ``count`` larger than a tensor, every value
    of it is hit (no error: small tensors such as biases are legal targets).
    """

    target: str = "outputs"
    fmt: str | None = None
    bits: tuple[int, ...] | None = None
    bit_weights: tuple[float, ...] | None = None
    multiplicity: int = 1
    pattern: str = "random"
    rate: float | None = None
    count: int | None = None
    per: str = "call"
    scope: Target = EVERYWHERE
    state: RunState = field(default_factory=RunState, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_choice(self.target, TARGETS, "target")
        if self.fmt is not None:
            B.check_format(self.fmt)
        if self.bits is not None:
            object.__setattr__(self, "bits", tuple(self.bits))
        if self.bit_weights is not None:
            object.__setattr__(self, "bit_weights", tuple(float(w) for w in self.bit_weights))
        _check_bits(self.bits, self.fmt)
        _check_int(self.multiplicity, "multiplicity", 1)
        _check_choice(self.pattern, ("random", "adjacent"), "pattern")
        _check_choice(self.per, ("call", "run"), "per")
        if self.rate is not None and self.count is not None:
            raise ConfigError(
                f"rate/count: got rate={self.rate} and count={self.count}, expected only one"
            )
        if self.rate is not None:
            if not isinstance(self.rate, float | int) or not 0.0 <= float(self.rate) <= 1.0:
                raise ConfigError(f"rate: got {self.rate!r}, expected a probability in [0, 1]")
            if self.per == "run":
                raise ConfigError("per: got 'run' with a rate, expected 'call' (rate is per value)")
        elif self.count is None:
            object.__setattr__(self, "count", 1)
        else:
            _check_int(self.count, "count", 0)
        if self.fmt is not None:
            # fail at construction, not mid-run
            sample_bits(
                0,
                self.fmt,
                np.random.default_rng(0),
                bits=self.bits,
                bit_weights=self.bit_weights,
                multiplicity=self.multiplicity,
                pattern=self.pattern,
            )

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        n = x.size
        if self.rate is not None:
            k = int(rng.binomial(n, float(self.rate)))
        else:
            assert self.count is not None
            k = min(_budget(self.per, self.count, self.state), n)
        if k == 0:
            return x
        self.state.injected += k
        flat = np.sort(rng.choice(n, size=k, replace=False))
        site_bits = sample_bits(
            k,
            fmt,
            rng,
            bits=self.bits,
            bit_weights=self.bit_weights,
            multiplicity=self.multiplicity,
            pattern=self.pattern,
        )
        return _flip_sites(x, fmt, flat, site_bits, "bitflip", self.target, ctx, log)


def _value_bits(
    value: str, k: int, fmt: str, bits: tuple[int, ...] | None, rng: np.random.Generator
) -> np.ndarray | None:
    if value != "bitflip":
        return None
    return sample_bits(k, fmt, rng, bits=bits)


def _check_value_model(value: str, bits: tuple[int, ...] | None, fmt: str | None) -> None:
    _check_choice(value, VALUE_MODELS, "value")
    _check_bits(bits, fmt)


@dataclass(frozen=True)
class RandomValues(_Hooks):
    """``n`` distinct random values of a tensor corrupted per matching call (or per run).

    ``value``: ``bitflip`` (one bit each, uniform over ``bits`` / all format bits), ``random``
    (a uniformly random bit pattern of the format: for floats this includes NaN/inf patterns, as
    a corrupted register would) or ``zero``.
    """

    n: int = 1
    target: str = "outputs"
    value: str = "random"
    bits: tuple[int, ...] | None = None
    fmt: str | None = None
    per: str = "call"
    scope: Target = EVERYWHERE
    state: RunState = field(default_factory=RunState, compare=False, repr=False)
    kind: str = "random-values"

    def __post_init__(self) -> None:
        _check_int(self.n, "n", 1)
        _check_choice(self.target, TARGETS, "target")
        _check_choice(self.per, ("call", "run"), "per")
        if self.fmt is not None:
            B.check_format(self.fmt)
        if self.bits is not None:
            object.__setattr__(self, "bits", tuple(self.bits))
        _check_value_model(self.value, self.bits, self.fmt)

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        k = min(_budget(self.per, self.n, self.state), x.size)
        if k == 0:
            return x
        self.state.injected += k
        flat = np.sort(rng.choice(x.size, size=k, replace=False))
        site_bits = _value_bits(self.value, k, fmt, self.bits, rng)
        return _corrupt_values(
            x, fmt, flat, self.value, site_bits, self.kind, self.target, ctx, rng, log
        )


@dataclass(frozen=True)
class SingleValue(RandomValues):
    """One value corrupted, by default once per run (in the first matching call; pin the call
    with ``scope``): a :class:`RandomValues` with ``n=1``, ``per="run"``, kind ``single-value``."""

    n: int = 1
    per: str = "run"
    kind: str = "single-value"

    def __post_init__(self) -> None:
        if self.n != 1:
            raise ConfigError(f"n: got {self.n!r}, expected 1 for a single value")
        super().__post_init__()


def _as_pair(value: object, key: str) -> tuple[int, int]:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{key}: got {value!r}, expected a pair of integers")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class RowColumnFault(_Hooks):
    """A whole array row or column of one output tile corrupted.

    The output ``(M, N)`` is cut into tiles of the array's ``(rows, cols)`` (output-stationary
    view: PE ``(r, c)`` of tile ``(ti, tj)`` holds output ``(ti*rows + r, tj*cols + c)``). A
    ``row`` fault corrupts the (up to) ``cols`` outputs of one tile row, a ``column`` fault the
    (up to) ``rows`` outputs of one tile column. ``tile``/``line`` pick them (default: uniformly
    random tile, then a uniformly random line inside it). Value model: ``bitflip`` flips one bit
    (``bit``, or drawn uniformly from ``bits`` / all format bits once per event: the same bit on
    the whole line, like a broken bus wire), ``random`` or ``zero`` per value. Once per
    matching call, or once per run with ``per="run"``.
    """

    array: tuple[int, int] = (32, 32)
    axis: str = "row"
    tile: tuple[int, int] | None = None
    line: int | None = None
    value: str = "bitflip"
    bits: tuple[int, ...] | None = None
    fmt: str | None = None
    per: str = "call"
    target: str = "outputs"
    scope: Target = EVERYWHERE
    state: RunState = field(default_factory=RunState, compare=False, repr=False)

    def __post_init__(self) -> None:
        r, c = _as_pair(self.array, "array")
        if r < 1 or c < 1:
            raise ConfigError(f"array: got {self.array!r}, expected (rows >= 1, cols >= 1)")
        object.__setattr__(self, "array", (r, c))
        _check_choice(self.axis, ("row", "column"), "axis")
        _check_choice(self.target, ("outputs",), "target")
        _check_choice(self.per, ("call", "run"), "per")
        if self.tile is not None:
            ti, tj = _as_pair(self.tile, "tile")
            if ti < 0 or tj < 0:
                raise ConfigError(f"tile: got {self.tile!r}, expected non-negative indices")
            object.__setattr__(self, "tile", (ti, tj))
        if self.line is not None:
            _check_int(self.line, "line")
            limit = r if self.axis == "row" else c
            if self.line >= limit:
                raise ConfigError(
                    f"line: got {self.line} for a {self.axis} of a {r}x{c} array, "
                    f"expected 0..{limit - 1}"
                )
        if self.fmt is not None:
            B.check_format(self.fmt)
        if self.bits is not None:
            object.__setattr__(self, "bits", tuple(self.bits))
        _check_value_model(self.value, self.bits, self.fmt)

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        if _budget(self.per, 1, self.state) == 0:
            return x
        R, C = self.array
        M = x.size // x.shape[-1] if x.ndim else 1
        N = x.shape[-1] if x.ndim else 1
        nti, ntj = -(-M // R), -(-N // C)
        if self.tile is None:
            ti, tj = int(rng.integers(nti)), int(rng.integers(ntj))
        else:
            ti, tj = self.tile
            if ti >= nti or tj >= ntj:
                raise ShapeError(
                    f"tile: got {self.tile} for a {M}x{N} output at {ctx.module!r}, expected "
                    f"tile indices < ({nti}, {ntj}) with a {R}x{C} array"
                )
        h, w = min(R, M - ti * R), min(C, N - tj * C)
        # a row fault is one tile row (r fixed), a column fault one tile column (c fixed)
        extent = h if self.axis == "row" else w
        line = int(rng.integers(extent)) if self.line is None else self.line
        if line >= extent:
            return x  # the line lies outside this (edge) tile: no output is computed there
        self.state.injected += 1
        if self.axis == "row":
            rows = np.array([ti * R + line])
            cols = tj * C + np.arange(w)
        else:
            rows = ti * R + np.arange(h)
            cols = np.array([tj * C + line])
        flat = (rows[:, None] * N + cols[None, :]).reshape(-1)
        site_bits = None
        if self.value == "bitflip":
            one = sample_bits(1, fmt, rng, bits=self.bits)
            site_bits = np.repeat(one, flat.size, axis=0)
        return _corrupt_values(
            x, fmt, flat, self.value, site_bits, f"{self.axis}-fault", self.target, ctx, rng, log
        )


@dataclass(frozen=True)
class StuckAt(_Hooks):
    """A PE accumulator bit stuck at 0 or 1, approximated at the output level.

    Affected outputs of ``out`` viewed as ``(M, N)``: ``os`` PE ``(r, c)`` accumulates outputs
    ``m % rows == r, n % cols == c`` completely (exact: the final value is read out of its
    register); ``ws`` PE ``(r, c)`` passes every partial sum of array column ``c``, i.e. outputs
    with ``n % cols == c`` (all rows m); ``is`` (the transposed ws mapping) outputs with
    ``m % cols == c``. Approximation for ws/is: the bit is forced in the *final* output, while in
    hardware it is forced in the partial sum leaving PE row ``r`` of every K-fold and the PEs
    below add their products afterwards (so carries may move the bit again, and a fold's psum
    is summed with the other folds' outside the array). Exact for ws/is when ``r`` is the last
    used row and K fits one fold. Applied on every matching call (a permanent fault); only
    outputs whose bit actually changes are logged.
    """

    pe: tuple[int, int] = (0, 0)
    bit: int = 0
    value: int = 1
    array: tuple[int, int] = (32, 32)
    dataflow: str = "ws"
    fmt: str | None = None
    target: str = "outputs"
    scope: Target = EVERYWHERE

    def __post_init__(self) -> None:
        R, C = _as_pair(self.array, "array")
        if R < 1 or C < 1:
            raise ConfigError(f"array: got {self.array!r}, expected (rows >= 1, cols >= 1)")
        object.__setattr__(self, "array", (R, C))
        r, c = _as_pair(self.pe, "pe")
        if not (0 <= r < R and 0 <= c < C):
            raise ConfigError(
                f"pe: got {self.pe!r}, expected (0..{R - 1}, 0..{C - 1}) for a {R}x{C} array"
            )
        object.__setattr__(self, "pe", (r, c))
        if self.value not in (0, 1) or isinstance(self.value, bool):
            raise ConfigError(f"value: got {self.value!r}, expected 0 or 1")
        _check_choice(self.dataflow, DATAFLOWS, "dataflow")
        _check_choice(self.target, ("outputs",), "target")
        if self.fmt is not None:
            B.check_bit(self.bit, self.fmt)
        else:
            _check_bits((self.bit,), None)

    def affected(self, shape: tuple[int, ...]) -> np.ndarray:
        """Flat indices of the outputs of a tensor of ``shape`` that the PE touches."""
        N = shape[-1] if shape else 1
        M = int(np.prod(shape)) // N if N else 0
        R, C = self.array
        r, c = self.pe
        m = np.arange(M)
        n = np.arange(N)
        if self.dataflow == "os":
            rows, cols = m[m % R == r], n[n % C == c]
        elif self.dataflow == "ws":
            rows, cols = m, n[n % C == c]
        else:
            rows, cols = m[m % C == c], n
        return (rows[:, None] * N + cols[None, :]).reshape(-1)

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        B.check_bit(self.bit, fmt)
        flat = self.affected(x.shape)
        if flat.size == 0:
            return x
        out = B.set_bits(x, fmt, flat, self.bit, self.value)
        old = B.values_of(x.reshape(-1)[flat], fmt)
        new = B.values_of(out.reshape(-1)[flat], fmt)
        changed = B.bit_view(x).reshape(-1)[flat] != B.bit_view(out).reshape(-1)[flat]
        for f, o, v in zip(
            flat[changed].tolist(), old[changed].tolist(), new[changed].tolist(), strict=True
        ):
            log.add(_record("stuck-at", self.target, ctx, x.shape, f, self.bit, fmt, o, v))
        return out


@dataclass(frozen=True)
class TimingErrors(_Hooks):
    """Marker: use the operating point's timing errors for the matching GEMMs.

    The interceptor runs those GEMMs through the kernels (:mod:`accelsim.kernels`) with the
    timing model; the hooks of this class do nothing. Options: ``manifestation`` (what a late
    register latches: hold, flip, razor, drop; see :func:`accelsim.kernels.exact.exact_gemm`),
    ``kernel`` (exact / fast; None = the run's default).
    """

    manifestation: str = "hold"
    kernel: str | None = None
    scope: Target = EVERYWHERE
    target: str = "outputs"
    fmt: str | None = None

    def __post_init__(self) -> None:
        _check_choice(self.manifestation, MANIFESTATIONS, "manifestation")
        if self.kernel is not None:
            _check_choice(self.kernel, ("exact", "fast"), "kernel")

    def _apply(
        self, x: np.ndarray, ctx: GemmContext, fmt: str, rng: np.random.Generator, log: FaultLog
    ) -> np.ndarray:
        return x


def apply_hooks(
    models: Sequence[FaultModel],
    where: str,
    x: np.ndarray,
    ctx: GemmContext,
    fmt: str,
    rng: np.random.Generator,
    log: FaultLog,
) -> np.ndarray:
    """Run the ``where`` hook (weights / inputs / outputs) of every model in order.

    Each model gets its own child generator (one 63-bit draw per model from ``rng``), so adding,
    removing or changing one model never changes the draws of the others.
    """
    _check_choice(where, TARGETS, "where")
    seeds = rng.integers(0, 2**63 - 1, size=len(models), dtype=np.int64)
    for model, s in zip(models, seeds.tolist(), strict=True):
        child = np.random.default_rng(s)
        if where == "weights":
            x = model.on_weights(x, ctx, fmt, child, log)
        elif where == "inputs":
            x = model.on_inputs(x, ctx, fmt, child, log)
        else:
            x = model.on_output(x, ctx, fmt, child, log)
    return x
