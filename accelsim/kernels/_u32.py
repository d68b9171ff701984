"""32-bit unsigned integer arithmetic for numba loops that should vectorize 16 lanes wide.

numba types every integer operation at 64 bits at least (``uint32 + uint32 -> uint64``), so
LLVM vectorizes such loops with 64-bit lanes: half as many per register as the 32-bit words
the systolic kernels' screens work on. These intrinsics emit the 32-bit LLVM instruction
directly (``i32`` in, ``i32`` out, wrapping as the hardware adders do). A screen written with
them runs about twice as fast (measured on the exact ws kernel's screen: 0.75 vs 1.5 ns per
MAC on one core with AVX-512).

Private: plain numba intrinsics, usable only inside ``@njit`` code. :func:`u32` converts any
integer to ``uint32`` (truncating or sign-extending like a C cast); every other function takes
``uint32`` arguments.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_I32 = ir.IntType(32)


def _u32(typingctx: Any, x: Any) -> Any:
    """``uint32(x)`` for any integer ``x``: the low 32 bits (sign-extended if narrower)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint32(x)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        v = args[0]
        width = v.type.width
        if width > 32:
            return builder.trunc(v, _I32)
        if width < 32:
            return builder.sext(v, _I32) if signature.args[0].signed else builder.zext(v, _I32)
        return v

    return sig, codegen


u32: Any = intrinsic(_u32)


def _binary(name: str, doc: str) -> Any:
    def typer(typingctx: Any, a: Any, b: Any) -> Any:
        sig = types.uint32(types.uint32, types.uint32)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return getattr(builder, name)(args[0], args[1])

        return sig, codegen

    typer.__name__ = f"u32_{name.rstrip('_')}"
    typer.__doc__ = doc
    return intrinsic(typer)


add = _binary("add", "``a + b`` mod 2**32.")
sub = _binary("sub", "``a - b`` mod 2**32.")
mul = _binary("mul", "``a * b`` mod 2**32.")
and_ = _binary("and_", "``a & b``.")
or_ = _binary("or_", "``a | b``.")
xor = _binary("xor", "``a ^ b``.")
shl = _binary("shl", "``a << b`` mod 2**32 (``b < 32``).")


def _popcount(typingctx: Any, x: Any) -> Any:
    """Number of 1 bits of ``x``."""
    sig = types.uint32(types.uint32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return sig, codegen


popcount: Any = intrinsic(_popcount)


def _nonzero(typingctx: Any, x: Any) -> Any:
    """1 if ``x != 0`` else 0 (as ``uint32``, branch-free)."""
    sig = types.uint32(types.uint32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.zext(builder.icmp_unsigned("!=", args[0], ir.Constant(_I32, 0)), _I32)

    return sig, codegen


nonzero: Any = intrinsic(_nonzero)


def _at_least(typingctx: Any, a: Any, b: Any) -> Any:
    """1 if ``a >= b`` (unsigned) else 0 (as ``uint32``, branch-free)."""
    sig = types.uint32(types.uint32, types.uint32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.zext(builder.icmp_unsigned(">=", args[0], args[1]), _I32)

    return sig, codegen


at_least: Any = intrinsic(_at_least)


def _trailing_zeros64(typingctx: Any, x: Any) -> Any:
    """Number of trailing 0 bits of a non-zero ``uint64`` (one instruction; for bit-set
    iteration, the one 64-bit helper here)."""
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


trailing_zeros64: Any = intrinsic(_trailing_zeros64)
