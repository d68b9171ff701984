"""JSON-ready quality summaries of a faulty run against the golden run."""

from __future__ import annotations

from typing import Any

from accelsim.quality._arrays import finite_or_none
from accelsim.quality.features import (
    FeatureNet,
    class_accuracy,
    feature_distance,
    frechet_feature_distance,
)
from accelsim.quality.images import psnr, ssim


def image_summary(
    golden: Any,
    test: Any,
    data_range: float = 2.0,
    *,
    net: FeatureNet | None = None,
    labels: Any = None,
    reference: Any = None,
) -> dict[str, Any]:
    """PSNR (dB; None when identical), SSIM, and with a ``net``: feature distance to golden,
    class accuracy of ``test`` for the requested ``labels``, Frechet distance of ``test`` to
    ``reference`` images (e.g. real data; needs >= 2 images each). Missing parts are None."""
    out: dict[str, Any] = {
        "psnr": finite_or_none(psnr(golden, test, data_range)),
        "ssim": finite_or_none(ssim(golden, test, data_range)),
        "feature_distance": None,
        "class_accuracy": None,
        "frechet": None,
    }
    if net is not None:
        out["feature_distance"] = finite_or_none(feature_distance(net, golden, test))
        if labels is not None:
            out["class_accuracy"] = class_accuracy(net, test, labels)
        if reference is not None:
            out["frechet"] = finite_or_none(frechet_feature_distance(net, reference, test))
    return out
