"""Classifier metrics on hand-made logits with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from accelsim.errors import ConfigError, ShapeError
from accelsim.quality import (
    MARGIN_EDGES,
    accuracy,
    classifier_summary,
    confidence,
    confidence_buckets,
    critical_sdc,
    logits_error,
    sdc_by_confidence,
    top1_flips,
)

# golden predictions: 0, 1, 2, 0 ; labels 0, 1, 0, 0 -> golden correct on inputs 0, 1, 3
GOLDEN = np.array(
    [
        [5.0, 0.0, 0.0],  # confident
        [0.0, 0.3, 0.0],  # unsure
        [0.0, 0.0, 2.0],  # wrong
        [1.0, 0.0, 0.0],
    ]
)
LABELS = np.array([0, 1, 0, 0])
# test predictions: 0, 0, 1, nan-row
TEST = np.array([[5.0, 0.0, 0.0], [0.4, 0.3, 0.0], [0.0, 3.0, 2.0], [np.nan, 0.0, 0.0]])


def test_flips_and_critical_sdc():
    np.testing.assert_array_equal(top1_flips(GOLDEN, TEST), [False, True, True, True])
    # input 2 flipped but the golden run was wrong: not critical
    np.testing.assert_array_equal(critical_sdc(GOLDEN, TEST, LABELS), [False, True, False, True])
    assert accuracy(GOLDEN, LABELS) == 0.75
    assert accuracy(TEST, LABELS) == 0.25  # the NaN row counts as wrong
    assert accuracy(torch.tensor(GOLDEN), torch.tensor(LABELS)) == 0.75
    err = logits_error(GOLDEN[:3], TEST[:3])
    assert err == {"max_abs": 3.0, "mean_abs": pytest.approx((0.4 + 3.0) / 9)}


def test_confidence_and_buckets():
    p0 = np.exp(5) / (np.exp(5) + 2)
    np.testing.assert_allclose(confidence(GOLDEN[:1]), [p0])
    np.testing.assert_allclose(confidence(GOLDEN[:1], "margin"), [p0 - 1 / (np.exp(5) + 2)])
    b = confidence_buckets([0.0, 0.49, 0.5, 0.8, 0.949, 0.95, 1.0, 1.2, np.nan])
    np.testing.assert_array_equal(b, [0, 0, 1, 2, 2, 3, 3, -1, -1])
    bm = confidence_buckets([0.1, 0.3, 0.6, 0.9], MARGIN_EDGES)
    np.testing.assert_array_equal(bm, [0, 1, 2, 3])
    with pytest.raises(ConfigError, match="edges"):
        confidence_buckets([0.5], [0.0, 0.5, 0.4])
    with pytest.raises(ConfigError, match="measure"):
        confidence(GOLDEN, "entropy")


def test_sdc_by_confidence_table_and_summary():
    rows = sdc_by_confidence(GOLDEN, TEST, LABELS)
    # golden max-softmax: 0.987 -> [.95,1]; 0.40 -> [0,.5); 0.78 -> [.5,.8); 0.58 -> [.5,.8)
    assert [r["inputs"] for r in rows] == [1, 2, 0, 1]
    assert [r["critical_sdc"] for r in rows] == [1, 1, 0, 0]
    assert rows[0]["critical_sdc_rate"] == 1.0 and rows[2]["critical_sdc_rate"] is None
    s = classifier_summary(GOLDEN, TEST, LABELS)
    assert s["flips"] == 3 and s["critical_sdc"] == 2
    assert s["critical_sdc_rate"] == pytest.approx(2 / 3)
    assert s["logits_max_abs"] is None  # NaN -> None in JSON
    json.dumps(s)  # JSON-ready


def test_sequence_logits_flatten_and_shape_errors():
    g = np.zeros((2, 3, 5))
    g[..., 1] = 1.0
    t = g.copy()
    t[1, 2, 4] = 9.0
    assert top1_flips(g, t).sum() == 1
    with pytest.raises(ShapeError, match="golden's"):
        top1_flips(g, t[:1])
    with pytest.raises(ShapeError, match="labels"):
        accuracy(g, [1, 1])
