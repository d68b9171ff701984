"""Energy model: closed forms, published ratios, and the ledger."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from accelsim.config import (
    ArrayConfig,
    HardwareConfig,
    MemoryConfig,
    OperatingPoint,
    default_tech,
    load_preset,
)
from accelsim.hw.energy import (
    COMPONENTS,
    EnergyBreakdown,
    EnergyLedger,
    dynamic_scale,
    layer_energy,
    leakage_power,
    leakage_scale,
    sram_j_per_byte,
)
from accelsim.hw.mapping import map_gemm
from accelsim.hw.memory import dram_traffic, layer_timing

TECH = default_tech()


@pytest.mark.parametrize(("vdd", "published"), [(0.8, 0.79), (0.7, 0.61), (0.6, 0.44)])
def test_dynamic_scale_matches_published_cv2_ratios(vdd, published):
    # timing.md s1.3: dynamic energy per op relative to 0.9 V is 0.79x / 0.61x / 0.44x.
    # Published ratios are rounded to two digits (0.6049 is printed as 0.61).
    assert dynamic_scale(vdd, TECH) == pytest.approx(published, abs=0.0075)
    assert dynamic_scale(TECH.vnom, TECH) == 1.0


def test_leakage_scale_within_published_ptm_range():
    assert leakage_scale(TECH.vnom, TECH) == 1.0
    # timing.md s1.3 [S]: leakage *power* factor per +100 mV near nominal is x1.7 to x2.6.
    factor = leakage_scale(TECH.vnom + 0.1, TECH)
    assert 1.7 <= factor <= 2.6
    assert factor == pytest.approx((1.0 / 0.9) * math.exp(0.5))
    # Monotone in V.
    volts = [0.5 + 0.05 * i for i in range(12)]
    scales = [leakage_scale(v, TECH) for v in volts]
    assert scales == sorted(scales)


def test_sram_energy_table_points_and_interpolation():
    # At the table points: pJ per 64 bit / 8 bytes.
    assert sram_j_per_byte(8, TECH) == pytest.approx(5e-12 / 8)
    assert sram_j_per_byte(32, TECH) == pytest.approx(10e-12 / 8)
    assert sram_j_per_byte(1024, TECH) == pytest.approx(50e-12 / 8)
    # Log-log interpolation: 16 kB is the geometric mean of the 8 and 32 kB energies.
    assert sram_j_per_byte(16, TECH) == pytest.approx(math.sqrt(5 * 10) * 1e-12 / 8)
    # Clamped at the ends (banked large SRAMs, tiny SRAMs no cheaper than the smallest point).
    assert sram_j_per_byte(1, TECH) == sram_j_per_byte(8, TECH)
    assert sram_j_per_byte(8192, TECH) == sram_j_per_byte(1024, TECH)
    sizes = [8, 12, 32, 64, 256, 1024]
    energies = [sram_j_per_byte(s, TECH) for s in sizes]
    assert energies == sorted(energies)


def test_leakage_is_fifteen_percent_of_pe_power_at_nominal():
    # timing.md s9: P_leak0 = 15% of total at V0 (applied per PE at full activity).
    hw = HardwareConfig(tech=TECH)
    p_leak_pe = TECH.leak_w_per_pe
    p_dyn_pe = TECH.e_mac_int8 * TECH.fnom
    assert p_leak_pe / (p_leak_pe + p_dyn_pe) == pytest.approx(0.15, abs=0.001)
    sram_kb = hw.memory.ifmap_sram_kb + hw.memory.filter_sram_kb + hw.memory.ofmap_sram_kb
    # SRAM: the accessed-bank value for the (virtually all) unaccessed, source-biased cells
    p_sram = TECH.leak_w_per_sram_kb * TECH.sram_leak_retention * sram_kb
    p_array = TECH.leak_w_per_pe * hw.array.pes
    assert TECH.sram_leak_retention == 0.2
    assert leakage_power(hw, TECH.vnom) == pytest.approx(p_array + p_sram)
    # Undervolted: the array's leakage scales, the cells' (fixed rail by default) does not.
    assert leakage_power(hw, 0.7) == pytest.approx(p_sram + p_array * leakage_scale(0.7, TECH))
    # cells on the scaled rail follow it, but never below sram_vmin (0.70 V)
    hw_rail = replace(hw, tech=replace(TECH, sram_scaled=("cells", "periphery")))
    both = p_array * leakage_scale(0.75, TECH) + p_sram * leakage_scale(0.75, TECH)
    assert leakage_power(hw_rail, 0.75) == pytest.approx(both)
    held = p_array * leakage_scale(0.6, TECH) + p_sram * leakage_scale(0.70, TECH)
    assert leakage_power(hw_rail, 0.6) == pytest.approx(held)


def test_sram_energy_closed_form_small_ws_gemm():
    # 8x8 WS array, 64 kB SRAMs (5.0 * (64/32)**log2(...) interpolated), GEMM M=16, N=8, K=16:
    # row folds = ceil(K/R) = 2, col folds = 1.
    hw = HardwareConfig(ArrayConfig(8, 8, "ws"), MemoryConfig(64, 64, 64, 1, 1e12, 0.0), TECH)
    op = OperatingPoint.nominal(TECH)
    mapping, traffic, _, energy = _layer(hw, op, 16, 8, 16)
    e = sram_j_per_byte(64, TECH)
    ifmap = 16 * 16 * 1 + 16 * 16  # array reads M*K*col_folds + fill from DRAM (fits: once)
    filt = 16 * 8 + 16 * 8  # K*N reads + fill
    ofmap = 16 * 8 * 2 + 16 * 8 * 1 + 16 * 8  # psum writes per row fold + RMW reads + drain reads
    assert (mapping.sram_ifmap_reads, mapping.sram_filter_reads) == (256, 128)
    assert traffic.dram_ofmap_writes == 16 * 8 and traffic.dram_ofmap_reads == 0
    assert energy.sram == pytest.approx(e * (ifmap + filt + ofmap))


def _layer(hw: HardwareConfig, op: OperatingPoint, m: int, n: int, k: int):
    mapping = map_gemm(m, n, k, hw.array)
    traffic = dram_traffic(mapping, hw.memory)
    timing = layer_timing(mapping, traffic, hw.memory, op.freq)
    return mapping, traffic, timing, layer_energy(mapping, traffic, timing, hw, op)


def test_layer_energy_components_closed_form():
    hw = load_preset("tpu-128x128")
    op = OperatingPoint.nominal(hw.tech)
    _, traffic, timing, energy = _layer(hw, op, 256, 1152, 4608)
    assert energy.mac == pytest.approx(256 * 1152 * 4608 * 0.25e-12)
    assert energy.dram == pytest.approx(traffic.dram_bytes * hw.tech.dram_j_per_byte)
    assert energy.leakage == pytest.approx(leakage_power(hw, op.vdd) * timing.total_s)
    assert energy.sram > 0
    assert energy.total == pytest.approx(energy.mac + energy.sram + energy.dram + energy.leakage)


def test_undervolting_scales_dynamic_not_dram():
    hw = load_preset("tpu-128x128")
    nominal = _layer(hw, OperatingPoint(0.9, 1e9), 256, 1152, 1152)[3]
    low = _layer(hw, OperatingPoint(0.7, 1e9), 256, 1152, 1152)[3]
    assert low.mac == pytest.approx(nominal.mac * (0.7 / 0.9) ** 2)
    assert low.dram == pytest.approx(nominal.dram)
    # dual-rail SRAM by default: the periphery's half of an access scales, the cells' does not
    p = hw.tech.sram_periphery_share
    assert low.sram == pytest.approx(nominal.sram * (p * (0.7 / 0.9) ** 2 + (1 - p)))
    assert low.leakage < nominal.leakage
    fixed = replace(hw, tech=replace(hw.tech, sram_scaled=()))
    assert _layer(fixed, OperatingPoint(0.7, 1e9), 256, 1152, 1152)[3].sram == pytest.approx(
        nominal.sram
    )
    hw_rail = replace(hw, tech=replace(hw.tech, sram_scales_with_vdd=True))
    assert hw_rail.tech.sram_scaled == ("cells", "periphery")
    low_rail = _layer(hw_rail, OperatingPoint(0.7, 1e9), 256, 1152, 1152)[3]
    assert low_rail.sram == pytest.approx(nominal.sram * (0.7 / 0.9) ** 2)
    # below sram_vmin the SRAM's rail holds at 0.70 V while the array goes on
    lower = _layer(hw_rail, OperatingPoint(0.6, 1e9), 256, 1152, 1152)[3]
    assert lower.sram == pytest.approx(low_rail.sram)
    assert lower.mac == pytest.approx(nominal.mac * (0.6 / 0.9) ** 2)


def test_energy_by_rail_sums_to_the_total_and_rail_variants_match():
    from accelsim.hw.energy import SRAM_RAIL_VARIANTS
    from accelsim.hw.layer import GemmLayer
    from accelsim.hw.perf import evaluate_layer

    hw = load_preset("tpu-128x128")
    for v in (0.9, 0.75, 0.65):
        lp = evaluate_layer(GemmLayer("g", 256, 1152, 4608), hw, OperatingPoint(v, 1e9))
        assert sum(lp.rails.values()) == pytest.approx(lp.energy.total, rel=1e-12)
        assert lp.rail_variants["dual"] == pytest.approx(lp.energy.total, rel=1e-12)
        for name, parts in SRAM_RAIL_VARIANTS.items():
            other = replace(hw, tech=replace(hw.tech, sram_scaled=parts))
            e = evaluate_layer(GemmLayer("g", 256, 1152, 4608), other, OperatingPoint(v, 1e9))
            assert lp.rail_variants[name] == pytest.approx(e.energy.total, rel=1e-12)
        if v < 0.9:
            assert lp.rail_variants["shared"] < lp.rail_variants["dual"] < lp.rail_variants["fixed"]
    # at nominal the rail assignment changes nothing
    lp = evaluate_layer(GemmLayer("g", 256, 1152, 4608), hw, OperatingPoint(0.9, 1e9))
    assert len({round(x, 15) for x in lp.rail_variants.values()}) == 1


def test_overclocking_saves_leakage_only_when_compute_bound():
    hw = load_preset("tpu-128x128")
    # Compute bound: big square GEMM, everything fits on chip.
    slow = _layer(hw, OperatingPoint(0.9, 1e9), 1024, 1024, 1024)
    fast = _layer(hw, OperatingPoint(0.9, 2e9), 1024, 1024, 1024)
    assert fast[3].mac == pytest.approx(slow[3].mac)
    assert fast[3].leakage < 0.6 * slow[3].leakage
    # Memory bound: one token through a large weight matrix on a slow DRAM.
    edge = HardwareConfig(hw.array, MemoryConfig(64, 64, 64, 1, 1e9, 100e-9), hw.tech)
    slow_m = _layer(edge, OperatingPoint(0.9, 1e9), 1, 4096, 4096)
    fast_m = _layer(edge, OperatingPoint(0.9, 2e9), 1, 4096, 4096)
    assert fast_m[2].total_s == pytest.approx(slow_m[2].total_s, rel=0.01)
    assert fast_m[3].leakage == pytest.approx(slow_m[3].leakage, rel=0.01)


def test_ledger_accumulates_by_key_and_component():
    ledger = EnergyLedger()
    ledger.add("qkv", EnergyBreakdown(mac=1.0, sram=2.0), count=3)
    ledger.add("qkv", EnergyBreakdown(dram=1.0))
    ledger.add("fc1", EnergyBreakdown(leakage=0.5))
    ledger.charge("dvfs", 0.25)
    by_key = ledger.by_key
    assert list(by_key) == ["qkv", "fc1", "(run)"]
    assert by_key["qkv"] == EnergyBreakdown(mac=3.0, sram=6.0, dram=1.0)
    assert ledger.total.total == pytest.approx(3 + 6 + 1 + 0.5 + 0.25)
    assert ledger.total.dvfs == 0.25
    assert set(ledger.total.as_dict()) == set(COMPONENTS)
    with pytest.raises(ValueError, match="component: got 'cpu'"):
        ledger.charge("cpu", 1.0)
