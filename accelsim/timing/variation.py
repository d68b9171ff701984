"""Static per-PE delay variation: a chip is a seed (VARIUS structure, timing.md sections 4.1, 9).

Every PE's delay is multiplied by a lognormal factor (Sarangi et al., "VARIUS", IEEE TSM 21(1),
2008: within-die variation = spatially correlated systematic part + uncorrelated random part,
plus a per-chip die-to-die offset; all Gaussian)::

    factor[i, j] = exp(k(V) * (sigma_sys * sys[i, j] + sigma_rnd * rnd[i, j] + sigma_d2d * d2d))
    k(V)         = [alpha / (V - Vt)] / [alpha / (Vnom - Vt)]       (delay.sigma_scale)

``sys`` is a stationary, isotropic, unit-variance Gaussian field over the PE grid, ``rnd`` is
iid N(0, 1) per PE and ``d2d`` one N(0, 1) number per chip. The sigmas are relative delay
spreads at Vnom (defaults 2.5 %, 1.5 %, 4 %; ``calib/variation.toml``); from the alpha-power
law sigma_d/d = alpha * sigma_Vt / (V - Vt), so all three grow by k(V) at low voltage (x1.25 at
0.8 V, x1.67 at 0.7 V). The factor's median is 1 (the all-zero :func:`typical_chip`), its
within-die log standard deviation ``k(V) * sqrt(sigma_sys**2 + sigma_rnd**2)`` (2.9 % at Vnom).
Scaling a chip's standard-normal components by one positive k(V) keeps its slow and fast PEs
in the same places at every voltage.

**Geometry.** PE ``(i, j)`` sits at ``(i, j) / max(rows, cols)`` in units of the array width:
the PE pitch is the same in both directions and the *longer* side has length 1, so a square
array has neighbour distance ``1/cols`` and a non-square array keeps an isotropic field whose
range ``corr_range`` is a fraction of its longer side.

**Correlation functions** of distance ``r`` with range ``phi = corr_range`` (timing.md 4.1;
spherical is VARIUS's choice, exactly 0 beyond ``phi``; the other two use the geostatistical
"practical range", where the correlation has fallen to exp(-3) = 0.05)::

    spherical    rho(r) = 1 - 1.5 (r/phi) + 0.5 (r/phi)**3   for r < phi, else 0
    exponential  rho(r) = exp(-3 r / phi)
    gaussian     rho(r) = exp(-3 (r / phi)**2)

**Field generation: circulant embedding** (Dietrich & Newsam, SIAM J. Sci. Comput. 18(4),
1997; Wood & Chan, JCGS 3(4), 1994). The covariance on the ``rows x cols`` grid is embedded in
a periodic ``m1 x m2`` torus (``m >= 2(n - 1)`` and ``m >= n - 1 + k * range-in-PEs``, with
``k = 1, 2, 3, 4, 6, 8`` tried in turn; a dimension of size 1 needs no padding). The 2-D FFT
of the wrapped covariance gives the torus's eigenvalues ``lam``; then
``sys = Re(FFT2(sqrt(lam / (m1 m2)) * (Z1 + i Z2)))[:rows, :cols]`` with ``Z1, Z2`` iid N(0, 1)
has exactly the target covariance when all ``lam >= 0``. Negative eigenvalues whose total is at
most 1e-6 of the trace (1e-3 if no torus up to 2**22 points does better) are set to 0 and the
field renormalized to unit variance; no covariance is then off by more than that fraction. In
the accepted ranges (0 < corr_range <= 1) the 1e-6 level is reached for every kind and range up
to 256x256, and for ranges up to 0.5 up to 512x512. Otherwise, for at most 4096 PEs, the field
is ``L @ z`` with ``L`` the Cholesky factor of the dense covariance (eigendecomposition with
clipping if Cholesky fails); larger arrays raise ConfigError (in the accepted ranges only
gaussian with range 1.0 on 1024x1024). The spectrum is cached per (rows, cols, kind, range):
one 128x128 chip then takes about 3 ms, a 512x512 chip about 60 ms.

**Randomness.** :func:`chip_map` derives three independent streams from the chip seed alone,
``np.random.SeedSequence(chip_seed, spawn_key=(0x5A11A7, c))`` for ``c = 0`` (sys), ``1``
(rnd), ``2`` (d2d), so the same seed always gives the same chip (for the same size and
correlation parameters) and no global RNG is touched.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft

from accelsim.config import ConfigError, check_choice, check_float, check_int, params_from_calib
from accelsim.timing.delay import DelayParams, check_vdd, sigma_scale

__all__ = [
    "CORR_KINDS",
    "ChipMap",
    "VariationParams",
    "chip_map",
    "correlation",
    "default_variation_params",
    "pe_delay_factor",
    "typical_chip",
]

FloatArray = npt.NDArray[np.float64]
CorrKind = Literal["spherical", "exponential", "gaussian"]
CORR_KINDS: tuple[str, ...] = ("spherical", "exponential", "gaussian")

#: First spawn-key element of the chip streams (keeps them apart from other uses of a seed).
_CHIP_STREAM = 0x5A11A7
#: Largest circulant-embedding torus, points (2**22 complex128 = 64 MiB per array).
_MAX_EMBED = 1 << 22
#: Largest array for the dense (Cholesky) fallback, PEs.
_MAX_DENSE = 4096
#: Padding multiples of the correlation range tried for the embedding.
_PAD_STEPS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
#: Accepted negative-eigenvalue mass (fraction of the trace): preferred and last resort.
_NEG_TOL = 1e-6
_NEG_TOL_MAX = 1e-3
#: Largest array side accepted by :func:`chip_map`.
MAX_SIDE = 1024


@dataclass(frozen=True)
class VariationParams:
    """Variation, droop and supply-noise parameters (``calib/variation.toml``).

    Static per-PE variation (:mod:`accelsim.timing.variation`): ``sigma_sys``, ``sigma_rnd`` and
    ``sigma_d2d`` are relative delay standard deviations at Vnom (log of the factor);
    ``corr_range`` is the correlation range as a fraction of the array's longer side and
    ``corr_kind`` the correlation function.

    Temporal supply processes (:mod:`accelsim.timing.supply`), voltages as fractions of the
    supply: a current step larger than ``droop_threshold`` (fraction of peak array current)
    triggers a first droop of amplitude ``droop_amp_typical`` per unit step (lognormal spread
    ``droop_amp_spread``), or ``droop_amp_worst`` with probability ``droop_worst_prob``, capped at
    ``droop_amp_cap``; it rings at ``droop_f_res`` (Hz, undamped) with damping ratio
    ``droop_zeta``. Background noise is Gaussian with standard deviation ``noise_sigma`` and
    correlation time ``noise_tau`` (s).
    """

    sigma_sys: float = 0.025
    sigma_rnd: float = 0.015
    corr_range: float = 0.5
    corr_kind: CorrKind = "spherical"
    sigma_d2d: float = 0.04
    droop_amp_typical: float = 0.05
    droop_amp_spread: float = 0.2
    droop_amp_worst: float = 0.10
    droop_worst_prob: float = 0.01
    droop_amp_cap: float = 0.14
    droop_f_res: float = 100e6
    droop_zeta: float = 0.35
    droop_threshold: float = 0.3
    noise_sigma: float = 0.01
    noise_tau: float = 10e-9

    def __post_init__(self) -> None:
        for name in ("sigma_sys", "sigma_rnd", "sigma_d2d"):
            self._set(name, check_float(f"variation.{name}", getattr(self, name), 0.0, 0.5))
        self._set(
            "corr_range",
            check_float("variation.corr_range", self.corr_range, 0.0, 1.0, lo_open=True),
        )
        check_choice("variation.corr_kind", self.corr_kind, CORR_KINDS)
        for name in ("droop_amp_typical", "droop_amp_worst"):
            self._set(name, check_float(f"variation.{name}", getattr(self, name), 0.0, 0.5))
        self._set(
            "droop_amp_spread",
            check_float("variation.droop_amp_spread", self.droop_amp_spread, 0.0, 2.0),
        )
        self._set(
            "droop_worst_prob",
            check_float("variation.droop_worst_prob", self.droop_worst_prob, 0.0, 1.0),
        )
        self._set(
            "droop_amp_cap",
            check_float("variation.droop_amp_cap", self.droop_amp_cap, 0.0, 0.5, lo_open=True),
        )
        self._set(
            "droop_f_res",
            check_float(
                "variation.droop_f_res", self.droop_f_res, 0.0, 1e11, lo_open=True, unit="Hz"
            ),
        )
        self._set(
            "droop_zeta",
            check_float("variation.droop_zeta", self.droop_zeta, 0.0, 0.99, lo_open=True),
        )
        self._set(
            "droop_threshold",
            check_float("variation.droop_threshold", self.droop_threshold, 0.0, 1.0),
        )
        self._set("noise_sigma", check_float("variation.noise_sigma", self.noise_sigma, 0.0, 0.2))
        self._set(
            "noise_tau",
            check_float("variation.noise_tau", self.noise_tau, 0.0, 1e-3, lo_open=True, unit="s"),
        )

    def _set(self, name: str, value: float) -> None:
        object.__setattr__(self, name, value)


def default_variation_params() -> VariationParams:
    """VariationParams from ``calib/variation.toml`` (every number with its source)."""
    return params_from_calib(VariationParams, "variation.toml")


# --------------------------------------------------------------------------- correlation


def correlation(r: npt.ArrayLike, kind: str, corr_range: float) -> FloatArray:
    """Correlation ``rho(r)`` at distance ``r`` (array widths) for range ``corr_range``.

    See the module docstring for the three forms (timing.md section 4.1).
    """
    h = np.asarray(r, dtype=np.float64) / corr_range
    if kind == "spherical":
        hc = np.minimum(h, 1.0)
        result: FloatArray = np.where(h < 1.0, 1.0 - 1.5 * hc + 0.5 * hc**3, 0.0)
    elif kind == "exponential":
        result = np.exp(-3.0 * h)
    elif kind == "gaussian":
        result = np.exp(-3.0 * h * h)
    else:
        raise ConfigError(
            f"variation.corr_kind: got {kind!r}, expected one of {', '.join(CORR_KINDS)}"
        )
    return result


def _embed_size(n: int, range_pes: float, k: float) -> int:
    if n == 1:
        return 1
    return int(sfft.next_fast_len(max(2 * (n - 1), n - 1 + math.ceil(k * range_pes))))


def _torus_covariance(m1: int, m2: int, pitch: float, kind: str, corr_range: float) -> FloatArray:
    """Covariance on the ``m1 x m2`` torus at wrapped (minimum-image) distances."""
    i = np.minimum(np.arange(m1), m1 - np.arange(m1)) * pitch
    j = np.minimum(np.arange(m2), m2 - np.arange(m2)) * pitch
    return correlation(np.hypot(i[:, None], j[None, :]), kind, corr_range)


@dataclass(frozen=True)
class _Embedding:
    """Square root of the scaled torus spectrum, ``sqrt(lam / (m1 m2))``, and its error."""

    sqrt_spectrum: FloatArray
    neg_fraction: float


@lru_cache(maxsize=8)
def _embedding(rows: int, cols: int, kind: str, corr_range: float) -> _Embedding | None:
    """Circulant embedding spectrum, or None if no torus up to ``_MAX_EMBED`` is usable."""
    n = max(rows, cols)
    pitch = 1.0 / n
    best: tuple[float, FloatArray] | None = None
    for k in _PAD_STEPS:
        m1 = _embed_size(rows, corr_range * n, k)
        m2 = _embed_size(cols, corr_range * n, k)
        if m1 * m2 > _MAX_EMBED:
            break
        lam = sfft.fft2(_torus_covariance(m1, m2, pitch, kind, corr_range)).real
        neg = max(0.0, float(-lam[lam < 0].sum() / lam.sum()))
        if best is None or neg < best[0]:
            best = (neg, lam)
        if neg <= _NEG_TOL:
            break
    if best is None or best[0] > _NEG_TOL_MAX:
        return None
    neg, lam = best
    lam = np.maximum(lam, 0.0)
    # Unit variance: the field's variance is sum(lam) / (m1 m2).
    sqrt_spec = np.sqrt(lam / lam.sum())
    sqrt_spec.setflags(write=False)
    return _Embedding(sqrt_spec, neg)


@lru_cache(maxsize=8)
def _dense_factor(rows: int, cols: int, kind: str, corr_range: float) -> FloatArray:
    """Matrix ``L`` with ``L @ L.T`` = the dense PE covariance (Cholesky, else clipped eigh)."""
    n = max(rows, cols)
    ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    pts = np.stack([ii.ravel(), jj.ravel()], axis=1) / n
    dist = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    cov = correlation(dist, kind, corr_range)
    try:
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(cov.shape[0]))
        factor: FloatArray = np.asarray(chol, dtype=np.float64)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        factor = np.asarray(v * np.sqrt(np.maximum(w, 0.0)), dtype=np.float64)
    factor.setflags(write=False)
    return factor


def _field_method(rows: int, cols: int, kind: str, corr_range: float) -> str:
    """Which generator :func:`chip_map` uses: ``"circulant"`` or ``"dense"`` (see module doc)."""
    if _embedding(rows, cols, kind, corr_range) is not None:
        return "circulant"
    if rows * cols <= _MAX_DENSE:
        return "dense"
    raise ConfigError(
        f"variation.corr_range: got {corr_range:g} ({kind}), expected a smaller range: no "
        f"positive-definite circulant embedding fits a {rows}x{cols} array"
    )


def _sys_field(
    rows: int,
    cols: int,
    kind: str,
    corr_range: float,
    rng: np.random.Generator,
    method: str | None = None,
) -> FloatArray:
    """A unit-variance correlated Gaussian field on the PE grid (module docstring)."""
    method = method or _field_method(rows, cols, kind, corr_range)
    if method == "circulant":
        emb = _embedding(rows, cols, kind, corr_range)
        if emb is None:
            raise ConfigError(
                f"variation.corr_range: got {corr_range:g} ({kind}), expected a range whose "
                f"circulant embedding is positive definite on a {rows}x{cols} array"
            )
        m1, m2 = emb.sqrt_spectrum.shape
        z = rng.standard_normal((2, m1, m2))
        w = emb.sqrt_spectrum * (z[0] + 1j * z[1])
        field: FloatArray = np.ascontiguousarray(sfft.fft2(w, overwrite_x=True).real[:rows, :cols])
        return field
    factor = _dense_factor(rows, cols, kind, corr_range)
    return np.asarray(factor @ rng.standard_normal(rows * cols), dtype=np.float64).reshape(
        rows, cols
    )


# --------------------------------------------------------------------------- chip maps


@dataclass(frozen=True, eq=False)
class ChipMap:
    """One chip's standard-normal variation components (read-only arrays).

    ``sys``: ``rows x cols`` spatially correlated field, unit variance; ``rnd``: ``rows x cols``
    iid N(0, 1); ``d2d``: the chip's die-to-die N(0, 1) number; ``seed``: the chip seed
    (None for :func:`typical_chip`). Turn it into delay factors with :func:`pe_delay_factor`.
    """

    sys: FloatArray
    rnd: FloatArray
    d2d: float
    seed: int | None

    def __post_init__(self) -> None:
        sys_ = np.array(self.sys, dtype=np.float64)
        rnd = np.array(self.rnd, dtype=np.float64)
        if sys_.ndim != 2 or sys_.shape != rnd.shape or sys_.size == 0:
            raise ConfigError(
                f"chip map: got sys {sys_.shape} and rnd {rnd.shape}, expected equal non-empty "
                "2-D shapes (rows, cols)"
            )
        sys_.setflags(write=False)
        rnd.setflags(write=False)
        object.__setattr__(self, "sys", sys_)
        object.__setattr__(self, "rnd", rnd)
        object.__setattr__(self, "d2d", check_float("chip map d2d", self.d2d))

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the array."""
        return (int(self.sys.shape[0]), int(self.sys.shape[1]))


def _check_seed(chip_seed: object) -> int:
    if isinstance(chip_seed, bool) or not isinstance(chip_seed, numbers.Integral):
        raise ConfigError(f"chip_seed: got {chip_seed!r}, expected an integer >= 0")
    if int(chip_seed) < 0:
        raise ConfigError(f"chip_seed: got {int(chip_seed)}, expected an integer >= 0")
    return int(chip_seed)


def chip_map(rows: int, cols: int, chip_seed: int, params: VariationParams) -> ChipMap:
    """The variation map of chip ``chip_seed`` on a ``rows x cols`` array.

    Parameters
    ----------
    rows, cols
        Array size in PEs (1 to 1024 each).
    chip_seed
        Non-negative integer identifying the chip; the same seed gives the same map.
    params
        Uses ``corr_kind`` and ``corr_range`` (the sigmas enter in :func:`pe_delay_factor`).

    Returns
    -------
    ChipMap
        Standard-normal components ``sys`` (correlated), ``rnd`` (iid) and ``d2d``.

    Raises
    ------
    ConfigError
        For a bad size or seed, or a range that no supported generator can embed.
    """
    r = check_int("array.rows", rows, 1, MAX_SIDE)
    c = check_int("array.cols", cols, 1, MAX_SIDE)
    seed = _check_seed(chip_seed)
    streams = [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CHIP_STREAM, i)))
        for i in range(3)
    ]
    sys_ = _sys_field(r, c, params.corr_kind, params.corr_range, streams[0])
    rnd = streams[1].standard_normal((r, c))
    d2d = float(streams[2].standard_normal())
    return ChipMap(sys=sys_, rnd=rnd, d2d=d2d, seed=seed)


#: Chip seed whose spatial pattern the typical chip reuses (a seed no population draws: chip
#: seeds of ``--chips N`` are 0..N-1).
TYPICAL_PATTERN_SEED = 2**31 - 1


def typical_chip(rows: int, cols: int, params: VariationParams | None = None) -> ChipMap:
    """The typical chip: the median die (die-to-die offset 0) with the within-die spread.

    Every PE gets a log delay factor at an exact quantile of the within-die distribution
    ``N(0, sigma_sys^2 + sigma_rnd^2)`` (the ``(i + 1/2) / (rows cols)`` quantiles), arranged
    in the spatial order of a real die's map (the rank order of chip ``TYPICAL_PATTERN_SEED``'s
    within-die field), so its PE factors have exactly the distribution that the typical-chip
    TER of :func:`accelsim.timing.errors.ter_points` integrates, without a lucky or unlucky
    draw. With ``params`` None: the idealized die without any variation (every factor 1).
    """
    r = check_int("array.rows", rows, 1, MAX_SIDE)
    c = check_int("array.cols", cols, 1, MAX_SIDE)
    if params is None:
        return ChipMap(sys=np.zeros((r, c)), rnd=np.zeros((r, c)), d2d=0.0, seed=None)
    from scipy.special import ndtri

    pattern = chip_map(r, c, TYPICAL_PATTERN_SEED, params)
    field = params.sigma_sys * pattern.sys + params.sigma_rnd * pattern.rnd
    ranks = np.empty(field.size, dtype=np.int64)
    ranks[np.argsort(field, axis=None, kind="stable")] = np.arange(field.size)
    z = ndtri((ranks + 0.5) / field.size).reshape(r, c)
    s_wid = math.hypot(params.sigma_sys, params.sigma_rnd)
    # expressed in the sys component (pe_delay_factor scales it by sigma_sys)
    sys_ = z * (s_wid / params.sigma_sys) if params.sigma_sys > 0 else np.zeros((r, c))
    rnd = np.zeros((r, c)) if params.sigma_sys > 0 else z
    return ChipMap(sys=sys_, rnd=rnd, d2d=0.0, seed=None)


def pe_delay_factor(
    chip: ChipMap,
    vdd: float,
    vnom: float,
    delay_params: DelayParams,
    params: VariationParams,
) -> FloatArray:
    """Per-PE multiplicative delay factor of ``chip`` at supply ``vdd`` (V), ``rows x cols``.

    ``exp(k(V) * (sigma_sys*sys + sigma_rnd*rnd + sigma_d2d*d2d))`` with
    ``k(V) = sigma_scale(vdd, vnom, delay_params)`` (lognormal, median 1; module docstring).
    Multiply it with the voltage-dependent nominal delay :func:`~accelsim.timing.delay.normalized_delay`.
    """
    v = check_vdd(vdd, delay_params)
    k = float(sigma_scale(v, vnom, delay_params))
    log_factor = params.sigma_sys * chip.sys + params.sigma_rnd * chip.rnd
    log_factor = log_factor + params.sigma_d2d * chip.d2d
    result: FloatArray = np.exp(k * log_factor)
    return result
