"""DRAM traffic and layer timing: SCALE-Sim CALC counts, residency, stalls in seconds."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config import ArrayConfig, MemoryConfig
from accelsim.errors import ConfigError
from accelsim.hw.mapping import map_gemm
from accelsim.hw.memory import LayerTiming, Traffic, dram_traffic, layer_timing

CSV_PATH = Path(__file__).resolve().parent.parent / "data" / "scalesim_small_gemm.csv"
CALC_ROWS = [r for r in csv.DictReader(CSV_PATH.open()) if r["bw_mode"] == "CALC"]
# SCALE-Sim write-buffer artefact (padding of partial lines counted): see memory.py docstring.
OFMAP_QUIRK_ROWS = {("g33x65x129", "ws", "8"), ("g33x65x129", "is", "8")}


def _row_id(row: dict[str, str]) -> str:
    return f"{row['layer']}-{row['dataflow']}-{row['array_h']}x{row['array_w']}"


def _traffic_for_row(row: dict[str, str], compat: bool) -> Traffic:
    array = ArrayConfig(int(row["array_h"]), int(row["array_w"]), row["dataflow"])  # type: ignore[arg-type]
    mapping = map_gemm(int(row["M"]), int(row["N"]), int(row["K"]), array)
    memory = MemoryConfig(
        ifmap_sram_kb=float(row["ifmap_sram_kb"]),
        filter_sram_kb=float(row["filter_sram_kb"]),
        ofmap_sram_kb=float(row["ofmap_sram_kb"]),
        word_bytes=1,
    )
    return dram_traffic(mapping, memory, scalesim_compat=compat)


def test_calc_rows_present():
    assert len(CALC_ROWS) == 54


@pytest.mark.parametrize("row", CALC_ROWS, ids=_row_id)
def test_dram_counts_vs_scalesim_calc(row):
    key = (row["layer"], row["dataflow"], row["array_h"])
    compat = _traffic_for_row(row, compat=True)
    default = _traffic_for_row(row, compat=False)
    for t in (compat, default):
        assert t.dram_ifmap_reads == int(row["dram_ifmap_reads"])
        assert t.dram_filter_reads == int(row["dram_filter_reads"])
        assert t.sram_ifmap_reads == int(row["sram_ifmap_reads"])
        assert t.sram_filter_reads == int(row["sram_filter_reads"])
        assert t.sram_ofmap_writes == int(row["sram_ofmap_writes"])
    sim = int(row["dram_ofmap_writes"])
    if key in OFMAP_QUIRK_ROWS:
        assert 0 < sim - compat.dram_ofmap_writes < int(row["array_w"])
    else:
        assert compat.dram_ofmap_writes == sim
    M, N = int(row["M"]), int(row["N"])
    # Default mode: partial sums stay in the (large enough) ofmap SRAM, outputs written once;
    # this equals SCALE-Sim whenever there are no partial sums (os, or one row fold).
    assert default.dram_ofmap_writes == M * N
    assert default.dram_ofmap_reads == 0
    assert not default.psum_spill
    if row["dataflow"] == "os" or _row_folds(row) == 1:
        assert default.dram_ofmap_writes == sim


def _row_folds(row: dict[str, str]) -> int:
    array = ArrayConfig(int(row["array_h"]), int(row["array_w"]), row["dataflow"])  # type: ignore[arg-type]
    return map_gemm(int(row["M"]), int(row["N"]), int(row["K"]), array).row_folds


def test_documented_match_counts():
    # The numbers quoted in the memory.py docstring.
    compat = default = 0
    for row in CALC_ROWS:
        sim = int(row["dram_ofmap_writes"])
        compat += _traffic_for_row(row, compat=True).dram_ofmap_writes == sim
        default += _traffic_for_row(row, compat=False).dram_ofmap_writes == sim
    assert (compat, default) == (52, 40)


def test_ifmap_refetched_per_column_fold_when_it_does_not_fit():
    # scalesim.md section 5: DiT fc1 os 32x32, DRAM ifmap reads = SRAM ifmap reads = 42.5 M.
    mapping = map_gemm(256, 4608, 1152, ArrayConfig(32, 32, "os"))
    small = dram_traffic(mapping, MemoryConfig(64, 64, 64, word_bytes=1))
    assert small.dram_ifmap_reads == mapping.sram_ifmap_reads == 256 * 1152 * 144
    assert small.ifmap_passes == 144
    big = dram_traffic(mapping, MemoryConfig(8192, 8192, 4096, word_bytes=1))
    assert big.dram_ifmap_reads == 256 * 1152
    assert big.ifmap_passes == 1


def test_os_filter_block_residency():
    array = ArrayConfig(32, 32, "os")
    mapping = map_gemm(256, 4608, 1152, array)  # filter block K*C = 36864 words
    fits = dram_traffic(mapping, MemoryConfig(64, 80, 64, word_bytes=1))  # half = 40960
    assert fits.filter_passes == 1
    assert fits.dram_filter_reads == 1152 * 4608
    spills = dram_traffic(mapping, MemoryConfig(64, 64, 64, word_bytes=1))  # half = 32768
    assert spills.filter_passes == mapping.row_folds == 8
    assert spills.dram_filter_reads == mapping.sram_filter_reads


@pytest.mark.parametrize("df", ["ws", "is"])
def test_partial_sums_spill_when_ofmap_sram_too_small(df):
    mapping = map_gemm(512, 256, 1024, ArrayConfig(32, 32, df))
    rf = mapping.row_folds
    assert rf == 32
    roomy = dram_traffic(mapping, MemoryConfig(64, 64, 1024, word_bytes=1))
    assert not roomy.psum_spill
    assert (roomy.dram_ofmap_writes, roomy.dram_ofmap_reads) == (512 * 256, 0)
    tight = dram_traffic(mapping, MemoryConfig(64, 64, 8, word_bytes=1))
    assert tight.psum_spill
    assert tight.dram_ofmap_writes == 512 * 256 * rf
    assert tight.dram_ofmap_reads == 512 * 256 * (rf - 1)
    compat = dram_traffic(mapping, MemoryConfig(64, 64, 1024, word_bytes=1), scalesim_compat=True)
    assert (compat.dram_ofmap_writes, compat.dram_ofmap_reads) == (512 * 256 * rf, 0)


def test_word_bytes_scale_bytes_not_words():
    mapping = map_gemm(100, 200, 300, ArrayConfig(16, 16, "ws"))
    one = dram_traffic(mapping, MemoryConfig(512, 512, 512, word_bytes=1))
    two = dram_traffic(mapping, MemoryConfig(1024, 1024, 1024, word_bytes=2))
    assert two.dram_words == one.dram_words
    assert two.dram_bytes == 2 * one.dram_bytes == 2 * one.dram_words
    assert two.fill_bytes == 2 * one.fill_bytes


def test_single_fold_layer_is_load_compute_drain():
    mem = MemoryConfig(64, 64, 64, word_bytes=1, dram_bandwidth=1e9, dram_latency_s=1e-7)
    mapping = map_gemm(8, 8, 8, ArrayConfig(8, 8, "os"))
    traffic = dram_traffic(mapping, mem)
    assert traffic.fill_bytes + traffic.drain_bytes == traffic.dram_bytes == 64 * 3
    t = layer_timing(mapping, traffic, mem, 1e9)
    assert t.stall_s == 0.0
    assert t.stall_cycles == 0
    assert t.fill_s == pytest.approx(1e-7 + 192 / 1e9)
    assert t.total_s == pytest.approx(21e-9 + 1e-7 + 192e-9)


def test_memory_bound_layer_gains_nothing_from_overclocking():
    # M=1 against a 4096x4096 weight matrix on a 1 GB/s DRAM: DRAM-bound.
    mem = MemoryConfig(word_bytes=1, dram_bandwidth=1e9, dram_latency_s=100e-9)
    mapping = map_gemm(1, 4096, 4096, ArrayConfig(128, 128, "ws"))
    traffic = dram_traffic(mapping, mem)
    t1 = layer_timing(mapping, traffic, mem, 1e9)
    t2 = layer_timing(mapping, traffic, mem, 2e9)
    assert t1.memory_bound and t2.memory_bound
    assert t2.compute_s == pytest.approx(t1.compute_s / 2)
    assert t2.total_s == pytest.approx(t1.total_s, rel=0.01)
    assert t1.total_s == pytest.approx(t1.dram_s)
    assert t2.dram_s == t1.dram_s
    assert t2.stall_cycles > 0


def test_compute_bound_layer_halves_with_double_clock():
    mem = MemoryConfig(word_bytes=1, dram_bandwidth=600e9, dram_latency_s=100e-9)
    mapping = map_gemm(1024, 1024, 1024, ArrayConfig(128, 128, "ws"))
    traffic = dram_traffic(mapping, mem)
    t1 = layer_timing(mapping, traffic, mem, 1e9)
    t2 = layer_timing(mapping, traffic, mem, 2e9)
    assert not t1.memory_bound and not t2.memory_bound
    assert (t1.stall_s, t1.stall_cycles) == (0.0, 0)
    assert t2.total_s / t1.total_s == pytest.approx(0.5, abs=0.02)


def test_timing_fields_are_consistent():
    mem = MemoryConfig(32, 32, 32, word_bytes=2, dram_bandwidth=20e9, dram_latency_s=50e-9)
    mapping = map_gemm(3000, 700, 900, ArrayConfig(32, 32, "os"))
    traffic = dram_traffic(mapping, mem)
    t = layer_timing(mapping, traffic, mem, 1.5e9)
    assert isinstance(t, LayerTiming)
    assert t.compute_cycles == mapping.compute_cycles
    assert t.compute_s == pytest.approx(mapping.compute_cycles / 1.5e9)
    assert t.total_s == pytest.approx(t.compute_s + t.fill_s + t.stall_s)
    assert t.stall_cycles == math.ceil(t.stall_s * 1.5e9)
    assert t.dram_s == pytest.approx(50e-9 + traffic.dram_bytes / 20e9)


@pytest.mark.parametrize("freq", [0, -1.0, float("nan"), float("inf"), "1e9", None])
def test_invalid_frequency_raises_config_error(freq):
    mem = MemoryConfig()
    mapping = map_gemm(8, 8, 8, ArrayConfig(8, 8, "os"))
    with pytest.raises(ConfigError, match=r"^freq_hz: got .*, expected a number > 0 Hz") as info:
        layer_timing(mapping, dram_traffic(mapping, mem), mem, freq)
    assert "\n" not in str(info.value)


dims = st.integers(1, 5000)
arrays = st.builds(
    ArrayConfig,
    rows=st.integers(1, 256),
    cols=st.integers(1, 256),
    dataflow=st.sampled_from(["os", "ws", "is"]),
)
memories = st.builds(
    MemoryConfig,
    ifmap_sram_kb=st.sampled_from([1.0, 8.0, 64.0, 512.0, 8192.0]),
    filter_sram_kb=st.sampled_from([1.0, 8.0, 64.0, 512.0, 8192.0]),
    ofmap_sram_kb=st.sampled_from([1.0, 8.0, 64.0, 512.0, 4096.0]),
    word_bytes=st.sampled_from([1, 2, 4]),
    dram_bandwidth=st.floats(1e8, 2e12),
    dram_latency_s=st.floats(0.0, 1e-6),
)


@settings(max_examples=200, deadline=None)
@given(
    M=dims,
    N=dims,
    K=dims,
    array=arrays,
    memory=memories,
    freq=st.floats(1e8, 5e9),
    overlap=st.booleans(),
    compat=st.booleans(),
)
def test_traffic_and_timing_properties(M, N, K, array, memory, freq, overlap, compat):
    mapping = map_gemm(M, N, K, array, overlap_folds=overlap)
    traffic = dram_traffic(mapping, memory, scalesim_compat=compat)
    assert traffic.dram_ifmap_reads >= M * K
    assert traffic.dram_filter_reads >= K * N
    assert traffic.dram_ofmap_writes >= M * N
    assert traffic.dram_ifmap_reads <= max(M * K, mapping.sram_ifmap_reads)
    assert traffic.dram_filter_reads <= max(K * N, mapping.sram_filter_reads)
    assert traffic.dram_bytes == traffic.dram_words * memory.word_bytes
    assert traffic.dram_bytes >= (M * K + K * N + M * N) * memory.word_bytes
    assert 0 < traffic.fill_bytes + traffic.drain_bytes <= traffic.dram_bytes
    t = layer_timing(mapping, traffic, memory, freq)
    assert t.stall_s >= 0.0
    assert t.stall_cycles >= 0
    assert t.fill_s >= memory.dram_latency_s
    assert t.total_s >= t.compute_s
    assert t.total_s >= t.dram_s * (1 - 1e-12)
    assert t.total_s == pytest.approx(t.compute_s + t.fill_s + t.stall_s, rel=1e-12)
