"""Operand streams of one PE for the sensitized-delay model (timing.md section 3.2).

Each generator returns ``(w, a, psum_in, pw, pa, ppsum_in)``: the current cycle's weight,
activation (int8) and incoming partial sum (int32), and the previous cycle's values at the same
PE. Element ``i`` of every array is one independent PE-cycle; the previous values are what the
PE's input registers held one cycle before, so the pair is the "2-vector" whose transition
sensitizes the MAC's paths. All randomness comes from the explicit ``rng``.

Scenarios (timing.md section 3.2):

* **DNN-WS** (weight-stationary) :func:`dnn_ws_stream`: the weight is fixed (``pw == w``),
  ``w ~ N(0, 20)`` LSB rounded and clipped to int8 (``weights="signed"``, the timing.md text) or
  ``|N(0, 20)|`` (``weights="nonnegative"``, see below). Activations are post-ReLU: zero with
  probability 1/2, otherwise ``Exp(mean 20)`` rounded and clipped to [1, 127] (so the zero
  fraction is exactly the Bernoulli 1/2); ``a`` and ``pa`` are independent draws. The partial
  sums are ``N(0, sqrt(k) * 240)`` rounded, with ``k`` uniform on the integers 0..127 (the number
  of products accumulated so far), drawn independently for ``psum_in`` and ``ppsum_in``.
* **random** :func:`random_stream`: every operand uniform and independent each cycle: ``w, a,
  pw, pa`` uniform int8, ``psum_in, ppsum_in`` uniform in the 24-bit signed range
  ``[-2**23, 2**23)``, the accumulator width of timing.md's reference MAC (so the upper 8 bits
  of our 32-bit accumulator are sign extension, as in the reference's bit 23).

Why ``weights="nonnegative"`` exists: a gate-level replica of timing.md's reference MAC (its
stated gate delays reproduce its static 77 / 57 units and its per-bit arrivals 5, 9, 15, ...)
reproduces the published random row (within 0.04 CP and a factor 1.4 in tail probability) but,
with signed N(0, 20) weights, gives a DNN-WS tail about twice the published one (P(s>0.5)
8.4e-2, P(s>0.7) 2.2e-2, P(s>0.8) 7.1e-3 against 3.9e-2, 4.0e-3, 1.4e-3; 200 000 cycles). With
non-negative weights it reproduces the published row (mean 0.198, p50 0.169, p90 0.377, p99
0.610, p99.9 0.844, max 0.948; 3.2e-2, 5.2e-3, 2.4e-3). Negative weights add a mechanism: a
negative product added to a positive psum ripples a carry through the whole sign-extension
region whenever the activation switches between zero and non-zero. The calibration therefore
uses the non-negative variant; the signed one is the scenario for real (signed) DNN weights.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from accelsim.config import check_choice, check_int
from accelsim.errors import ConfigError

Int8Array = npt.NDArray[np.int8]
Int32Array = npt.NDArray[np.int32]
OperandStream = tuple[Int8Array, Int8Array, Int32Array, Int8Array, Int8Array, Int32Array]
WeightSign = Literal["signed", "nonnegative"]

#: Standard deviation of the DNN-WS weights, LSB (timing.md s3.2).
DNN_WEIGHT_STD = 20.0
#: Mean of the non-zero DNN-WS activations, LSB (timing.md s3.2).
DNN_ACT_MEAN = 20.0
#: Probability of a zero (ReLU) activation (timing.md s3.2).
DNN_ZERO_FRACTION = 0.5
#: Partial-sum scale: psum ~ N(0, sqrt(k) * DNN_PSUM_SCALE), k uniform on 0..DNN_PSUM_KMAX.
DNN_PSUM_SCALE = 240.0
DNN_PSUM_KMAX = 127
#: Width of the random scenario's signed partial sums, bits (timing.md's 24-bit accumulator).
RANDOM_PSUM_BITS = 24

_MAX_N = 1 << 31


def _check_n_rng(n: object, rng: object) -> int:
    count = check_int("n", n, 0, _MAX_N)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng: got {type(rng).__name__}, expected a numpy.random.Generator")
    return count


def _dnn_activations(n: int, rng: np.random.Generator) -> Int8Array:
    zero = rng.random(n) < DNN_ZERO_FRACTION
    mag = np.clip(np.rint(rng.exponential(DNN_ACT_MEAN, n)), 1, 127)
    result: Int8Array = np.where(zero, 0, mag).astype(np.int8)
    return result


def _dnn_psums(n: int, rng: np.random.Generator) -> Int32Array:
    k = rng.integers(0, DNN_PSUM_KMAX + 1, n)
    ps = np.rint(rng.standard_normal(n) * np.sqrt(k) * DNN_PSUM_SCALE)
    result: Int32Array = ps.astype(np.int32)
    return result


def dnn_ws_stream(
    n: int, rng: np.random.Generator, *, weights: WeightSign = "signed"
) -> OperandStream:
    """``n`` weight-stationary DNN PE-cycles (timing.md section 3.2, see the module docstring).

    Parameters
    ----------
    n : int
        Number of PE-cycles (>= 0).
    rng : numpy.random.Generator
        Source of all randomness.
    weights : {"signed", "nonnegative"}
        ``N(0, 20)`` weights as written in timing.md, or their absolute values (the variant
        that reproduces timing.md's published DNN-WS row; used for calibration).

    Returns
    -------
    tuple of arrays
        ``(w, a, psum_in, pw, pa, ppsum_in)``; int8, int8, int32, int8, int8, int32; ``pw`` is
        a copy of ``w``.

    Raises
    ------
    ConfigError
        If ``n`` is not a non-negative integer, ``rng`` not a Generator or ``weights`` unknown.
    """
    count = _check_n_rng(n, rng)
    check_choice("weights", weights, ("signed", "nonnegative"))
    wf = np.rint(rng.normal(0.0, DNN_WEIGHT_STD, count))
    if weights == "nonnegative":
        wf = np.abs(wf)
    w = np.clip(wf, -128, 127).astype(np.int8)
    a = _dnn_activations(count, rng)
    pa = _dnn_activations(count, rng)
    psum_in = _dnn_psums(count, rng)
    ppsum_in = _dnn_psums(count, rng)
    return w, a, psum_in, w.copy(), pa, ppsum_in


def random_stream(n: int, rng: np.random.Generator) -> OperandStream:
    """``n`` PE-cycles with all operands uniform and changing every cycle (timing.md s3.2).

    ``w, a, pw, pa`` are uniform int8; ``psum_in`` and ``ppsum_in`` are uniform in
    ``[-2**23, 2**23)`` (24-bit signed, the reference accumulator's width).

    Parameters
    ----------
    n : int
        Number of PE-cycles (>= 0).
    rng : numpy.random.Generator
        Source of all randomness.

    Returns
    -------
    tuple of arrays
        ``(w, a, psum_in, pw, pa, ppsum_in)``; int8, int8, int32, int8, int8, int32.

    Raises
    ------
    ConfigError
        If ``n`` is not a non-negative integer or ``rng`` not a Generator.
    """
    count = _check_n_rng(n, rng)
    lim = 1 << (RANDOM_PSUM_BITS - 1)

    def int8s() -> Int8Array:
        out: Int8Array = rng.integers(-128, 128, count, dtype=np.int8)
        return out

    def psums() -> Int32Array:
        out: Int32Array = rng.integers(-lim, lim, count, dtype=np.int32)
        return out

    w, a, psum_in = int8s(), int8s(), psums()
    pw, pa, ppsum_in = int8s(), int8s(), psums()
    return w, a, psum_in, pw, pa, ppsum_in
