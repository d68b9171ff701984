"""Readers for SCALE-Sim v3 inputs: topology CSVs and ``.cfg`` architecture files.

Reference: ``../shared/reference/scalesim.md`` section 3 (SCALE-Sim 3.0.0 from PyPI). Nothing here
runs SCALE-Sim; the readers turn its inputs into accelsim objects so that the same workloads and
arrays can be simulated and compared.

Topology CSV (:func:`read_topology`)
------------------------------------
The first non-blank row is a header and is skipped (SCALE-Sim skips the first line whatever it
holds). Each following row is one layer; fields are separated by commas, split literally (no CSV
quoting, as in SCALE-Sim).

* Conv format (``fmt="conv"``, SCALE-Sim's default ``-i conv``): ``Layer name, IFMAP Height,
  IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,`` — one stride for both
  directions. Lowered with :func:`~accelsim.hw.layer.conv_to_gemm` using SCALE-Sim's
  **no-padding** convention (``padding="none"``: ``E = ceil((H - F + S) / S)``, so ResNet-18's
  224x224 7x7/2 conv1 gives 110x110 = 12100 output rows, and a 56x56 3x3/1 conv gives 54x54),
  ``layer_type="conv"``.
* GEMM format (``fmt="gemm"``, ``-i gemm``): ``Layer name, M, N, K,`` with **M = output rows,
  N = output columns (filters), K = reduction length** — beware that this is not the M x K x N
  order papers often use. Becomes ``GemmLayer(name, M, N, K, layer_type="gemm")``. (SCALE-Sim
  maps it internally to an M x K ifmap, a 1 x K filter, 1 channel, N filters, stride 1, which is
  the same GEMM.)

Depthwise convolutions: SCALE-Sim expands a conv-format row whose name contains ``DP``
(case-sensitive, anywhere in the name) into ``Channels`` separate layers named
``<name>Channel_<i>``, each with ``Channels = 1`` and **the Num Filter column unchanged**. We
reproduce exactly that as one :class:`~accelsim.hw.layer.GemmLayer` with ``count = Channels``,
``M = E_h * E_w``, ``K = Fh * Fw`` and ``N = Num Filter``, keeping the row's name. So a standard
depthwise conv (depth multiplier 1) must be written with ``Num Filter = 1``; writing
``Num Filter = Channels`` (as some topologies do) simulates ``Channels`` times the MACs of a real
depthwise layer — in SCALE-Sim and here alike. Rows without ``DP`` in the name are dense convs
even when they describe a depthwise layer (SCALE-Sim's shipped ``mobilenet.csv`` does that). The
GEMM format never expands ``DP`` names.

Sparsity: an optional last field ``N:M`` (conv rows: 9th field, GEMM rows: 5th field) is
SCALE-Sim's structured-sparsity ratio. It only has an effect in SCALE-Sim with
``[sparsity] SparsitySupport = true``; accelsim does not model sparsity, so the field is checked
(``N`` and ``M`` integers, ``1 <= N <= M``) and then **ignored**: every layer runs dense.

Where we are more tolerant than SCALE-Sim (which silently drops the last field of every row, so a
missing trailing comma loses the stride):

* the trailing comma is optional (one trailing empty field is dropped if present);
* whitespace around fields, blank lines, rows made only of commas (spreadsheet exports), leading
  blank lines before the header, a UTF-8 byte-order mark and CRLF line ends are all fine.

Where we are stricter (SCALE-Sim crashes with a traceback or an ``assert``, or silently does the
wrong thing), each case is a :class:`~accelsim.errors.TopologyError` with one line
``FILE:LINE: column 'Filter Height': got 'abc', expected an integer >= 1``:

* a wrong number of fields (with a hint when the row looks like the other format);
* a non-integer, zero or negative dimension or stride; an empty layer name;
* a filter larger than the ifmap (SCALE-Sim's "ISSUE #9" assert);
* a first row that looks like a layer instead of a header (it would be silently dropped);
* a file with no layer rows, a missing or unreadable file, a file that is not UTF-8 text.

SCALE-Sim .cfg (:func:`read_scalesim_cfg`)
------------------------------------------
An INI file read with :mod:`configparser` (``key = value`` or ``key: value``; keys are
case-insensitive, section names are not; no ``%`` interpolation; ``#``/``;`` comment lines).
Sections and keys accepted (the SCALE-Sim 3.0.0 set, see :data:`CFG_KEYS`):

* ``[general] run_name`` (default ``scale_run``).
* ``[architecture_presets]``: ``ArrayHeight``, ``ArrayWidth`` (rows x cols of PEs),
  ``IfmapSramSzkB``, ``FilterSramSzkB``, ``OfmapSramSzkB`` (integers, kB) and ``Dataflow``
  (``os``/``ws``/``is``) are required. ``IfmapOffset``/``FilterOffset``/``OfmapOffset`` (integers
  >= 0, default 0 / 10 M / 20 M), ``Bandwidth`` (comma list of words/cycle; required in USER
  mode, only element 0 is used, for the OFMAP drain), ``ReadRequestBuffer`` /
  ``WriteRequestBuffer`` (Ramulator only) are checked and recorded. ``MemoryBanks``,
  ``OnChipMemoryBanks`` and ``OnChipMemoryBankPorts`` are accepted and ignored, because
  SCALE-Sim 3.0.0 does not read them either.
* ``[layout]``: ``Ifmap/FilterCustomLayout`` (booleans), ``Ifmap/FilterSRAMBankBandwidth``,
  ``...BankNum``, ``...BankPort`` (integers >= 1). Missing keys take SCALE-Sim's no-``[layout]``
  defaults (10 words/cycle, 10 banks, 2 ports). The bank-conflict model is not reproduced.
* ``[sparsity]``: ``SparsitySupport``, ``OptimizedMapping`` (booleans), ``SparseRep``,
  ``BlockSize`` (>= 1), ``RandomNumberGeneratorSeed`` (>= 0). Optional here (SCALE-Sim requires
  the section); sparsity is not modeled.
* ``[run_presets]``: ``InterfaceBandwidth`` (``CALC`` or ``USER``, exactly as SCALE-Sim compares
  it; default ``CALC``, SCALE-Sim's internal default) and ``UseRamulatorTrace`` (boolean).
* ``[network_presets] TopologyCsvLoc``: written by SCALE-Sim's own ``write_conf_file`` but makes
  SCALE-Sim 3.0.0's reader crash; we accept it and record the path (quotes stripped) in
  :attr:`ScaleSimCfgInfo.topology`.

Booleans accept ``true/false, yes/no, on/off, 1/0`` in any case. Unknown sections and keys are
errors with a "did you mean" hint; invalid values are :class:`~accelsim.errors.ConfigError` one-
liners ``FILE:LINE: architecture_presets.ArrayHeight: got '0', expected an integer in
[1, 65536]``.

Mapping to :class:`~accelsim.config.HardwareConfig`:

* ``ArrayConfig(rows=ArrayHeight, cols=ArrayWidth, dataflow=Dataflow)``.
* ``MemoryConfig``: the three SRAM sizes in kB as given and ``word_bytes = 1`` (SCALE-Sim
  hard-codes 1-byte words, so kB * 1024 words; each SRAM is a 50/50 double buffer in both tools).
* DRAM, ``InterfaceBandwidth = CALC``: SCALE-Sim assumes the interface always keeps up (no stall
  cycles ever; it only reports the bandwidth that would be needed), so ``dram_bandwidth`` is
  :data:`CALC_DRAM_BANDWIDTH` (1e15 bytes/s, the largest MemoryConfig accepts: effectively
  unlimited) and ``dram_latency_s = 0``.
* DRAM, ``InterfaceBandwidth = USER``: SCALE-Sim has three independent channels — ifmap and
  filter DRAM->SRAM at ``[layout] IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth``
  words/cycle and the OFMAP drain at ``Bandwidth[0]``. accelsim has one shared DRAM bandwidth;
  we use ``min(IfmapSRAMBankBandwidth, FilterSRAMBankBandwidth)`` words/cycle x 1 byte x
  ``tech.fnom``. Rationale: SCALE-Sim's per-row stall bookkeeping serializes ifmap and filter
  misses, so a bandwidth-bound layer takes about (ifmap + filter DRAM words) / bw cycles — the
  behaviour of one shared read channel of ``bw`` words/cycle when the two are equal (the usual
  case); with unequal values the minimum is the conservative choice. The OFMAP drain channel
  is not added (SCALE-Sim overlaps it and it stalls only when the OFMAP buffer fills); its value
  is kept in :attr:`ScaleSimCfgInfo.ofmap_dram_words_per_cycle`. ``dram_latency_s`` is one
  cycle at ``fnom`` (SCALE-Sim without Ramulator returns a DRAM line the next cycle).
* ``tech`` is :func:`~accelsim.config.default_tech` unless given.

Settings that are read but not modeled (custom layouts, Ramulator traces, sparsity support) are
listed in :attr:`ScaleSimCfgInfo.not_modeled` so that callers can warn about them.
"""

from __future__ import annotations

import configparser
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from accelsim.config import (
    DATAFLOWS,
    ArrayConfig,
    Dataflow,
    HardwareConfig,
    MemoryConfig,
    TechParams,
    default_tech,
)
from accelsim.errors import ConfigError, ShapeError, TopologyError
from accelsim.hw.layer import GemmLayer, conv_to_gemm

__all__ = [
    "CALC_DRAM_BANDWIDTH",
    "CFG_KEYS",
    "CONV_COLUMNS",
    "GEMM_COLUMNS",
    "ScaleSimCfgInfo",
    "read_scalesim_cfg",
    "read_topology",
]

TopologyFormat = Literal["conv", "gemm"]

#: Column names of a conv-format row (SCALE-Sim's header spelling); an ``N:M`` field may follow.
CONV_COLUMNS: tuple[str, ...] = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
#: Column names of a GEMM-format row; an ``N:M`` field may follow.
GEMM_COLUMNS: tuple[str, ...] = ("Layer name", "M", "N", "K")
_SPARSITY_COLUMN = "Sparsity N:M"

_INT_RE = re.compile(r"[+-]?[0-9]+")


# --------------------------------------------------------------------------- topology CSV


def _read_text(path: Path, what: str, error: type[Exception]) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: cannot read {what}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: cannot read {what}: it is a directory") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: cannot read {what}: not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def _is_int(text: str) -> bool:
    return _INT_RE.fullmatch(text) is not None


def _positive_field(prefix: str, column: str, text: str) -> int:
    if not _is_int(text) or int(text) < 1:
        raise TopologyError(f"{prefix}column {column!r}: got {text!r}, expected an integer >= 1")
    return int(text)


def _check_sparsity(prefix: str, text: str) -> None:
    """Validate an ``N:M`` sparsity field (accepted and ignored, see the module docstring)."""
    parts = [p.strip() for p in text.split(":")]
    ok = len(parts) == 2 and all(_is_int(p) and int(p) >= 1 for p in parts)
    if not ok or int(parts[0]) > int(parts[1]):
        raise TopologyError(
            f"{prefix}column {_SPARSITY_COLUMN!r}: got {text!r}, expected a ratio N:M of "
            "integers with 1 <= N <= M (or no field)"
        )


def _split_row(row: str) -> list[str]:
    fields = [f.strip() for f in row.split(",")]
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()  # the trailing comma SCALE-Sim requires (optional here)
    return fields


def _field_count_error(prefix: str, n: int, fmt: TopologyFormat) -> TopologyError:
    columns = CONV_COLUMNS if fmt == "conv" else GEMM_COLUMNS
    hint = ""
    if fmt == "conv" and n in (len(GEMM_COLUMNS), len(GEMM_COLUMNS) + 1):
        hint = " (this looks like a GEMM-format row: read the file with fmt='gemm')"
    elif fmt == "gemm" and n in (len(CONV_COLUMNS), len(CONV_COLUMNS) + 1):
        hint = " (this looks like a conv-format row: read the file with fmt='conv')"
    return TopologyError(
        f"{prefix}got {n} field{'s' if n != 1 else ''}, expected {len(columns)} "
        f"({', '.join(columns)}) optionally followed by an N:M sparsity ratio{hint}"
    )


def _parse_conv_row(prefix: str, fields: list[str]) -> GemmLayer:
    name = fields[0]
    h, w, fh, fw, channels, filters, stride = (
        _positive_field(prefix, col, text)
        for col, text in zip(CONV_COLUMNS[1:], fields[1:8], strict=True)
    )
    if fh > h:
        raise TopologyError(
            f"{prefix}column 'Filter Height': got {fh}, expected at most the IFMAP Height {h} "
            "(SCALE-Sim does not pad)"
        )
    if fw > w:
        raise TopologyError(
            f"{prefix}column 'Filter Width': got {fw}, expected at most the IFMAP Width {w} "
            "(SCALE-Sim does not pad)"
        )
    count = 1
    if "DP" in name:  # SCALE-Sim's depthwise expansion: Channels layers of 1 channel each
        count, channels = channels, 1
    try:
        return conv_to_gemm(
            name, h, w, fh, fw, channels, filters, stride, padding="none", count=count
        )
    except ShapeError as exc:  # not reachable after the checks above; keep the one-line contract
        raise TopologyError(f"{prefix}{exc}") from None


def _parse_gemm_row(prefix: str, fields: list[str]) -> GemmLayer:
    m, n, k = (
        _positive_field(prefix, col, text)
        for col, text in zip(GEMM_COLUMNS[1:], fields[1:4], strict=True)
    )
    try:
        return GemmLayer(fields[0], M=m, N=n, K=k, layer_type="gemm")
    except ShapeError as exc:  # not reachable after the checks above
        raise TopologyError(f"{prefix}{exc}") from None


def read_topology(path: str | Path, fmt: TopologyFormat = "conv") -> list[GemmLayer]:
    """Read a SCALE-Sim topology CSV (``fmt`` ``"conv"`` or ``"gemm"``) as GEMM layers.

    Returns one :class:`~accelsim.hw.layer.GemmLayer` per row, in file order; a conv row whose
    name contains ``DP`` becomes one layer with ``count = Channels`` (SCALE-Sim's depthwise
    expansion). Conventions, tolerances and errors: see the module docstring. Raises
    :class:`~accelsim.errors.TopologyError` (one line naming the file, line and column).
    """
    if fmt not in ("conv", "gemm"):
        raise TopologyError(f"topology format: got {fmt!r}, expected 'conv' or 'gemm'")
    p = Path(path)
    text = _read_text(p, "topology", TopologyError)
    n_columns = len(CONV_COLUMNS) if fmt == "conv" else len(GEMM_COLUMNS)
    parse_row = _parse_conv_row if fmt == "conv" else _parse_gemm_row

    layers: list[GemmLayer] = []
    header_seen = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        row = raw.strip()
        if not header_seen:
            if not row:
                continue
            header_seen = True
            fields = _split_row(row)
            if len(fields) >= 4 and all(_is_int(f) for f in fields[1:4]):
                raise TopologyError(
                    f"{p}:{lineno}: expected a header row first (SCALE-Sim always skips the "
                    f"first row), got the layer row {fields[0]!r}; add a header line such as "
                    f"'{', '.join(CONV_COLUMNS if fmt == 'conv' else GEMM_COLUMNS)},'"
                )
            continue
        if not row.replace(",", "").strip():
            continue  # blank line or a row of empty fields
        prefix = f"{p}:{lineno}: "
        fields = _split_row(row)
        if len(fields) not in (n_columns, n_columns + 1):
            raise _field_count_error(prefix, len(fields), fmt)
        if not fields[0]:
            raise TopologyError(
                f"{prefix}column 'Layer name': got '', expected a non-empty layer name"
            )
        if len(fields) == n_columns + 1:
            _check_sparsity(prefix, fields[-1])
        layers.append(parse_row(prefix, fields))

    if not layers:
        what = "has no rows at all" if not header_seen else "has a header row but no layer rows"
        raise TopologyError(
            f"{p}: topology {what}, expected a header row followed by at least one layer row"
        )
    return layers


# --------------------------------------------------------------------------- SCALE-Sim .cfg

#: Sections and keys of a SCALE-Sim 3.0.0 .cfg accepted by :func:`read_scalesim_cfg` (keys are
#: matched case-insensitively; this is their canonical spelling).
CFG_KEYS: dict[str, tuple[str, ...]] = {
    "general": ("run_name",),
    "architecture_presets": (
        "ArrayHeight",
        "ArrayWidth",
        "IfmapSramSzkB",
        "FilterSramSzkB",
        "OfmapSramSzkB",
        "IfmapOffset",
        "FilterOffset",
        "OfmapOffset",
        "Dataflow",
        "Bandwidth",
        "ReadRequestBuffer",
        "WriteRequestBuffer",
        "MemoryBanks",
        "OnChipMemoryBanks",
        "OnChipMemoryBankPorts",
    ),
    "layout": (
        "IfmapCustomLayout",
        "IfmapSRAMBankBandwidth",
        "IfmapSRAMBankNum",
        "IfmapSRAMBankPort",
        "FilterCustomLayout",
        "FilterSRAMBankBandwidth",
        "FilterSRAMBankNum",
        "FilterSRAMBankPort",
    ),
    "sparsity": (
        "SparsitySupport",
        "SparseRep",
        "OptimizedMapping",
        "BlockSize",
        "RandomNumberGeneratorSeed",
    ),
    "run_presets": ("InterfaceBandwidth", "UseRamulatorTrace"),
    "network_presets": ("TopologyCsvLoc",),
}

#: DRAM bandwidth (bytes/s) used for ``InterfaceBandwidth = CALC``: effectively unlimited.
CALC_DRAM_BANDWIDTH = 1e15

_MAX_WORDS_PER_CYCLE = 1_000_000
_MAX_SRAM_KB = 10_000_000
_BOOL_STATES = {"1": True, "yes": True, "true": True, "on": True}
_BOOL_STATES.update({"0": False, "no": False, "false": False, "off": False})
_NO_DEFAULT_SECTION = "\x00accelsim: no DEFAULT section\x00"


@dataclass(frozen=True)
class ScaleSimCfgInfo:
    """What a SCALE-Sim .cfg says beyond the :class:`~accelsim.config.HardwareConfig`.

    Bandwidths are in words (bytes) per cycle as SCALE-Sim states them.
    ``dram_words_per_cycle`` is the value mapped to ``MemoryConfig.dram_bandwidth`` (``None``
    in CALC mode, where the bandwidth is :data:`CALC_DRAM_BANDWIDTH`).
    """

    path: str
    run_name: str
    interface_bandwidth: Literal["CALC", "USER"]
    bandwidth: tuple[int, ...]
    ifmap_dram_words_per_cycle: int
    filter_dram_words_per_cycle: int
    ofmap_dram_words_per_cycle: int | None
    dram_words_per_cycle: int | None
    ifmap_offset: int = 0
    filter_offset: int = 10_000_000
    ofmap_offset: int = 20_000_000
    read_request_buffer: int | None = None
    write_request_buffer: int | None = None
    ifmap_custom_layout: bool = False
    filter_custom_layout: bool = False
    use_ramulator_trace: bool = False
    sparsity_support: bool = False
    topology: str | None = None
    not_modeled: tuple[str, ...] = ()

    @property
    def user_bandwidth(self) -> bool:
        """True in USER (bandwidth-limited) mode, False in CALC mode."""
        return self.interface_bandwidth == "USER"


class _KeepCaseParser(configparser.ConfigParser):
    """ConfigParser that keeps the key spelling (we match keys case-insensitively ourselves)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


_SECTION_RE = re.compile(r"\s*\[(?P<name>[^\]]*)\]")
_KEY_RE = re.compile(r"(?P<key>[^\s:=][^:=]*?)\s*[:=]")


def _line_index(text: str) -> dict[tuple[str, str], list[int]]:
    """Map ``(section, lower-case key)`` (``(section, "")`` for headers) to its line numbers."""
    index: dict[tuple[str, str], list[int]] = {}
    section = ""
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _SECTION_RE.match(line)
        if match:
            section = match.group("name")
            index.setdefault((section, ""), []).append(lineno)
            continue
        if not line.strip() or line[0].isspace() or line.lstrip()[0] in "#;":
            continue
        match = _KEY_RE.match(line)
        if match:
            key = match.group("key").strip().lower()
            index.setdefault((section, key), []).append(lineno)
    return index


class _Cfg:
    """A parsed .cfg with helpers that raise one-line ConfigErrors naming file, line and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = _line_index(text)
        parser = _KeepCaseParser(interpolation=None, default_section=_NO_DEFAULT_SECTION)
        try:
            parser.read_string(text, source=str(path))
        except configparser.MissingSectionHeaderError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}: got {exc.line.strip()!r} before any [section] header, "
                "expected a section such as [architecture_presets] first"
            ) from None
        except configparser.DuplicateSectionError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}: [{exc.section}]: duplicate section, expected each "
                "section once"
            ) from None
        except configparser.DuplicateOptionError as exc:
            raise ConfigError(
                f"{path}:{exc.lineno}: {exc.section}.{exc.option}: duplicate key, expected "
                "each key once"
            ) from None
        except configparser.ParsingError as exc:
            lineno = exc.errors[0][0]
            lines = text.splitlines()
            line = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
            raise ConfigError(
                f"{path}:{lineno}: cannot parse {line!r}, expected 'key = value' or 'key: value'"
            ) from None
        except configparser.Error as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{path}: cannot parse the .cfg file: {first}") from None

        # section -> lower-case key -> (key as written, value)
        self.data: dict[str, dict[str, tuple[str, str]]] = {}
        for section in parser.sections():
            if section not in CFG_KEYS:
                hint = difflib.get_close_matches(section.lower(), list(CFG_KEYS), n=1)
                more = f" (did you mean [{hint[0]}]?)" if hint else ""
                raise ConfigError(
                    f"{self._where(section, '')}[{section}]: unknown section{more}; SCALE-Sim "
                    f"sections: {', '.join(CFG_KEYS)}"
                )
            canonical = {k.lower(): k for k in CFG_KEYS[section]}
            entries: dict[str, tuple[str, str]] = {}
            for key, value in parser.items(section, raw=True):
                low = key.lower()
                if low not in canonical:
                    hint = difflib.get_close_matches(low, list(canonical), n=1)
                    more = f" (did you mean {canonical[hint[0]]!r}?)" if hint else ""
                    raise ConfigError(
                        f"{self._where(section, low)}{section}.{key}: unknown key{more}; "
                        f"allowed keys: {', '.join(CFG_KEYS[section])}"
                    )
                if low in entries:
                    raise ConfigError(
                        f"{self._where(section, low, 1)}{section}.{key}: duplicate key (also "
                        f"given as {entries[low][0]!r}; keys are case-insensitive), expected "
                        "each key once"
                    )
                entries[low] = (key, value)
            self.data[section] = entries

    def _where(self, section: str, low_key: str, nth: int = 0) -> str:
        lines = self.lines.get((section, low_key), [])
        return f"{self.path}:{lines[nth]}: " if nth < len(lines) else f"{self.path}: "

    def _canonical(self, section: str, key: str) -> str:
        return next(k for k in CFG_KEYS[section] if k.lower() == key.lower())

    def raw(self, section: str, key: str, *, required: bool = False) -> str | None:
        entry = self.data.get(section, {}).get(key.lower())
        if entry is None:
            if required:
                raise ConfigError(
                    f"{self.path}: {section}.{self._canonical(section, key)}: missing, expected "
                    f"a value (SCALE-Sim requires it in [{section}])"
                )
            return None
        return entry[1]

    def fail(self, section: str, key: str, value: str, allowed: str) -> ConfigError:
        note = ""
        if re.search(r"\s[#;]", value):
            note = " (inline comments are not supported: they are part of the value)"
        return ConfigError(
            f"{self._where(section, key.lower())}{section}.{self._canonical(section, key)}: "
            f"got {value!r}, expected {allowed}{note}"
        )

    def int_(
        self,
        section: str,
        key: str,
        default: int | None = None,
        *,
        lo: int = 1,
        hi: int | None = None,
        required: bool = False,
    ) -> int | None:
        value = self.raw(section, key, required=required)
        if value is None:
            return default
        allowed = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        if not _is_int(value.strip()):
            raise self.fail(section, key, value, allowed)
        number = int(value)
        if number < lo or (hi is not None and number > hi):
            raise self.fail(section, key, value, allowed)
        return number

    def req_int(self, section: str, key: str, *, lo: int = 1, hi: int | None = None) -> int:
        number = self.int_(section, key, lo=lo, hi=hi, required=True)
        assert number is not None  # required=True raises instead of returning None
        return number

    def opt_int(
        self, section: str, key: str, default: int, *, lo: int = 1, hi: int | None = None
    ) -> int:
        number = self.int_(section, key, default, lo=lo, hi=hi)
        assert number is not None  # a default is given
        return number

    def bool_(self, section: str, key: str, default: bool = False) -> bool:
        value = self.raw(section, key)
        if value is None:
            return default
        state = _BOOL_STATES.get(value.strip().lower())
        if state is None:
            raise self.fail(section, key, value, "a boolean (True/False, yes/no, on/off, 1/0)")
        return state

    def choice(
        self, section: str, key: str, choices: tuple[str, ...], default: str | None = None
    ) -> str:
        value = self.raw(section, key, required=default is None)
        if value is None:
            assert default is not None  # required=True raises instead of returning None
            return default
        if value not in choices:
            raise self.fail(section, key, value, f"one of {', '.join(choices)}")
        return value

    def int_list(self, section: str, key: str) -> tuple[int, ...]:
        value = self.raw(section, key)
        if value is None:
            return ()
        parts = [p.strip() for p in value.split(",")]
        allowed = f"a comma-separated list of integers in [1, {_MAX_WORDS_PER_CYCLE}]"
        if not all(_is_int(p) and 1 <= int(p) <= _MAX_WORDS_PER_CYCLE for p in parts):
            raise self.fail(section, key, value, allowed)
        return tuple(int(p) for p in parts)


def read_scalesim_cfg(
    path: str | Path, *, tech: TechParams | None = None
) -> tuple[HardwareConfig, ScaleSimCfgInfo]:
    """Read a SCALE-Sim .cfg as an accelsim :class:`HardwareConfig` plus the raw settings.

    ``tech`` (default :func:`~accelsim.config.default_tech`) supplies the clock ``fnom`` that
    turns SCALE-Sim's words/cycle into bytes/s. The mapping, accepted keys and quirks are in the
    module docstring. Raises :class:`~accelsim.errors.ConfigError` (one line naming the file,
    line and ``section.Key``).
    """
    p = Path(path)
    cfg = _Cfg(p, _read_text(p, "SCALE-Sim config", ConfigError))
    tech = tech if tech is not None else default_tech()

    arch = "architecture_presets"
    rows = cfg.req_int(arch, "ArrayHeight", hi=65536)
    cols = cfg.req_int(arch, "ArrayWidth", hi=65536)
    ifmap_kb = cfg.req_int(arch, "IfmapSramSzkB", hi=_MAX_SRAM_KB)
    filter_kb = cfg.req_int(arch, "FilterSramSzkB", hi=_MAX_SRAM_KB)
    ofmap_kb = cfg.req_int(arch, "OfmapSramSzkB", hi=_MAX_SRAM_KB)
    dataflow_text = cfg.choice(arch, "Dataflow", DATAFLOWS)
    dataflow: Dataflow = "os" if dataflow_text == "os" else "ws" if dataflow_text == "ws" else "is"
    offsets = (
        cfg.opt_int(arch, "IfmapOffset", 0, lo=0),
        cfg.opt_int(arch, "FilterOffset", 10_000_000, lo=0),
        cfg.opt_int(arch, "OfmapOffset", 20_000_000, lo=0),
    )
    bandwidth = cfg.int_list(arch, "Bandwidth")
    read_buffer = cfg.int_(arch, "ReadRequestBuffer")
    write_buffer = cfg.int_(arch, "WriteRequestBuffer")

    layout = "layout"
    ifmap_custom = cfg.bool_(layout, "IfmapCustomLayout")
    filter_custom = cfg.bool_(layout, "FilterCustomLayout")
    ifmap_bw = cfg.opt_int(layout, "IfmapSRAMBankBandwidth", 10, hi=_MAX_WORDS_PER_CYCLE)
    filter_bw = cfg.opt_int(layout, "FilterSRAMBankBandwidth", 10, hi=_MAX_WORDS_PER_CYCLE)
    for operand in ("Ifmap", "Filter"):
        cfg.opt_int(layout, f"{operand}SRAMBankNum", 10)
        cfg.opt_int(layout, f"{operand}SRAMBankPort", 2)

    sparsity = "sparsity"
    sparsity_support = cfg.bool_(sparsity, "SparsitySupport")
    cfg.bool_(sparsity, "OptimizedMapping")
    cfg.opt_int(sparsity, "BlockSize", 4)
    cfg.opt_int(sparsity, "RandomNumberGeneratorSeed", 40, lo=0)

    run = "run_presets"
    mode_text = cfg.choice(run, "InterfaceBandwidth", ("CALC", "USER"), "CALC")
    mode: Literal["CALC", "USER"] = "USER" if mode_text == "USER" else "CALC"
    ramulator = cfg.bool_(run, "UseRamulatorTrace")
    if mode == "USER" and not bandwidth:
        raise ConfigError(
            f"{p}: {arch}.Bandwidth: missing, expected a value (SCALE-Sim requires it when "
            "run_presets.InterfaceBandwidth is USER)"
        )

    run_name = cfg.raw("general", "run_name")
    topology = cfg.raw("network_presets", "TopologyCsvLoc")
    if topology is not None:
        topology = topology.strip().strip("\"'")

    notes: list[str] = []
    if ifmap_custom or filter_custom:
        notes.append("layout.*CustomLayout = True: SRAM bank conflicts are not modeled")
    if ramulator:
        notes.append(
            "run_presets.UseRamulatorTrace = True: Ramulator DRAM latencies are not modeled"
        )
    if sparsity_support:
        notes.append("sparsity.SparsitySupport = true: N:M sparsity is not modeled (dense)")

    if mode == "USER":
        words = min(ifmap_bw, filter_bw)
        dram_bandwidth = words * 1 * tech.fnom
        dram_latency = 1.0 / tech.fnom
        dram_words: int | None = words
    else:
        dram_bandwidth = CALC_DRAM_BANDWIDTH
        dram_latency = 0.0
        dram_words = None

    try:
        hardware = HardwareConfig(
            array=ArrayConfig(rows=rows, cols=cols, dataflow=dataflow),
            memory=MemoryConfig(
                ifmap_sram_kb=float(ifmap_kb),
                filter_sram_kb=float(filter_kb),
                ofmap_sram_kb=float(ofmap_kb),
                word_bytes=1,
                dram_bandwidth=dram_bandwidth,
                dram_latency_s=dram_latency,
            ),
            tech=tech,
        )
    except ConfigError as exc:  # e.g. a huge USER bandwidth x tech.fnom beyond MemoryConfig's range
        raise ConfigError(f"{p}: {exc}") from None

    info = ScaleSimCfgInfo(
        path=str(p),
        run_name=run_name if run_name is not None else "scale_run",
        interface_bandwidth=mode,
        bandwidth=bandwidth,
        ifmap_dram_words_per_cycle=ifmap_bw,
        filter_dram_words_per_cycle=filter_bw,
        ofmap_dram_words_per_cycle=bandwidth[0] if bandwidth else None,
        dram_words_per_cycle=dram_words,
        ifmap_offset=offsets[0],
        filter_offset=offsets[1],
        ofmap_offset=offsets[2],
        read_request_buffer=read_buffer,
        write_request_buffer=write_buffer,
        ifmap_custom_layout=ifmap_custom,
        filter_custom_layout=filter_custom,
        use_ramulator_trace=ramulator,
        sparsity_support=sparsity_support,
        topology=topology,
        not_modeled=tuple(notes),
    )
    return hardware, info
