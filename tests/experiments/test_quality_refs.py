"""The three quality criteria: the dataset test passes another golden set and flags degraded
samples; the paired accuracy test; the image and strict thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from accelsim.experiments import trials
from accelsim.experiments.quality_refs import (
    FD_PERCENTILE,
    References,
    mcnemar_lower_p,
    null_statistics,
)
from accelsim.experiments.runner import generator_quality
from accelsim.quality.features import extract_features


def test_mcnemar_exact_one_sided():
    assert mcnemar_lower_p(0, 0) == 1.0 and mcnemar_lower_p(0, 5) == 1.0
    # 8 losses, 0 gains: 0.5**8
    assert mcnemar_lower_p(8, 0) == pytest.approx(0.5**8)
    # against scipy's exact binomial test
    for lost, gained in ((3, 1), (7, 2), (12, 10), (20, 4)):
        ref = stats.binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue
        assert mcnemar_lower_p(lost, gained) == pytest.approx(ref)


def _refs(**kw) -> References:  # type: ignore[no-untyped-def]
    base = dict(
        criterion="dataset",
        fd_threshold=100.0,
        fd_null=(50.0, 100.0),
        samples=32,
        image_threshold=0.01,
        image_fraction=0.1,
        seed_distance=0.1,
        strict_threshold=0.001,
    )
    return References(**{**base, **kw})


def test_each_criterion_judges_its_own_metric():
    refs = _refs()
    ok = {"fd": 80.0, "accuracy_lost": 1, "accuracy_gained": 1, "image_distance_mean": 0.005,
          "feature_distance": 0.0005}  # fmt: skip
    assert refs.judge(ok) == {
        "fd_threshold": 100.0,
        "meets_dataset": True,
        "meets_image": True,
        "meets_strict": True,
        "meets_quality": True,
    }
    assert not refs.meets({**ok, "fd": 120.0})  # shifted distribution
    assert not refs.meets({**ok, "accuracy_lost": 9, "accuracy_gained": 0})  # p = 0.002
    assert refs.meets({**ok, "accuracy_lost": 3, "accuracy_gained": 0})  # p = 0.125
    assert not refs.meets({**ok, "image_distance_mean": 0.02}, "image")
    assert not refs.meets({**ok, "feature_distance": 0.002}, "strict")
    assert refs.meets({**ok, "feature_distance": 0.002})  # the dataset criterion decides
    assert not refs.meets({"fd": None})
    # a results.csv row (strings) is judged the same way
    assert refs.meets({k: str(v) for k, v in ok.items()})


@pytest.fixture(scope="module")
def golden_sets():
    """Golden sample sets of dit-digits for 7 independent seeds (16 samples, 4 steps)."""
    st = trials.setup()
    base = {"model": "dit-digits", "samples": 16, "steps": 4}
    out = []
    for seed in range(7):
        g = trials.golden_for(trials.normalize({**base, "seed": seed}), st)
        out.append(g)
    return out


def test_dataset_criterion_passes_another_golden_set_and_flags_degraded_samples(golden_sets):
    net = golden_sets[0].session.feature_net()
    labels = golden_sets[0].session.inputs()["labels"]
    feats = [extract_features(net, g.outcome.output) for g in golden_sets[:5]]
    fd_null, seed_distance = null_statistics(feats)
    assert len(fd_null) == 10 and seed_distance > 0
    refs = _refs(
        fd_threshold=float(np.percentile(fd_null, FD_PERCENTILE)),
        fd_null=tuple(fd_null),
        samples=16,
        image_threshold=0.1 * seed_distance,
        seed_distance=seed_distance,
    )
    # a golden set of seeds the references never saw, judged against another unseen one
    a, b = golden_sets[5].outcome.output, golden_sets[6].outcome.output
    other = generator_quality(net, a, b, labels)
    assert refs.meets(other, "dataset")
    assert not refs.meets(other, "image")  # different seeds: not the same images
    # degraded samples: heavy noise on the golden images of the same seed
    g = torch.Generator().manual_seed(0)
    noisy = (a + 0.8 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    degraded = generator_quality(net, a, noisy, labels)
    assert not refs.meets(degraded, "dataset")
    # and the same set is trivially within every criterion
    same = generator_quality(net, a, a.clone(), labels)
    assert same["fd"] == pytest.approx(0.0, abs=1e-6) and refs.meets(same, "image")


def test_generator_quality_per_image_and_paired_accuracy(golden_sets):
    net = golden_sets[0].session.feature_net()
    labels = golden_sets[0].session.inputs()["labels"]
    a = golden_sets[0].outcome.output
    b = a.clone()
    b[3] = -1.0  # one destroyed image
    q = generator_quality(net, a, b, labels)
    assert q["image_distance_max"] > q["image_distance_mean"] > 0
    assert q["image_distance_mean"] == pytest.approx(q["image_distance_max"] / a.shape[0])
    assert q["samples"] == a.shape[0]
    assert q["accuracy_lost"] + q["accuracy_gained"] <= 1
    assert q["class_accuracy"] - q["golden_class_accuracy"] == pytest.approx(
        (q["accuracy_gained"] - q["accuracy_lost"]) / a.shape[0]
    )
