"""Quality references of an explore run: what "quality maintained" means, measured.

Three criteria (DESIGN.md, "quality the way the field judges it"), all computed for every run
from the metrics of :func:`accelsim.experiments.runner.generator_quality`:

* **dataset** (default; how DRIFT and FID / CLIP-score studies judge generation): the Frechet
  distance ``fd`` between the run's sample features and its golden samples' must lie within
  the sampling noise of the metric itself, the 95th percentile of the Frechet distances
  between independent golden sample sets of the same size (``reference_sets`` golden runs of
  other seeds, every pair), and the run's class accuracy must not be significantly lower than
  golden (exact one-sided McNemar test on the paired samples, p >= 0.05);
* **image** (how LPIPS studies judge it against the error-free image): the mean per-image
  feature distance to the golden image must stay within ``image_fraction`` of the mean
  distance between golden images of different seeds and the same class;
* **strict**: the feature distance to golden may not exceed the feature distance between the
  float model's and the W8A8 golden samples of the same seeds (timing errors may change the
  output no more than quantization already does).

:func:`measure_references` measures the thresholds from golden runs (nominal point, no faults,
typical chip) and the float model; :class:`References` judges a result row under any of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CRITERIA = ("dataset", "image", "strict")
#: Significance level of the accuracy test and percentile of the Frechet-distance null.
ALPHA = 0.05
FD_PERCENTILE = 95.0


def mcnemar_lower_p(lost: int, gained: int) -> float:
    """One-sided exact McNemar p-value that the run's accuracy is lower than golden's: the
    probability of at least ``lost`` losses among ``lost + gained`` discordant pairs when a
    loss and a gain are equally likely (1 when no pair is discordant)."""
    from scipy.stats import binom

    n = int(lost) + int(gained)
    if n == 0 or lost <= 0:
        return 1.0
    return float(binom.sf(int(lost) - 1, n, 0.5))


@dataclass(frozen=True)
class References:
    """The thresholds of the three criteria and which one decides (``criterion``).

    ``fd_null``: Frechet distances between independent golden sets of ``samples`` images;
    ``fd_threshold`` their 95th percentile. ``seed_distance``: mean per-image feature distance
    between golden images of different seeds (same class); ``image_threshold`` =
    ``image_fraction`` x that. ``strict_threshold``: the float-vs-W8A8 feature distance (or
    ``--threshold`` when ``strict_given``).
    """

    criterion: str
    fd_threshold: float
    fd_null: tuple[float, ...]
    samples: int
    image_threshold: float
    image_fraction: float
    seed_distance: float
    strict_threshold: float
    strict_given: bool = False

    @property
    def threshold(self) -> float:
        """The feature-distance line drawn in the Pareto plot (image criterion's when the
        deciding one is the dataset criterion, whose own axis is the Frechet distance)."""
        return self.strict_threshold if self.criterion == "strict" else self.image_threshold

    def meets(self, row: dict[str, Any], criterion: str | None = None) -> bool:
        """Whether a result row maintains quality under ``criterion`` (default: the deciding
        one)."""
        c = criterion or self.criterion
        if c == "dataset":
            fd = _num(row.get("fd"))
            lost = int(_num(row.get("accuracy_lost")) or 0)
            gained = int(_num(row.get("accuracy_gained")) or 0)
            p = mcnemar_lower_p(lost, gained)
            return fd is not None and fd <= self.fd_threshold and p >= ALPHA
        if c == "image":
            d = _num(row.get("image_distance_mean"))
            return d is not None and d <= self.image_threshold
        d = _num(row.get("feature_distance"))
        return d is not None and d <= self.strict_threshold

    def judge(self, row: dict[str, Any]) -> dict[str, Any]:
        """The verdict columns of a row: ``fd_threshold``, ``meets_dataset``, ``meets_image``,
        ``meets_strict`` and ``meets_quality`` (the deciding criterion's)."""
        out: dict[str, Any] = {"fd_threshold": self.fd_threshold}
        for c in CRITERIA:
            out[f"meets_{c}"] = self.meets(row, c)
        out["meets_quality"] = out[f"meets_{self.criterion}"]
        return out

    def describe(self, criterion: str | None = None) -> str:
        """One sentence stating the criterion and its threshold, for reports."""
        c = criterion or self.criterion
        if c == "dataset":
            return (
                f"the dataset criterion: Frechet distance of feature-net features to the golden "
                f"samples <= {self.fd_threshold:.4g} (the {FD_PERCENTILE:g}th percentile of the "
                f"distances between {len(self.fd_null)} pairs of independent golden sets of "
                f"{self.samples} samples) and class accuracy not significantly lower than "
                f"golden (one-sided exact McNemar test, p >= {ALPHA:g})"
            )
        if c == "image":
            return (
                f"the image criterion: mean per-image feature distance to the golden image "
                f"<= {self.image_threshold:.4g} ({self.image_fraction:g} x the {self.seed_distance:.4g} "
                "between golden images of different seeds and the same class)"
            )
        if self.strict_given:
            return f"the strict criterion: feature distance to golden <= {self.strict_threshold:.4g} (--threshold)"
        return (
            f"the strict criterion: feature distance to golden <= {self.strict_threshold:.4g}, "
            "the feature distance between the float model's and the W8A8 golden samples "
            "(errors may change the output no more than quantization does)"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready thresholds."""
        return {
            "criterion": self.criterion,
            "fd_threshold": self.fd_threshold,
            "fd_null": list(self.fd_null),
            "samples": self.samples,
            "image_threshold": self.image_threshold,
            "image_fraction": self.image_fraction,
            "seed_distance": self.seed_distance,
            "strict_threshold": self.strict_threshold,
            "strict_given": self.strict_given,
        }


def _num(x: Any) -> float | None:
    if x is None or x == "":
        return None
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return float(x)


def float_model_outputs(session: Any, golden_output: Any, seed: int) -> Any:
    """Samples of the un-intercepted float model for ``seed`` (same noise as the W8A8 runs)."""
    import torch

    from accelsim.diffusion.sampler import SamplerConfig, sample
    from accelsim.diffusion.schedule import NoiseSchedule
    from accelsim.rng import torch_generator

    inputs = session.inputs()
    mconf = dict(getattr(session.model, "accelsim_config", {}))
    with torch.no_grad():
        res = sample(
            session.model,
            tuple(golden_output.shape),
            inputs["cond"],
            null_cond=inputs["null"],
            schedule=NoiseSchedule.from_config(mconf),
            config=SamplerConfig(
                method=session.config.method, steps=session.config.steps, guidance=session.guidance
            ),
            generator=torch_generator(seed, "sampler", session.config.model),
        )
    return res.x


def reference_seeds(first: int, count: int) -> list[int]:
    """The seeds of the independent golden sets (disjoint from the explore and profile seeds
    when ``first`` is above them)."""
    return list(range(first, first + count))


def null_statistics(features: Sequence[np.ndarray]) -> tuple[list[float], float]:
    """Frechet distances between every pair of independent golden feature sets, and the mean
    per-image feature distance between their images (same index = same class)."""
    from accelsim.quality.features import frechet_distance, unit_normalize

    fds = []
    dists = []
    for a, b in itertools.combinations(features, 2):
        fds.append(frechet_distance(a, b))
        dists.append(float(np.mean(np.sum((unit_normalize(a) - unit_normalize(b)) ** 2, axis=1))))
    return fds, float(np.mean(dists))


def measure_references(
    cfg: Any,
    base: dict[str, Any],
    state: Any,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    memo: Any = None,
) -> References:
    """The references of an explore grid (``base``: its shared ``model-run`` keys); ``memo``
    (``get(inputs, compute)``) keeps the measurements across reruns."""
    if memo is not None:
        inputs = {
            "references": base,
            "seeds": list(cfg.seeds),
            "reference_sets": cfg.reference_sets,
            "reference_seed": cfg.reference_seed,
            "threshold": cfg.threshold,
        }
        raw = memo.get(inputs, lambda: _measure(cfg, base, state, progress).as_dict())
    else:
        raw = _measure(cfg, base, state, progress).as_dict()
    return References(
        criterion=cfg.quality,
        fd_threshold=float(raw["fd_threshold"]),
        fd_null=tuple(raw["fd_null"]),
        samples=int(raw["samples"]),
        image_threshold=cfg.image_fraction * float(raw["seed_distance"]),
        image_fraction=cfg.image_fraction,
        seed_distance=float(raw["seed_distance"]),
        strict_threshold=float(raw["strict_threshold"]),
        strict_given=bool(raw["strict_given"]),
    )


def _measure(
    cfg: Any,
    base: dict[str, Any],
    state: Any,
    progress: Callable[[str, int, int], None] | None,
) -> References:
    from accelsim.experiments import trials
    from accelsim.quality.features import extract_features, feature_distance

    seeds = reference_seeds(cfg.reference_seed, cfg.reference_sets)
    total = len(seeds) + len(cfg.seeds)
    done = 0
    feats = []
    session = None
    for seed in seeds:
        golden = trials.golden_for(trials.normalize({**base, "seed": seed}), state)
        session = golden.session
        feats.append(extract_features(session.feature_net(), golden.outcome.output))
        done += 1
        if progress is not None:
            progress("quality references", done, total)
    fd_null, seed_distance = null_statistics(feats)
    if cfg.threshold is not None:
        strict, given = float(cfg.threshold), True
    else:
        fds = []
        for seed in cfg.seeds:
            golden = trials.golden_for(trials.normalize({**base, "seed": seed}), state)
            session = golden.session
            fl = float_model_outputs(session, golden.outcome.output, seed)
            fds.append(feature_distance(session.feature_net(), fl, golden.outcome.output))
            done += 1
            if progress is not None:
                progress("quality references", done, total)
        strict, given = float(sum(fds) / len(fds)), False
    return References(
        criterion=cfg.quality,
        fd_threshold=float(np.percentile(fd_null, FD_PERCENTILE)),
        fd_null=tuple(float(x) for x in fd_null),
        samples=int(feats[0].shape[0]),
        image_threshold=cfg.image_fraction * seed_distance,
        image_fraction=cfg.image_fraction,
        seed_distance=seed_distance,
        strict_threshold=strict,
        strict_given=given,
    )
