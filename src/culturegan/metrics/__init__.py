"""Style-transfer metrics that run offline, with every backbone named.

* ``backbones``: registry of feature networks (``lite0`` offline default, ``inception`` for
  standard FID/KID, ``classifier`` trained by the project); results carry name + weight hash.
* ``stats``: streaming mean/covariance, Fréchet distance, kernel distance.
* ``features``: batched extraction from folders / tensors, statistics cached on disk.
* ``content``: SSIM, perceptual distance, diversity.
* ``registry``: set-to-set metrics (``fd``, ``kd``) as JSONL records.
* ``evaluate``: a model on a split, every direction, per-pair matrices; ``record_eval``.
* ``classifier``: the style classifier; ``report_page``: the HTML page; ``cli``: commands.

Usage::

    from culturegan.metrics import compute_metric, evaluate_model
    record = compute_metric("fd", "real/", "fake/", backbone="lite0")
"""

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
from culturegan.metrics.content import pairwise_diversity, perceptual_distance, ssim
from culturegan.metrics.evaluate import direction_pairs, evaluate_model, record_eval
from culturegan.metrics.features import compute_stats, default_cache_dir, folder_stats, get_stats
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

__all__ = [
    "BACKBONES",
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URL",
    "METRICS",
    "Backbone",
    "ClassifierReport",
    "FeatureStats",
    "MetricRecord",
    "StyleClassifier",
    "append_jsonl",
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
