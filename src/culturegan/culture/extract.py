"""Compute descriptors for many image files: streamed, cached, in a pool of processes.

The main process hashes each file's bytes and takes the record from the cache when there is
one; only the misses go to the workers, which read one file at a time (through
:func:`culturegan.data.images.load_image`), compute every descriptor at the working resolution
and store the record. Only the small per-image records (a few dozen numbers and a palette)
come back, so memory does not grow with the size of the images. Thumbnails are made afterwards
for a bounded, seeded sample per culture only.

Worker processes are started with "spawn" (not "fork"), which is safe after PyTorch has
started its threads (the demo trains a model first). Small jobs run in the main process,
where starting workers would cost more than it saves.

Usage::

    table, failed = describe_files(scan.items(), root=scan.root, size=256, cache_dir="cache")
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from culturegan.culture.cache import ResultCache, file_sha256
from culturegan.culture.descriptors import (
    DESCRIPTOR_VERSION,
    ImageView,
    compute_descriptors,
    dominant_palette,
    list_descriptors,
)
from culturegan.culture.table import DescriptorTable, format_palette
from culturegan.data.images import ImageLoadError, load_image

MIN_IMAGES_PER_WORKER = 128  # below this many new images per worker, stay in one process (a
# spawned worker costs a second or two to start: it imports numpy, scipy, scikit-image, torch)


def descriptor_settings(size: int) -> dict[str, Any]:
    """What the descriptor numbers depend on (the cache key)."""
    return {
        "kind": "descriptors",
        "version": DESCRIPTOR_VERSION,
        "size": size,
        "names": list_descriptors(),
    }


def _job(task: tuple[str, str, int, str | None]) -> dict[str, Any]:
    """Worker entry point: never raises for a bad image, returns {"error": reason} instead."""
    path, file_hash, size, cache_root = task
    cache = ResultCache(cache_root, settings=descriptor_settings(size))
    try:
        image = load_image(path)
    except ImageLoadError as exc:
        return {"error": exc.reason}
    view = ImageView.from_image(image, size=size)
    record = {
        "width": image.width,
        "height": image.height,
        "descriptors": compute_descriptors(view),
        "palette": format_palette(dominant_palette(view)),
    }
    cache.put(file_hash, record)
    return record


def _worker_init() -> None:
    # Each worker uses one thread: the pool itself provides the parallelism.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def default_workers() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _computed(tasks: list[tuple[str, str, int, str | None]], workers: int) -> Iterator[dict]:
    """Records of ``tasks`` in order: in a spawn pool when there is enough work for it."""
    workers = min(workers, max(1, len(tasks) // MIN_IMAGES_PER_WORKER))
    if workers <= 1:
        yield from map(_job, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init) as pool:
        yield from pool.imap(_job, tasks, chunksize=4)


def _records(
    items: Sequence[tuple[str, Path]], size: int, cache_dir: str | None, workers: int
) -> Iterator[dict[str, Any]]:
    """A record per item, in order: hits come from the cache (checked here, so a fully
    cached run starts no worker), misses are computed by :func:`_computed`."""
    cache = ResultCache(cache_dir, settings=descriptor_settings(size))
    found: list[dict | None] = []
    hashes: list[str | None] = []
    for _, path in items:
        try:
            file_hash = file_sha256(path)
        except OSError as exc:  # vanished or unreadable since the scan
            found.append({"error": f"cannot read the file ({exc})"})
            hashes.append(None)
            continue
        found.append(cache.get(file_hash))
        hashes.append(file_hash)
    tasks = [
        (str(path), hashes[i], size, cache_dir)
        for i, (_, path) in enumerate(items)
        if found[i] is None
    ]
    fresh = _computed(tasks, workers)
    for record, file_hash in zip(found, hashes, strict=True):
        if record is None:
            record = next(fresh)
        yield record if "error" in record else {**record, "file_sha256": file_hash}


def describe_files(
    items: Sequence[tuple[str, Path]],  # (culture, file)
    *,
    root: Path,  # paths in the table are relative to this
    size: int,  # working resolution (shorter side, pixels)
    cache_dir: str | os.PathLike | None,  # None: no cache
    workers: int | None = None,  # processes (default: the usable CPU cores)
    progress: bool = True,
) -> tuple[DescriptorTable, list[tuple[str, Path, str]]]:
    """Describe every file; returns the table and the (culture, file, reason) that failed."""
    from tqdm import tqdm

    workers = default_workers() if workers is None else max(1, workers)
    cache_root = None if cache_dir is None else str(cache_dir)
    names = list_descriptors()
    rows: list[list[float]] = []
    table = DescriptorTable(
        names=names,
        values=np.empty((0, len(names))),
        culture=[],
        path=[],
        file_sha256=[],
        width=[],
        height=[],
        palette=[],
    )
    failed: list[tuple[str, Path, str]] = []
    results = _records(items, size, cache_root, workers)
    for (culture, path), record in tqdm(
        zip(items, results, strict=True),
        total=len(items),
        disable=not progress,
        unit="img",
        desc="descriptors",
    ):
        if "error" in record:
            failed.append((culture, path, record["error"]))
            continue
        rows.append([record["descriptors"][n] for n in names])
        table.culture.append(culture)
        table.path.append(path.relative_to(root).as_posix())
        table.file_sha256.append(record["file_sha256"])
        table.width.append(int(record["width"]))
        table.height.append(int(record["height"]))
        table.palette.append(record["palette"])
    table.values = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return table, failed


def sample_per_culture(table: DescriptorTable, per_culture: int, *, seed: int) -> list[int]:
    """Row indices of up to ``per_culture`` images of each culture, a seeded random choice
    (sorted, so the report shows them in file order)."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for culture in table.cultures():
        rows = [i for i, c in enumerate(table.culture) if c == culture]
        if len(rows) > per_culture:
            rows = sorted(rng.choice(rows, size=per_culture, replace=False).tolist())
        chosen += rows
    return chosen


def write_thumbnails(
    files: Sequence[Path],
    out_dir: Path,
    names: Sequence[str],  # file names (relative to out_dir) to write, one per file
    *,
    side: int = 96,
) -> list[str | None]:
    """JPEG thumbnails (longer side ``side``); returns each relative path, None if unreadable."""
    out: list[str | None] = []
    for path, name in zip(files, names, strict=True):
        try:
            image = load_image(path)
        except ImageLoadError:
            out.append(None)
            continue
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=88)
        out.append(Path(name).as_posix())
    return out
