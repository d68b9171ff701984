"""ABFT cost model against the map_gemm closed forms and the energy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.abft import AbftChecker
from accelsim.abft.checksum import checksum_width
from accelsim.abft.cost import (
    E_ADD_J,
    check_cost,
    correction_cost,
    dedicated_cycles,
    recompute_cost,
    rollback_cost,
)
from accelsim.config import ArrayConfig, HardwareConfig, OperatingPoint
from accelsim.context import GemmContext
from accelsim.hw.energy import leakage_power
from accelsim.hw.mapping import map_gemm

NOM = OperatingPoint(0.9, 1e9)
NO_VERIFY = {"verify_lanes": 10**12}  # verification never exposed
ARRAY = {"placement": "array", **NO_VERIFY}


def hw_for(rows, cols, df):
    return HardwareConfig(array=ArrayConfig(rows, cols, df))


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize(
    ("shape", "array"),
    [((64, 48, 96), (16, 16)), ((256, 1152, 1152), (128, 128)), ((7, 32, 5), (8, 8))],
)
def test_array_placement_cycles_are_the_encoded_gemm(df, shape, array):
    M, N, K = shape
    hw = hw_for(*array, df)
    cost = check_cost(M, N, K, hw, NOM, **ARRAY)
    base = map_gemm(M, N, K, hw.array)
    enc = map_gemm(M + 1, N + 1, K, hw.array)
    assert cost.cycles == enc.compute_cycles - base.compute_cycles
    assert cost.seconds == pytest.approx(cost.cycles / NOM.freq)


def test_array_placement_closed_forms_ws():
    R = C = 16
    hw = hw_for(R, C, "ws")
    M, K = 100, 40
    # N not a multiple of C: the checksum column fits the last fold; +1 streamed row per fold
    N = 40
    rf, cf = math.ceil(K / R), math.ceil(N / C)
    cost = check_cost(M, N, K, hw, NOM, **ARRAY)
    assert cost.cycles == rf * cf
    # N a multiple of C: one extra column fold of the full per-fold length
    N = 48
    cf = N // C
    P1 = 2 * R + C + (M + 1) - 2
    P0 = 2 * R + C + M - 2
    cost = check_cost(M, N, K, hw, NOM, **ARRAY)
    assert cost.cycles == (rf * (cf + 1) * P1 - 1) - (rf * cf * P0 - 1)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_dedicated_placement_adds_two_cycles_per_fold(df):
    hw = hw_for(16, 16, df)
    for M, N, K in ((64, 48, 96), (5, 200, 33), (300, 16, 16)):
        base = map_gemm(M, N, K, hw.array)
        assert dedicated_cycles(base) - base.compute_cycles == 2 * base.folds
        cost = check_cost(M, N, K, hw, NOM, placement="dedicated", **NO_VERIFY)
        assert cost.cycles == 2 * base.folds
    # with overlapped folds only the last fold's skew and the streamed row remain
    base = map_gemm(64, 48, 96, hw.array, overlap_folds=True)
    assert dedicated_cycles(base) > base.compute_cycles


def test_energy_parts_and_voltage_scaling():
    hw = hw_for(32, 32, "ws")
    tech = hw.tech
    M, N, K = 256, 128, 512
    c = check_cost(M, N, K, hw, NOM, weights_static=True, **NO_VERIFY)
    wa, wb = checksum_width(M), checksum_width(N)
    assert (wa, wb) == (16, 15)
    mac = tech.e_mac_int8 * (N * K * wa / 8 + M * K * wb / 8 + K * wa * wb / 64)
    assert c.detail["checksum_mac"] == pytest.approx(mac)
    assert c.detail["verify"] == pytest.approx((2 * M * N + M + N) * E_ADD_J)
    assert c.detail["encode"] == pytest.approx(M * K * E_ADD_J)  # B e precomputed (weights)
    dyn = check_cost(M, N, K, hw, NOM, weights_static=False, **NO_VERIFY)
    assert dyn.detail["encode"] == pytest.approx((M * K + K * N) * E_ADD_J)
    assert c.detail["leakage"] == pytest.approx(leakage_power(hw, 0.9) * c.seconds)
    enc_s = (map_gemm(M, N, K, hw.array).compute_cycles + c.cycles) / 1e9
    assert c.detail["checksum_leakage"] == pytest.approx(tech.leak_w_per_pe * 32 * enc_s)
    assert c.energy.abft == pytest.approx(sum(c.detail.values()))
    assert c.energy.total == c.energy.abft
    low = check_cost(M, N, K, hw, OperatingPoint(0.72, 1e9), weights_static=True, **NO_VERIFY)
    assert low.detail["checksum_mac"] == pytest.approx(mac * (0.72 / 0.9) ** 2)
    # overhead relative to the GEMM's own MAC energy is small for large GEMMs (~(M+N)/(MN))
    assert c.detail["checksum_mac"] / (M * N * K * tech.e_mac_int8) < 0.2
    # the array placement re-streams A for the extra column fold (N = 128 is a multiple of 32)
    arr = check_cost(M, N, K, hw, NOM, weights_static=True, **ARRAY)
    assert arr.detail["sram"] > c.detail["sram"]


def test_verify_exposure():
    hw = hw_for(8, 8, "os")
    M, N, K = 64, 64, 4
    base = check_cost(M, N, K, hw, NOM, **ARRAY)
    ops = 2 * M * N + M + N
    serial = check_cost(M, N, K, hw, NOM, placement="array", verify_lanes=1, overlap_verify=False)
    assert serial.cycles == base.cycles + ops
    enc = map_gemm(M + 1, N + 1, K, hw.array).compute_cycles
    hidden = check_cost(M, N, K, hw, NOM, placement="array", verify_lanes=1, overlap_verify=True)
    assert hidden.cycles == base.cycles + max(0, ops - enc)


def test_action_costs():
    hw = hw_for(16, 16, "ws")
    safe = OperatingPoint(0.9, 1e9)
    r = recompute_cost(3, 64, 128, hw, safe)
    mp = map_gemm(3, 64, 128, hw.array)
    assert r.cycles == mp.compute_cycles
    assert r.detail["recompute_mac"] == pytest.approx(mp.macs * hw.tech.e_mac_int8)
    assert r.energy.recompute > 0 and r.energy.abft == 0 and r.energy.rollback == 0
    c = correction_cost(5, hw, NOM)
    assert c.cycles == 5 and c.energy.abft > 0
    assert correction_cost(0, hw, NOM).energy.total == 0
    rb = rollback_cost(100, hw, NOM, bytes_per_element=2)
    assert rb.seconds == pytest.approx(hw.memory.dram_latency_s + 200 / hw.memory.dram_bandwidth)
    assert rb.energy.rollback > 200 * hw.tech.dram_j_per_byte and rb.energy.abft == 0


def test_checker_charges_attention_encode_and_action_costs():
    hw = hw_for(16, 16, "ws")
    ch = AbftChecker("classic", hw)
    rng = np.random.default_rng(0)
    A = rng.integers(-50, 50, (32, 24)).astype(np.int8)
    B = rng.integers(-50, 50, (24, 40)).astype(np.int8)
    C = (A.astype(np.int32) @ B.astype(np.int32)).astype(np.int32)
    lin = ch.check(A, B, C, GemmContext("m", layer_type="fc1"))
    att = ch.check(A, B, C, GemmContext("m", layer_type="attn-scores"))
    assert att.cost.detail["encode"] - lin.cost.detail["encode"] == pytest.approx(24 * 40 * E_ADD_J)
    F = C.copy()
    F[1, 2] += 1 << 20
    r = ch.check(A, B, F, GemmContext("m", layer_type="fc1"))
    assert r.cost.cycles == lin.cost.cycles + 1
    assert r.cost.energy.abft == pytest.approx(lin.cost.energy.abft + r.actions[0].cost.energy.abft)
