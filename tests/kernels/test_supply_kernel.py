"""The numba supply-trace kernel against scipy's ``lfilter`` (the independent reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from accelsim.kernels._supply import _supply_trace


def _reference(n, cyc, amp, num, den, cap, e, b0, phi, sigma):  # type: ignore[no-untyped-def]
    """The trace as the two ``lfilter`` calls it replaces (impulse train, clip, AR(1) noise)."""
    delta = np.zeros(n)
    inside = cyc < n
    if np.any(inside):
        np.add.at(delta, cyc[inside], amp[inside])
        delta = np.clip(lfilter(num, den, delta), -cap, cap)
    if e.size:
        noise, _ = lfilter([b0], [1.0, -phi], e[1:], zi=[phi * sigma * e[0]])
        delta = delta + noise
    return delta


@pytest.mark.parametrize("seed", range(6))
def test_trace_equals_lfilter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    events = int(rng.integers(0, 12))
    cyc = np.sort(rng.integers(0, n + 200, size=events)).astype(np.int64)  # some past the end
    amp = rng.normal(0.0, 0.08, size=events)
    # a damped resonator (poles inside the unit circle) like iir_coefficients gives
    r, w = 0.9 + 0.09 * rng.random(), rng.random() * math.pi
    num = rng.normal(size=2)
    den = np.array([1.0, -2.0 * r * math.cos(w), r * r])
    phi = float(rng.random())
    sigma = 0.01
    b0 = sigma * math.sqrt(1.0 - phi * phi)
    e = rng.standard_normal(n + 1) if seed % 2 == 0 else np.zeros(0)
    got = _supply_trace(n, cyc, amp, num, den, 0.14, e, b0, phi, sigma)
    want = _reference(n, cyc, amp, num, den, 0.14, e, b0, phi, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_clipping_applies_to_the_droop_only() -> None:
    cyc = np.array([0], dtype=np.int64)
    num, den = np.array([1.0, 0.0]), np.array([1.0, 0.0, 0.0])
    e = np.full(5, 10.0)  # large noise is added after the clip
    got = _supply_trace(4, cyc, np.array([1.0]), num, den, 0.1, e, 1.0, 0.0, 1.0)
    assert got[0] == pytest.approx(0.1 + 10.0)
    assert np.allclose(got[1:], 10.0)
