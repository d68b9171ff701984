"""Mapping model vs SCALE-Sim v3: cycles, utilizations and SRAM counts (scalesim.md section 4)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config import ArrayConfig
from accelsim.errors import ShapeError
from accelsim.hw.mapping import Mapping, map_gemm, map_gemms

CSV_PATH = Path(__file__).resolve().parent.parent / "data" / "scalesim_small_gemm.csv"
ROWS = list(csv.DictReader(CSV_PATH.open()))
# The CSV prints percentages with 4 decimals.
PCT_TOL = 0.5e-4 + 1e-9


def _row_id(row: dict[str, str]) -> str:
    return f"{row['layer']}-{row['dataflow']}-{row['array_h']}x{row['array_w']}-{row['bw_mode']}"


def _map_row(row: dict[str, str]) -> Mapping:
    array = ArrayConfig(int(row["array_h"]), int(row["array_w"]), row["dataflow"])  # type: ignore[arg-type]
    return map_gemm(int(row["M"]), int(row["N"]), int(row["K"]), array)


def test_csv_covers_all_dataflows_arrays_and_modes():
    assert len(ROWS) == 108
    assert {r["dataflow"] for r in ROWS} == {"os", "ws", "is"}
    assert {r["array_h"] for r in ROWS} == {"8", "32", "128"}
    assert {r["bw_mode"] for r in ROWS} == {"CALC", "USER"}


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matches_scalesim_row(row):
    m = _map_row(row)
    # compute_cycles = Total Cycles - stall cycles (USER rows: compute without stalls).
    assert int(row["total_cycles"]) - int(row["stall_cycles"]) == int(row["compute_cycles"])
    assert m.compute_cycles == int(row["compute_cycles"])
    if row["bw_mode"] == "CALC":
        assert m.compute_cycles == int(row["total_cycles"])
    assert m.macs == int(row["macs"])
    assert abs(100 * m.mapping_efficiency - float(row["mapping_eff_pct"])) <= PCT_TOL
    assert abs(100 * m.compute_utilization - float(row["compute_util_pct"])) <= PCT_TOL
    overall = 100 * m.macs / (int(row["total_cycles"]) * m.pes)
    assert abs(overall - float(row["util_pct"])) <= PCT_TOL
    if int(row["stall_cycles"]) == 0:
        assert abs(100 * m.overall_utilization - float(row["util_pct"])) <= PCT_TOL
    # The docstring claims these three SRAM counts equal SCALE-Sim's exactly.
    assert m.sram_ifmap_reads == int(row["sram_ifmap_reads"])
    assert m.sram_filter_reads == int(row["sram_filter_reads"])
    assert m.sram_ofmap_writes == int(row["sram_ofmap_writes"])


# scalesim.md section 4, hand-check table: (df, R, C, M, N, K, folds, per_fold, cycles).
HAND_CHECKS = [
    ("g8x8x8", "os", 8, 8, 8, 8, 8, 1, 22, 21),
    ("g100x37x53", "os", 8, 8, 100, 37, 53, 65, 67, 4354),
    ("g100x37x53", "ws", 32, 32, 100, 37, 53, 4, 194, 775),
    ("dit_attn_scores_1head", "ws", 8, 8, 256, 256, 72, 288, 278, 80063),
    ("dit_attn_v_1head", "is", 8, 8, 256, 72, 256, 1024, 94, 96255),
    ("resnet18_conv1", "os", 128, 128, 12100, 64, 147, 95, 401, 38094),
]


@pytest.mark.parametrize(
    ("name", "df", "rows", "cols", "M", "N", "K", "folds", "per_fold", "cycles"),
    HAND_CHECKS,
    ids=[f"{h[0]}-{h[1]}{h[2]}" for h in HAND_CHECKS],
)
def test_scalesim_hand_checks(name, df, rows, cols, M, N, K, folds, per_fold, cycles):
    m = map_gemm(M, N, K, ArrayConfig(rows, cols, df))
    assert m.folds == folds
    assert m.cycles_per_fold == per_fold
    assert m.compute_cycles == cycles == folds * per_fold - 1


def test_hand_check_mapping_efficiency_ws_32():
    m = map_gemm(100, 37, 53, ArrayConfig(32, 32, "ws"))
    assert (m.Sr, m.Sc, m.T) == (53, 37, 100)
    assert m.mapping_efficiency == pytest.approx(53 * 37 / (4 * 1024))
    assert round(100 * m.mapping_efficiency, 2) == 47.88


def test_dataflow_dimension_assignment():
    assert (lambda m: (m.Sr, m.Sc, m.T))(map_gemm(3, 5, 7, ArrayConfig(4, 4, "os"))) == (3, 5, 7)
    assert (lambda m: (m.Sr, m.Sc, m.T))(map_gemm(3, 5, 7, ArrayConfig(4, 4, "ws"))) == (7, 5, 3)
    assert (lambda m: (m.Sr, m.Sc, m.T))(map_gemm(3, 5, 7, ArrayConfig(4, 4, "is"))) == (7, 3, 5)


def test_one_by_one_os_array_is_clamped_to_macs():
    # SCALE-Sim's -1 would give MACs - 1 cycles on a single PE; we clamp to MACs.
    m = map_gemm(2, 3, 4, ArrayConfig(1, 1, "os"))
    assert m.compute_cycles == 24
    assert m.overall_utilization == 1.0
    assert map_gemm(1, 1, 1, ArrayConfig(1, 1, "os")).compute_cycles == 1


def test_partial_sum_read_back_model():
    m = map_gemm(10, 20, 100, ArrayConfig(8, 8, "ws"))
    assert m.row_folds == 13
    assert m.sram_ofmap_reads == 10 * 20 * 12
    assert map_gemm(10, 20, 100, ArrayConfig(8, 8, "os")).sram_ofmap_reads == 0


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_overlap_folds(df):
    array = ArrayConfig(16, 8, df)
    serial = map_gemm(100, 60, 30, array)
    overlap = map_gemm(100, 60, 30, array, overlap_folds=True)
    assert overlap.fold_interval == max(serial.T, 16)
    assert (
        overlap.compute_cycles
        == (serial.folds - 1) * max(serial.T, 16) + serial.cycles_per_fold - 1
    )
    assert overlap.compute_cycles < serial.compute_cycles
    assert overlap.compute_utilization == serial.compute_utilization
    one_fold = map_gemm(4, 4, 4, ArrayConfig(8, 8, df), overlap_folds=True)
    assert one_fold.compute_cycles == map_gemm(4, 4, 4, ArrayConfig(8, 8, df)).compute_cycles


def test_map_gemm_is_cached_and_frozen():
    array = ArrayConfig(8, 8, "ws")
    m = map_gemm(64, 64, 64, array)
    assert map_gemm(64, 64, 64, ArrayConfig(8, 8, "ws")) is m
    with pytest.raises(AttributeError):
        m.M = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("M", "N", "K", "match"),
    [
        (0, 8, 8, r"^GEMM M: got 0, expected an integer >= 1$"),
        (8, -3, 8, r"^GEMM N: got -3, expected an integer >= 1$"),
        (8, 8, 2.5, r"^GEMM K: got 2\.5, expected an integer >= 1$"),
        (8, 8, 8.0, r"^GEMM K: got 8\.0, expected an integer >= 1$"),
        (True, 8, 8, r"^GEMM M: got True, expected an integer >= 1$"),
        ("8", 8, 8, r"^GEMM M: got '8', expected an integer >= 1$"),
        (8, None, 8, r"^GEMM N: got None, expected an integer >= 1$"),
    ],
)
def test_invalid_shapes_raise_one_line_shape_error(M, N, K, match):
    with pytest.raises(ShapeError, match=match) as info:
        map_gemm(M, N, K, ArrayConfig(8, 8, "os"))
    assert "\n" not in str(info.value)


def test_numpy_integers_are_accepted():
    m = map_gemm(np.int64(8), np.int32(8), np.uint16(8), ArrayConfig(8, 8, "os"))
    assert m.compute_cycles == 21
    assert type(m.M) is int


def test_map_gemms_matches_scalar():
    rng = np.random.default_rng(0)
    M, N, K = (rng.integers(1, 3000, size=300) for _ in range(3))
    fields = [
        "Sr", "Sc", "T", "row_folds", "col_folds", "folds", "cycles_per_fold", "fold_interval",
        "compute_cycles", "macs", "sram_ifmap_reads", "sram_filter_reads",
        "sram_ofmap_writes", "sram_ofmap_reads",
    ]  # fmt: skip
    ratios = ["mapping_efficiency", "compute_utilization", "overall_utilization"]
    for df in ("os", "ws", "is"):
        for overlap in (False, True):
            array = ArrayConfig(32, 16, df)
            batch = map_gemms(M, N, K, array, overlap_folds=overlap)
            assert len(batch) == 300
            for i in range(300):
                m = map_gemm(int(M[i]), int(N[i]), int(K[i]), array, overlap_folds=overlap)
                for f in fields:
                    assert int(getattr(batch, f)[i]) == getattr(m, f), f
                for f in ratios:
                    assert float(getattr(batch, f)[i]) == pytest.approx(getattr(m, f), rel=1e-12)
            assert batch.row(7) == map_gemm(
                int(M[7]), int(N[7]), int(K[7]), array, overlap_folds=overlap
            )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1, 0], [1, 1], [1, 1]), r"^GEMM M: got 0, expected an integer >= 1$"),
        (([1, 2], [1], [1, 1]), r"^GEMM sizes: got arrays of lengths 2, 1, 2"),
        (([1.5], [1], [1]), r"^GEMM M: got 1\.5, expected an integer >= 1$"),
        (([[1]], [1], [1]), r"^GEMM M: got an array of shape \(1, 1\), expected a 1-D array$"),
        ((["a"], [1], [1]), r"^GEMM M: got dtype <U1, expected integers >= 1$"),
        (([2**30], [2**30], [2**30]), r"^GEMM M\*N\*K: got more than 2\*\*60"),
    ],
)
def test_map_gemms_invalid(args, match):
    M, N, K = args
    with pytest.raises(ShapeError, match=match):
        map_gemms(M, N, K, ArrayConfig(8, 8, "os"))


def test_map_gemms_accepts_integral_floats_and_scalars():
    batch = map_gemms([64.0], 64, np.array([64]), ArrayConfig(8, 8, "os"))
    assert batch.compute_cycles.tolist() == [4991]


dims = st.integers(1, 5000)
arrays = st.builds(
    ArrayConfig,
    rows=st.integers(1, 256),
    cols=st.integers(1, 256),
    dataflow=st.sampled_from(["os", "ws", "is"]),
)


@settings(max_examples=200, deadline=None)
@given(M=dims, N=dims, K=dims, array=arrays, overlap=st.booleans())
def test_mapping_properties(M, N, K, array, overlap):
    m = map_gemm(M, N, K, array, overlap_folds=overlap)
    pes = array.rows * array.cols
    assert m.macs == M * N * K
    assert m.compute_cycles >= math.ceil(m.macs / pes)
    assert 0 < m.mapping_efficiency <= 1
    assert 0 < m.compute_utilization <= 1
    assert 0 < m.overall_utilization <= 1
    assert m.compute_utilization <= m.mapping_efficiency
    assert m.folds == m.row_folds * m.col_folds
    assert m.sram_ifmap_reads >= M * K
    assert m.sram_filter_reads >= K * N
    assert m.sram_ofmap_writes >= M * N
    assert m.sram_ofmap_reads >= 0
    serial = map_gemm(M, N, K, array)
    assert m.compute_cycles <= serial.compute_cycles
    if not (array.dataflow == "os" and pes == 1):
        assert serial.compute_cycles == serial.folds * serial.cycles_per_fold - 1
