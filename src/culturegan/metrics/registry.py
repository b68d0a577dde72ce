"""Registry of set-to-set metrics, and the JSONL records they produce.

A metric registered here compares two image sets (folders, file lists or tensors) through a
backbone and returns a :class:`MetricRecord`: the value under the name ``<metric>_<backbone>``
(``fd_inception`` is FID, ``kd_inception`` KID), the backbone's name, weight hash and
preprocessing, the image counts and the time taken. :func:`append_jsonl` adds a record to a
log, one JSON object per line, like the metric logs of the StyleGAN code bases.

Which way is better is in :func:`higher_is_better`, used to pick the best training step.

Usage::

    record = compute_metric("fd", "real/", "fake/", backbone="lite0")
    append_jsonl("metrics.jsonl", record.to_dict())
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from culturegan.metrics.backbones import Backbone, get_backbone
from culturegan.metrics.features import Source, get_stats
from culturegan.metrics.stats import (
    DEFAULT_MAX_KD_ROWS,
    FeatureStats,
    fd_from_stats,
    kernel_distance,
)

MetricFn = Callable[..., tuple[float, dict[str, Any]]]  # (stats_a, stats_b, **opts) -> value
METRICS: dict[str, MetricFn] = {}

# Metric name prefixes for which larger is better; every other metric is a distance.
_HIGHER_IS_BETTER = ("ssim", "style_acc", "diversity")


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    def decorator(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric '{name}' is registered twice")
        METRICS[name] = fn
        return fn

    return decorator


def list_metrics() -> list[str]:
    return list(METRICS)


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` (e.g. "fd_lite0/photo->ink") are better."""
    return metric.split("/")[0].startswith(_HIGHER_IS_BETTER)


@dataclass
class MetricRecord:
    metric: str  # e.g. "fd_lite0"
    value: float
    backbone: str | None  # registry name, or None for pixel metrics
    weight_sha256: str | None
    preprocessing: str | None = None
    standard_weights: bool | None = None
    num_a: int = 0  # images whose features entered each side
    num_b: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"std": ...} for kd
    a: str = ""  # what was compared (folder or "<tensor>")
    b: str = ""
    time_s: float = 0.0
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@register_metric("fd")
def fd_metric(a: FeatureStats, b: FeatureStats, **_: Any) -> tuple[float, dict[str, Any]]:
    """Fréchet distance of Gaussians fitted to the two feature sets (FID with 'inception')."""
    extra = {}
    if min(a.n, b.n) <= a.dim:
        # Fewer images than dimensions: the covariances are singular and FD is biased upward.
        extra["warning"] = f"fewer images than feature dimensions ({min(a.n, b.n)} <= {a.dim})"
    return fd_from_stats(a, b), extra


@register_metric("kd")
def kd_metric(
    a: FeatureStats,
    b: FeatureStats,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    **_: Any,
) -> tuple[float, dict[str, Any]]:
    """Kernel distance (unbiased MMD^2, cubic polynomial kernel): mean over random subsets."""
    mean, std = kernel_distance(
        a.kd_features,
        b.kd_features,
        num_subsets=num_subsets,
        subset_size=subset_size,
        seed=seed,
    )
    used = min(len(a.kd_features), len(b.kd_features), subset_size)
    return mean, {"std": std, "num_subsets": num_subsets, "subset_size": used}


def _describe(source: Source) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else f"<{type(source).__name__}>"


def compute_metric(
    metric: str,
    a: Source,
    b: Source,
    *,
    backbone: str | Backbone = "lite0",
    weights: str | os.PathLike | None = None,  # backbone weights (file, or classifier folder)
    download: bool = False,  # inception: fetch the weights if they are nowhere local
    device: str = "cpu",
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    max_kd_rows: int = DEFAULT_MAX_KD_ROWS,
    progress: bool = False,
    **metric_options: Any,  # e.g. num_subsets / subset_size for kd
) -> MetricRecord:
    """Compare image sets ``a`` and ``b`` with the registered ``metric`` through ``backbone``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})")
    start = time.perf_counter()
    net = get_backbone(backbone, weights=weights, download=download, device=device)
    options = {
        "cache_dir": cache_dir,
        "use_cache": use_cache,
        "batch_size": batch_size,
        "max_kd_rows": max_kd_rows,
        "progress": progress,
    }
    stats_a, hit_a = get_stats(a, net, desc=f"{net.name} A", **options)
    stats_b, hit_b = get_stats(b, net, desc=f"{net.name} B", **options)
    value, extra = METRICS[metric](stats_a, stats_b, **metric_options)
    extra.update({"cache_hit_a": hit_a, "cache_hit_b": hit_b})
    if stats_a.skipped or stats_b.skipped:
        extra["skipped_unreadable"] = [stats_a.skipped, stats_b.skipped]
    return MetricRecord(
        metric=f"{metric}_{net.name}",
        value=value,
        backbone=net.name,
        weight_sha256=net.weight_sha256,
        preprocessing=net.preprocessing,
        standard_weights=net.standard,
        num_a=stats_a.n,
        num_b=stats_b.n,
        extra=extra,
        a=_describe(a),
        b=_describe(b),
        time_s=time.perf_counter() - start,
    )


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Append one JSON object as a line of ``path`` (created with its folder if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return path
