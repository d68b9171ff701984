"""Hardware configuration: the array, its memories, the technology and the operating point.

All configuration objects are frozen dataclasses validated in ``__post_init__``; every invalid
value raises :class:`~accelsim.errors.ConfigError` with one line naming the key, the value and
the allowed range. TOML files have the sections ``[array]``, ``[memory]`` and ``[tech]``;
unknown sections or keys are errors (with a "did you mean" hint), so typos never pass silently.

Units: voltages in V, frequencies in Hz internally (the CLI and TOML take GHz where the key says
so), SRAM sizes in kB (1 kB = 1024 bytes), energies in J, bandwidth in bytes/s, latency in s.

Shipped presets (``accelsim/presets/*.toml``): ``tpu-128x128`` (weight-stationary, TPU-like),
``array-32x32`` and ``edge-8x8``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from accelsim.errors import ConfigError

Dataflow = Literal["os", "ws", "is"]
#: Parts of an SRAM that can sit on the array's scaled rail (TechParams.sram_scaled).
SRAM_PARTS: tuple[str, ...] = ("cells", "periphery")
_P = TypeVar("_P")
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")


def _fmt(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_int(key: str, value: object, lo: int = 1, hi: int | None = None) -> int:
    """Return ``value`` as an int in ``[lo, hi]`` or raise a one-line ConfigError."""
    allowed = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    ivalue = int(value)
    if ivalue < lo or (hi is not None and ivalue > hi):
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    return ivalue


def check_float(
    key: str,
    value: object,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    unit: str = "",
) -> float:
    """Return ``value`` as a finite float in the given range or raise a one-line ConfigError."""
    u = f" {unit}" if unit else ""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}{u}")
    if hi is not None:
        parts.append(f"<= {hi:g}{u}")
    allowed = "a number " + " and ".join(parts) if parts else "a finite number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    fvalue = float(value)
    if not math.isfinite(fvalue):
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    if lo is not None and (fvalue < lo or (lo_open and fvalue == lo)):
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    if hi is not None and fvalue > hi:
        raise ConfigError(f"{key}: got {_fmt(value)}, expected {allowed}")
    return fvalue


def check_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices`` or raise a one-line ConfigError."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key}: got {_fmt(value)}, expected one of {', '.join(choices)}")
    return value


def parse_scalar(text: str) -> Any:
    """A ``key=value`` spec value as bool (true/yes/on, false/no/off), None (none/null), int,
    float or, failing those, the stripped string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def reject_unknown_keys(section: str, data: dict[str, Any], allowed: set[str]) -> None:
    """Raise ConfigError for the first key of ``data`` not in ``allowed`` (with a hint)."""
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            where = f"{section}.{key}" if section else key
            raise ConfigError(
                f"{where}: unknown key{more}; allowed keys: {', '.join(sorted(allowed))}"
            )


@dataclass(frozen=True)
class ArrayConfig:
    """The systolic array: ``rows`` x ``cols`` PEs and its dataflow (os, ws or is)."""

    rows: int = 128
    cols: int = 128
    dataflow: Dataflow = "ws"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", check_int("array.rows", self.rows, 1, 65536))
        object.__setattr__(self, "cols", check_int("array.cols", self.cols, 1, 65536))
        check_choice("array.dataflow", self.dataflow, DATAFLOWS)

    @property
    def pes(self) -> int:
        """Number of processing elements."""
        return self.rows * self.cols


@dataclass(frozen=True)
class MemoryConfig:
    """On-chip SRAMs (one per operand, each double-buffered) and the DRAM interface.

    ``dram_bandwidth`` is in bytes/s; the TOML key ``dram_bandwidth_gbps`` gives it in GB/s
    (1e9 bytes/s) and ``dram_words_per_cycle`` in words per cycle at the nominal clock.
    """

    ifmap_sram_kb: float = 8192.0
    filter_sram_kb: float = 8192.0
    ofmap_sram_kb: float = 4096.0
    word_bytes: int = 1
    dram_bandwidth: float = 600e9
    dram_latency_s: float = 100e-9

    def __post_init__(self) -> None:
        for name in ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"):
            value = check_float(f"memory.{name}", getattr(self, name), 0.0, 1e7, lo_open=True)
            object.__setattr__(self, name, value)
        object.__setattr__(
            self, "word_bytes", check_int("memory.word_bytes", self.word_bytes, 1, 8)
        )
        object.__setattr__(
            self,
            "dram_bandwidth",
            check_float("memory.dram_bandwidth", self.dram_bandwidth, 0.0, 1e15, lo_open=True),
        )
        object.__setattr__(
            self,
            "dram_latency_s",
            check_float("memory.dram_latency_s", self.dram_latency_s, 0.0, 1e-3),
        )

    def sram_words(self, operand: str) -> int:
        """Capacity of one operand SRAM in words (both halves of the double buffer)."""
        kb = {"ifmap": self.ifmap_sram_kb, "filter": self.filter_sram_kb}.get(
            operand, self.ofmap_sram_kb
        )
        return int(kb * 1024) // self.word_bytes


@dataclass(frozen=True)
class TechParams:
    """Technology parameters: nominal operating point and per-event energies.

    Defaults come from ``calib/energy.toml`` (see :func:`default_tech`), which records the source
    of every number. Energies are in J at the nominal voltage ``vnom``; dynamic energy scales as
    ``(V/vnom)**2`` and leakage power as ``(V/vnom) * exp(leak_k * (V - vnom))``.

    Voltage rails: the MAC array is on the scaled rail (the DVFS knob). ``sram_scaled`` lists the
    SRAM parts that share it: ``periphery`` (decoders, drivers, sense amplifiers: the share
    ``sram_periphery_share`` of an access's energy) and ``cells`` (the bit cells: the rest of an
    access and the SRAM's leakage); the others sit on a fixed rail at ``vnom``. A scaled SRAM
    part never goes below ``sram_vmin`` (V): the rail holds there while the array goes lower.
    ``sram_scales_with_vdd = true`` is shorthand for both parts. ``sram_leak_retention``: the
    leakage of an unaccessed cell relative to an accessed one (virtually every cell in a cycle
    is unaccessed, and these are source-biased).

    ``sram_read_pj_per_64b`` is a table of ``(size_kB, pJ per 64-bit read)`` points, interpolated
    log-log in size; a write costs ``sram_write_factor`` times a read.

    ``detect_overhead`` is the energy of in-situ timing-error detection (Razor shadow latches,
    also what TE-Drop needs) as a fraction of the protected logic's energy (the PE array's MAC
    energy and leakage), paid whether or not errors occur; ``replay_cycles`` the array cycles a
    Razor replay stalls the array per detected error.
    """

    vnom: float = 0.9
    fnom: float = 1.0e9
    e_mac_int8: float = 0.25e-12
    sram_read_pj_per_64b: tuple[tuple[float, float], ...] = (
        (8.0, 5.0),
        (32.0, 10.0),
        (1024.0, 50.0),
    )
    sram_write_factor: float = 1.0
    dram_j_per_byte: float = 32e-12
    leak_w_per_pe: float = 44e-6
    leak_w_per_sram_kb: float = 2e-6
    leak_k: float = 5.0
    sram_scales_with_vdd: bool = False
    sram_scaled: tuple[str, ...] = ("periphery",)
    sram_vmin: float = 0.70
    sram_periphery_share: float = 0.5
    sram_leak_retention: float = 0.2
    detect_overhead: float = 0.031
    replay_cycles: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "vnom", check_float("tech.vnom", self.vnom, 0.3, 2.0, unit="V"))
        object.__setattr__(
            self, "fnom", check_float("tech.fnom", self.fnom, 0.0, 1e11, lo_open=True)
        )
        for name in ("e_mac_int8", "dram_j_per_byte", "leak_w_per_pe", "leak_w_per_sram_kb"):
            object.__setattr__(
                self, name, check_float(f"tech.{name}", getattr(self, name), 0.0, 1.0)
            )
        object.__setattr__(
            self,
            "sram_write_factor",
            check_float("tech.sram_write_factor", self.sram_write_factor, 0.0, 100.0),
        )
        object.__setattr__(self, "leak_k", check_float("tech.leak_k", self.leak_k, 0.0, 50.0))
        parts = self.sram_scaled
        if isinstance(parts, str) or not isinstance(parts, tuple | list):
            raise ConfigError(
                f"tech.sram_scaled: got {parts!r}, expected a list of SRAM parts on the scaled "
                'rail: [], ["periphery"], ["cells"] or ["cells", "periphery"]'
            )
        for part in parts:
            check_choice("tech.sram_scaled", part, SRAM_PARTS)
        if self.sram_scales_with_vdd:
            parts = SRAM_PARTS
        object.__setattr__(self, "sram_scaled", tuple(sorted(set(parts))))
        object.__setattr__(
            self, "sram_vmin", check_float("tech.sram_vmin", self.sram_vmin, 0.0, 2.0, unit="V")
        )
        for name in ("sram_periphery_share", "sram_leak_retention"):
            object.__setattr__(
                self, name, check_float(f"tech.{name}", getattr(self, name), 0.0, 1.0)
            )
        object.__setattr__(
            self,
            "detect_overhead",
            check_float("tech.detect_overhead", self.detect_overhead, 0.0, 1.0),
        )
        object.__setattr__(
            self, "replay_cycles", check_int("tech.replay_cycles", self.replay_cycles, 0, 1000)
        )
        if not isinstance(self.sram_scales_with_vdd, bool):
            raise ConfigError(
                f"tech.sram_scales_with_vdd: got {self.sram_scales_with_vdd!r}, expected true or false"
            )
        points = self.sram_read_pj_per_64b
        if not isinstance(points, tuple | list) or len(points) == 0:
            raise ConfigError(
                f"tech.sram_read_pj_per_64b: got {points!r}, expected a non-empty list of "
                "[size_kB, pJ] pairs"
            )
        clean: list[tuple[float, float]] = []
        for i, point in enumerate(points):
            if not isinstance(point, tuple | list) or len(point) != 2:
                raise ConfigError(
                    f"tech.sram_read_pj_per_64b[{i}]: got {point!r}, expected a [size_kB, pJ] pair"
                )
            size = check_float(
                f"tech.sram_read_pj_per_64b[{i}][0]", point[0], 0.0, 1e7, lo_open=True
            )
            pj = check_float(f"tech.sram_read_pj_per_64b[{i}][1]", point[1], 0.0, 1e6, lo_open=True)
            clean.append((size, pj))
        clean.sort()
        object.__setattr__(self, "sram_read_pj_per_64b", tuple(clean))


@dataclass(frozen=True)
class OperatingPoint:
    """A supply voltage ``vdd`` (V) and array clock ``freq`` (Hz)."""

    vdd: float
    freq: float

    #: Range of supply voltages the models accept, V.
    VDD_RANGE: tuple[float, float] = field(
        default=(0.3, 1.5), init=False, repr=False, compare=False
    )
    #: Range of clock frequencies the models accept, Hz.
    FREQ_RANGE: tuple[float, float] = field(
        default=(1e6, 1e10), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        lo, hi = self.VDD_RANGE
        object.__setattr__(self, "vdd", check_float("vdd", self.vdd, lo, hi, unit="V"))
        flo, fhi = self.FREQ_RANGE
        if isinstance(self.freq, int | float) and not isinstance(self.freq, bool):
            if not (flo <= float(self.freq) <= fhi):
                raise ConfigError(
                    f"freq: got {self.freq / 1e9:g} GHz, expected a number in "
                    f"[{flo / 1e9:g}, {fhi / 1e9:g}] GHz"
                )
        object.__setattr__(self, "freq", check_float("freq", self.freq, flo, fhi, unit="Hz"))

    @classmethod
    def nominal(cls, tech: TechParams) -> OperatingPoint:
        """The nominal point (vnom, fnom) of ``tech``."""
        return cls(vdd=tech.vnom, freq=tech.fnom)


#: Timing-model sections a hardware TOML may override, and the calib file each one refines.
TIMING_SECTIONS: dict[str, str] = {
    "delay": "delay.toml",
    "variation": "variation.toml",
    "sensitized": "sensitized.toml",
}


@dataclass(frozen=True)
class TimingOverrides:
    """Per-hardware overrides of the timing model's calibrated parameters.

    Each field holds ``(key, value)`` pairs replacing entries of the matching calib file
    (``[delay]`` -> calib/delay.toml, ``[variation]`` -> calib/variation.toml, ``[sensitized]``
    -> calib/sensitized.toml); keys and values are validated when the hardware file is loaded.
    Kept as sorted tuples so the config stays hashable.
    """

    delay: tuple[tuple[str, Any], ...] = ()
    variation: tuple[tuple[str, Any], ...] = ()
    sensitized: tuple[tuple[str, Any], ...] = ()

    def section(self, name: str) -> dict[str, Any]:
        """The overrides of section ``name`` as a dict."""
        return dict(getattr(self, name))


@dataclass(frozen=True)
class HardwareConfig:
    """A complete accelerator: array, memories, technology and timing-model overrides."""

    array: ArrayConfig = field(default_factory=ArrayConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    tech: TechParams = field(default_factory=lambda: default_tech())
    timing: TimingOverrides = field(default_factory=TimingOverrides)

    def with_array(self, **changes: Any) -> HardwareConfig:
        """A copy with some ArrayConfig fields replaced (validated)."""
        return replace(self, array=replace(self.array, **changes))


# --------------------------------------------------------------------------- TOML loading

_MEMORY_ALIASES = {"dram_bandwidth_gbps", "dram_words_per_cycle", "dram_latency_ns"}
_TECH_ALIASES = {"fnom_ghz"}


def _field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if f.init}


def array_from_dict(data: dict[str, Any]) -> ArrayConfig:
    """Build an ArrayConfig from a TOML ``[array]`` table."""
    reject_unknown_keys("array", data, _field_names(ArrayConfig))
    return ArrayConfig(**data)


def memory_from_dict(data: dict[str, Any], tech: TechParams) -> MemoryConfig:
    """Build a MemoryConfig from a TOML ``[memory]`` table.

    Accepts ``dram_bandwidth_gbps`` (GB/s) or ``dram_words_per_cycle`` (words per cycle at the
    nominal clock ``tech.fnom``) instead of ``dram_bandwidth`` (bytes/s), and ``dram_latency_ns``
    instead of ``dram_latency_s``.
    """
    reject_unknown_keys("memory", data, _field_names(MemoryConfig) | _MEMORY_ALIASES)
    data = dict(data)
    given = [
        k for k in ("dram_bandwidth", "dram_bandwidth_gbps", "dram_words_per_cycle") if k in data
    ]
    if len(given) > 1:
        raise ConfigError(
            f"memory: got both {given[0]} and {given[1]}, expected only one way of giving "
            "the DRAM bandwidth"
        )
    if "dram_bandwidth_gbps" in data:
        value = check_float(
            "memory.dram_bandwidth_gbps", data.pop("dram_bandwidth_gbps"), 0.0, 1e6, lo_open=True
        )
        data["dram_bandwidth"] = value * 1e9
    if "dram_words_per_cycle" in data:
        value = check_float(
            "memory.dram_words_per_cycle", data.pop("dram_words_per_cycle"), 0.0, 1e6, lo_open=True
        )
        word_bytes = check_int("memory.word_bytes", data.get("word_bytes", 1), 1, 8)
        data["dram_bandwidth"] = value * word_bytes * tech.fnom
    if "dram_latency_ns" in data:
        if "dram_latency_s" in data:
            raise ConfigError(
                "memory: got both dram_latency_ns and dram_latency_s, expected only one"
            )
        value = check_float("memory.dram_latency_ns", data.pop("dram_latency_ns"), 0.0, 1e6)
        data["dram_latency_s"] = value * 1e-9
    return MemoryConfig(**data)


def tech_from_dict(data: dict[str, Any], base: TechParams | None = None) -> TechParams:
    """Build TechParams from a TOML ``[tech]`` table, overriding ``base`` (default: calib)."""
    reject_unknown_keys("tech", data, _field_names(TechParams) | _TECH_ALIASES)
    data = dict(data)
    if "fnom_ghz" in data:
        if "fnom" in data:
            raise ConfigError("tech: got both fnom and fnom_ghz, expected only one")
        data["fnom"] = (
            check_float("tech.fnom_ghz", data.pop("fnom_ghz"), 0.0, 100.0, lo_open=True) * 1e9
        )
    if "sram_scaled" in data and isinstance(data["sram_scaled"], list):
        data["sram_scaled"] = tuple(data["sram_scaled"])
    if "sram_read_pj_per_64b" in data and isinstance(data["sram_read_pj_per_64b"], list):
        data["sram_read_pj_per_64b"] = tuple(
            tuple(p) if isinstance(p, list) else p for p in data["sram_read_pj_per_64b"]
        )
    return replace(base or default_tech(), **data)


def _frozen_value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen_value(v) for v in value)
    return value


def timing_from_dict(data: dict[str, Any]) -> TimingOverrides:
    """Validate the ``[delay]``, ``[variation]`` and ``[sensitized]`` tables of a hardware file.

    Every key must be a parameter of the matching calib file; the values are checked by
    building the parameter dataclass with them (one-line errors name ``section.key``).
    """
    if not any(section in data for section in TIMING_SECTIONS):
        return TimingOverrides()  # nothing to validate: keep `accelsim perf` free of numba/scipy
    from accelsim.timing.delay import DelayParams
    from accelsim.timing.sensitized import SensitizedParams
    from accelsim.timing.variation import VariationParams

    classes: dict[str, type] = {
        "delay": DelayParams,
        "variation": VariationParams,
        "sensitized": SensitizedParams,
    }
    result: dict[str, tuple[tuple[str, Any], ...]] = {}
    for section, filename in TIMING_SECTIONS.items():
        table = data.get(section, {})
        overrides = {k: _frozen_value(v) for k, v in table.items()}
        params_from_calib(classes[section], filename, overrides)  # validates keys and values
        result[section] = tuple(sorted(overrides.items()))
    return TimingOverrides(**result)


def hardware_from_dict(data: dict[str, Any]) -> HardwareConfig:
    """Build a HardwareConfig from a parsed TOML document.

    Sections: ``[array]``, ``[memory]``, ``[tech]`` and the optional timing-model overrides
    ``[delay]``, ``[variation]``, ``[sensitized]`` (keys of calib/delay.toml etc.).
    """
    sections = ("array", "memory", "tech", *TIMING_SECTIONS)
    reject_unknown_keys("", data, set(sections))
    for section in sections:
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{section}: got {data[section]!r}, expected a [{section}] table")
    tech = tech_from_dict(data.get("tech", {}))
    return HardwareConfig(
        array=array_from_dict(data.get("array", {})),
        memory=memory_from_dict(data.get("memory", {}), tech),
        tech=tech,
        timing=timing_from_dict(data),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r}: cannot read: {exc.strerror}") from None


def load_hardware(path: str | Path) -> HardwareConfig:
    """Load a hardware TOML file (sections [array], [memory], [tech], and optionally
    [delay], [variation], [sensitized] overriding the timing model's calibrated parameters)."""
    return hardware_from_dict(_read_toml(Path(path)))


def preset_names() -> list[str]:
    """Names of the shipped hardware presets."""
    root = resources.files("accelsim.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> HardwareConfig:
    """Load a shipped preset by name (see :func:`preset_names`)."""
    names = preset_names()
    if name not in names:
        raise ConfigError(f"preset: got {name!r}, expected one of {', '.join(names)}")
    text = resources.files("accelsim.presets").joinpath(f"{name}.toml").read_text()
    return hardware_from_dict(tomllib.loads(text))


# --------------------------------------------------------------------------- calibration file


def load_calib_params(name: str = "energy.toml") -> dict[str, Any]:
    """Read a parameter file from ``calib/`` as ``{key: {value, unit, source, ...}}``."""
    text = resources.files("accelsim.calib").joinpath(name).read_text()
    return tomllib.loads(text)


def params_from_calib(cls: type[_P], name: str, overrides: dict[str, Any] | None = None) -> _P:
    """Build the frozen dataclass ``cls`` from the calib parameter file ``name``.

    The file has one table per field with ``value``, ``unit``, ``source`` and ``confidence``;
    list values become tuples (of tuples). Unknown keys in the file or in ``overrides`` are
    errors, so a renamed field cannot silently fall back to its default.
    """
    params = load_calib_params(name)
    values: dict[str, Any] = {}
    for key, entry in params.items():
        value = entry["value"]
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[key] = value
    allowed = _field_names(cls)
    reject_unknown_keys(f"calib/{name}", values, allowed)
    if overrides:
        reject_unknown_keys(name.removesuffix(".toml"), overrides, allowed)
        values.update(overrides)
    return cls(**values)


def default_tech() -> TechParams:
    """TechParams from ``calib/energy.toml`` (each number there carries its source)."""
    return params_from_calib(TechParams, "energy.toml")
