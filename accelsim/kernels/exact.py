"""Exact tile-by-tile systolic GEMM with timing errors: the validating wrapper of ``_systolic``.

:func:`exact_gemm` checks the operands, builds the per-PE and per-cycle threshold factors and
runs the numba kernel for the array's dataflow (``is`` through the transposed ``ws`` kernel,
which is SCALE-Sim's is mapping). Without errors (``ratio=0``) the result equals
``A.astype(int32) @ B.astype(int32)`` exactly (int32 wrap-around arithmetic, as the hardware).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from accelsim.config import ArrayConfig
from accelsim.errors import ConfigError, ShapeError
from accelsim.kernels import _systolic

Manifestation = Literal["hold", "flip", "razor", "drop"]
MANIFESTATIONS: dict[str, int] = {
    "hold": _systolic.MODE_HOLD,
    "flip": _systolic.MODE_FLIP,
    "razor": _systolic.MODE_RAZOR,
    "drop": _systolic.MODE_DROP,
}

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ErrorLog:
    """Timing errors of one GEMM, in execution order per output lane.

    Arrays of equal length: output coordinates ``m, n``, reduction index ``k`` of the failing
    MAC, global ``cycle``, ``late_mask`` (bits of the int32 accumulator that arrived late),
    ``correct`` and ``latched`` register values. ``total`` counts all errors, also those past
    the log capacity (``total - len(m)`` of them were not logged).
    """

    m: Int64Array
    n: Int64Array
    k: Int64Array
    cycle: Int64Array
    late_mask: Int64Array
    correct: Int64Array
    latched: Int64Array
    total: int

    @property
    def logged(self) -> int:
        """Number of logged errors."""
        return int(self.m.size)

    def bit_histogram(self, bits: int = 32) -> Int64Array:
        """How often each accumulator bit (0 = LSB) was late, over the logged errors."""
        hist = np.zeros(bits, dtype=np.int64)
        for b in range(bits):
            hist[b] = int(np.count_nonzero((self.late_mask >> b) & 1))
        return hist


@dataclass(frozen=True)
class GemmResult:
    """Output of a simulated GEMM: the int32 result and its error log."""

    out: npt.NDArray[np.int32]
    errors: ErrorLog


def _check_operands(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    for name, x in (("A", A), ("B", B)):
        if not isinstance(x, np.ndarray):
            raise ShapeError(f"{name}: got {type(x).__name__}, expected a numpy int8 array")
        if x.dtype != np.int8:
            raise ShapeError(f"{name}: got dtype {x.dtype}, expected int8 (quantize first)")
        if x.ndim != 2 or 0 in x.shape:
            raise ShapeError(f"{name}: got shape {x.shape}, expected a non-empty 2-D matrix")
    if A.shape[1] != B.shape[0]:
        raise ShapeError(
            f"A @ B: got A {A.shape} and B {B.shape}, expected A's columns to equal B's rows"
        )
    return np.ascontiguousarray(A), np.ascontiguousarray(B)


def check_error_inputs(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    ratio: float,
    pe_factor: np.ndarray | None,
    supply_factor: np.ndarray | None,
    manifestation: str,
) -> tuple[np.ndarray, np.ndarray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validate the inputs shared by the exact and fast kernels; returns contiguous ``A, B`` and
    the PE (``(rows, cols)``, default ones) and supply (1-D, default ``[1]``) delay factors."""
    A, B = _check_operands(A, B)
    if manifestation not in MANIFESTATIONS:
        raise ConfigError(
            f"manifestation: got {manifestation!r}, expected one of {', '.join(MANIFESTATIONS)}"
        )
    if not np.isfinite(ratio) or ratio < 0:
        raise ConfigError(f"ratio: got {ratio!r}, expected a finite number >= 0")
    R, C = array.rows, array.cols
    pe = np.ones((R, C)) if pe_factor is None else np.asarray(pe_factor, dtype=np.float64)
    if pe.shape != (R, C):
        raise ShapeError(f"pe_factor: got shape {pe.shape}, expected the array's ({R}, {C})")
    g = np.ones(1) if supply_factor is None else np.asarray(supply_factor, dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise ShapeError(f"supply_factor: got shape {g.shape}, expected a non-empty 1-D array")
    for key, x in (("pe_factor", pe), ("supply_factor", g)):
        bad = ~(np.isfinite(x) & (x > 0))
        if np.any(bad):
            raise ConfigError(
                f"{key}: got {float(x[bad].flat[0])!r}, expected finite positive delay factors"
            )
    return A, B, pe, g


def exact_gemm(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    *,
    ratio: float,
    consts: np.ndarray,
    pe_factor: np.ndarray | None = None,
    supply_factor: np.ndarray | None = None,
    manifestation: Manifestation = "hold",
    log_capacity: int = 256,
) -> GemmResult:
    """Run ``A @ B`` (int8 x int8 -> int32) on the array, MAC by MAC, with timing errors.

    Parameters
    ----------
    A, B
        int8 operands, ``(M, K)`` and ``(K, N)``.
    array
        Rows, columns and dataflow of the array.
    ratio
        Typical-corner critical path over clock period, ``CP(V)/T(f)``
        (:func:`accelsim.timing.delay.critical_path_ratio`); 0 disables errors.
    consts
        Sensitized-delay model constants (:func:`accelsim.timing.sensitized.kernel_constants`).
    pe_factor
        ``(rows, cols)`` PE delay factors (default all 1: a typical, variation-free chip).
    supply_factor
        Per-cycle supply delay factor ``g`` (default all 1); cycles past its end use the last value.
    manifestation
        What a late register latches: ``hold`` (previous value), ``flip`` (highest late bit
        flipped), ``razor`` (detected and replayed: no corruption), ``drop`` (update lost).
    log_capacity
        Errors logged per output lane (column for ws, row for os/is); more are only counted.
    """
    return _exact_gemm(
        A,
        B,
        array,
        ratio=ratio,
        consts=consts,
        pe_factor=pe_factor,
        supply_factor=supply_factor,
        manifestation=manifestation,
        log_capacity=log_capacity,
        reference=False,
    )


def _exact_gemm(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    *,
    ratio: float,
    consts: np.ndarray,
    pe_factor: np.ndarray | None,
    supply_factor: np.ndarray | None,
    manifestation: Manifestation,
    log_capacity: int,
    reference: bool,
) -> GemmResult:
    """:func:`exact_gemm`; ``reference`` runs the plain per-MAC kernels (no skipping, no
    screening: the tests' yardstick for the fast paths)."""
    A, B, pe, g = check_error_inputs(A, B, array, ratio, pe_factor, supply_factor, manifestation)
    return run_exact(
        A,
        B,
        array,
        inv_ratio=1.0 / ratio if ratio > 0 else np.inf,
        consts=np.ascontiguousarray(consts, dtype=np.float64),
        inv_pe=np.ascontiguousarray(1.0 / pe),
        inv_g=np.ascontiguousarray(1.0 / g),
        mode=MANIFESTATIONS[manifestation],
        log_capacity=log_capacity,
        reference=reference,
    )


def run_exact(
    A: np.ndarray,
    B: np.ndarray,
    array: ArrayConfig,
    *,
    inv_ratio: float,
    consts: np.ndarray,
    inv_pe: np.ndarray,
    inv_g: np.ndarray,
    mode: int,
    log_capacity: int,
    reference: bool = False,
) -> GemmResult:
    """:func:`exact_gemm` on inputs already validated (contiguous int8 ``A``, ``B``; float64
    ``1/ratio``, ``1/pe_factor`` ``(rows, cols)``, ``1/supply_factor``; ``mode`` from
    :data:`MANIFESTATIONS`): the accelerator's per-call path, without re-checking the chip's
    PE map and its own supply trace on every GEMM."""
    R, C = array.rows, array.cols
    M = A.shape[0]
    N = B.shape[1]
    if array.dataflow == "os":
        out = np.zeros((M, N), dtype=np.int32)
        log = np.empty((M, log_capacity, 7), dtype=np.int64)  # read up to counts only
        counts = np.zeros(M, dtype=np.int64)
        os_kernel = _systolic._os_exact_ref if reference else _systolic._os_exact
        os_kernel(A, B, R, C, inv_pe, inv_g, inv_ratio, consts, mode, out, log, counts)
        transpose = False
    else:
        if array.dataflow == "is":
            # is(A, B) == ws(B^T, A^T)^T with the same PE coordinates (SCALE-Sim's is mapping).
            A_ws, B_ws = np.ascontiguousarray(B.T), np.ascontiguousarray(A.T)
        else:
            A_ws, B_ws = A, B
        out_ws = np.zeros((A_ws.shape[0], B_ws.shape[1]), dtype=np.int32)
        log = np.empty((B_ws.shape[1], log_capacity, 7), dtype=np.int64)
        counts = np.zeros(B_ws.shape[1], dtype=np.int64)
        ws_kernel = _systolic._ws_exact_ref if reference else _systolic._ws_exact
        ws_kernel(A_ws, B_ws, R, C, inv_pe, inv_g, inv_ratio, consts, mode, out_ws, log, counts)
        transpose = array.dataflow == "is"
        out = np.ascontiguousarray(out_ws.T) if transpose else out_ws
    total = int(counts.sum())
    if total == 0:
        z = np.zeros(0, dtype=np.int64)
        errors = ErrorLog(z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), 0)
        return GemmResult(out=out, errors=errors)
    logged = np.minimum(counts, log_capacity)
    # the logged entries of each lane, lanes in order
    rows = log[np.arange(log_capacity)[None, :] < logged[:, None]]
    m_col, n_col = (1, 0) if transpose else (0, 1)
    errors = ErrorLog(
        m=rows[:, m_col].copy(),
        n=rows[:, n_col].copy(),
        k=rows[:, 2].copy(),
        cycle=rows[:, 3].copy(),
        late_mask=rows[:, 4].copy(),
        correct=rows[:, 5].copy(),
        latched=rows[:, 6].copy(),
        total=total,
    )
    return GemmResult(out=out, errors=errors)
