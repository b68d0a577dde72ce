"""Feature statistics of image sets, streamed in batches and cached on disk.

A *source* is a folder, a list of image files, a (N, 3, H, W) tensor in [-1, 1], or a list of
PIL images / (3, H, W) tensors. Files are read through :func:`culturegan.data.load_image` in
batches of ``batch_size`` (a progress bar shows long runs), so memory stays bounded for any
number of images; unreadable files are skipped, counted in ``stats.skipped`` and logged.

The statistics of a set of *files* (mean, covariance and the kernel-distance subset of
:class:`~culturegan.metrics.stats.FeatureStats`) are cached as ``.npz`` files (no pickle) in
``cache_dir``: the argument, else ``$CULTUREGAN_CACHE/stats``, else
``~/.cache/culturegan/stats``. The key hashes the sha256 of every file's bytes (sorted, so
names and order do not matter), the backbone's name, weight hash and preprocessing, and the
statistics options: a changed file, other weights or other options make a new entry.

Usage::

    stats, hit = folder_stats("data/ukiyoe/", get_backbone("lite0"))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from culturegan.data.images import (
    SKIPPED_SHOWN,
    ImageLoadError,
    iter_image_batches,
    pil_to_tensor,
    scan_images,
    skipped_lines,
    to_rgb,
)
from culturegan.fileio import atomic_write
from culturegan.metrics.backbones import Backbone
from culturegan.metrics.stats import DEFAULT_MAX_KD_ROWS, FeatureStats

log = logging.getLogger("culturegan.metrics")

STATS_FORMAT = 1  # bump when the meaning of a cached file changes
CACHE_ENV = "CULTUREGAN_CACHE"

Source = str | os.PathLike | torch.Tensor | Sequence[Any]


def default_cache_dir() -> Path:
    """``$CULTUREGAN_CACHE/stats`` if the variable is set, else ``~/.cache/culturegan/stats``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "culturegan") / "stats"


def list_source_files(source: str | os.PathLike | Sequence[Any]) -> list[Path] | None:
    """The files of a folder or a list of paths; None for in-memory images."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_file():
            return [path]
        scan = scan_images(path, check="none")
        if not scan.files:
            raise ValueError(f"no image files in '{path}' ({scan.summary()})")
        if scan.skipped:  # with check="none": subfolders that cannot be listed
            log.warning("%s", scan.report(limit=SKIPPED_SHOWN))
        return scan.files
    if isinstance(source, torch.Tensor):
        return None
    items = list(source)
    if items and all(isinstance(item, str | os.PathLike) for item in items):
        return [Path(item) for item in items]
    return None


def iter_batches(
    source: Source, batch_size: int, *, skipped: list[tuple[Path, str]] | None = None
) -> Iterator[list[torch.Tensor]]:
    """Lists of (3, H, W) tensors in [-1, 1]; unreadable files go to ``skipped``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(source, torch.Tensor):
        if source.dim() != 4 or source.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(source.shape)}")
        for start in range(0, len(source), batch_size):
            yield list(source[start : start + batch_size])
        return
    files = list_source_files(source)
    if files is None and not any(isinstance(i, str | os.PathLike) for i in source):
        items = list(source)  # tensors and images in memory
        for start in range(0, len(items), batch_size):
            yield [
                i if isinstance(i, torch.Tensor) else pil_to_tensor(to_rgb(i))
                for i in items[start : start + batch_size]
            ]
        return
    paths = files if files is not None else list(source)
    unreadable: list[tuple[Path, str]] = [] if skipped is None else skipped
    for _, images in iter_image_batches(paths, batch_size, skipped=unreadable):
        if skipped is None and unreadable:  # no list to report to: the first one is an error
            raise ImageLoadError(*unreadable[0])
        yield [pil_to_tensor(img) for img in images]
    if skipped is None and unreadable:
        raise ImageLoadError(*unreadable[0])


def source_size(source: Source) -> int:
    if isinstance(source, torch.Tensor):
        return len(source)
    files = list_source_files(source)
    return len(files) if files is not None else len(source)


def compute_stats(
    source: Source,
    backbone: Backbone,
    *,
    batch_size: int = 32,  # images per forward pass
    max_kd_rows: int = DEFAULT_MAX_KD_ROWS,  # feature rows kept for the kernel distance
    seed: int = 0,  # of the kernel-distance subset
    progress: bool = False,  # tqdm bar
    desc: str = "features",
) -> FeatureStats:
    """Feature statistics of every image in ``source`` (no cache)."""
    return _compute(source, backbone, batch_size, max_kd_rows, seed, progress, desc)[0]


def _compute(
    source: Source,
    backbone: Backbone,
    batch_size: int,
    max_kd_rows: int,
    seed: int,
    progress: bool,
    desc: str,
) -> tuple[FeatureStats, list[tuple[Path, str]]]:
    """compute_stats, and the files it could not read with why (logged here)."""
    stats = FeatureStats(backbone.dim, max_kd_rows=max_kd_rows, seed=seed)
    skipped: list[tuple[Path, str]] = []
    total = source_size(source)
    with tqdm(total=total, disable=not progress, unit="img", desc=desc, leave=False) as bar:
        for batch in iter_batches(source, batch_size, skipped=skipped):
            stats.update(backbone.features(batch))
            bar.update(len(batch))
    stats.skipped = len(skipped)
    _warn_skipped(skipped, total)
    return stats, skipped


def _warn_skipped(skipped: Sequence[tuple[Path, str]], total: int, note: str = "") -> None:
    if skipped:  # each named with why, up to a screenful, then counted
        log.warning(
            "skipped %d unreadable images of %d%s:\n%s",
            len(skipped),
            total,
            note,
            "\n".join(skipped_lines(skipped, SKIPPED_SHOWN)),
        )


def files_digest(files: Sequence[str | os.PathLike]) -> str:
    """sha256 over the sorted sha256 digests of the files' bytes."""
    digests = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        digests.append(digest.hexdigest())
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def stats_cache_key(digest: str, backbone: Backbone, *, max_kd_rows: int, seed: int) -> str:
    description = {
        "format": STATS_FORMAT,
        "files": digest,
        "backbone": backbone.name,
        "weight_sha256": backbone.weight_sha256,
        "preprocessing": backbone.preprocessing,
        "max_kd_rows": max_kd_rows,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> tuple[FeatureStats, dict[str, Any]] | None:
    """The cached statistics and their metadata, or None (logged) if the file is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = FeatureStats.from_arrays({k: data[k] for k in data.files})
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            return stats, meta
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable statistics cache '%s' (%s)", path, exc)
        return None


def _write_cache(path: Path, stats: FeatureStats, meta: dict[str, Any]) -> None:
    arrays = {**stats.to_arrays(), "meta": np.asarray(json.dumps(meta))}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **arrays)

    try:
        atomic_write(path, write)
    except OSError as exc:  # a read-only cache is not an error: the numbers are still right
        log.warning("cannot write the statistics cache '%s' (%s)", path, exc)


def folder_stats(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    backbone: Backbone,
    *,
    cache_dir: str | os.PathLike | None = None,  # default: default_cache_dir()
    use_cache: bool = True,  # False: neither read nor write the cache
    batch_size: int = 32,
    max_kd_rows: int = DEFAULT_MAX_KD_ROWS,
    seed: int = 0,
    progress: bool = False,
    desc: str = "features",
) -> tuple[FeatureStats, bool]:
    """Statistics of a folder or list of image files, from the cache when possible.

    Returns the statistics and whether they came from the cache.
    """
    files = list_source_files(source)
    if files is None:
        raise ValueError("folder_stats takes a folder or a list of image files")
    if not files:
        raise ValueError("no image files given")
    if not use_cache:
        stats, _ = _compute(files, backbone, batch_size, max_kd_rows, seed, progress, desc)
        return stats, False
    digest = files_digest(files)
    key = stats_cache_key(digest, backbone, max_kd_rows=max_kd_rows, seed=seed)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{backbone.name}-{key[:32]}.npz"
    if path.is_file():
        cached = _read_cache(path)
        if cached is not None:
            log.debug("statistics cache hit: %s", path)
            stats, meta = cached
            # The files are the same bytes as when cached: they still cannot be read, and the
            # user hears so on every run, not only the first.
            skipped = [(Path(name), reason) for name, reason in meta.get("skipped", [])]
            _warn_skipped(skipped, len(files), " (statistics from the cache)")
            return stats, True
    stats, skipped = _compute(files, backbone, batch_size, max_kd_rows, seed, progress, desc)
    meta = {
        "format": STATS_FORMAT,
        "backbone": backbone.info(),
        "files_sha256": digest,
        "num_files": len(files),
        "max_kd_rows": max_kd_rows,
        "seed": seed,
        "skipped": [[str(name), reason] for name, reason in skipped],
    }
    if stats.n >= 2:
        _write_cache(path, stats, meta)
    return stats, False


def get_stats(
    source: Source,
    backbone: Backbone,
    **options: Any,
) -> tuple[FeatureStats, bool]:
    """Statistics of any source: cached for files, computed for in-memory images."""
    # A folder is scanned once, by folder_stats (the scan logs what it cannot read).
    if isinstance(source, str | os.PathLike) or list_source_files(source) is not None:
        return folder_stats(source, backbone, **options)
    options.pop("cache_dir", None)
    options.pop("use_cache", None)
    return compute_stats(source, backbone, **options), False
