"""``accelsim calibrate``: refit the delay model and rederive the energy defaults from the data.

The data are CSV files in ``calib/`` (the ``accelsim.calib`` package), every row with its
citation to ../shared/reference/timing.md and a confidence tag ([V] verified, [S] own simulation,
[M] from memory); see ``calib/README.md``. Two fits:

* :func:`accelsim.calib.fit_delay.fit_delay`: alpha-power law (alpha, Vt) jointly over the PTM
  45/32/22 nm delay curves and the exponential tail below ``v_tail`` -> ``calib/delay.toml``;
* :func:`accelsim.calib.fit_energy.derive_energy`: MAC, SRAM, DRAM and leakage defaults ->
  ``calib/energy.toml``.

:func:`run_calibration` runs both and, with ``write=True``, rewrites the two parameter files in
their format (one table per field: value, unit, source, confidence). ``guardband`` is derived
from the sign-off margin stack of ``calib/signoff.toml`` (:func:`derive_guardband`) and checked
against the published margins through the typical chip's measured guardband
(:func:`accelsim.timing.errors.measured_guardband`). Fields that are not fitted (``v_min``,
``v_max``, ``vnom``, ``fnom``, ...) are carried over unchanged from the shipped files; fitted fields get a provenance string with the fit quality. Output is
deterministic: running it twice writes byte-identical files. A fit that fails its quality gates
raises :class:`CalibrationError` and writes nothing. :func:`format_report` renders the result.

:func:`ter_points` returns the published TER-versus-voltage points (``calib/ter_vs_voltage.csv``)
for a later comparison with the timing model.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from accelsim.calib.fit_delay import (
    FIT_RANGE,
    JOINT_MAX_TOL,
    JOINT_RMS_TOL,
    PER_NODE_MAX_ERR,
    PUBLISHED_FITS,
    TAIL_EFOLD_RANGE,
    CalibrationError,
    DelayFit,
    ModelQuality,
    fit_delay,
    model_quality,
    parse_float,
    read_calib_csv,
)
from accelsim.calib.fit_energy import EnergyDerivation, derive_energy
from accelsim.timing.delay import DelayParams

__all__ = [
    "CalibrationError",
    "CalibrationReport",
    "ParameterRow",
    "TerComparison",
    "TerPoint",
    "compare_ter",
    "format_report",
    "render_param_file",
    "run_calibration",
    "ter_points",
]

DELAY_FILE = "delay.toml"
ENERGY_FILE = "energy.toml"
SIGNOFF_FILE = "signoff.toml"
TER_FILE = "ter_vs_voltage.csv"

_DELAY_HEADER = """\
# Delay-versus-voltage model parameters (accelsim.timing.delay.DelayParams).
# Basis: ../shared/reference/timing.md sections 1.1, 1.2 and 9. Written by `accelsim calibrate`
# (accelsim/calibration.py): alpha, vt, v_tail and tail_volts_per_efold are refit from
# calib/delay_vs_voltage.csv (calib/fit_delay.py); guardband is derived from the sign-off stack
# in calib/signoff.toml; the other fields are carried over unchanged.
# Edit the CSV and rerun `accelsim calibrate --write` rather than editing fitted values here.
"""

_ENERGY_HEADER = """\
# Default technology / energy parameters (28 nm-like planar node), one table per TechParams field.
# Every entry: value, unit, source, confidence ([V] verified in a cited source, [S] our own
# simulation, [M] from memory of the literature / derived assumption). The basis for all of
# these is ../shared/reference/timing.md section 9 (and sections 1.3 and 5 for the raw numbers).
# Written by `accelsim calibrate` (accelsim/calibration.py): the energies and leakage fields are
# rederived from calib/energy_per_op.csv and calib/leakage_vs_voltage.csv (calib/fit_energy.py);
# the other fields are carried over unchanged.
# `accelsim` reads this file through importlib.resources (it ships as accelsim.calib).
"""


# --------------------------------------------------------------------------- TER data hook


@dataclass(frozen=True)
class TerPoint:
    """A published timing-error rate ``ter`` (errors per MAC-cycle) at supply ``vdd`` (V).

    ``scenario`` is ``"dnn-ws"`` or ``"random"`` (timing.md s2.4 item 2 [S]); ``signoff`` says
    how the MAC was signed off. ``ter == 0`` means no errors were observed (below resolution).
    """

    scenario: str
    vdd: float
    ter: float
    signoff: str
    source: str
    confidence: str


def ter_points(scenario: str | None = None) -> tuple[TerPoint, ...]:
    """Rows of ``calib/ter_vs_voltage.csv`` (optionally one scenario), in file order.

    Hook for comparing the timing model's TER with the published points (not done here).
    """
    rows = read_calib_csv(TER_FILE, ("scenario", "vdd", "ter", "signoff", "confidence"))
    out: list[TerPoint] = []
    for i, r in enumerate(rows, start=2):
        ter = parse_float(TER_FILE, i, "ter", r["ter"])
        if not 0.0 <= ter <= 1.0:
            raise CalibrationError(f"calib/{TER_FILE} line {i}: ter: got {ter:g}, expected 0-1")
        point = TerPoint(
            scenario=r["scenario"].strip(),
            vdd=parse_float(TER_FILE, i, "vdd", r["vdd"]),
            ter=ter,
            signoff=r["signoff"].strip(),
            source=r["source"].strip(),
            confidence=r["confidence"].strip(),
        )
        if scenario is None or point.scenario == scenario:
            out.append(point)
    return tuple(out)


#: Operand scenario of the timing model compared with each published scenario: the published
#: DNN-WS row matches the model's non-negative-weight stream, on which the sensitized constants
#: were calibrated (calib/sensitized.toml); the uniform-random row is compared as is.
TER_MODEL_SCENARIO = {"dnn-ws": "dnn-ws-nonneg", "random": "random"}


@dataclass(frozen=True)
class TerComparison:
    """The timing model's TER beside a published point, under the published sign-off.

    The published MAC is signed off at the nominal 0.9 V with no extra margin, so the model is
    evaluated without guardband, variation or droop: ``TER = P(s > d(Vnom)/d(V))`` over
    ``n_samples`` sensitized delays of the matching operand scenario (``model_scenario``).
    ``resolution`` is ``1/n_samples``.
    """

    point: TerPoint
    model_scenario: str
    model: float
    resolution: float

    @property
    def log10_ratio(self) -> float | None:
        """``log10(model / published)``; None where either is zero (below resolution)."""
        if self.model <= 0 or self.point.ter <= 0:
            return None
        return math.log10(self.model / self.point.ter)


def compare_ter(
    *, n_samples: int = 1 << 20, seed: int = 0, vnom: float = 0.9
) -> tuple[TerComparison, ...]:
    """The timing model's TER at every point of ``calib/ter_vs_voltage.csv`` (deterministic
    given ``seed``): the check of the sensitized-delay model against the published table."""
    import numpy as np

    from accelsim.rng import rng_for
    from accelsim.timing.delay import default_delay_params, normalized_delay
    from accelsim.timing.sensitized import default_sensitized_params, sample_sensitized_delays

    delay = default_delay_params()
    sens = default_sensitized_params()
    out: list[TerComparison] = []
    cache: dict[str, Any] = {}
    for point in ter_points():
        scenario = TER_MODEL_SCENARIO.get(point.scenario)
        if scenario is None:
            raise CalibrationError(
                f"calib/{TER_FILE}: scenario {point.scenario!r} has no model scenario; "
                f"expected one of {', '.join(TER_MODEL_SCENARIO)}"
            )
        if scenario not in cache:
            s = sample_sensitized_delays(
                n_samples, rng_for(seed, "calibrate-ter", scenario), scenario, sens
            )
            cache[scenario] = np.sort(s)
        s_sorted = cache[scenario]
        theta = 1.0 / float(normalized_delay(point.vdd, vnom, delay))
        above = s_sorted.size - int(np.searchsorted(s_sorted, theta, side="right"))
        out.append(TerComparison(point, scenario, above / s_sorted.size, 1.0 / n_samples))
    return tuple(out)


# --------------------------------------------------------------------------- sign-off


@dataclass(frozen=True)
class Signoff:
    """The sign-off margin stack (``calib/signoff.toml``) and the guardband it implies.

    ``supply_margin`` and ``process_sigmas`` as in the file; ``guardband`` the derived
    typical-corner guardband (fraction of Vnom at which the typical static critical path meets
    ``1/fnom``); ``corner_factor`` the delay factor of the sign-off die relative to the typical
    one at the sign-off voltage.
    """

    supply_margin: float
    process_sigmas: float
    guardband: float
    corner_factor: float
    v_corner: float


def derive_guardband(
    delay: DelayParams,
    variation: Any,
    *,
    vnom: float = 0.9,
    supply_margin: float | None = None,
    process_sigmas: float | None = None,
) -> Signoff:
    """The typical-corner guardband implied by the sign-off stack (``calib/signoff.toml``).

    The sign-off die is ``n = process_sigmas`` sigma slow die to die, with an OCV derate of
    ``n`` within-die sigma, at the corner supply ``Vc = (1 - supply_margin) Vnom``; sigmas are
    scaled to ``Vc`` as the model scales them. Its static critical path meets ``1/fnom`` there,
    so the typical die's meets it at ``V*`` with ``d(V*) = d(Vc) * exp(k(Vc) n (s_d2d + s_wid))``,
    and the guardband is ``1 - V* / Vnom``.
    """
    from accelsim.timing.delay import normalized_delay, sigma_scale

    file = _shipped(SIGNOFF_FILE)
    margin = float(file["supply_margin"]["value"]) if supply_margin is None else supply_margin
    n = float(file["process_sigmas"]["value"]) if process_sigmas is None else process_sigmas
    v_corner = (1.0 - margin) * vnom
    k = float(sigma_scale(v_corner, vnom, delay))
    s_wid = math.hypot(variation.sigma_sys, variation.sigma_rnd)
    factor = math.exp(k * n * (variation.sigma_d2d + s_wid))
    target = float(normalized_delay(v_corner, vnom, delay)) * factor
    lo, hi = delay.v_min, v_corner
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(normalized_delay(mid, vnom, delay)) > target:
            lo = mid
        else:
            hi = mid
    v_star = 0.5 * (lo + hi)
    return Signoff(margin, n, 1.0 - v_star / vnom, factor, v_corner)


# --------------------------------------------------------------------------- TOML writing


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_float(x: float) -> str:
    """Exact decimal form of ``x``; outside [1e-3, 1e6) in engineering notation with an
    exponent that is a multiple of 3 and a mantissa in [0.1, 100) (``0.25e-12``, ``44.1e-6``,
    ``1e9``), which reads as pJ / uW / GHz."""
    if not math.isfinite(x):
        raise CalibrationError(f"cannot write non-finite value {x!r}")
    if x == 0.0 or 1e-3 <= abs(x) < 1e6:
        return repr(x)
    exact = Decimal(repr(x))
    e0 = 3 * math.floor(math.log10(abs(x)) / 3)
    exp = e0 if abs(exact.scaleb(-e0)) < 100 else e0 + 3
    text = f"{format(exact.scaleb(-exp).normalize(), 'f')}e{exp}"
    return text if float(text) == x else repr(x)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _toml_float(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise CalibrationError(f"cannot write value {value!r} of type {type(value).__name__}")


def render_param_file(header: str, tables: dict[str, dict[str, Any]]) -> str:
    """A calib parameter file: ``header`` comment, then one ``[field]`` table per entry with its
    keys in the order value, unit, source, confidence (then any others)."""
    lines = [header.rstrip("\n"), ""]
    order = ("value", "unit", "source", "confidence")
    for name, entry in tables.items():
        lines.append(f"[{name}]")
        keys = [k for k in order if k in entry] + [k for k in entry if k not in order]
        lines.extend(f"{k} = {_toml_value(entry[k])}" for k in keys)
        lines.append("")
    return "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def _shipped(name: str) -> dict[str, dict[str, Any]]:
    text = resources.files("accelsim.calib").joinpath(name).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for key, entry in data.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise CalibrationError(f"calib/{name}: [{key}] is not a table with a value")
    return data


def _default_out_dir() -> Path:
    path = Path(str(resources.files("accelsim.calib")))
    if not path.is_dir():
        raise CalibrationError(
            f"the installed accelsim.calib package ({path}) is not a directory; pass out_dir"
        )
    return path


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ParameterRow:
    """One written parameter: its new and previous values and how it was obtained
    (``status`` is ``"fitted"``, ``"derived"`` or ``"kept"``)."""

    file: str
    name: str
    value: Any
    previous: Any
    status: str
    note: str


@dataclass(frozen=True)
class CalibrationReport:
    """Everything :func:`run_calibration` computed (and where it wrote, if it did).

    ``delay_tables``/``energy_tables`` are the complete contents of the two parameter files
    (``{field: {value, unit, source, confidence}}``); ``previous_delay_quality`` is the fit
    quality of the previous delay.toml against the same data.
    """

    delay: DelayFit
    energy: EnergyDerivation
    delay_tables: dict[str, dict[str, Any]]
    energy_tables: dict[str, dict[str, Any]]
    rows: tuple[ParameterRow, ...]
    previous_delay_quality: ModelQuality | None
    ter: tuple[TerPoint, ...]
    written: tuple[Path, ...]
    ter_comparison: tuple[TerComparison, ...] = ()
    signoff: Signoff | None = None
    guardband_measured: Any = None

    @property
    def delay_text(self) -> str:
        """The delay.toml text (written or to be written)."""
        return render_param_file(_DELAY_HEADER, self.delay_tables)

    @property
    def energy_text(self) -> str:
        """The energy.toml text (written or to be written)."""
        return render_param_file(_ENERGY_HEADER, self.energy_tables)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _delay_sources(fit: DelayFit) -> dict[str, str]:
    q = fit.quality
    per_node_q = ", ".join(
        f"{n.node.split('@')[0]} {_pct(n.rms_alpha_range)}/{_pct(n.max_alpha_range)}"
        for n in q.nodes
    )
    per_node_fit = "/".join(f"{f.alpha:.2f}" for f in fit.per_node)
    per_node_vt = "/".join(f"{f.vt:.3f}" for f in fit.per_node)
    names = [n.node.split("@")[0] for n in q.nodes]
    published = "/".join(
        f"{PUBLISHED_FITS[(n, 27)][0]:g}" for n in names if (n, 27) in PUBLISHED_FITS
    )
    published_vt = "/".join(
        f"{PUBLISHED_FITS[(n, 27)][1]:g}" for n in names if (n, 27) in PUBLISHED_FITS
    )
    nodes = "/".join(n.split("_")[0].removesuffix("nm") for n in names)
    common = (
        f"accelsim calibrate: joint alpha-power fit over PTM {nodes} nm HP FO4 delays "
        f"{FIT_RANGE[0]:g}-{FIT_RANGE[1]:g} V at 27 C, each node normalized at its nominal "
        "(calib/delay_vs_voltage.csv, timing.md s1.2 [S]); error of the rounded model over "
        f"{FIT_RANGE[0]:g}-{FIT_RANGE[1]:g} V rms/max {_pct(q.rms_alpha_range)}/"
        f"{_pct(q.max_alpha_range)} ({per_node_q})"
    )
    t = fit.tail
    efold = "/".join(f"{1000 * v:.0f}" for v in t.node_efold.values())
    decade_mv = 1000 * fit.params["tail_volts_per_efold"] * math.log(10)
    node_max = ", ".join(
        f"{name} {_pct(n.max_all)}" for name, n in zip(names, q.nodes, strict=True)
    )
    tail_q = (
        f"model error over 0.4-1.1 V rms/max {_pct(q.rms_all)}/{_pct(q.max_all)} (max: {node_max})"
    )
    return {
        "alpha": f"{common}; unrounded {fit.raw['alpha']:.4f}; per-node fits {per_node_fit} "
        f"(timing.md s1.2: {published}); timing.md s9 range 1.3-1.5",
        "vt": f"{common}; unrounded {fit.raw['vt']:.4f} V; per-node fits {per_node_vt} V "
        f"(timing.md s1.2: {published_vt} V)",
        "v_tail": "accelsim calibrate: where the joint alpha law's log-slope alpha/(V-Vt) - 1/V "
        "equals the tail's 1/tail_volts_per_efold (junction continuous in value and slope); "
        f"unrounded {fit.raw['v_tail']:.4f} V; the law fails near threshold (PTM 0.4-0.5 V, "
        f"timing.md s1.2 [S]); {tail_q}",
        "tail_volts_per_efold": "accelsim calibrate: pooled log-slope of the PTM delays over "
        f"0.4-0.5 V (calib/delay_vs_voltage.csv; per node {efold} mV per e-fold; timing.md s1.2 "
        f"[S]: 57-65 mV); unrounded {1000 * fit.raw['tail_volts_per_efold']:.2f} mV, one decade "
        f"per {decade_mv:.0f} mV; {tail_q}",
    }


def _build_delay_tables(
    fit: DelayFit, base: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[ParameterRow]]:
    sources = _delay_sources(fit)
    tables: dict[str, dict[str, Any]] = {}
    rows: list[ParameterRow] = []
    names = list(base) + [k for k in fit.params if k not in base]
    for name in names:
        entry = dict(base.get(name, {}))
        if name in fit.params:
            entry["value"] = fit.params[name]
            entry.setdefault("unit", _DELAY_UNITS.get(name, ""))
            entry["source"] = sources[name]
            entry["confidence"] = "S"
            status = "fitted"
            note = f"unrounded {fit.raw[name]:.5g}"
        else:
            status, note = "kept", "not fitted"
        tables[name] = entry
        rows.append(
            ParameterRow(
                DELAY_FILE, name, entry["value"], base.get(name, {}).get("value"), status, note
            )
        )
    return tables, rows


_DELAY_UNITS = {
    "alpha": "dimensionless (alpha-power law exponent)",
    "vt": "V (effective threshold of the alpha-power fit)",
    "v_tail": "V: below it delay grows exponentially",
    "tail_volts_per_efold": "V per e-fold of delay below v_tail",
}


def _build_energy_tables(
    energy: EnergyDerivation, base: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[ParameterRow]]:
    tables: dict[str, dict[str, Any]] = {}
    rows: list[ParameterRow] = []
    names = list(base) + [k for k in energy.values if k not in base]
    for name in names:
        entry = dict(base.get(name, {}))
        if name in energy.values:
            d = energy.values[name]
            entry["value"] = d.value
            entry.setdefault("unit", "")
            entry["source"] = d.source
            entry["confidence"] = d.confidence
            status = "derived"
            if isinstance(d.unrounded, float):
                note = f"unrounded {d.unrounded:.4g}"
            else:
                note = "exact"
        else:
            status, note = "kept", "not derived"
        tables[name] = entry
        rows.append(
            ParameterRow(
                ENERGY_FILE, name, entry["value"], base.get(name, {}).get("value"), status, note
            )
        )
    return tables, rows


def _signoff_guardband(
    tables: dict[str, dict[str, Any]],
    rows: list[ParameterRow],
    base: dict[str, dict[str, Any]],
    base_energy: dict[str, dict[str, Any]],
) -> tuple[Signoff, Any]:
    """Derive delay.toml's ``guardband`` from the sign-off stack (in place in ``tables`` and
    ``rows``) and measure the typical chip's guardband with the new delay parameters."""
    from accelsim.timing.errors import TimingModel, measured_guardband
    from accelsim.timing.variation import default_variation_params

    delay = DelayParams(**{k: v["value"] for k, v in tables.items()})
    vnom = float(base_energy.get("vnom", {}).get("value", 0.9))
    variation = default_variation_params()
    signoff = derive_guardband(delay, variation, vnom=vnom)
    value = round(signoff.guardband, 3)
    model = TimingModel.default()
    model = TimingModel(
        vnom=vnom,
        fnom=model.fnom,
        delay=DelayParams(**{**{k: v["value"] for k, v in tables.items()}, "guardband": value}),
        sensitized=model.sensitized,
        variation=variation,
    )
    measured = measured_guardband(model)
    entry = dict(tables.get("guardband", {}))
    entry["value"] = value
    entry["unit"] = (
        "fraction of Vnom: the typical-corner static critical path meets 1/fnom at "
        "(1 - guardband) * Vnom"
    )
    entry["source"] = (
        f"accelsim calibrate from calib/{SIGNOFF_FILE}: the static critical path of a die "
        f"{signoff.process_sigmas:g} sigma slow die to die with a {signoff.process_sigmas:g} "
        f"sigma within-die OCV derate (calib/variation.toml, scaled to the corner voltage: delay "
        f"x{signoff.corner_factor:.3f}) meets 1/fnom at the -{100 * signoff.supply_margin:g}% "
        f"supply corner ({signoff.v_corner:.3f} V); unrounded {signoff.guardband:.4f}. Check: the "
        f"typical chip's measured guardband (< 1 expected error per 1e9 MACs, PE variation, droop "
        f"and noise on) is {100 * measured.fraction:.1f}% of Vnom ({measured.vdd:.3f} V), inside "
        "the published 10-20% (Reddi 14%, Leng ~20%; timing.md s2.3-2.4, s9)"
    )
    entry["confidence"] = "M (stack), S (derivation)"
    tables["guardband"] = entry
    for i, r in enumerate(rows):
        if r.name == "guardband":
            rows[i] = ParameterRow(
                DELAY_FILE,
                "guardband",
                value,
                base.get("guardband", {}).get("value"),
                "derived",
                f"sign-off stack, unrounded {signoff.guardband:.4f}",
            )
    return signoff, measured


# --------------------------------------------------------------------------- entry points


def run_calibration(*, write: bool = False, out_dir: Path | None = None) -> CalibrationReport:
    """Run both fits; with ``write``, write delay.toml and energy.toml into ``out_dir``.

    ``out_dir`` defaults to the installed ``accelsim.calib`` package directory (the shipped
    parameter files). The previous values (for the report and for the fields that are carried
    over) come from the shipped files. Raises :class:`CalibrationError` (and writes nothing) if
    the delay fit fails its quality gates.
    """
    base_delay = _shipped(DELAY_FILE)
    base_energy = _shipped(ENERGY_FILE)
    fit = fit_delay()
    failures = fit.quality_failures()
    if failures:
        raise CalibrationError("delay fit failed its quality gates: " + "; ".join(failures))
    fnom = base_energy.get("fnom", {}).get("value", 1.0e9)
    energy = derive_energy(fnom=float(fnom))
    delay_tables, delay_rows = _build_delay_tables(fit, base_delay)
    signoff, measured = _signoff_guardband(delay_tables, delay_rows, base_delay, base_energy)
    energy_tables, energy_rows = _build_energy_tables(energy, base_energy)
    try:
        previous = DelayParams(**{k: v["value"] for k, v in base_delay.items()})
        previous_quality: ModelQuality | None = model_quality(previous)
    except (TypeError, ValueError):
        previous_quality = None
    # The new delay.toml must build a valid DelayParams.
    DelayParams(**{k: v["value"] for k, v in delay_tables.items()})
    report = CalibrationReport(
        delay=fit,
        energy=energy,
        delay_tables=delay_tables,
        energy_tables=energy_tables,
        rows=tuple(delay_rows + energy_rows),
        previous_delay_quality=previous_quality,
        ter=ter_points(),
        written=(),
        ter_comparison=compare_ter(),
        signoff=signoff,
        guardband_measured=measured,
    )
    if not write:
        return report
    target = _default_out_dir() if out_dir is None else Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    delay_path = target / DELAY_FILE
    energy_path = target / ENERGY_FILE
    _write_atomic(delay_path, report.delay_text)
    _write_atomic(energy_path, report.energy_text)
    return CalibrationReport(
        delay=report.delay,
        energy=report.energy,
        delay_tables=report.delay_tables,
        energy_tables=report.energy_tables,
        rows=report.rows,
        previous_delay_quality=report.previous_delay_quality,
        ter=report.ter,
        written=(delay_path, energy_path),
        ter_comparison=report.ter_comparison,
        signoff=report.signoff,
        guardband_measured=report.guardband_measured,
    )


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    return str(value)


def format_report(report: CalibrationReport) -> str:
    """A human-readable summary: each parameter (value, previous, how obtained) and the delay
    fit's quality per node (rms / max relative error), for the new and previous parameters."""
    fit = report.delay
    lines: list[str] = []
    add = lines.append
    add("Delay model (calib/delay.toml): joint alpha-power fit + exponential tail")
    add(
        "  data: PTM 45/32/22 nm HP FO4 delays at 27 C (calib/delay_vs_voltage.csv, timing.md s1.2)"
    )
    add(f"  {'parameter':<22} {'value':>10} {'previous':>10}  how")
    for r in report.rows:
        if r.file == DELAY_FILE:
            prev = "-" if r.previous is None else _fmt_value(r.previous)
            add(f"  {r.name:<22} {_fmt_value(r.value):>10} {prev:>10}  {r.status} ({r.note})")
    add("")
    add("  Fit quality: relative error of d(V)/d(Vnom); each node's nominal point excluded")
    head = f"  {'node':<14} {'vnom':>5} {'rms 0.5-1.1V':>13} {'max 0.5-1.1V':>13} {'rms 0.4-1.1V':>13} {'max 0.4-1.1V':>13}"
    prev_q = report.previous_delay_quality
    if prev_q is not None:
        head += f"   {'previous rms/max 0.5-1.1V':>26}"
    add(head)
    prev_nodes = {n.node: n for n in prev_q.nodes} if prev_q is not None else {}
    for n in fit.quality.nodes:
        line = (
            f"  {n.node:<14} {n.vnom:>5.2f} {_pct(n.rms_alpha_range):>13} "
            f"{_pct(n.max_alpha_range):>13} {_pct(n.rms_all):>13} {_pct(n.max_all):>13}"
        )
        if n.node in prev_nodes:
            p = prev_nodes[n.node]
            line += f"   {_pct(p.rms_alpha_range) + ' / ' + _pct(p.max_alpha_range):>26}"
        add(line)
    q = fit.quality
    line = (
        f"  {'all nodes':<14} {'':>5} {_pct(q.rms_alpha_range):>13} {_pct(q.max_alpha_range):>13} "
        f"{_pct(q.rms_all):>13} {_pct(q.max_all):>13}"
    )
    if prev_q is not None:
        line += f"   {_pct(prev_q.rms_alpha_range) + ' / ' + _pct(prev_q.max_alpha_range):>26}"
    add(line)
    add("")
    add("  Per-node alpha-power fits over 0.5-1.1 V (d = K V/(V-Vt)^alpha, free K)")
    add(
        f"  {'node':<14} {'alpha':>6} {'Vt':>6} {'rms':>6} {'max':>6}   "
        f"{'absolute-weighted alpha/Vt/max':>31}   {'timing.md s1.2':>14}"
    )
    for rel, absw in zip(fit.per_node, fit.per_node_published_method, strict=True):
        key = (rel.label.split("@")[0], 27)
        pub = PUBLISHED_FITS.get(key)
        pub_s = f"{pub[0]:g} / {pub[1]:g}" if pub else "-"
        add(
            f"  {rel.label:<14} {rel.alpha:>6.3f} {rel.vt:>6.3f} {_pct(rel.rms):>6} "
            f"{_pct(rel.max_err):>6}   "
            f"{f'{absw.alpha:.3f} / {absw.vt:.3f} / {_pct(absw.max_err)}':>31}   {pub_s:>14}"
        )
    t = fit.tail
    per_node_efold = ", ".join(f"{k} {1000 * v:.1f}" for k, v in t.node_efold.items())
    add(
        f"  Tail: {1000 * t.volts_per_efold:.1f} mV per e-fold (one decade per "
        f"{1000 * t.volts_per_efold * math.log(10):.0f} mV); per node {per_node_efold} mV; "
        f"v_tail {t.v_tail:.4f} V ({'slope-matched' if t.slope_matched else 'clamped'})"
    )
    failures = fit.quality_failures()
    gates = (
        f"per-node max <= {_pct(PER_NODE_MAX_ERR)}, joint rms <= {_pct(JOINT_RMS_TOL)} and "
        f"max <= {_pct(JOINT_MAX_TOL)}, tail {1000 * TAIL_EFOLD_RANGE[0]:.0f}-"
        f"{1000 * TAIL_EFOLD_RANGE[1]:.0f} mV per e-fold"
    )
    add(f"  Quality gates ({gates}): " + ("pass" if not failures else "; ".join(failures)))
    add("")
    so, mg = report.signoff, report.guardband_measured
    if so is not None and mg is not None:
        add(f"Sign-off and measured guardband (calib/{SIGNOFF_FILE})")
        add(
            f"  sign-off die: {so.process_sigmas:g} sigma slow (die to die) + {so.process_sigmas:g} "
            f"sigma OCV derate, delay x{so.corner_factor:.3f}, at the -"
            f"{100 * so.supply_margin:g}% corner {so.v_corner:.3f} V"
        )
        add(
            f"  -> guardband {so.guardband:.4f} (typical static critical path meets 1/fnom at "
            f"{(1 - so.guardband) * (so.v_corner / (1 - so.supply_margin)):.3f} V)"
        )
        add(
            f"  measured guardband of the typical chip (median die, PE variation, droop and noise "
            f"on; < 1 expected error per {mg.workload_macs:.0e} MACs at {mg.freq / 1e9:g} GHz): "
            f"{100 * mg.fraction:.1f}% of Vnom ({mg.vdd:.3f} V); published 10-20% "
            f"({'inside' if 0.10 <= mg.fraction <= 0.20 else 'OUTSIDE'})"
        )
        curve = {round(v, 4): p for v, p in mg.curve}
        show = [0.95, 0.9, 0.85, 0.81, 0.8, 0.78, 0.75, 0.72, 0.7, 0.65, 0.6]
        cells = [f"{v:.2f} V {curve[round(v, 4)]:.1e}" for v in show if round(v, 4) in curve]
        add("  typical-chip TER per MAC at 1 GHz: " + ", ".join(cells))
    add("")
    e = report.energy
    add("Energy defaults (calib/energy.toml), rederived from calib/energy_per_op.csv and")
    add("calib/leakage_vs_voltage.csv (timing.md s1.3, s5, s9)")
    add(f"  {'parameter':<22} {'value':>28} {'previous':>28}  how")
    for r in report.rows:
        if r.file == ENERGY_FILE:
            prev = "-" if r.previous is None else _fmt_value(r.previous)
            add(f"  {r.name:<22} {_fmt_value(r.value):>28} {prev:>28}  {r.status} ({r.note})")
    comps = ", ".join(f"{k} {v:.3f}" for k, v in e.mac_components_pj.items())
    add(
        f"  int8 MAC components at 28 nm (pJ): {comps}; Stillmaker 45->28 nm "
        f"{e.stillmaker_45_to_28:.3f}"
    )
    ks = ", ".join(f"{k} {v:.2f}" for k, v in e.leak_k_ptm.items())
    add(
        f"  leak_k: PTM k from current factors {ks} /V, tabulated mean "
        f"{e.leak_k_ptm_mean:.2f}; rule {e.leak_k_rule}"
    )
    add("")
    scen: dict[str, int] = {}
    for p in report.ter:
        scen[p.scenario] = scen.get(p.scenario, 0) + 1
    listed = ", ".join(f"{k} {v}" for k, v in scen.items())
    add(f"TER data: {len(report.ter)} points in calib/{TER_FILE} ({listed})")
    if report.ter_comparison:
        res = report.ter_comparison[0].resolution
        add(
            "  timing model under the published sign-off (0.9 V, no guardband, no variation or "
            f"droop), resolution {res:.1g}"
        )
        add(
            f"  {'scenario':<9} {'model stream':<14} {'V':>5} {'published':>10} {'model':>10} {'model/pub':>10}"
        )
        logs: dict[str, list[float]] = {}
        for c in report.ter_comparison:
            lr = c.log10_ratio
            ratio = "-" if lr is None else f"{10**lr:.2f}x"
            model = f"{c.model:.3g}" if c.model > 0 else f"< {c.resolution:.0e}"
            add(
                f"  {c.point.scenario:<9} {c.model_scenario:<14} {c.point.vdd:>5.2f} "
                f"{c.point.ter:>10.3g} {model:>10} {ratio:>10}"
            )
            if lr is not None:
                logs.setdefault(c.point.scenario, []).append(lr)
        for scenario, values in logs.items():
            rms = math.sqrt(sum(v * v for v in values) / len(values))
            add(
                f"  {scenario}: rms |log10(model/published)| {rms:.2f} over {len(values)} points "
                f"(a factor {10**rms:.1f}); worst {10 ** max(values, key=abs):.2f}x"
            )
    if report.written:
        add("Wrote: " + ", ".join(str(p) for p in report.written))
    else:
        add("Not written (dry run; --write rewrites the parameter files)")
    return "\n".join(lines)
