"""Classifier metrics of a faulty run against the golden (fault-free) run.

Logits are ``(..., classes)`` (numpy or torch; leading dims are flattened, so a language model's
``(N, T, vocab)`` counts every position as one input), labels ``(...)``. Terms after Roquet et al.
(LATS 2026, /work/shared/papers/001, Sec. II-A / IV): a *top-1 flip* (any SDC that changes the
prediction) is a test top-1 different from the golden top-1; a *critical SDC* is a flip on an
input the golden run classified correctly (the paper runs fault injection on correctly predicted
inputs only, so its "misclassification" rate is our critical-SDC rate over golden-correct
inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from accelsim.errors import ConfigError, ShapeError
from accelsim.quality._arrays import finite_or_none, to_numpy

#: Default confidence buckets on the golden softmax maximum (the brief's edges).
MAX_EDGES = (0.0, 0.5, 0.8, 0.95, 1.0)
#: Roquet et al.'s buckets on the top-1 minus top-2 softmax margin: Very Low (0-0.25), Low
#: (0.25-0.5), High (0.5-0.75), Very High (0.75-1) (Sec. IV-B).
MARGIN_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)
CONFIDENCE_MEASURES = ("max", "margin")


def _logits(x: Any, name: str) -> np.ndarray:
    v = to_numpy(x, name)
    if v.ndim < 1 or v.shape[-1] < 1:
        raise ShapeError(f"{name}: got shape {v.shape}, expected (..., classes)")
    return v.reshape(-1, v.shape[-1])


def _pair(golden: Any, test: Any) -> tuple[np.ndarray, np.ndarray]:
    g, t = _logits(golden, "golden"), _logits(test, "test")
    if g.shape != t.shape:
        raise ShapeError(f"test: got logits {t.shape}, expected golden's {g.shape}")
    return g, t


def _labels(labels: Any, n: int) -> np.ndarray:
    y = to_numpy(labels, "labels").reshape(-1)
    if y.shape[0] != n:
        raise ShapeError(f"labels: got {y.shape[0]} labels, expected {n} (one per input)")
    return y.astype(np.int64)


def top1(logits: Any) -> np.ndarray:
    """Predicted class per input; -1 for a row with a NaN logit (no valid prediction, so it
    counts as a flip and as wrong)."""
    z = _logits(logits, "logits")
    return np.where(np.isnan(z).any(axis=1), -1, z.argmax(axis=1))


def softmax(logits: Any) -> np.ndarray:
    """Row-wise softmax (float64, max-subtracted; non-finite logits give NaN rows)."""
    z = _logits(logits, "logits")
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(logits: Any, labels: Any) -> float:
    """Fraction of inputs whose argmax equals the label."""
    z = _logits(logits, "logits")
    return float(np.mean(top1(z) == _labels(labels, z.shape[0])))


def top1_flips(golden: Any, test: Any) -> np.ndarray:
    """Boolean mask: the test top-1 differs from the golden top-1."""
    g, t = _pair(golden, test)
    return np.asarray(top1(g) != top1(t))


def critical_sdc(golden: Any, test: Any, labels: Any) -> np.ndarray:
    """Boolean mask: a top-1 flip on an input the golden run classified correctly."""
    g, t = _pair(golden, test)
    y = _labels(labels, g.shape[0])
    gp = top1(g)
    return np.asarray((gp == y) & (top1(t) != gp))


def logits_error(golden: Any, test: Any) -> dict[str, float]:
    """``max_abs`` and ``mean_abs`` of ``test - golden`` (inf/NaN propagate)."""
    g, t = _pair(golden, test)
    d = np.abs(t - g)
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean())}


def confidence(logits: Any, measure: str = "max") -> np.ndarray:
    """Per-input confidence: softmax ``max`` or ``margin`` (top-1 minus top-2 probability)."""
    if measure not in CONFIDENCE_MEASURES:
        raise ConfigError(
            f"measure: got {measure!r}, expected one of {', '.join(CONFIDENCE_MEASURES)}"
        )
    p = softmax(logits)
    if measure == "max" or p.shape[1] == 1:
        return p.max(axis=1)
    top2 = np.sort(p, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _check_edges(edges: Sequence[float] | np.ndarray) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or not np.all(np.isfinite(e)):
        raise ConfigError(f"edges: got {list(edges)}, expected >= 2 increasing finite numbers")
    return e


def confidence_buckets(conf: Any, edges: Sequence[float] | np.ndarray = MAX_EDGES) -> np.ndarray:
    """Bucket index per input: ``[e0, e1), [e1, e2), ..., [e_{k-1}, e_k]`` (last one closed);
    -1 outside the edges (or NaN)."""
    e = _check_edges(edges)
    c = to_numpy(conf, "conf").reshape(-1)
    idx = np.searchsorted(e, c, side="right") - 1
    idx = np.where(c == e[-1], e.size - 2, idx)
    return np.where((idx < 0) | (idx > e.size - 2) | ~np.isfinite(c), -1, idx)


def sdc_by_confidence(
    golden: Any,
    test: Any,
    labels: Any,
    edges: Sequence[float] = MAX_EDGES,
    measure: str = "max",
) -> list[dict[str, Any]]:
    """Per golden-confidence bucket: inputs, golden-correct inputs, flips, critical SDCs and
    ``critical_sdc_rate`` (over the bucket's golden-correct inputs; None if there are none)."""
    g, t = _pair(golden, test)
    y = _labels(labels, g.shape[0])
    e = _check_edges(edges)
    bucket = confidence_buckets(confidence(g, measure), e)
    flips = top1_flips(g, t)
    crit = critical_sdc(g, t, y)
    correct = top1(g) == y
    rows: list[dict[str, Any]] = []
    for i in range(e.size - 1):
        m = bucket == i
        n_correct = int(np.sum(correct & m))
        n_crit = int(np.sum(crit & m))
        rows.append(
            {
                "lo": float(e[i]),
                "hi": float(e[i + 1]),
                "inputs": int(np.sum(m)),
                "golden_correct": n_correct,
                "flips": int(np.sum(flips & m)),
                "critical_sdc": n_crit,
                "critical_sdc_rate": n_crit / n_correct if n_correct else None,
            }
        )
    return rows


def classifier_summary(
    golden: Any,
    test: Any,
    labels: Any,
    edges: Sequence[float] = MAX_EDGES,
    measure: str = "max",
) -> dict[str, Any]:
    """JSON-ready summary: accuracies, flips, critical SDCs, logits errors, per-bucket table."""
    g, t = _pair(golden, test)
    y = _labels(labels, g.shape[0])
    flips = top1_flips(g, t)
    crit = critical_sdc(g, t, y)
    n_correct = int(np.sum(top1(g) == y))
    err = logits_error(g, t)
    return {
        "inputs": int(g.shape[0]),
        "accuracy_golden": accuracy(g, y),
        "accuracy": accuracy(t, y),
        "flips": int(flips.sum()),
        "flip_rate": float(flips.mean()),
        "critical_sdc": int(crit.sum()),
        "critical_sdc_rate": int(crit.sum()) / n_correct if n_correct else None,
        "logits_max_abs": finite_or_none(err["max_abs"]),
        "logits_mean_abs": finite_or_none(err["mean_abs"]),
        "confidence_measure": measure,
        "by_confidence": sdc_by_confidence(g, t, y, edges, measure),
    }
