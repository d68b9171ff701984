"""Fault models from CLI-like options or a dict (campaign / TOML configs).

``parse_fault_spec("--fault bitflip --target weights --bit 30 --format fp32 --count 1")``
builds ``BitFlip(target="weights", fmt="fp32", bits=(30,), count=1)``. Options (``--key value``,
or ``key=value`` in a dict via :func:`fault_from_dict`; lists comma-separated, int ranges
``a-b`` inclusive):

=================  ====================================================================
``--fault``        bitflip | rowcol | random-values | single-value | stuck-at | timing | clip
``--target``       weights | inputs | outputs
``--format``       int8 | int32 | fp16 | bf16 | fp32
``--bit``          bit position(s): ``30``, ``23,30``, ``24-30``
``--bit-weights``  weights of the ``--bit`` candidates
``--multiplicity`` bits per site; ``--adjacent`` (flag) for adjacent bits
``--rate``         per-value probability; ``--count`` exact sites; ``--per`` call | run
``--n``            values for random-values; ``--value`` bitflip | random | zero (or 0|1 for
                   stuck-at)
``--array``        ``RxC`` array dims; ``--axis`` row | column; ``--tile`` ``i,j``;
                   ``--line``; ``--pe`` ``r,c``; ``--dataflow`` ws | os | is
``--manifestation`` hold | flip | razor | drop; ``--kernel`` exact | fast
``--mode``         zero | clamp; ``--granularity``; ``--margin`` (clip)
``--module``       glob(s); ``--block``; ``--layer-type``; ``--timestep``; ``--call``
=================  ====================================================================
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from accelsim.errors import ConfigError
from accelsim.faults import bits as B
from accelsim.faults.base import FaultModel
from accelsim.faults.clipping import ActivationClipping
from accelsim.faults.models import (
    BitFlip,
    RandomValues,
    RowColumnFault,
    SingleValue,
    StuckAt,
    TimingErrors,
)
from accelsim.faults.targeting import Target

FAULT_KINDS = ("bitflip", "rowcol", "random-values", "single-value", "stuck-at", "timing", "clip")
FLAGS = ("adjacent",)

#: Options each fault kind accepts (besides ``fault`` and the targeting options).
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "bitflip": (
        "target",
        "format",
        "bit",
        "bit-weights",
        "multiplicity",
        "adjacent",
        "rate",
        "count",
        "per",
    ),
    "rowcol": ("format", "bit", "array", "axis", "tile", "line", "value", "per"),
    "random-values": ("target", "format", "bit", "n", "value", "per"),
    "single-value": ("target", "format", "bit", "value", "per"),
    "stuck-at": ("format", "bit", "value", "pe", "array", "dataflow"),
    "timing": ("manifestation", "kernel"),
    "clip": ("target", "mode", "granularity", "margin"),
}
TARGET_OPTIONS = ("module", "block", "layer-type", "timestep", "call")


def _ints(key: str, text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--{key}: got {text!r}, expected integers, comma lists or ranges like 24-30"
            ) from None
    return tuple(out)


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--{key}: got {text!r}, expected an integer") from None


def _float(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--{key}: got {text!r}, expected a number") from None


def _pair(key: str, text: str, sep: str) -> tuple[int, int]:
    parts = text.lower().replace("x", sep).split(sep) if sep == "," else text.lower().split("x")
    if len(parts) != 2:
        raise ConfigError(f"--{key}: got {text!r}, expected two integers like 3{sep}5")
    return _int(key, parts[0]), _int(key, parts[1])


def _tokens_to_dict(tokens: Sequence[str]) -> dict[str, str | bool]:
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or len(tok) < 3:
            raise ConfigError(f"fault spec: got {tok!r}, expected an option like --fault")
        key, _, inline = tok[2:].partition("=")
        if key in FLAGS and not inline:
            opts[key] = True
            i += 1
            continue
        if inline:
            value = inline
            i += 1
        else:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise ConfigError(f"--{key}: got no value, expected a value after it")
            value = tokens[i + 1]
            i += 2
        if key in opts:
            prev = opts[key]
            value = f"{prev},{value}"  # repeated options accumulate (lists)
        opts[key] = value
    return opts


def parse_fault_spec(spec: str | Sequence[str]) -> FaultModel:
    """A fault model from CLI-like options (a string or a token list); see the module doc."""
    tokens = shlex.split(spec) if isinstance(spec, str) else list(spec)
    return fault_from_dict(_tokens_to_dict(tokens))


def fault_from_dict(options: Mapping[str, object]) -> FaultModel:
    """A fault model from ``{option: value}`` (option names as in the CLI, without ``--``;
    ``_`` and ``-`` are interchangeable; values strings or already-typed numbers/lists)."""
    opts: dict[str, str | bool] = {}
    for k, v in options.items():
        key = str(k).replace("_", "-")
        if isinstance(v, bool):
            opts[key] = v
        elif isinstance(v, list | tuple):
            opts[key] = ",".join(str(x) for x in v)
        else:
            opts[key] = str(v)
    kind = opts.pop("fault", None)
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise ConfigError(f"--fault: got {kind!r}, expected one of {', '.join(FAULT_KINDS)}")
    allowed = KIND_OPTIONS[kind] + TARGET_OPTIONS
    for key in opts:
        if key not in allowed:
            raise ConfigError(
                f"--{key}: not an option of --fault {kind}, expected one of "
                + ", ".join(f"--{a}" for a in allowed)
            )

    def s(key: str) -> str | None:
        v = opts.get(key)
        if isinstance(v, bool):
            raise ConfigError(f"--{key}: got a flag, expected a value")
        return v

    def get(key: str, conv: Callable[[str, str], Any], default: Any = None) -> Any:
        v = s(key)
        return default if v is None else conv(key, v)

    fmt = s("format")
    if fmt is not None:
        B.check_format(fmt, "--format")
    bits = get("bit", _ints)
    if bits is not None and fmt is not None:
        for b in bits:
            B.check_bit(b, fmt, "--bit")
    scope = Target(
        modules=tuple((s("module") or "").split(",")) if s("module") else (),
        blocks=tuple(
            int(b) if b.strip().isdigit() else b.strip() for b in (s("block") or "").split(",")
        )
        if s("block")
        else (),
        layer_types=tuple((s("layer-type") or "").split(",")) if s("layer-type") else (),
        timesteps=get("timestep", _ints, ()),
        calls=get("call", _ints, ()),
    )
    target = s("target")
    per = s("per")
    value = s("value")
    array = get("array", lambda k, t: _pair(k, t, "x"))
    if per is None and target == "weights":
        per = "run"  # weights live in memory: a count/rate is per run unless --per call
    if kind == "bitflip":
        weights = s("bit-weights")
        return BitFlip(
            target=target or "outputs",
            fmt=fmt,
            bits=bits,
            bit_weights=None
            if weights is None
            else tuple(_float("bit-weights", w) for w in weights.split(",")),
            multiplicity=get("multiplicity", _int, 1),
            pattern="adjacent" if opts.get("adjacent") is True else "random",
            rate=get("rate", _float),
            count=get("count", _int),
            per=per or "call",
            scope=scope,
        )
    if kind == "rowcol":
        return RowColumnFault(
            array=array or (32, 32),
            axis=s("axis") or "row",
            tile=get("tile", lambda k, t: _pair(k, t, ",")),
            line=get("line", _int),
            value=value or "bitflip",
            bits=bits,
            fmt=fmt,
            per=per or "call",
            scope=scope,
        )
    if kind == "random-values":
        return RandomValues(
            n=get("n", _int, 1),
            target=target or "outputs",
            value=value or "random",
            bits=bits,
            fmt=fmt,
            per=per or "call",
            scope=scope,
        )
    if kind == "single-value":
        return SingleValue(
            target=target or "outputs",
            value=value or "random",
            bits=bits,
            fmt=fmt,
            per=per or "run",
            scope=scope,
        )
    if kind == "stuck-at":
        if bits is None or len(bits) != 1:
            raise ConfigError(f"--bit: got {s('bit')!r}, expected exactly one bit for stuck-at")
        if value not in ("0", "1"):
            raise ConfigError(f"--value: got {value!r}, expected 0 or 1 for stuck-at")
        if s("pe") is None:
            raise ConfigError("--pe: missing, expected the stuck PE as r,c")
        return StuckAt(
            pe=get("pe", lambda k, t: _pair(k, t, ",")),
            bit=bits[0],
            value=int(value),
            array=array or (32, 32),
            dataflow=s("dataflow") or "ws",
            fmt=fmt,
            scope=scope,
        )
    if kind == "timing":
        return TimingErrors(
            manifestation=s("manifestation") or "hold", kernel=s("kernel"), scope=scope
        )
    return ActivationClipping(
        mode=s("mode") or "zero",
        granularity=s("granularity") or "module",
        target=target or "outputs",
        margin=get("margin", _float, 0.0),
        scope=scope,
    )
