"""numba kernel of the per-cycle supply trace (plain arrays in, no validation).

:func:`_supply_trace` is the filter part of :func:`accelsim.timing.supply.supply_droop`: the
impulse train of signed droop amplitudes through the second-order resonator (clipped), plus the
AR(1) background noise, evaluated by the same difference equations as ``scipy.signal.lfilter``
(direct form II transposed) in one pass. It exists because the simulator draws one trace per
GEMM call: for the few hundred cycles of a small GEMM, two ``lfilter`` calls and the impulse
scatter cost about 60 us in Python overhead, more than the GEMM's kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _supply_trace(
    n: int,
    ev_cycles: np.ndarray,  # int64 (E,): event cycles (any; those >= n leave no trace)
    ev_amps: np.ndarray,  # float64 (E,): signed amplitudes (fractions of the supply)
    num: np.ndarray,  # float64 (2,): resonator numerator
    den: np.ndarray,  # float64 (3,): resonator denominator, den[0] == 1
    cap: float,  # the droop sum is clipped to [-cap, cap]
    noise: np.ndarray,  # float64 (n + 1,): standard normals of the noise (empty: no noise)
    noise_b0: float,  # sigma * sqrt(1 - phi**2)
    phi: float,  # AR(1) coefficient
    sigma: float,  # stationary std of the noise
) -> np.ndarray:
    """``delta[0:n]``: clipped resonator response to the events plus AR(1) noise."""
    x = np.zeros(n)
    hit = False
    for i in range(ev_cycles.shape[0]):
        c = ev_cycles[i]
        if c < n:
            x[c] += ev_amps[i]
            hit = True
    delta = np.zeros(n)
    if hit:
        # y[i] = b0 x[i] + z0;  z0' = b1 x[i] - a1 y[i] + z1;  z1' = -a2 y[i]
        z0 = 0.0
        z1 = 0.0
        for i in range(n):
            y = num[0] * x[i] + z0
            z0 = num[1] * x[i] - den[1] * y + z1
            z1 = -den[2] * y
            delta[i] = min(max(y, -cap), cap)
    if noise.shape[0] > 0:
        z = phi * sigma * noise[0]
        for i in range(n):
            y = noise_b0 * noise[i + 1] + z
            z = phi * y
            delta[i] += y
    return delta
