"""Configuration dataclasses, TOML loading and their one-line errors."""

from __future__ import annotations

import tomllib

import pytest

from accelsim.config import (
    ArrayConfig,
    MemoryConfig,
    OperatingPoint,
    TechParams,
    default_tech,
    hardware_from_dict,
    load_calib_params,
    load_hardware,
    load_preset,
    preset_names,
)
from accelsim.errors import ConfigError


def test_presets_ship_and_load():
    names = preset_names()
    assert {"tpu-128x128", "array-32x32", "edge-8x8"} <= set(names)
    tpu = load_preset("tpu-128x128")
    assert (tpu.array.rows, tpu.array.cols, tpu.array.dataflow) == (128, 128, "ws")
    assert tpu.memory.dram_bandwidth == pytest.approx(614e9)
    edge = load_preset("edge-8x8")
    assert (edge.array.rows, edge.array.cols) == (8, 8)
    assert load_preset("array-32x32").array.pes == 1024


def test_unknown_preset():
    with pytest.raises(ConfigError, match=r"preset: got 'tpu', expected one of .*tpu-128x128"):
        load_preset("tpu")


def test_calib_file_has_source_for_every_number():
    params = load_calib_params("energy.toml")
    assert params, "calib/energy.toml is empty"
    for key, entry in params.items():
        assert {"value", "unit", "source", "confidence"} <= set(entry), key
        assert len(entry["source"]) > 20, key
    tech = default_tech()
    assert tech.vnom == 0.9 and tech.fnom == 1e9
    assert tech.e_mac_int8 == pytest.approx(0.25e-12)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"rows": 0}, r"^array\.rows: got 0, expected an integer in \[1, 65536\]$"),
        ({"cols": -3}, r"^array\.cols: got -3, expected an integer"),
        ({"rows": 2.5}, r"^array\.rows: got 2\.5, expected an integer"),
        ({"rows": "8"}, r"^array\.rows: got '8', expected an integer"),
        ({"rows": True}, r"^array\.rows: got True"),
        ({"dataflow": "rs"}, r"^array\.dataflow: got 'rs', expected one of os, ws, is$"),
    ],
)
def test_array_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        ArrayConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"ifmap_sram_kb": 0}, r"^memory\.ifmap_sram_kb: got 0, expected a number > 0"),
        ({"dram_bandwidth": -1.0}, r"^memory\.dram_bandwidth: got -1\.0"),
        ({"word_bytes": 0}, r"^memory\.word_bytes: got 0, expected an integer in \[1, 8\]$"),
        ({"dram_latency_s": float("nan")}, r"^memory\.dram_latency_s: got nan"),
    ],
)
def test_memory_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        MemoryConfig(**kwargs)


@pytest.mark.parametrize(
    ("vdd", "freq", "pattern"),
    [
        (0.1, 1e9, r"^vdd: got 0\.1, expected a number >= 0\.3 V and <= 1\.5 V$"),
        (2.0, 1e9, r"^vdd: got 2\.0"),
        (0.9, 0.0, r"^freq: got 0 GHz, expected a number in \[0\.001, 10\] GHz$"),
        (0.9, 50e9, r"^freq: got 50 GHz"),
    ],
)
def test_operating_point_errors(vdd, freq, pattern):
    with pytest.raises(ConfigError, match=pattern):
        OperatingPoint(vdd=vdd, freq=freq)


def test_operating_point_nominal():
    op = OperatingPoint.nominal(default_tech())
    assert (op.vdd, op.freq) == (0.9, 1e9)


def test_tech_errors():
    with pytest.raises(ConfigError, match=r"^tech\.sram_read_pj_per_64b\[0\]"):
        TechParams(sram_read_pj_per_64b=((8.0,),))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^tech\.sram_scales_with_vdd: got 'yes'"):
        TechParams(sram_scales_with_vdd="yes")  # type: ignore[arg-type]


def test_unknown_keys_are_errors_with_hint():
    with pytest.raises(
        ConfigError, match=r"^array\.dataflw: unknown key \(did you mean 'dataflow'\?\)"
    ):
        hardware_from_dict({"array": {"dataflw": "ws"}})
    with pytest.raises(ConfigError, match=r"^memroy: unknown key \(did you mean 'memory'\?\)"):
        hardware_from_dict({"memroy": {}})
    with pytest.raises(ConfigError, match=r"^tech\.e_mac: unknown key"):
        hardware_from_dict({"tech": {"e_mac": 1e-12}})


def test_bandwidth_aliases():
    hw = hardware_from_dict({"memory": {"dram_words_per_cycle": 16, "word_bytes": 2}})
    assert hw.memory.dram_bandwidth == pytest.approx(16 * 2 * 1e9)
    hw = hardware_from_dict({"memory": {"dram_bandwidth_gbps": 25.6, "dram_latency_ns": 80}})
    assert hw.memory.dram_bandwidth == pytest.approx(25.6e9)
    assert hw.memory.dram_latency_s == pytest.approx(80e-9)
    with pytest.raises(
        ConfigError, match=r"^memory: got both dram_bandwidth_gbps and dram_words_per_cycle"
    ):
        hardware_from_dict({"memory": {"dram_bandwidth_gbps": 1, "dram_words_per_cycle": 1}})


def test_load_hardware_file(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text('[array]\nrows = 16\ncols = 4\ndataflow = "is"\n[tech]\nfnom_ghz = 1.5\n')
    hw = load_hardware(path)
    assert (hw.array.rows, hw.array.cols, hw.array.dataflow) == (16, 4, "is")
    assert hw.tech.fnom == 1.5e9
    assert hw.with_array(rows=8).array.rows == 8


def test_load_hardware_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"not found$"):
        load_hardware(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[array\nrows=1")
    with pytest.raises(ConfigError, match=r"invalid TOML"):
        load_hardware(bad)
    notable = tmp_path / "notable.toml"
    notable.write_text("array = 3\n")
    with pytest.raises(ConfigError, match=r"^array: got 3, expected a \[array\] table$"):
        load_hardware(notable)


def test_error_messages_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[array\nrows=1")
    with pytest.raises(ConfigError) as info:
        load_hardware(bad)
    assert "\n" not in str(info.value)


def test_presets_are_valid_toml_with_only_known_sections():
    from importlib import resources

    for name in preset_names():
        text = resources.files("accelsim.presets").joinpath(f"{name}.toml").read_text()
        assert set(tomllib.loads(text)) <= {"array", "memory", "tech"}


# --------------------------------------------------------------------------- timing overrides


def test_hardware_file_overrides_timing_model(tmp_path):
    from accelsim.timing.errors import TimingModel

    path = tmp_path / "hw.toml"
    path.write_text("[delay]\nguardband = 0.15\nalpha = 1.3\n[variation]\nsigma_rnd = 0.03\n")
    hw = load_hardware(path)
    model = TimingModel.for_hardware(hw)
    default = TimingModel.default()
    assert model.delay.guardband == 0.15 and model.delay.alpha == 1.3
    assert model.variation.sigma_rnd == 0.03
    # untouched parameters keep their calibrated values
    assert model.delay.vt == default.delay.vt
    assert model.sensitized == default.sensitized
    # no overrides -> the shipped model exactly
    assert TimingModel.for_hardware(load_preset("tpu-128x128")) == default


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[delay]\nalpah = 1.3\n", r"delay\.alpah: unknown key \(did you mean 'alpha'\?\)"),
        ("[delay]\nalpha = 9\n", r"delay\.alpha: got 9"),
        ("sensitized = 3\n", r"sensitized: got 3, expected a \[sensitized\] table"),
        ("[timing]\nx = 1\n", r"unknown key"),
    ],
)
def test_bad_timing_overrides_are_one_line_errors(tmp_path, text, match):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_hardware(path)
    assert "\n" not in str(info.value)
