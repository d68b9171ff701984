"""Is a detected error critical? Magnitude threshold and ReaLM's statistical rule.

Integer checksums are exact, so any nonzero syndrome is a real error; the threshold only
decides which errors are worth acting on (reference/drift.md s3: "the threshold sets the
*criticality* cut, not a rounding tolerance"). Two rules:

**magnitude** (DRIFT: "only critical (large) errors act", drift.md s1): critical when the
largest syndrome magnitude ``max(|row_syndrome|, |col_syndrome|)`` (for a single error, its
``|delta|`` in int32 accumulator units) exceeds
``max(abs_threshold, rel_threshold * scale)``. ``scale`` is the output range of the error-free
part of ``C``: ``max |C|`` over the rows (or, if every row mismatches, columns) whose checksum
agrees, i.e. what a per-tensor output quantizer would use as its range. An error below a
fraction of that range is within the layer's own spread; one beyond it dominates the output.
Timing errors hit the high accumulator bits (timing.md s3.2: bits 23..18), so they land far
above the cut, while low-bit errors stay benign.

**realm** (ReaLM, Xie et al., DAC 2025; ``severity_estimation`` in
``2000012835xt/ReaLM/recompute_ratio.py``, drift.md s2). With ``S`` the total deviation
(sum of all syndromes, "MSD" in the code), a row or column counts as significant when
``log2|syndrome| > lb`` with ``lb = b - (a - 1) * log2|S|``; ``freq`` is the larger of the
significant-row and significant-column counts; the GEMM is critical when
``log2(freq) > F`` (the "region" test, the critical region ``log2 freq = a log2 S - b`` in
the frequency-magnitude plane) or, in ReaLM's alternative, ``log2|S| > (F + b) / a`` (the
"msd" test). ``rule="either"`` (default) flags a GEMM critical when either test fires: the
region test alone never fires on a single error (``freq = 1``), however large. Constants
(ReaLM code, fit in INT32 accumulator units on OPT-1.3B): linear layers ``a=1.273,
b=20.076, F=5.951``; attention batched matmuls ``a=1.530, b=24.660, F=8.04``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelsim.abft.checksum import Syndromes

__all__ = [
    "REALM_BMM",
    "REALM_LINEAR",
    "Classification",
    "RealmParams",
    "magnitude_rule",
    "output_scale",
    "realm_rule",
]


@dataclass(frozen=True)
class RealmParams:
    """ReaLM critical-region constants: ``log2 freq = a * log2 S - b``, frequency bound ``F``."""

    a: float
    b: float
    F: float


#: ReaLM's fit for linear layers (OPT k_proj 2048x2048), from its recompute_ratio.py.
REALM_LINEAR = RealmParams(a=1.273, b=20.076, F=5.951)
#: ReaLM's fit for attention batched matmuls (BMM), from its recompute_ratio.py.
REALM_BMM = RealmParams(a=1.530, b=24.660, F=8.04)


@dataclass(frozen=True)
class Classification:
    """Verdict on one GEMM's detected errors.

    ``critical`` is the decision; ``magnitude`` is the largest syndrome magnitude (int32
    units), ``threshold`` the magnitude cut used (magnitude rule; NaN otherwise), ``log2_msd``
    and ``log2_freq`` ReaLM's statistics (NaN when not computed), ``reason`` a short tag.
    """

    critical: bool
    magnitude: int
    threshold: float
    log2_msd: float
    log2_freq: float
    reason: str


def output_scale(C: np.ndarray, s: Syndromes) -> int:
    """``max |C|`` over the rows whose checksum agrees (else columns, else all of ``C``)."""
    for axis, synd in ((1, s.row), (0, s.col)):
        good = synd == 0
        if np.any(good):
            hi = C.max(axis=axis)[good].astype(np.int64)
            lo = C.min(axis=axis)[good].astype(np.int64)
            return int(max(hi.max(), -lo.min(), 0))
    return int(max(int(C.max()), -int(C.min()), 0))


def _max_magnitude(s: Syndromes) -> int:
    mags = [int(np.abs(x).max()) for x in (s.row, s.col) if x.size]
    return max(mags) if mags else 0


def magnitude_rule(
    C: np.ndarray, s: Syndromes, *, abs_threshold: float, rel_threshold: float
) -> Classification:
    """Critical when the largest syndrome exceeds ``max(abs_threshold, rel_threshold*scale)``."""
    mag = _max_magnitude(s)
    scale = output_scale(C, s) if rel_threshold > 0 else 0
    threshold = max(float(abs_threshold), rel_threshold * scale)
    critical = mag > threshold
    return Classification(
        critical=critical,
        magnitude=mag,
        threshold=threshold,
        log2_msd=math.nan,
        log2_freq=math.nan,
        reason="magnitude>threshold" if critical else "magnitude<=threshold",
    )


def realm_rule(s: Syndromes, params: RealmParams, *, rule: str = "either") -> Classification:
    """ReaLM's frequency-magnitude test on the syndromes (``rule``: region, msd or either).

    ``S == 0`` (deviations cancel exactly) gives ``log2|S| = -inf``: neither test fires, as in
    ReaLM's code.
    """
    mag = _max_magnitude(s)
    total = int(s.row.sum()) if s.row.size else int(s.col.sum())
    if total == 0:
        return Classification(False, mag, math.nan, -math.inf, -math.inf, "msd=0")
    log2_msd = math.log2(abs(total))
    lb = params.b - (params.a - 1.0) * log2_msd
    with np.errstate(divide="ignore"):
        row_sig = int(np.count_nonzero(np.log2(np.abs(s.row.astype(np.float64))) > lb))
        col_sig = int(np.count_nonzero(np.log2(np.abs(s.col.astype(np.float64))) > lb))
    freq = max(row_sig, col_sig)
    log2_freq = math.log2(freq) if freq > 0 else -math.inf
    region = log2_freq > params.F
    msd = log2_msd > (params.F + params.b) / params.a
    if rule == "region":
        critical = region
    elif rule == "msd":
        critical = msd
    else:
        critical = region or msd
    reason = "region" if region else ("msd" if msd else "outside")
    return Classification(critical, mag, math.nan, log2_msd, log2_freq, reason)
