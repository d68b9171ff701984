"""GEMM -> systolic-array mapping: folds, compute cycles, utilizations and SRAM access counts.

The model is SCALE-Sim v3's CALC-mode compute model in closed form (source:
``reference/scalesim.md`` section 4, and the ``systolic_compute_{os,ws,is}.py`` demand-matrix
builders of SCALE-Sim 3.0.0 it was reconstructed from). Units: cycles of the array clock for
time, words (operand elements) for accesses; nothing here depends on the clock frequency or the
memories (see :mod:`accelsim.hw.memory` for DRAM traffic and stalls in seconds).

A GEMM computes the ``M x N`` output from an ``M x K`` ifmap and a ``K x N`` filter operand
(``M`` output rows, ``N`` output columns, ``K`` reduction). On an ``R x C`` array each dataflow
maps two dimensions spatially and streams the third:

====  ==========  ==========  =============  ====================  ===========================
df    Sr (-> R)   Sc (-> C)   T (streamed)   cycles per fold P     compute-util denominator D
====  ==========  ==========  =============  ====================  ===========================
os    M           N           K              T + R + C - 2         T + R + C - 2
ws    K           N           M              2R + C + T - 2        2R + 2C + T - 3
is    K           M           N              2R + C + T - 2        2R + 2C + T - 3
====  ==========  ==========  =============  ====================  ===========================

* ``row_folds = ceil(Sr/R)``, ``col_folds = ceil(Sc/C)``, ``folds = row_folds * col_folds``;
  SCALE-Sim iterates ``for col_fold: for row_fold:`` (row folds innermost).
* ``compute_cycles = folds * P - 1`` -- SCALE-Sim's "Total Cycles" in CALC mode (folds fully
  serialized, edge folds pay the full skew, and the reported number is the 0-based index of the
  last busy cycle, hence the ``- 1``). Single exception: on a 1x1 output-stationary array that
  off-by-one would give fewer cycles than MACs, so the result is clamped to
  ``ceil(MACs / (R*C))`` (the clamp never binds for any other array or dataflow).
* ``mapping_efficiency = Sr*Sc / (folds*R*C)`` (unweighted mean over folds of used PEs / PEs).
* ``compute_utilization = MACs / (R*C*D*folds)`` -- SCALE-Sim's unweighted per-fold mean of
  ``used_PEs*T / (R*C*D)``. For ws/is SCALE-Sim's ``D`` is ``C - 1`` larger than the real fold
  length ``P`` (it measures the filter demand matrix); we reproduce that quirk so that the
  number equals SCALE-Sim's "Compute Util %".
* ``overall_utilization = MACs / (compute_cycles*R*C)`` (SCALE-Sim's "Overall Util %" in CALC
  mode, where stalls are 0).

SRAM access counts (words), as counted by SCALE-Sim's compute system (``get_*_requests``):

====  ======================  ======================  ==============================  ===========
df    sram_ifmap_reads        sram_filter_reads       sram_ofmap_writes               ofmap_reads
====  ======================  ======================  ==============================  ===========
os    M*K*col_folds           K*N*row_folds           M*N + folds*(R + C)             0
ws    M*K*col_folds           K*N                     M*N*row_folds                   M*N*(rf-1)
is    M*K                     K*N*col_folds           M*N*row_folds                   M*N*(rf-1)
====  ======================  ======================  ==============================  ===========

``sram_ifmap_reads``, ``sram_filter_reads`` and ``sram_ofmap_writes`` equal SCALE-Sim's
columns exactly (all 108 rows of ``tests/data/scalesim_small_gemm.csv``, CALC and USER mode,
os/ws/is, 8x8/32x32/128x128). Notes:

* os ``sram_ofmap_writes`` includes ``R + C`` extra "writes" per fold, a SCALE-Sim counting
  artefact kept for exactness (``systolic_compute_os.create_ofmap_demand_mat`` adds
  ``shape[0] + shape[1]`` of the padded fold to the counter); the real number of output words
  written is ``M*N``.
* ws/is ``sram_ofmap_writes`` count one write per output per row fold (partial sums).

``sram_ofmap_reads`` is our own model, not a SCALE-Sim column: with ws/is every row fold after
the first reads the partial sum it accumulates into (read-modify-write), ``M*N*(row_folds-1)``
words; os accumulates inside the PEs and reads nothing back.

Optional (off by default) ``overlap_folds=True`` is our own model of an array that overlaps one
fold's fill/drain with the next fold's compute (double-buffered weights/accumulators, as real
arrays do): folds are issued every ``max(T, R)`` cycles (T streaming cycles, or R cycles to
shift the stationary operand in / the outputs out, whichever is longer), so
``compute_cycles = (folds - 1) * max(T, R) + P - 1`` (equal to the serialized count for one
fold, never larger). Utilization definitions are unchanged (``overall_utilization`` uses the
overlapped cycle count).

:func:`map_gemm` is pure integer arithmetic (a few microseconds, memoized);
:func:`map_gemms` evaluates many shapes at once with numpy.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from accelsim.config import ArrayConfig, Dataflow
from accelsim.errors import ShapeError

__all__ = ["Mapping", "MappingBatch", "clear_mapping_cache", "map_gemm", "map_gemms"]

#: A GEMM size: a Python or numpy integer.
IntLike = int | np.integer[Any]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Largest M*N*K accepted by :func:`map_gemms` (int64 arithmetic must not overflow).
_MAX_BATCH_MACS = 2**60


@dataclass(frozen=True, slots=True)
class Mapping:
    """One GEMM mapped on one array (see the module docstring for every formula).

    Cycle fields are array-clock cycles, access counts are words, utilizations are fractions
    in ``(0, 1]``.
    """

    dataflow: Dataflow
    rows: int
    cols: int
    M: int
    N: int
    K: int
    Sr: int
    Sc: int
    T: int
    row_folds: int
    col_folds: int
    folds: int
    cycles_per_fold: int
    fold_interval: int
    overlap_folds: bool
    compute_cycles: int
    macs: int
    mapping_efficiency: float
    compute_utilization: float
    overall_utilization: float
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    sram_ofmap_reads: int

    @property
    def pes(self) -> int:
        """Number of PEs of the array."""
        return self.rows * self.cols

    @property
    def ofmap_words_written(self) -> int:
        """Words really written into the ofmap SRAM: ``sram_ofmap_writes`` without SCALE-Sim's
        os counting artefact of ``R + C`` per fold (``M*N`` for os; partial sums per row fold
        for ws/is)."""
        if self.dataflow == "os":
            return self.M * self.N
        return self.sram_ofmap_writes


def _show(value: object) -> str:
    """repr of ``value``, numpy scalars shown as plain Python numbers."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_dim(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ShapeError(f"GEMM {name}: got {_show(value)}, expected an integer >= 1")
    return int(value)


def _dims(dataflow: str, M: int, N: int, K: int) -> tuple[int, int, int]:
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    return K, M, N


@lru_cache(maxsize=1 << 16)
def _map_cached(
    M: int, N: int, K: int, R: int, C: int, dataflow: Dataflow, overlap: bool
) -> Mapping:
    Sr, Sc, T = _dims(dataflow, M, N, K)
    rf = -(-Sr // R)
    cf = -(-Sc // C)
    folds = rf * cf
    pes = R * C
    macs = M * N * K
    if dataflow == "os":
        per_fold = T + R + C - 2
        util_den = per_fold
    else:
        per_fold = 2 * R + C + T - 2
        util_den = 2 * R + 2 * C + T - 3
    interval = max(T, R) if overlap else per_fold
    cycles = (folds - 1) * interval + per_fold - 1
    cycles = max(cycles, -(-macs // pes))
    if dataflow == "os":
        ifr, flr = M * K * cf, K * N * rf
        ofw, ofr = M * N + folds * (R + C), 0
    elif dataflow == "ws":
        ifr, flr = M * K * cf, K * N
        ofw, ofr = M * N * rf, M * N * (rf - 1)
    else:
        ifr, flr = M * K, K * N * cf
        ofw, ofr = M * N * rf, M * N * (rf - 1)
    return Mapping(
        dataflow=dataflow,
        rows=R,
        cols=C,
        M=M,
        N=N,
        K=K,
        Sr=Sr,
        Sc=Sc,
        T=T,
        row_folds=rf,
        col_folds=cf,
        folds=folds,
        cycles_per_fold=per_fold,
        fold_interval=interval,
        overlap_folds=overlap,
        compute_cycles=cycles,
        macs=macs,
        mapping_efficiency=Sr * Sc / (folds * pes),
        compute_utilization=macs / (pes * util_den * folds),
        overall_utilization=macs / (cycles * pes),
        sram_ifmap_reads=ifr,
        sram_filter_reads=flr,
        sram_ofmap_writes=ofw,
        sram_ofmap_reads=ofr,
    )


def clear_mapping_cache() -> None:
    """Forget memoized mappings (for benchmarks that time the model itself)."""
    _map_cached.cache_clear()


def map_gemm(
    M: IntLike, N: IntLike, K: IntLike, array: ArrayConfig, *, overlap_folds: bool = False
) -> Mapping:
    """Map an ``(M x K) @ (K x N)`` GEMM on ``array`` (SCALE-Sim v3 CALC-mode model).

    Parameters
    ----------
    M, N, K
        Output rows, output columns and reduction length (integers >= 1).
    array
        The array (rows, cols, dataflow).
    overlap_folds
        Overlap one fold's fill/drain with the next fold's compute (our own model, off by
        default; the default equals SCALE-Sim's "Total Cycles").

    Returns
    -------
    Mapping
        Folds, compute cycles (cycles), utilizations (fractions) and SRAM accesses (words).

    Raises
    ------
    ShapeError
        If a size is not an integer >= 1.
    """
    m = _check_dim("M", M)
    n = _check_dim("N", N)
    k = _check_dim("K", K)
    return _map_cached(m, n, k, array.rows, array.cols, array.dataflow, bool(overlap_folds))


@dataclass(frozen=True)
class MappingBatch:
    """Vectorized :class:`Mapping`: the same fields, one numpy array entry per GEMM."""

    dataflow: Dataflow
    rows: int
    cols: int
    overlap_folds: bool
    M: IntArray
    N: IntArray
    K: IntArray
    Sr: IntArray
    Sc: IntArray
    T: IntArray
    row_folds: IntArray
    col_folds: IntArray
    folds: IntArray
    cycles_per_fold: IntArray
    fold_interval: IntArray
    compute_cycles: IntArray
    macs: IntArray
    mapping_efficiency: FloatArray
    compute_utilization: FloatArray
    overall_utilization: FloatArray
    sram_ifmap_reads: IntArray
    sram_filter_reads: IntArray
    sram_ofmap_writes: IntArray
    sram_ofmap_reads: IntArray

    def __len__(self) -> int:
        return int(self.M.shape[0])

    def row(self, i: int) -> Mapping:
        """The ``i``-th GEMM as a scalar :class:`Mapping`."""
        return map_gemm(
            int(self.M[i]),
            int(self.N[i]),
            int(self.K[i]),
            ArrayConfig(self.rows, self.cols, self.dataflow),
            overlap_folds=self.overlap_folds,
        )


def _as_dim_array(name: str, values: npt.ArrayLike) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ShapeError(f"GEMM {name}: got an array of shape {arr.shape}, expected a 1-D array")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        if arr.size and np.issubdtype(arr.dtype, np.floating):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
            if bad.size:
                raise ShapeError(f"GEMM {name}: got {_show(bad[0])}, expected an integer >= 1")
            arr = arr.astype(np.int64)
        elif arr.size:
            raise ShapeError(f"GEMM {name}: got dtype {arr.dtype}, expected integers >= 1")
    arr = arr.astype(np.int64)
    if arr.size and int(arr.min()) < 1:
        raise ShapeError(f"GEMM {name}: got {int(arr.min())}, expected an integer >= 1")
    return arr


def map_gemms(
    M: npt.ArrayLike,
    N: npt.ArrayLike,
    K: npt.ArrayLike,
    array: ArrayConfig,
    *,
    overlap_folds: bool = False,
) -> MappingBatch:
    """Vectorized :func:`map_gemm` over 1-D integer arrays of equal length (numpy, int64).

    Gives exactly the values of :func:`map_gemm` element by element. Raises ShapeError for
    non-integer or non-positive sizes, mismatched lengths, or ``M*N*K > 2**60``.
    """
    m = _as_dim_array("M", M)
    n = _as_dim_array("N", N)
    k = _as_dim_array("K", K)
    if not (m.shape == n.shape == k.shape):
        raise ShapeError(
            f"GEMM sizes: got arrays of lengths {m.size}, {n.size}, {k.size}, "
            "expected equal lengths"
        )
    if m.size and float((m.astype(np.float64) * n * k).max()) > _MAX_BATCH_MACS:
        raise ShapeError(f"GEMM M*N*K: got more than 2**60, expected at most {_MAX_BATCH_MACS}")
    R, C, df = array.rows, array.cols, array.dataflow
    if df == "os":
        sr, sc, t = m, n, k
    elif df == "ws":
        sr, sc, t = k, n, m
    else:
        sr, sc, t = k, m, n
    rf = -(-sr // R)
    cf = -(-sc // C)
    folds = rf * cf
    pes = R * C
    macs = m * n * k
    if df == "os":
        per_fold = t + (R + C - 2)
        util_den = per_fold
    else:
        per_fold = t + (2 * R + C - 2)
        util_den = t + (2 * R + 2 * C - 3)
    interval = np.maximum(t, R) if overlap_folds else per_fold
    cycles = np.maximum((folds - 1) * interval + per_fold - 1, -(-macs // pes))
    if df == "os":
        ifr, flr = m * k * cf, k * n * rf
        ofw, ofr = m * n + folds * (R + C), np.zeros_like(m)
    elif df == "ws":
        ifr, flr = m * k * cf, k * n
        ofw, ofr = m * n * rf, m * n * (rf - 1)
    else:
        ifr, flr = m * k, k * n * cf
        ofw, ofr = m * n * rf, m * n * (rf - 1)
    fmacs = macs.astype(np.float64)
    return MappingBatch(
        dataflow=df,
        rows=R,
        cols=C,
        overlap_folds=bool(overlap_folds),
        M=m,
        N=n,
        K=k,
        Sr=sr,
        Sc=sc,
        T=t,
        row_folds=rf,
        col_folds=cf,
        folds=folds,
        cycles_per_fold=per_fold,
        fold_interval=np.broadcast_to(interval, m.shape).copy(),
        compute_cycles=cycles,
        macs=macs,
        mapping_efficiency=(sr * sc).astype(np.float64) / (folds * pes),
        compute_utilization=fmacs / (pes * util_den * folds).astype(np.float64),
        overall_utilization=fmacs / (cycles * pes).astype(np.float64),
        sram_ifmap_reads=ifr,
        sram_filter_reads=flr,
        sram_ofmap_writes=ofw,
        sram_ofmap_reads=ofr,
    )
