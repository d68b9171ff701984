"""Fault models land where asked: per model, format, count/rate mode, targeting and logs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from accelsim.context import GemmContext
from accelsim.errors import ConfigError, ShapeError
from accelsim.faults import (
    BitFlip,
    FaultLog,
    RandomValues,
    RowColumnFault,
    SingleValue,
    StuckAt,
    Target,
    TimingErrors,
    apply_hooks,
)
from accelsim.faults.bits import values_of
from accelsim.rng import rng_for

CTX = GemmContext("blocks.2.attn.qkv", "blocks.2", 2, "qkv", timestep=5, call=7)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flat indices whose bit patterns differ."""
    w = a.dtype.itemsize
    return np.flatnonzero(
        np.any(a.view(np.uint8).reshape(-1, w) != b.view(np.uint8).reshape(-1, w), axis=1)
    )


def _check_log_replays(x: np.ndarray, y: np.ndarray, log: FaultLog, fmt: str) -> None:
    """Every changed value is logged, and the logged old/new values are the tensors' values."""
    changed = set(_changed(x, y).tolist())
    logged = {int(np.ravel_multi_index(r.index, x.shape)) for r in log.records}
    assert changed <= logged
    first_old: dict[int, float] = {}
    last_new: dict[int, float] = {}
    for r in log.records:
        f = int(np.ravel_multi_index(r.index, x.shape))
        first_old.setdefault(f, r.old)
        last_new[f] = r.new
    xv, yv = values_of(x, fmt).reshape(-1), values_of(y, fmt).reshape(-1)
    for f in logged:
        np.testing.assert_equal(first_old[f], xv[f])
        np.testing.assert_equal(last_new[f], yv[f])


def test_fp16_weight_exponent_msb_flip_changes_exactly_one_weight_by_2_pow_16():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.25, 0.49, size=(8, 16)).astype(np.float16)  # exponent MSB 0
    log = FaultLog()
    fault = BitFlip(target="weights", fmt="fp16", bits=(14,), count=1)
    y = fault.on_weights(w, CTX, "fp16", rng_for(1, "w"), log)
    idx = _changed(w, y)
    assert idx.size == 1
    f = int(idx[0])
    assert float(y.reshape(-1)[f]) == float(w.reshape(-1)[f]) * 2.0**16
    (rec,) = log.records
    assert rec.kind == "bitflip" and rec.target == "weights" and rec.bit == 14
    assert rec.module == CTX.module and rec.timestep == 5 and rec.fmt == "fp16"
    assert rec.index == tuple(int(i) for i in np.unravel_index(f, w.shape))
    assert rec.new == rec.old * 2.0**16
    # the other hooks leave the tensor alone
    assert fault.on_inputs(w, CTX, "fp16", rng_for(1, "w"), log) is w
    assert fault.on_output(w, CTX, "fp16", rng_for(1, "w"), log) is w
    assert len(log) == 1


def test_int8_input_bit7_flip_is_plus_minus_128():
    a = np.arange(-64, 64, dtype=np.int8).reshape(8, 16)
    log = FaultLog()
    y = BitFlip(target="inputs", fmt="int8", bits=(7,), count=5).on_inputs(
        a, CTX, "int8", rng_for(2), log
    )
    idx = _changed(a, y)
    assert idx.size == 5
    d = y.reshape(-1)[idx].astype(int) - a.reshape(-1)[idx].astype(int)
    np.testing.assert_array_equal(np.abs(d), 128)
    np.testing.assert_array_equal(np.sign(d), -np.where(a.reshape(-1)[idx] >= 0, 1, -1))


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        ("int8", np.int8),
        ("int32", np.int32),
        ("fp16", np.float16),
        ("bf16", np.float32),
        ("fp32", np.float32),
    ],
)
def test_count_mode_gives_exactly_n_sites_and_complete_log(fmt, dtype):
    x = np.ones((16, 32), dtype=dtype)
    for seed in range(5):
        log = FaultLog()
        y = BitFlip(target="outputs", count=7).on_output(x, CTX, fmt, rng_for(seed, fmt), log)
        assert _changed(x, y).size == 7
        assert len(log) == 7 and len({r.index for r in log.records}) == 7
        _check_log_replays(x, y, log, fmt)
        if fmt == "bf16":
            assert np.all(y.view(np.uint32) & 0xFFFF == 0)


def test_multiplicity_adjacent_and_random():
    x = np.zeros(1000, dtype=np.int32)
    log = FaultLog()
    y = BitFlip(count=50, multiplicity=3, pattern="adjacent").on_output(
        x, CTX, "int32", rng_for(3), log
    )
    assert _changed(x, y).size == 50
    pats = y.view(np.uint32)[_changed(x, y)].astype(np.int64)
    lows = np.array([int(p & -p).bit_length() - 1 for p in pats])
    np.testing.assert_array_equal(pats, 7 << lows)  # three adjacent ones
    assert len(log) == 150
    log = FaultLog()
    y = BitFlip(count=50, multiplicity=2, bits=(3, 9, 20)).on_output(
        x, CTX, "int32", rng_for(4), log
    )
    pats = y.view(np.uint32)[_changed(x, y)]
    assert set(pats.tolist()) <= {2**3 + 2**9, 2**3 + 2**20, 2**9 + 2**20}
    assert len(set(pats.tolist())) == 3
    _check_log_replays(x, y, log, "int32")


def test_per_run_count_budget_and_reset():
    fault = BitFlip(count=3, per="run")
    x = np.zeros((4, 4), dtype=np.int32)
    log = FaultLog()
    total = 0
    for call in range(5):
        y = fault.on_output(x, GemmContext("m", call=call), "int32", rng_for(0, call), log)
        total += _changed(x, y).size
    assert total == 3 and len(log) == 3
    fault.reset()
    y = fault.on_output(x, CTX, "int32", rng_for(0), log)
    assert _changed(x, y).size == 3


def _rate_counts(rate: float, n_values: int, calls: int, seed: int) -> np.ndarray:
    fault = BitFlip(rate=rate)
    x = np.zeros(n_values, dtype=np.int32)
    counts = np.empty(calls, dtype=np.int64)
    for c in range(calls):
        y = fault.on_output(x, CTX, "int32", rng_for(seed, "rate", c), FaultLog())
        counts[c] = _changed(x, y).size
    return counts


def _binomial_chi2_pvalue(counts: np.ndarray, n: int, p: float) -> float:
    """Chi-square goodness of fit of ``counts`` to Binomial(n, p), bins 0..7 and >= 8."""
    kmax = 8
    obs = np.array([np.sum(counts == k) for k in range(kmax)] + [np.sum(counts >= kmax)])
    pmf = stats.binom.pmf(np.arange(kmax), n, p)
    exp = counts.size * np.append(pmf, 1 - pmf.sum())
    return float(stats.chisquare(obs, exp).pvalue)


def test_rate_mode_count_is_binomial():
    counts = _rate_counts(0.003, 1000, 3000, seed=11)
    assert _binomial_chi2_pvalue(counts, 1000, 0.003) > 1e-3
    # negative: the same data against a wrong rate is rejected ...
    assert _binomial_chi2_pvalue(counts, 1000, 0.0036) < 1e-3
    # ... and a fixed count of 3 per call (same mean) is not binomial
    fixed = np.full(3000, 3)
    assert _binomial_chi2_pvalue(fixed, 1000, 0.003) < 1e-6


def test_bit_positions_uniform_or_weighted():
    x = np.zeros(20000, dtype=np.float16)
    log = FaultLog()
    BitFlip(count=16000).on_output(x, CTX, "fp16", rng_for(5), log)
    hist = np.bincount([r.bit for r in log.records], minlength=16)
    assert stats.chisquare(hist).pvalue > 1e-3
    log = FaultLog()
    w = (1.0, 2.0, 5.0)
    BitFlip(count=8000, bits=(0, 10, 14), bit_weights=w).on_output(x, CTX, "fp16", rng_for(6), log)
    obs = np.array([sum(r.bit == b for r in log.records) for b in (0, 10, 14)])
    assert stats.chisquare(obs, 8000 * np.array(w) / 8).pvalue > 1e-3
    assert stats.chisquare(obs, np.full(3, 8000 / 3)).pvalue < 1e-6  # negative: not uniform


def test_seeds_are_deterministic():
    x = np.arange(256, dtype=np.int32).reshape(16, 16)

    def run(seed):
        log = FaultLog()
        y = BitFlip(rate=0.05, multiplicity=2).on_output(x, CTX, "int32", rng_for(seed, "k"), log)
        return y, log.as_rows()

    y1, l1 = run(3)
    y2, l2 = run(3)
    _y3, l3 = run(4)
    np.testing.assert_array_equal(y1, y2)
    assert l1 == l2
    assert l1 != l3


@pytest.mark.parametrize(
    ("scope", "hit"),
    [
        (Target(modules=("blocks.*.attn.qkv",)), True),
        (Target(modules=("blocks.*.mlp.*",)), False),
        (Target(blocks=("blocks.2",)), True),
        (Target(blocks=(2,)), True),
        (Target(blocks=(3,)), False),
        (Target(layer_types=("qkv", "proj")), True),
        (Target(layer_types=("fc1",)), False),
        (Target(timesteps=(4, 5)), True),
        (Target(timesteps=(0,)), False),
        (Target(calls=(7,)), True),
        (Target(modules=("blocks.2.*",), timesteps=(6,)), False),
    ],
)
def test_targeting_filters(scope, hit):
    x = np.zeros((4, 4), dtype=np.int32)
    log = FaultLog()
    y = BitFlip(count=2, scope=scope).on_output(x, CTX, "int32", rng_for(0), log)
    assert (len(log) == 2) is hit
    assert (y is x) is not hit


def test_targeting_without_timestep_and_bad_values():
    assert not Target(timesteps=(0,)).matches(GemmContext("m"))
    assert Target().matches(GemmContext("m"))
    with pytest.raises(ConfigError, match="layer_types"):
        Target(layer_types=("attention",))
    with pytest.raises(ConfigError, match="timesteps"):
        Target(timesteps=(-1,))


def test_format_mismatch_and_bad_options():
    with pytest.raises(ConfigError, match=r"expects fp32"):
        BitFlip(fmt="fp32").on_output(np.zeros(3, np.int32), CTX, "int32", rng_for(0), FaultLog())
    with pytest.raises(ConfigError, match=r"0\.\.7"):
        BitFlip(fmt="int8", bits=(31,))
    with pytest.raises(ConfigError, match=r"0\.\.7"):  # fmt None: checked when the call arrives
        BitFlip(bits=(31,)).on_output(np.zeros(3, np.int8), CTX, "int8", rng_for(0), FaultLog())
    with pytest.raises(ConfigError, match="only one"):
        BitFlip(rate=0.1, count=2)
    with pytest.raises(ConfigError, match="target"):
        BitFlip(target="activations")
    with pytest.raises(ConfigError, match="multiplicity"):
        BitFlip(fmt="int8", multiplicity=3, pattern="adjacent", bits=(6, 7))
    with pytest.raises(ShapeError):
        BitFlip().on_output(np.zeros(3, np.float64), CTX, "fp32", rng_for(0), FaultLog())


def test_random_values_and_single_value():
    x = np.full((10, 10), 3, dtype=np.int32)
    log = FaultLog()
    y = RandomValues(n=6, value="zero").on_output(x, CTX, "int32", rng_for(1), log)
    idx = _changed(x, y)
    assert idx.size == 6 and np.all(y.reshape(-1)[idx] == 0)
    assert {r.kind for r in log.records} == {"random-values"} and len(log) == 6
    log = FaultLog()
    y = RandomValues(n=4, value="bitflip", bits=(20,)).on_output(x, CTX, "int32", rng_for(1), log)
    np.testing.assert_array_equal(y.reshape(-1)[_changed(x, y)], 3 + 2**20)
    fault = SingleValue()
    log = FaultLog()
    n = sum(
        _changed(x, fault.on_output(x, GemmContext("m", call=c), "int32", rng_for(2, c), log)).size
        for c in range(4)
    )
    assert n == 1 and len(log) == 1 and log.records[0].kind == "single-value"
    _ = RandomValues(n=3, value="random").on_output(
        np.zeros(50, np.float32), CTX, "bf16", rng_for(3), log
    )


def test_row_and_column_faults_hit_one_tile_line():
    x = np.zeros((10, 12), dtype=np.int32)  # 4x4 array: tiles 3 x 3, edge tiles smaller
    for seed in range(20):
        log = FaultLog()
        y = RowColumnFault(array=(4, 4), axis="row", value="bitflip", bits=(5,)).on_output(
            x, CTX, "int32", rng_for(seed), log
        )
        r, c = np.nonzero(y)
        assert np.unique(r).size == 1  # one output row ...
        assert c.min() // 4 == c.max() // 4  # ... inside one tile ...
        assert c.size == min(4, 12 - 4 * (c.min() // 4))  # ... the whole tile row
        assert np.all(y[r, c] == 32) and len(log) == c.size
    log = FaultLog()
    y = RowColumnFault(array=(4, 4), axis="column", tile=(2, 1), line=3, value="zero").on_output(
        np.ones((10, 12), np.int32), CTX, "int32", rng_for(0), log
    )
    r, c = np.nonzero(y == 0)
    np.testing.assert_array_equal(r, [8, 9])  # edge tile: only 2 rows exist
    np.testing.assert_array_equal(c, [7, 7])
    with pytest.raises(ConfigError, match="line"):
        RowColumnFault(array=(4, 8), axis="row", line=4)
    with pytest.raises(ShapeError, match="tile"):
        RowColumnFault(array=(4, 4), tile=(5, 0)).on_output(x, CTX, "int32", rng_for(0), log)


@pytest.mark.parametrize(
    ("dataflow", "expected"),
    [
        ("ws", lambda m, n: n % 4 == 2),
        ("os", lambda m, n: (m % 3 == 1) & (n % 4 == 2)),
        ("is", lambda m, n: m % 4 == 2),
    ],
)
def test_stuck_at_hits_the_pe_outputs(dataflow, expected):
    x = np.zeros((2, 5, 9), dtype=np.int32)  # folded to (10, 9)
    log = FaultLog()
    y = StuckAt(pe=(1, 2), bit=31, value=1, array=(3, 4), dataflow=dataflow).on_output(
        x, CTX, "int32", rng_for(0), log
    )
    m, n = np.meshgrid(np.arange(10), np.arange(9), indexing="ij")
    mask = expected(m, n)
    y2 = y.reshape(10, 9)
    assert np.all(y2[mask] == -(2**31)) and np.all(y2[~mask] == 0)
    assert len(log) == mask.sum()
    # stuck-at-0 on values whose bit is already 0 changes (and logs) nothing
    log = FaultLog()
    z = StuckAt(pe=(1, 2), bit=31, value=0, array=(3, 4), dataflow=dataflow).on_output(
        x, CTX, "int32", rng_for(0), log
    )
    np.testing.assert_array_equal(z, x)
    assert len(log) == 0
    with pytest.raises(ConfigError, match="pe"):
        StuckAt(pe=(3, 0), array=(3, 4))


def test_timing_marker_is_identity():
    t = TimingErrors(manifestation="flip")
    x = np.ones(4, np.int32)
    assert t.on_output(x, CTX, "int32", rng_for(0), FaultLog()) is x
    with pytest.raises(ConfigError, match="manifestation"):
        TimingErrors(manifestation="explode")


def test_apply_hooks_independent_streams():
    x = np.zeros((32, 32), dtype=np.int32)
    a = BitFlip(count=3, bits=(1,))
    b = BitFlip(count=3, bits=(20,))
    log1, log2 = FaultLog(), FaultLog()
    apply_hooks([a], "outputs", x, CTX, "int32", rng_for(9), log1)
    apply_hooks([a, b], "outputs", x, CTX, "int32", rng_for(9), log2)
    assert [r.index for r in log1.records] == [r.index for r in log2.records if r.bit == 1]
    assert len(log2) == 6


def test_bf16_as_uint16_bit_patterns_like_the_interceptor():
    x32 = np.array([[0.75, -0.5], [0.375, 1.0]], dtype=np.float32)
    raw = (x32.view(np.uint32) >> 16).astype(np.uint16)
    log = FaultLog()
    y = BitFlip(count=4, bits=(14,)).on_output(raw, CTX, "bf16", rng_for(0), log)
    assert y.dtype == np.uint16
    np.testing.assert_array_equal(y, raw ^ np.uint16(1 << 14))
    assert [r.new for r in log.records if r.old == 0.75] == [0.75 * 2.0**128]
    _check_log_replays(raw, y, log, "bf16")
    z = StuckAt(pe=(0, 0), bit=15, value=1, array=(2, 2), dataflow="os").on_output(
        raw, CTX, "bf16", rng_for(0), FaultLog()
    )
    assert values_of(z, "bf16")[0, 0] == -0.75 and z[1, 1] == raw[1, 1]
    with pytest.raises(ShapeError, match="not representable in bf16"):
        BitFlip().on_output(np.array([0.1], np.float32), CTX, "bf16", rng_for(0), FaultLog())
