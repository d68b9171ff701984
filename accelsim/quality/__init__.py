"""accelsim.quality: image and classifier quality metrics (pure functions, numpy or torch in).

Images in [-1, 1] by default (``data_range=2.0``), ``(N, C, H, W)`` or ``(N, F, C, H, W)``.
"""

from accelsim.quality._arrays import finite_or_none
from accelsim.quality.classifier import (
    MARGIN_EDGES,
    MAX_EDGES,
    accuracy,
    classifier_summary,
    confidence,
    confidence_buckets,
    critical_sdc,
    logits_error,
    sdc_by_confidence,
    softmax,
    top1,
    top1_flips,
)
from accelsim.quality.features import (
    class_accuracy,
    extract_features,
    feature_distance,
    feature_distance_per_image,
    frechet_distance,
    frechet_feature_distance,
    frechet_from_stats,
    gaussian_stats,
)
from accelsim.quality.images import psnr, psnr_per_image, ssim, ssim_map, ssim_per_image
from accelsim.quality.summary import image_summary

__all__ = [
    "MARGIN_EDGES",
    "MAX_EDGES",
    "accuracy",
    "class_accuracy",
    "classifier_summary",
    "confidence",
    "confidence_buckets",
    "critical_sdc",
    "extract_features",
    "feature_distance",
    "feature_distance_per_image",
    "finite_or_none",
    "frechet_distance",
    "frechet_feature_distance",
    "frechet_from_stats",
    "gaussian_stats",
    "image_summary",
    "logits_error",
    "psnr",
    "psnr_per_image",
    "sdc_by_confidence",
    "softmax",
    "ssim",
    "ssim_map",
    "ssim_per_image",
    "top1",
    "top1_flips",
]
