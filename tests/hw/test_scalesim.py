"""SCALE-Sim topology CSV and .cfg readers (accelsim.hw.scalesim)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from accelsim.config import ArrayConfig, TechParams
from accelsim.errors import AccelsimError, ConfigError, TopologyError
from accelsim.hw.layer import GemmLayer
from accelsim.hw.scalesim import (
    CALC_DRAM_BANDWIDTH,
    CFG_KEYS,
    ScaleSimCfgInfo,
    read_scalesim_cfg,
    read_topology,
)

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "models" / "topologies"
MEASURED_SMALL_GEMM = ROOT / "tests" / "data" / "scalesim_small_gemm.csv"

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n"
)
GEMM_HEADER = "Layer name, M, N, K,\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_name(layers: list[GemmLayer]) -> dict[str, GemmLayer]:
    return {layer.name: layer for layer in layers}


def assert_one_line(exc: AccelsimError, *parts: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    for part in parts:
        assert part in message, (part, message)


# --------------------------------------------------------------------------- shipped examples


def test_small_gemm_maps_m_n_k_in_scalesim_order():
    layers = read_topology(TOPOLOGIES / "small_gemm.csv", fmt="gemm")
    assert [layer.name for layer in layers] == [
        "g8x8x8",
        "g64x64x64",
        "g100x37x53",
        "g1x8x8",
        "g17x5x3",
        "g33x65x129",
    ]
    g = by_name(layers)["g100x37x53"]
    assert (g.M, g.N, g.K, g.count, g.layer_type) == (100, 37, 53, 1, "gemm")
    assert g.macs == 196100


@pytest.mark.skipif(not MEASURED_SMALL_GEMM.exists(), reason="measured SCALE-Sim rows absent")
def test_small_gemm_matches_scalesim_measured_m_n_k():
    layers = by_name(read_topology(TOPOLOGIES / "small_gemm.csv", fmt="gemm"))
    with MEASURED_SMALL_GEMM.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["topology"] == "small_gemm"]
    assert rows
    for row in rows:
        layer = layers[row["layer"]]
        assert (layer.M, layer.N, layer.K) == (int(row["M"]), int(row["N"]), int(row["K"]))
        assert layer.macs == int(row["macs"])


def test_resnet18_no_padding_convention():
    layers = read_topology(TOPOLOGIES / "resnet18.csv")  # conv is the default format
    assert len(layers) == 21 and all(layer.layer_type == "conv" for layer in layers)
    named = by_name(layers)
    conv1 = named["Conv1"]
    assert (conv1.M, conv1.N, conv1.K) == (110 * 110, 64, 147) == (12100, 64, 147)
    conv2 = named["Conv2_1a"]  # 56x56, 3x3, stride 1, no padding -> 54x54
    assert (conv2.M, conv2.N, conv2.K) == (54 * 54, 64, 3 * 3 * 64)
    down = named["Conv3_1a"]  # 56x56, 3x3, stride 2 -> ceil((56 - 3 + 2) / 2) = 28
    assert down.M == 28 * 28
    fc = named["FC"]
    assert (fc.M, fc.N, fc.K) == (1, 1000, 512)


def test_dit_block_gemms():
    named = by_name(read_topology(TOPOLOGIES / "dit_xl2_gemm.csv", fmt="gemm"))
    expected = {
        "dit_qkv": (256, 3456, 1152),
        "dit_proj": (256, 1152, 1152),
        "dit_fc1": (256, 4608, 1152),
        "dit_fc2": (256, 1152, 4608),
        "dit_attn_scores_1head": (256, 256, 72),
        "dit_attn_v_1head": (256, 72, 256),
    }
    for name, mnk in expected.items():
        layer = named[name]
        assert (layer.M, layer.N, layer.K) == mnk, name


def test_shipped_cfg_round_trip():
    hw, info = read_scalesim_cfg(TOPOLOGIES / "scalesim_32x32_os.cfg")
    assert hw.array == ArrayConfig(32, 32, "os")
    mem = hw.memory
    assert (mem.ifmap_sram_kb, mem.filter_sram_kb, mem.ofmap_sram_kb) == (64.0, 64.0, 64.0)
    assert mem.word_bytes == 1 and mem.sram_words("ifmap") == 64 * 1024
    # CALC mode: SCALE-Sim never stalls, so the DRAM is effectively unlimited.
    assert mem.dram_bandwidth == CALC_DRAM_BANDWIDTH and mem.dram_latency_s == 0.0
    assert isinstance(info, ScaleSimCfgInfo)
    assert info.run_name == "accelsim_32x32_os"
    assert info.interface_bandwidth == "CALC" and not info.user_bandwidth
    assert info.bandwidth == (10,) and info.dram_words_per_cycle is None
    assert (info.ifmap_offset, info.filter_offset, info.ofmap_offset) == (0, 10**7, 2 * 10**7)
    assert info.not_modeled == ()


# --------------------------------------------------------------------------- topology tolerance


def test_tolerant_layout(tmp_path):
    text = (
        "\ufeff\n\n"  # BOM and blank lines before the header
        + CONV_HEADER
        + "  a ,56,56,3,3,64,64,1\r\n"  # no trailing comma, CRLF, spaces
        + "\n"
        + ",,,,,,,,\n"  # spreadsheet-style empty row
        + "b, 56 , 56 , 3 , 3 , 64 , 64 , 1 ,  \n"
        + "c, 56, 56, 3, 3, 64, 64, 1, 2:4,\n"  # N:M sparsity: accepted, ignored
    )
    layers = read_topology(write(tmp_path, "t.csv", text))
    assert [layer.name for layer in layers] == ["a", "b", "c"]
    assert {(layer.M, layer.N, layer.K) for layer in layers} == {(2916, 64, 576)}


def test_gemm_sparsity_field_is_ignored(tmp_path):
    path = write(tmp_path, "g.csv", GEMM_HEADER + "x, 4, 5, 6, 1:1,\n")
    (layer,) = read_topology(path, "gemm")
    assert (layer.M, layer.N, layer.K) == (4, 5, 6)


def test_depthwise_expansion_matches_scalesim(tmp_path):
    # SCALE-Sim turns a 'DP' row into Channels layers of 1 channel with Num Filter unchanged.
    text = CONV_HEADER + "conv_DP1, 112, 112, 3, 3, 32, 1, 1,\nDPwide, 10, 10, 3, 3, 4, 8, 2,\n"
    dw, wide = read_topology(write(tmp_path, "dw.csv", text))
    assert (dw.M, dw.N, dw.K, dw.count) == (110 * 110, 1, 9, 32)
    assert dw.layer_type == "conv" and dw.name == "conv_DP1"
    e = math.ceil((10 - 3 + 2) / 2)
    assert (wide.M, wide.N, wide.K, wide.count) == (e * e, 8, 9, 4)
    # Total MACs equal the sum over SCALE-Sim's 4 expanded layers <name>Channel_<i>.
    assert wide.macs * wide.count == 4 * (e * e * 8 * 9)


def test_depthwise_name_is_case_sensitive_and_conv_only(tmp_path):
    (dense,) = read_topology(
        write(tmp_path, "c.csv", CONV_HEADER + "dp_lower, 8, 8, 3, 3, 4, 1, 1,")
    )
    assert (dense.K, dense.count) == (36, 1)
    (gemm,) = read_topology(write(tmp_path, "g.csv", GEMM_HEADER + "DP_gemm, 4, 5, 6,"), "gemm")
    assert gemm.count == 1


# --------------------------------------------------------------------------- topology errors


@pytest.mark.parametrize(
    ("fmt", "body", "line", "fragment"),
    [
        ("conv", "L, 56, 56, 3, 3, 64, 64,\n", 2, "got 7 fields, expected 8"),
        ("conv", "L, 56, 56, 3, 3, 64, 64, 1, 2:4, 9,\n", 2, "got 10 fields"),
        ("conv", "L, 8, 8, 4,\n", 2, "fmt='gemm'"),
        ("gemm", "L, 56, 56, 3, 3, 64, 64, 1,\n", 2, "fmt='conv'"),
        ("conv", "L, 56, 56, abc, 3, 64, 64, 1,\n", 2, "column 'Filter Height': got 'abc'"),
        ("conv", "L, 56, 56, 3, 3, 64, 64, 1.5,\n", 2, "column 'Strides': got '1.5'"),
        ("conv", "L, 56, 56, 3, 3, 0, 64, 1,\n", 2, "column 'Channels': got '0', expected an"),
        ("conv", "ok, 8, 8, 1, 1, 1, 1, 1,\nL, 56, -5, 3, 3, 64, 64, 1,\n", 3, "'IFMAP Width'"),
        ("conv", "L, 5, 5, 7, 3, 1, 1, 1,\n", 2, "'Filter Height': got 7, expected at most"),
        ("conv", "L, 5, 5, 3, 9, 1, 1, 1,\n", 2, "'Filter Width': got 9"),
        ("conv", ", 5, 5, 3, 3, 1, 1, 1,\n", 2, "column 'Layer name': got ''"),
        ("conv", "L, 5, 5, 3, 3, 1, 1, 1, 4:2,\n", 2, "'Sparsity N:M': got '4:2'"),
        ("gemm", "L, 4, 5, 6, dense,\n", 2, "'Sparsity N:M': got 'dense'"),
        ("gemm", "L, 4, 0, 6,\n", 2, "column 'N': got '0', expected an integer >= 1"),
        ("gemm", "L, 4, 5, K,\n", 2, "column 'K': got 'K'"),
    ],
)
def test_malformed_topology_rows(tmp_path, fmt, body, line, fragment):
    header = CONV_HEADER if fmt == "conv" else GEMM_HEADER
    path = write(tmp_path, "bad_topo.csv", header + body)
    with pytest.raises(TopologyError) as info:
        read_topology(path, fmt)
    assert_one_line(info.value, f"bad_topo.csv:{line}: ", fragment)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "has no rows at all"),
        ("\n  \n", "has no rows at all"),
        (CONV_HEADER, "has a header row but no layer rows"),
        (CONV_HEADER + "\n,,,\n", "no layer rows"),
    ],
)
def test_empty_topology(tmp_path, text, fragment):
    with pytest.raises(TopologyError) as info:
        read_topology(write(tmp_path, "empty.csv", text))
    assert_one_line(info.value, "empty.csv", fragment)


def test_missing_header_is_reported(tmp_path):
    path = write(tmp_path, "nohead.csv", "Conv1, 224, 224, 7, 7, 3, 64, 2,\n")
    with pytest.raises(TopologyError) as info:
        read_topology(path)
    assert_one_line(info.value, "nohead.csv:1: ", "expected a header row", "'Conv1'")


def test_unreadable_topology(tmp_path):
    with pytest.raises(TopologyError) as info:
        read_topology(tmp_path / "nope.csv")
    assert_one_line(info.value, "nope.csv", "file not found")
    with pytest.raises(TopologyError) as info:
        read_topology(tmp_path)
    assert_one_line(info.value, str(tmp_path), "directory")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"Layer\n\xff\xfe, 1, 2, 3,\n")
    with pytest.raises(TopologyError) as info:
        read_topology(binary, "gemm")
    assert_one_line(info.value, "bin.csv", "not UTF-8")


def test_bad_format_argument(tmp_path):
    with pytest.raises(TopologyError, match=r"^topology format: got 'csv', expected"):
        read_topology(TOPOLOGIES / "small_gemm.csv", "csv")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- .cfg

MINIMAL_CFG = """\
[architecture_presets]
ArrayHeight: 8
ArrayWidth: 16
IfmapSramSzkB: 64
FilterSramSzkB: 32
OfmapSramSzkB: 16
Dataflow: ws
"""

# SCALE-Sim's own configs/scale.cfg layout (3.0.0), USER mode.
USER_CFG = """\
[general]
run_name = scale_example_run_32x32_ws

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : os
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 20
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 16
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""


def test_minimal_cfg_defaults(tmp_path):
    hw, info = read_scalesim_cfg(write(tmp_path, "min.cfg", MINIMAL_CFG))
    assert hw.array == ArrayConfig(8, 16, "ws")
    assert (hw.memory.ifmap_sram_kb, hw.memory.filter_sram_kb, hw.memory.ofmap_sram_kb) == (
        64.0,
        32.0,
        16.0,
    )
    assert info.run_name == "scale_run" and info.interface_bandwidth == "CALC"
    assert info.bandwidth == () and info.ofmap_dram_words_per_cycle is None
    assert (info.ifmap_dram_words_per_cycle, info.filter_dram_words_per_cycle) == (10, 10)
    assert hw.memory.dram_bandwidth == CALC_DRAM_BANDWIDTH


def test_user_mode_bandwidth_mapping(tmp_path):
    path = write(tmp_path, "user.cfg", USER_CFG)
    hw, info = read_scalesim_cfg(path)
    assert info.user_bandwidth and info.run_name == "scale_example_run_32x32_ws"
    assert (info.ifmap_dram_words_per_cycle, info.filter_dram_words_per_cycle) == (20, 16)
    assert info.ofmap_dram_words_per_cycle == 10 and info.dram_words_per_cycle == 16
    assert (info.read_request_buffer, info.write_request_buffer) == (32, 32)
    # min(ifmap, filter) words/cycle x 1 byte/word x fnom
    assert hw.memory.dram_bandwidth == pytest.approx(16 * hw.tech.fnom)
    assert hw.memory.dram_latency_s == pytest.approx(1.0 / hw.tech.fnom)
    tech = TechParams(fnom=2e9)
    hw2, _ = read_scalesim_cfg(path, tech=tech)
    assert hw2.tech is tech and hw2.memory.dram_bandwidth == pytest.approx(32e9)


def test_user_mode_without_layout_uses_scalesim_defaults(tmp_path):
    text = MINIMAL_CFG + "Bandwidth: 4, 8\n[run_presets]\nInterfaceBandwidth: USER\n"
    hw, info = read_scalesim_cfg(write(tmp_path, "u.cfg", text))
    assert info.bandwidth == (4, 8) and info.ofmap_dram_words_per_cycle == 4
    assert info.dram_words_per_cycle == 10
    assert hw.memory.dram_bandwidth == pytest.approx(10 * hw.tech.fnom)


def test_cfg_keys_are_case_insensitive_and_equals_works(tmp_path):
    text = MINIMAL_CFG.replace("ArrayHeight: 8", "arrayheight = 4").replace("Dataflow", "DATAFLOW")
    hw, _ = read_scalesim_cfg(write(tmp_path, "case.cfg", text))
    assert hw.array == ArrayConfig(4, 16, "ws")


def test_cfg_records_unmodeled_settings(tmp_path):
    text = (
        MINIMAL_CFG
        + "[layout]\nIfmapCustomLayout: True\n"
        + "[sparsity]\nSparsitySupport: TRUE\n"
        + "[run_presets]\nUseRamulatorTrace: yes\n"
        + '[network_presets]\nTopologyCsvLoc = "./topologies/conv_nets/Resnet18.csv"\n'
    )
    _, info = read_scalesim_cfg(write(tmp_path, "flags.cfg", text))
    assert info.ifmap_custom_layout and info.sparsity_support and info.use_ramulator_trace
    assert len(info.not_modeled) == 3
    assert info.topology == "./topologies/conv_nets/Resnet18.csv"


def test_cfg_key_list_matches_reference():
    assert set(CFG_KEYS) == {
        "general",
        "architecture_presets",
        "layout",
        "sparsity",
        "run_presets",
        "network_presets",
    }
    assert "IfmapSRAMBankBandwidth" in CFG_KEYS["layout"]
    assert "InterfaceBandwidth" in CFG_KEYS["run_presets"]


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        (
            "ArrayHeight: 8",
            "ArrayHeight: 0",
            (
                ":2: ",
                "architecture_presets.ArrayHeight: got '0', expected an integer in [1, 65536]",
            ),
        ),
        (
            "ArrayWidth: 16",
            "ArrayWidth: 1e3",
            (":3: ", "architecture_presets.ArrayWidth: got '1e3'"),
        ),
        (
            "Dataflow: ws",
            "Dataflow: xyz",
            (":7: ", "Dataflow: got 'xyz', expected one of os, ws, is"),
        ),
        ("Dataflow: ws", "Dataflow: WS", ("architecture_presets.Dataflow: got 'WS'",)),
        ("IfmapSramSzkB: 64", "IfmapSramSzkB: 64.5", ("architecture_presets.IfmapSramSzkB",)),
        ("OfmapSramSzkB: 16", "OfmapSramSzkB:", ("OfmapSramSzkB: got ''",)),
        (
            "ArrayWidth: 16",
            "ArrayWidth: 16\nArrayHieght: 8",
            (":4: ", "architecture_presets.ArrayHieght: unknown key (did you mean 'ArrayHeight'?)"),
        ),
        (
            "OfmapSramSzkB: 16",
            "OfmapSramSzkB: 16\nIfmapSramSz: 8",
            ("IfmapSramSz: unknown key (did you mean 'IfmapSramSzkB'?)",),
        ),
        ("Dataflow: ws\n", "", ("architecture_presets.Dataflow: missing",)),
        (
            "[architecture_presets]",
            "[architecture_preset]",
            (
                ":1: ",
                "[architecture_preset]: unknown section (did you mean [architecture_presets]?)",
            ),
        ),
        ("ArrayHeight: 8", "ArrayHeight: 8\narrayHEIGHT: 8", (":3: ", "arrayHEIGHT", "duplicate")),
        ("ArrayHeight: 8", "ArrayHeight: 8\nArrayHeight: 9", (":3: ", "duplicate key")),
        ("ArrayHeight: 8", "ArrayHeight", (":2: ", "cannot parse 'ArrayHeight', expected")),
        ("ArrayHeight: 8", "ArrayHeight: 8  # rows", ("got '8  # rows'", "inline comments")),
        ("[architecture_presets]\n", "", (":1: ", "before any [section] header")),
        ("[architecture_presets]", "[DEFAULT]\nrun_name = x\n[architecture_presets]", ("DEFAULT",)),
    ],
)
def test_malformed_cfg(tmp_path, old, new, fragments):
    assert old in MINIMAL_CFG
    path = write(tmp_path, "bad_arch.cfg", MINIMAL_CFG.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        read_scalesim_cfg(path)
    assert_one_line(info.value, "bad_arch.cfg", *fragments)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("[run_presets]\nInterfaceBandwidth: user\n", "run_presets.InterfaceBandwidth: got 'user'"),
        ("[run_presets]\nInterfaceBandwidth: USER\n", "architecture_presets.Bandwidth: missing"),
        ("[run_presets]\nUseRamulatorTrace: maybe\n", "UseRamulatorTrace: got 'maybe', expected a"),
        ("[layout]\nIfmapSRAMBankBandwidth: 0\n", "layout.IfmapSRAMBankBandwidth: got '0'"),
        ("[layout]\nIfmapSRAMBankWidth: 10\n", "(did you mean 'IfmapSRAMBankBandwidth'?)"),
        ("[sparsity]\nBlockSize: -1\n", "sparsity.BlockSize: got '-1'"),
        ("[general]\nrun_name = x\nTopologyCsvLoc = a.csv\n", "general.TopologyCsvLoc: unknown"),
    ],
)
def test_malformed_cfg_other_sections(tmp_path, extra, fragment):
    path = write(tmp_path, "bad_other.cfg", MINIMAL_CFG + extra)
    with pytest.raises(ConfigError) as info:
        read_scalesim_cfg(path)
    assert_one_line(info.value, "bad_other.cfg:", fragment)


def test_bad_bandwidth_list(tmp_path):
    path = write(tmp_path, "bw.cfg", MINIMAL_CFG + "Bandwidth: 10, x\n")
    with pytest.raises(ConfigError) as info:
        read_scalesim_cfg(path)
    assert_one_line(info.value, "bw.cfg:8: ", "architecture_presets.Bandwidth: got '10, x'")


def test_missing_cfg_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_scalesim_cfg(tmp_path / "absent.cfg")
    assert_one_line(info.value, "absent.cfg", "file not found")


def test_huge_user_bandwidth_is_a_one_line_error(tmp_path):
    text = (
        MINIMAL_CFG
        + "Bandwidth: 10\n[layout]\nIfmapSRAMBankBandwidth: 1000000\n"
        + "FilterSRAMBankBandwidth: 1000000\n[run_presets]\nInterfaceBandwidth: USER\n"
    )
    path = write(tmp_path, "huge.cfg", text)
    with pytest.raises(ConfigError) as info:
        read_scalesim_cfg(path, tech=TechParams(fnom=1e10))
    assert_one_line(info.value, "huge.cfg", "memory.dram_bandwidth")
