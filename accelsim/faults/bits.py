"""Exact bit manipulation of tensors in the five fault formats (numpy views, no copies of logic).

Array conventions (the interceptor hands the hooks these dtypes):

=======  ==================  ========  ===================================================
format   numpy dtype         bits      bit positions
=======  ==================  ========  ===================================================
int8     ``int8``            8         two's complement; bit 7 is the sign (weight -128)
int32    ``int32``           32        two's complement; bit 31 is the sign
fp16     ``float16``         16        IEEE 754 binary16: 15 sign, 14..10 exponent, 9..0 mantissa
bf16     ``float32``         16        bfloat16 values stored exactly in float32: bf16 bit i is
         (or ``uint16``)               float32 bit i + 16 (15 sign, 14..7 exponent, 6..0
                                       mantissa); a ``uint16`` array is taken as raw bf16 bits
fp32     ``float32``         32        IEEE 754 binary32: 31 sign, 30..23 exponent, 22..0 mantissa
=======  ==================  ========  ===================================================

Bit 0 is always the least significant bit of the format's pattern. A flip XORs the pattern, so
flipping the same bit twice restores the value exactly (also for NaN payloads and infinities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accelsim.errors import ConfigError, ShapeError
from accelsim.faults.base import FORMATS

#: Width in bits of each format's pattern.
FORMAT_BITS: dict[str, int] = {"int8": 8, "int32": 32, "fp16": 16, "bf16": 16, "fp32": 32}

#: The numpy dtype a tensor of each format arrives in (bf16 also accepts ``uint16`` raw bits).
FORMAT_DTYPES: dict[str, np.dtype] = {
    "int8": np.dtype(np.int8),
    "int32": np.dtype(np.int32),
    "fp16": np.dtype(np.float16),
    "bf16": np.dtype(np.float32),
    "fp32": np.dtype(np.float32),
}

_UINT_OF: dict[int, type[np.unsignedinteger]] = {1: np.uint8, 2: np.uint16, 4: np.uint32}


def check_format(fmt: str, key: str = "format") -> str:
    """``fmt`` if it is one of :data:`~accelsim.faults.base.FORMATS`, else a ConfigError."""
    if fmt not in FORMATS:
        raise ConfigError(f"{key}: got {fmt!r}, expected one of {', '.join(FORMATS)}")
    return fmt


def check_bit(bit: int, fmt: str, key: str = "bit") -> int:
    """``bit`` if it is a valid position of ``fmt`` (0..width-1), else a ConfigError."""
    width = FORMAT_BITS[check_format(fmt)]
    if isinstance(bit, bool) or not isinstance(bit, int | np.integer) or not 0 <= bit < width:
        raise ConfigError(f"{key}: got {bit!r} for {fmt}, expected an integer in 0..{width - 1}")
    return int(bit)


def check_array(x: np.ndarray, fmt: str) -> None:
    """Raise a ShapeError unless ``x`` has the dtype convention of ``fmt`` (module docstring)."""
    check_format(fmt)
    if not isinstance(x, np.ndarray):
        raise ShapeError(f"tensor: got {type(x).__name__}, expected a numpy array for {fmt}")
    ok = x.dtype == FORMAT_DTYPES[fmt] or (fmt == "bf16" and x.dtype == np.uint16)
    if not ok:
        raise ShapeError(
            f"tensor: got dtype {x.dtype} for format {fmt}, expected {FORMAT_DTYPES[fmt]}"
            + (" or uint16 (raw bf16 bits)" if fmt == "bf16" else "")
        )


def _shift(x: np.ndarray, fmt: str) -> int:
    """Offset of format bit 0 in the storage word (16 for bf16 held in float32)."""
    return 16 if (fmt == "bf16" and x.dtype == np.float32) else 0


def bit_view(x: np.ndarray) -> np.ndarray:
    """The unsigned-integer view of ``x``'s storage (same memory, no copy)."""
    return x.view(_UINT_OF[x.dtype.itemsize])


def bits_to_mask(bits: np.ndarray | Sequence[int] | int, fmt: str) -> np.ndarray:
    """uint64 XOR masks (in format bit positions) of sites with the given bits.

    ``bits`` of shape ``(n,)`` gives one bit per site, ``(n, k)`` k bits per site (OR-ed;
    repeated positions count once).
    """
    b = np.asarray(bits, dtype=np.int64)
    width = FORMAT_BITS[check_format(fmt)]
    if b.size and (b.min() < 0 or b.max() >= width):
        bad = int(b.min()) if b.min() < 0 else int(b.max())
        raise ConfigError(f"bit: got {bad} for {fmt}, expected an integer in 0..{width - 1}")
    m = np.left_shift(np.uint64(1), b.astype(np.uint64))
    if m.ndim == 2:
        m = np.bitwise_or.reduce(m, axis=1)
    return np.atleast_1d(m)


def values_of(x: np.ndarray, fmt: str) -> np.ndarray:
    """float64 values of ``x`` (raw bf16 ``uint16`` bits decoded), for logs and comparisons."""
    if fmt == "bf16" and x.dtype == np.uint16:
        return (x.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    return x.astype(np.float64)


def xor_patterns(
    x: np.ndarray, fmt: str, flat_index: np.ndarray, masks: np.ndarray, *, copy: bool = True
) -> np.ndarray:
    """XOR ``masks`` (format bit positions) into the patterns of ``x`` at ``flat_index``.

    Repeated indices XOR cumulatively (``np.bitwise_xor.at``). Returns the new array (a copy
    unless ``copy=False``, then ``x`` itself, which must be C-contiguous).
    """
    check_array(x, fmt)
    out = np.array(x, copy=True, order="C") if copy else x
    if not out.flags.c_contiguous:
        raise ShapeError("tensor: expected a C-contiguous array for in-place bit flips")
    view = bit_view(out).reshape(-1)
    idx = np.asarray(flat_index, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= view.size):
        raise ShapeError(f"index: got flat index out of 0..{view.size - 1}")
    m = np.broadcast_to(np.asarray(masks, dtype=np.uint64), idx.shape) << np.uint64(
        _shift(out, fmt)
    )
    np.bitwise_xor.at(view, idx, m.astype(view.dtype))
    return out


def flip_bits(
    values: np.ndarray,
    fmt: str,
    index: np.ndarray | Sequence[int] | int | tuple[np.ndarray, ...],
    bits: np.ndarray | Sequence[int] | int,
) -> np.ndarray:
    """A copy of ``values`` with ``bits`` flipped at ``index``, exactly per format.

    ``index`` is flat indices (int or 1-D) or a tuple of per-axis index arrays (as from
    ``np.nonzero``); ``bits`` one bit per site (scalar or ``(n,)``) or several per site
    (``(n, k)``). Bits are format positions (module docstring). Examples: int8 bit 7 turns
    ``v`` into ``v - 128`` if ``v >= 0`` else ``v + 128``; fp16 bit 14 multiplies a normal
    value with exponent MSB 0 by 2**16.
    """
    check_array(values, fmt)
    if isinstance(index, tuple):
        flat = np.ravel_multi_index(tuple(np.asarray(i) for i in index), values.shape)
    else:
        flat = np.asarray(index, dtype=np.int64)
    flat = np.atleast_1d(flat).reshape(-1)
    b = np.asarray(bits, dtype=np.int64)
    if b.ndim == 0:
        b = np.full(flat.shape, int(b), dtype=np.int64)
    masks = bits_to_mask(b, fmt)
    if masks.shape[0] != flat.shape[0]:
        raise ShapeError(
            f"bits: got {masks.shape[0]} sites of bits for {flat.shape[0]} indices, expected equal"
        )
    return xor_patterns(values, fmt, flat, masks)


def set_bits(
    values: np.ndarray, fmt: str, flat_index: np.ndarray, bit: int, value: int
) -> np.ndarray:
    """A copy of ``values`` with format bit ``bit`` forced to ``value`` (0/1) at ``flat_index``."""
    check_array(values, fmt)
    check_bit(bit, fmt)
    out = np.array(values, copy=True, order="C")
    view = bit_view(out).reshape(-1)
    idx = np.asarray(flat_index, dtype=np.int64).reshape(-1)
    mask = view.dtype.type(1 << (bit + _shift(out, fmt)))
    if value:
        view[idx] |= mask
    else:
        view[idx] &= ~mask
    return out


def random_patterns(n: int, fmt: str, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` values with uniformly random bit patterns of ``fmt``, in ``like``'s dtype.

    For bf16 held in float32 only the upper 16 bits are random (values stay bf16-exact).
    """
    check_array(like, fmt)
    width = FORMAT_BITS[fmt]
    raw = rng.integers(0, 1 << width, size=n, dtype=np.uint64)
    store = _UINT_OF[like.dtype.itemsize]
    pat = (raw << np.uint64(_shift(like, fmt))).astype(store)
    return pat.view(like.dtype)
