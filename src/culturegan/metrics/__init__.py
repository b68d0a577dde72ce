"""Style-transfer metrics that run offline, with every backbone named.

* ``backbones``: registry of feature networks (``lite0`` offline default, ``inception`` for
  standard FID/KID, ``classifier`` trained by the project); results carry name + weight hash.
* ``stats``: streaming mean/covariance, Fréchet distance, kernel distance.
* ``features``: batched extraction from folders / tensors, statistics cached on disk.
* ``content``: SSIM, perceptual distance, diversity, bands along the edges.
* ``registry``: set-to-set metrics (``fd``, ``kd``) as JSONL records.
* ``evaluate``: a model on a split, every direction, per-pair matrices; ``record_eval``.
* ``classifier``: the style classifier; ``report_page``: the HTML page; ``cli``: commands.

Usage::

    from culturegan.metrics import compute_metric, evaluate_model
    record = compute_metric("fd", "real/", "fake/", backbone="lite0")
"""

from typing import TYPE_CHECKING

from culturegan._lazy import lazy_exports

if TYPE_CHECKING:  # the same names, for type checkers; at run time they load on first use
    from culturegan.metrics.backbones import (
        BACKBONES,
        Backbone,
        get_backbone,
        list_backbones,
        register_backbone,
    )
    from culturegan.metrics.classifier import (
        ClassifierReport,
        StyleClassifier,
        load_classifier,
        predict,
        train_classifier,
    )
    from culturegan.metrics.content import (
        added_band,
        border_steps,
        grid_peaks,
        pairwise_diversity,
        perceptual_distance,
        ssim,
    )
    from culturegan.metrics.evaluate import (
        EvaluationResult,
        direction_pairs,
        evaluate_model,
        record_eval,
    )
    from culturegan.metrics.features import (
        compute_stats,
        default_cache_dir,
        folder_stats,
        get_stats,
    )
    from culturegan.metrics.inception import FID_WEIGHTS_NAME, FID_WEIGHTS_URL, find_fid_weights
    from culturegan.metrics.registry import (
        METRICS,
        MetricRecord,
        append_jsonl,
        compute_metric,
        higher_is_better,
        list_metrics,
        register_metric,
    )
    from culturegan.metrics.report_page import write_eval_page
    from culturegan.metrics.stats import FeatureStats, frechet_distance, kernel_distance

# Lazy, so `culturegan --help` (which imports culturegan.metrics.cli) imports no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BACKBONES": "culturegan.metrics.backbones",
        "Backbone": "culturegan.metrics.backbones",
        "get_backbone": "culturegan.metrics.backbones",
        "list_backbones": "culturegan.metrics.backbones",
        "register_backbone": "culturegan.metrics.backbones",
        "ClassifierReport": "culturegan.metrics.classifier",
        "StyleClassifier": "culturegan.metrics.classifier",
        "load_classifier": "culturegan.metrics.classifier",
        "predict": "culturegan.metrics.classifier",
        "train_classifier": "culturegan.metrics.classifier",
        "added_band": "culturegan.metrics.content",
        "border_steps": "culturegan.metrics.content",
        "grid_peaks": "culturegan.metrics.content",
        "pairwise_diversity": "culturegan.metrics.content",
        "perceptual_distance": "culturegan.metrics.content",
        "ssim": "culturegan.metrics.content",
        "EvaluationResult": "culturegan.metrics.evaluate",
        "direction_pairs": "culturegan.metrics.evaluate",
        "evaluate_model": "culturegan.metrics.evaluate",
        "record_eval": "culturegan.metrics.evaluate",
        "compute_stats": "culturegan.metrics.features",
        "default_cache_dir": "culturegan.metrics.features",
        "folder_stats": "culturegan.metrics.features",
        "get_stats": "culturegan.metrics.features",
        "FID_WEIGHTS_NAME": "culturegan.metrics.inception",
        "FID_WEIGHTS_URL": "culturegan.metrics.inception",
        "find_fid_weights": "culturegan.metrics.inception",
        "METRICS": "culturegan.metrics.registry",
        "MetricRecord": "culturegan.metrics.registry",
        "append_jsonl": "culturegan.metrics.registry",
        "compute_metric": "culturegan.metrics.registry",
        "higher_is_better": "culturegan.metrics.registry",
        "list_metrics": "culturegan.metrics.registry",
        "register_metric": "culturegan.metrics.registry",
        "write_eval_page": "culturegan.metrics.report_page",
        "FeatureStats": "culturegan.metrics.stats",
        "frechet_distance": "culturegan.metrics.stats",
        "kernel_distance": "culturegan.metrics.stats",
    },
)

__all__ = [
    "BACKBONES",
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URL",
    "METRICS",
    "Backbone",
    "ClassifierReport",
    "EvaluationResult",
    "FeatureStats",
    "MetricRecord",
    "StyleClassifier",
    "added_band",
    "append_jsonl",
    "border_steps",
    "compute_metric",
    "compute_stats",
    "default_cache_dir",
    "direction_pairs",
    "evaluate_model",
    "find_fid_weights",
    "folder_stats",
    "frechet_distance",
    "get_backbone",
    "get_stats",
    "grid_peaks",
    "higher_is_better",
    "kernel_distance",
    "list_backbones",
    "list_metrics",
    "load_classifier",
    "pairwise_diversity",
    "perceptual_distance",
    "predict",
    "record_eval",
    "register_backbone",
    "register_metric",
    "ssim",
    "train_classifier",
    "write_eval_page",
]
