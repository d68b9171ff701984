"""Built-in trial kinds that need no model stack: ``synthetic`` and ``gemm-ter``.

``synthetic``
    A deterministic pseudo-trial for tests and executor checks. Any config keys are accepted;
    metrics are drawn from ``rng_for(seed, "synthetic", <config>)``. Control keys (part of the
    config, hence of the id): ``sleep`` (seconds to sleep first, default 0), ``fail`` (true:
    raise RuntimeError), ``fail_while_exists`` (a path: raise while that file exists, for
    retry tests) and ``crash`` (true: the worker process exits at once; never use serially).

``gemm-ter``
    One seeded random int8 GEMM ``(m, k) @ (k, n)`` run MAC by MAC on a ``rows x cols`` array
    by :func:`accelsim.kernels.exact.exact_gemm` at supply ``vdd`` (V) and clock ``freq``
    (GHz) on chip ``chip`` (a chip-map seed, or ``"typical"``), compared with the exact
    product. Keys and defaults: ``m = k = n = 64``, ``rows = cols = 16``, ``dataflow = "ws"``,
    ``vdd`` and ``freq`` required, ``chip = "typical"``, ``manifestation = "hold"``,
    ``operands = "dnn"`` (timing.md s3.2 DNN-WS statistics: weights N(0, 20) LSB, activations
    50 % zeros else exponential with mean 20 LSB; constants from :mod:`accelsim.timing.operands`)
    or ``"random"`` (uniform int8), ``seed = 0``. Metrics: ``critical_path_ratio``, ``macs``,
    ``errors`` (late MACs), ``ter`` (errors per MAC), ``wrong_outputs``, ``wrong_fraction``,
    ``max_abs_err``, ``mean_abs_err`` (over all outputs, LSB of the int32 result) and
    ``rel_fro_err`` (``||out - exact||_F / ||exact||_F``).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.config import check_choice, check_float, check_int, reject_unknown_keys
from accelsim.errors import ConfigError
from accelsim.rng import rng_for

from .registry import Metric, register_trial
from .spec import canonical_json

# --------------------------------------------------------------------------- synthetic

_SYNTHETIC_CONTROL = ("sleep", "fail", "fail_while_exists", "crash")


def _synthetic_normalize(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    out["seed"] = check_int("seed", out.get("seed", 0), 0)
    if "sleep" in out:
        out["sleep"] = check_float("sleep", out["sleep"], 0.0, 3600.0, unit="s")
    for key in ("fail", "crash"):
        if key in out and not isinstance(out[key], bool):
            raise ConfigError(f"{key}: got {out[key]!r}, expected true or false")
    if "fail_while_exists" in out and not isinstance(out["fail_while_exists"], str):
        raise ConfigError(f"fail_while_exists: got {out['fail_while_exists']!r}, expected a path")
    return out


def synthetic_trial(config: dict[str, Any], state: Any) -> dict[str, Metric]:
    """A cheap deterministic trial: metrics depend only on ``config`` (see module docstring)."""
    if config.get("sleep"):
        time.sleep(float(config["sleep"]))
    if config.get("crash"):
        os._exit(3)  # a hard worker death (segfault / OOM stand-in)
    if config.get("fail"):
        raise RuntimeError(f"synthetic failure (seed {config['seed']})")
    path = config.get("fail_while_exists")
    if path and os.path.exists(path):
        raise RuntimeError(f"synthetic failure while {path} exists")
    body = {k: v for k, v in config.items() if k not in _SYNTHETIC_CONTROL}
    rng = rng_for(int(config["seed"]), "synthetic", canonical_json(body))
    u = float(rng.random())
    z = float(rng.standard_normal())
    return {
        "u": u,
        "z": z,
        "count": int(rng.integers(0, 1000)),
        "label": "high" if u >= 0.5 else "low",
        "missing": None,
    }


# --------------------------------------------------------------------------- gemm-ter

_GEMM_DEFAULTS: dict[str, Any] = {
    "m": 64,
    "k": 64,
    "n": 64,
    "rows": 16,
    "cols": 16,
    "dataflow": "ws",
    "chip": "typical",
    "manifestation": "hold",
    "operands": "dnn",
    "seed": 0,
}
_GEMM_KEYS = set(_GEMM_DEFAULTS) | {"vdd", "freq"}
#: Largest GEMM dimension accepted (a trial should stay seconds, not hours).
MAX_DIM = 4096


@functools.lru_cache(maxsize=1)
def _delay_params() -> Any:
    from accelsim.timing.delay import default_delay_params

    return default_delay_params()


def _gemm_normalize(config: dict[str, Any]) -> dict[str, Any]:
    from accelsim.kernels.exact import MANIFESTATIONS
    from accelsim.timing.delay import check_vdd
    from accelsim.timing.variation import MAX_SIDE

    reject_unknown_keys("", config, _GEMM_KEYS)
    for key in ("vdd", "freq"):
        if key not in config:
            raise ConfigError(
                f"{key}: missing, expected a number ({'V' if key == 'vdd' else 'GHz'})"
            )
    out = {**_GEMM_DEFAULTS, **config}
    for key in ("m", "k", "n"):
        out[key] = check_int(key, out[key], 1, MAX_DIM)
    for key in ("rows", "cols"):
        out[key] = check_int(key, out[key], 1, MAX_SIDE)
    out["dataflow"] = check_choice("dataflow", out["dataflow"], ("os", "ws", "is"))
    out["vdd"] = check_vdd(check_float("vdd", out["vdd"], unit="V"), _delay_params())
    out["freq"] = check_float("freq", out["freq"], 0.001, 10.0, unit="GHz")
    chip = out["chip"]
    if chip != "typical":
        if isinstance(chip, str):
            raise ConfigError(f"chip: got {chip!r}, expected 'typical' or a chip seed >= 0")
        out["chip"] = check_int("chip", chip, 0)
    out["manifestation"] = check_choice(
        "manifestation", out["manifestation"], tuple(MANIFESTATIONS)
    )
    out["operands"] = check_choice("operands", out["operands"], ("dnn", "random"))
    out["seed"] = check_int("seed", out["seed"], 0)
    return out


@dataclass(frozen=True)
class GemmState:
    """Per-worker state of ``gemm-ter``: the timing model and the kernel constants."""

    model: Any
    consts: np.ndarray


def gemm_setup() -> GemmState:
    """Load the shipped timing model (calib/*.toml) and kernel constants once per worker."""
    from accelsim.timing.errors import TimingModel
    from accelsim.timing.sensitized import kernel_constants

    model = TimingModel.default()
    return GemmState(model=model, consts=kernel_constants(model.sensitized))


def _operands(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from accelsim.timing.operands import DNN_ACT_MEAN, DNN_WEIGHT_STD, DNN_ZERO_FRACTION

    m, k, n = config["m"], config["k"], config["n"]
    rng = rng_for(config["seed"], "gemm-ter", "operands", m, k, n, config["operands"])
    if config["operands"] == "random":
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        return a, b
    zero = rng.random((m, k)) < DNN_ZERO_FRACTION
    mag = np.clip(np.rint(rng.exponential(DNN_ACT_MEAN, (m, k))), 1, 127)
    a = np.where(zero, 0, mag).astype(np.int8)
    b = np.clip(np.rint(rng.normal(0.0, DNN_WEIGHT_STD, (k, n))), -128, 127).astype(np.int8)
    return a, b


def gemm_ter_trial(config: dict[str, Any], state: GemmState | None) -> dict[str, Metric]:
    """Run one ``gemm-ter`` trial (module docstring); ``state`` from :func:`gemm_setup`."""
    from accelsim.config import ArrayConfig
    from accelsim.kernels.exact import exact_gemm
    from accelsim.timing.delay import critical_path_ratio
    from accelsim.timing.variation import chip_map, pe_delay_factor

    st = state if state is not None else gemm_setup()
    model = st.model
    vdd, freq_hz = float(config["vdd"]), float(config["freq"]) * 1e9
    ratio = critical_path_ratio(vdd, freq_hz, model.vnom, model.fnom, model.delay)
    rows, cols = config["rows"], config["cols"]
    pe = None
    if config["chip"] != "typical":
        chip = chip_map(rows, cols, int(config["chip"]), model.variation)
        pe = pe_delay_factor(chip, vdd, model.vnom, model.delay, model.variation)
    a, b = _operands(config)
    res = exact_gemm(
        a,
        b,
        ArrayConfig(rows, cols, config["dataflow"]),
        ratio=ratio,
        consts=st.consts,
        pe_factor=pe,
        manifestation=config["manifestation"],
        log_capacity=1,
    )
    exact = a.astype(np.int32) @ b.astype(np.int32)
    diff = res.out.astype(np.int64) - exact.astype(np.int64)
    absdiff = np.abs(diff)
    wrong = int(np.count_nonzero(diff))
    macs = int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])
    norm = float(np.sqrt(np.sum(exact.astype(np.float64) ** 2)))
    err = float(np.sqrt(np.sum(diff.astype(np.float64) ** 2)))
    return {
        "critical_path_ratio": float(ratio),
        "macs": macs,
        "errors": int(res.errors.total),
        "ter": res.errors.total / macs,
        "wrong_outputs": wrong,
        "wrong_fraction": wrong / diff.size,
        "max_abs_err": int(absdiff.max()),
        "mean_abs_err": float(absdiff.mean()),
        "rel_fro_err": err / norm if norm > 0 else (0.0 if err == 0 else None),
    }


register_trial("synthetic", synthetic_trial, normalize=_synthetic_normalize)
register_trial("gemm-ter", gemm_ter_trial, setup=gemm_setup, normalize=_gemm_normalize)
