"""Exact per-format bit flips, checked against an independent struct-based reference."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from accelsim.errors import AccelsimError, ConfigError, ShapeError
from accelsim.faults.bits import (
    FORMAT_BITS,
    bits_to_mask,
    check_bit,
    flip_bits,
    random_patterns,
    set_bits,
    values_of,
)


def _ref_flip_float(v: float, code: str, uint: str, bit: int) -> float:
    """Reference: pack the IEEE pattern with struct, XOR, unpack."""
    (p,) = struct.unpack(uint, struct.pack(code, v))
    (out,) = struct.unpack(code, struct.pack(uint, p ^ (1 << bit)))
    return float(out)


def test_int8_bit7_is_sign_flip_for_all_values():
    x = np.arange(-128, 128, dtype=np.int8)
    y = flip_bits(x, "int8", np.arange(256), 7)
    xi = x.astype(np.int64)
    expected = np.where(xi >= 0, xi - 128, xi + 128)
    np.testing.assert_array_equal(y.astype(np.int64), expected)
    assert y.dtype == np.int8


def test_int8_low_bits_add_or_subtract_powers_of_two():
    x = np.arange(-128, 128, dtype=np.int8)
    for bit in range(7):
        y = flip_bits(x, "int8", np.arange(256), bit).astype(np.int64)
        xi = x.astype(np.int64)
        was_set = (xi >> bit) & 1
        np.testing.assert_array_equal(y, xi + np.where(was_set == 1, -(2**bit), 2**bit))


def test_int32_two_complement():
    x = np.array([0, 1, -1, 2**31 - 1, -(2**31), 123456], dtype=np.int32)
    y = flip_bits(x, "int32", np.arange(6), 31).astype(np.int64)
    xi = x.astype(np.int64)
    np.testing.assert_array_equal(y, np.where(xi >= 0, xi - 2**31, xi + 2**31))
    y30 = flip_bits(x, "int32", np.arange(6), 30).astype(np.int64)
    np.testing.assert_array_equal(y30, xi ^ (1 << 30))


@pytest.mark.parametrize(
    ("fmt", "code", "uint", "dtype", "width"),
    [("fp16", "<e", "<H", np.float16, 16), ("fp32", "<f", "<I", np.float32, 32)],
)
def test_float_flips_match_struct_reference(fmt, code, uint, dtype, width):
    rng = np.random.default_rng(5)
    vals = (rng.standard_normal(64) * 10).astype(dtype)
    for bit in range(width):
        y = flip_bits(vals, fmt, np.arange(vals.size), bit)
        for v, got in zip(vals.tolist(), y.tolist(), strict=True):
            ref = _ref_flip_float(float(v), code, uint, bit)
            assert (np.isnan(ref) and np.isnan(got)) or ref == got, (fmt, bit, v)


def test_fp16_exponent_msb_scales_by_2_pow_16():
    # 0.25..0.5: exponent field 01101 (bit 14 = 0); setting it adds 16 to the exponent
    w = np.array([0.3, 0.25, 0.4999, -0.3], dtype=np.float16)
    y = flip_bits(w, "fp16", np.arange(4), 14)
    np.testing.assert_array_equal(y.astype(np.float64), w.astype(np.float64) * 2.0**16)
    # and back: bit 14 set -> factor 2^-16
    np.testing.assert_array_equal(flip_bits(y, "fp16", np.arange(4), 14), w)


def test_fp32_exponent_msb_and_bf16_consistency():
    x = np.array([0.75, -0.5, 0.375], dtype=np.float32)  # bf16-exact, exponent MSB 0
    y32 = flip_bits(x, "fp32", np.arange(3), 30)
    np.testing.assert_array_equal(y32.astype(np.float64), x.astype(np.float64) * 2.0**128)
    # bf16 bit 14 is float32 bit 30 (bf16 = upper 16 bits of float32)
    ybf = flip_bits(x, "bf16", np.arange(3), 14)
    np.testing.assert_array_equal(ybf, y32)
    # the lower 16 bits of a bf16 value stay zero for every bf16 bit
    for bit in range(16):
        z = flip_bits(x, "bf16", np.arange(3), bit)
        assert np.all(z.view(np.uint32) & 0xFFFF == 0)
    # raw uint16 bf16 patterns give the same values
    raw = (x.view(np.uint32) >> 16).astype(np.uint16)
    yraw = flip_bits(raw, "bf16", np.arange(3), 14)
    np.testing.assert_array_equal(values_of(yraw, "bf16"), y32.astype(np.float64))


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [("fp16", np.float16), ("bf16", np.float32), ("fp32", np.float32)],
)
def test_sign_bit_negates_floats(fmt, dtype):
    x = np.array([1.5, -2.0, 0.0, 3.0], dtype=dtype)
    y = flip_bits(x, fmt, np.arange(4), FORMAT_BITS[fmt] - 1)
    np.testing.assert_array_equal(y, -x)
    assert np.signbit(y[2])


@pytest.mark.parametrize("fmt", ["int8", "int32", "fp16", "bf16", "fp32"])
def test_double_flip_is_identity_bit_exact_and_input_untouched(fmt):
    rng = np.random.default_rng(1)
    dtype = {"int8": np.int8, "int32": np.int32, "fp16": np.float16}.get(fmt, np.float32)
    x = random_patterns(200, fmt, np.zeros(1, dtype=dtype), rng)  # includes NaN/inf patterns
    before = x.copy()
    idx = np.arange(200)
    b = rng.integers(0, FORMAT_BITS[fmt], size=200)
    y = flip_bits(x, fmt, idx, b)
    np.testing.assert_array_equal(x.view(np.uint8), before.view(np.uint8))
    z = flip_bits(y, fmt, idx, b)
    np.testing.assert_array_equal(z.view(np.uint8), x.view(np.uint8))
    changed = y.view(np.uint8).reshape(200, -1) != x.view(np.uint8).reshape(200, -1)
    assert changed.any(axis=1).all()


def test_multi_bit_sites_and_tuple_index():
    x = np.zeros((2, 3), dtype=np.int32)
    y = flip_bits(x, "int32", (np.array([0, 1]), np.array([2, 0])), np.array([[0, 3], [4, 5]]))
    np.testing.assert_array_equal(y, [[0, 0, 9], [48, 0, 0]])
    # the same site listed twice XORs twice
    np.testing.assert_array_equal(flip_bits(x, "int32", [1, 1], [2, 2]), x)
    np.testing.assert_array_equal(bits_to_mask([[0, 0, 1]], "int8"), [3])


def test_set_bits():
    x = np.array([0, 1, -1], dtype=np.int32)
    np.testing.assert_array_equal(set_bits(x, "int32", np.arange(3), 0, 0), [0, 0, -2])
    np.testing.assert_array_equal(set_bits(x, "int32", np.arange(3), 1, 1), [2, 3, -1])


def test_errors_name_the_allowed_range():
    with pytest.raises(ConfigError, match=r"bit: got 31 for int8, expected an integer in 0\.\.7"):
        check_bit(31, "int8")
    with pytest.raises(ConfigError, match=r"0\.\.15"):
        flip_bits(np.zeros(2, np.float16), "fp16", [0], 16)
    with pytest.raises(ShapeError, match="dtype float64"):
        flip_bits(np.zeros(2), "fp32", [0], 1)
    with pytest.raises(ConfigError, match="fp64"):
        flip_bits(np.zeros(2, np.float32), "fp64", [0], 1)
    with pytest.raises(ShapeError):
        flip_bits(np.zeros(2, np.int8), "int8", [5], 1)
    with pytest.raises(AccelsimError):
        flip_bits(np.zeros(2, np.int8), "int8", [0, 1], [1, 2, 3])
