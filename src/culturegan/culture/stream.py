"""Describe and embed a whole collection in bounded memory, resumably, on any executor.

:func:`stream_study` is the per-image half of ``culturegan analyze``. It works in two passes:

1. hash every file (SHA-256 of its bytes) and count the images the cache lacks;
2. walk the files in order: a cached image is read from the cache, the others are grouped in
   chunks of :data:`CHUNK_SIZE` and sent to an executor (:mod:`culturegan.culture.executors`:
   this process, a local process pool or a Dask cluster), which runs :func:`analyse_chunk`
   (descriptors, and the backbone's features when asked). Each finished chunk is written to the
   per-file cache at once, so a killed run, started again, computes only what is left.
   Results are emitted in file order, each image's row appended to on-disk ``.npy`` arrays
   (``ARRAYS/descriptors.npy``, ``ARRAYS/<backbone>.npy``,
   ``ARRAYS/<backbone>_channel_stats.npy``; row i is row i of ``descriptors.csv``).

At most ``slots`` chunks are in flight and at most :data:`MAX_WAITING` images wait for an
earlier one, so memory does not grow with the collection: what is kept per image is its
culture, path, hash, size and palette text. The chunks are the same whatever runs them, so a
local and a Dask run give the same numbers. The arrays are returned as read-only memory maps.

Usage::

    study = stream_study(scan.items(), root=scan.root, size=256, cache_dir="report/cache",
                         arrays_dir="report/arrays", backbone="lite0", executor="dask")
    print(study.throughput["images_per_second"])
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturegan.culture.cache import ResultCache, file_sha256
from culturegan.culture.descriptors import list_descriptors
from culturegan.culture.executors import open_executor
from culturegan.culture.extract import describe_image, descriptor_settings
from culturegan.culture.table import DescriptorTable
from culturegan.data.images import ImageLoadError, load_image

log = logging.getLogger("culturegan.culture")

CHUNK_SIZE = 16  # images per task: one backbone batch, and little scheduling overhead
MAX_WAITING = 2048  # images emitted-in-order may wait for an earlier chunk (memory bound)
NPY_HEADER_BYTES = 128  # fixed, so the final row count is written over the first guess


def analyse_chunk(
    tasks: list[tuple[str, bool, bool]],  # (path, descriptors needed, features needed)
    size: int,  # working resolution
    backbone: Any,  # a registry name or Backbone object; None when no features are asked
) -> list[dict[str, Any]]:
    """Worker side: per task ``{"error": reason}`` or ``{"record": ..., "features": ...}``
    (each key present when asked). Reads each file once; keeps only working-size images."""
    out: list[dict[str, Any]] = []
    to_embed = []  # (task index, working-size image)
    for k, (path, want_record, want_features) in enumerate(tasks):
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            out.append({"error": exc.reason})
            continue
        result: dict[str, Any] = {}
        if want_record:
            result["record"] = describe_image(image, size)
        if want_features:
            from culturegan.culture.embed import at_working_size

            to_embed.append((k, at_working_size(image, size)))
        out.append(result)
    if to_embed:
        from culturegan.culture.embed import embed_images, pack_features
        from culturegan.metrics.backbones import get_backbone

        batch = embed_images(get_backbone(backbone), [im for _, im in to_embed], size=size)
        for j, (k, _) in enumerate(to_embed):
            out[k]["features"] = pack_features(batch, j)
    return out


def _npy_header(rows: int, cols: int) -> bytes:
    """A version 1.0 ``.npy`` header for a (rows, cols) float64 array, padded to a fixed size."""
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
    body = text.ljust(NPY_HEADER_BYTES - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


class RowArrays:
    """Named (N, D) float64 arrays filled one row at a time: appended to ``.npy`` files in
    ``folder`` (renamed into place by :meth:`finish`), or kept in memory when it is None."""

    def __init__(self, folder: str | os.PathLike | None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.rows = 0
        self._dims: dict[str, int] = {}
        self._files: dict[str, Any] = {}
        self._memory: dict[str, list[np.ndarray]] = {}

    def append(self, row: dict[str, np.ndarray]) -> None:
        if self._dims and set(row) != set(self._dims):
            raise ValueError(f"row has arrays {sorted(row)}, expected {sorted(self._dims)}")
        for name, value in row.items():
            vector = np.ascontiguousarray(value, dtype="<f8").ravel()
            dim = self._dims.setdefault(name, len(vector))
            if len(vector) != dim:
                raise ValueError(f"row {self.rows} of '{name}' has {len(vector)} values, not {dim}")
            if self.folder is None:
                self._memory.setdefault(name, []).append(vector)
                continue
            if name not in self._files:
                self.folder.mkdir(parents=True, exist_ok=True)
                fh = open(self.folder / f"{name}.npy.partial", "wb", buffering=1 << 20)  # noqa: SIM115
                fh.write(_npy_header(0, dim))
                self._files[name] = fh
            self._files[name].write(vector.tobytes())
        self.rows += 1

    def finish(self) -> dict[str, np.ndarray]:
        """Every array, (rows, D): read-only memory maps of the files, or in-memory arrays."""
        out = {}
        for name, dim in self._dims.items():
            if self.folder is None:
                out[name] = np.stack(self._memory[name]).reshape(self.rows, dim)
                continue
            fh = self._files.pop(name)
            fh.seek(0)
            fh.write(_npy_header(self.rows, dim))
            fh.close()
            path = self.folder / f"{name}.npy"
            os.replace(self.folder / f"{name}.npy.partial", path)
            out[name] = np.load(path, mmap_mode="r") if self.rows else np.empty((0, dim))
        return out

    def close(self) -> None:
        """Drop unfinished files (after an error)."""
        for name, fh in self._files.items():
            fh.close()
            (self.folder / f"{name}.npy.partial").unlink(missing_ok=True)
        self._files.clear()


_QUEUED = object()  # the chunk of an entry still in the batch being filled


@dataclass(eq=False)
class _Entry:
    culture: str
    path: Path
    file_hash: str | None
    record: dict | None = None
    features: np.ndarray | None = None
    error: str | None = None
    chunk: Any = None  # its _Chunk (or _QUEUED) until it is complete


@dataclass(eq=False)
class _Chunk:
    future: Any
    entries: list[_Entry]


@dataclass
class StudyFeatures:
    """Everything :func:`stream_study` measured, in file order."""

    table: DescriptorTable  # descriptors, then the Gram summaries when features were computed
    embeddings: dict[str, np.ndarray]  # {name: (N, D)} read-only memory maps (or arrays)
    embedding_info: dict  # the ``learned`` section of the summary ({} without a backbone)
    failed: list[tuple[str, Path, str]]  # (culture, file, reason)
    throughput: dict[str, Any] = field(default_factory=dict)


def stream_study(
    items: list[tuple[str, Path]],  # (culture, file), in the order of the table
    *,
    root: Path,  # paths in the table are relative to this
    size: int,  # working resolution (shorter side, pixels)
    cache_dir: str | os.PathLike | None,  # per-file cache (None: off, and no resuming)
    arrays_dir: str | os.PathLike | None = None,  # on-disk arrays (None: kept in memory)
    backbone: Any = None,  # registry name or Backbone: also embed; None: descriptors only
    executor: str = "local",  # "local" or "dask"
    workers: int | None = None,  # local processes, or workers of a new LocalCluster
    scheduler: str | None = None,  # Dask scheduler address (default: start a LocalCluster)
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
) -> StudyFeatures:
    """Describe (and embed) every file; see the module docstring."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    cache_root = None if cache_dir is None else str(cache_dir)
    records = ResultCache(cache_root, settings=descriptor_settings(size))
    net = features = None
    if backbone is not None:
        from culturegan.culture.embed import embedding_cache_settings
        from culturegan.metrics.backbones import get_backbone

        net = get_backbone(backbone)
        features = ResultCache(cache_root, settings=embedding_cache_settings(net, size))

    hashes: list[str | None] = []
    errors: dict[int, str] = {}
    to_compute = 0
    for i, (_, path) in enumerate(tqdm(items, disable=not progress, unit="img", desc="hashing")):
        try:
            hashes.append(file_sha256(path))
        except OSError as exc:  # vanished or unreadable since the scan
            hashes.append(None)
            errors[i] = f"cannot read the file ({exc})"
            continue
        missing = not records.contains(hashes[i])
        to_compute += missing or (
            features is not None and not features.contains(hashes[i], "features")
        )

    names = list_descriptors()
    table = DescriptorTable(
        names=list(names),
        values=np.empty((0, 0)),
        culture=[],
        path=[],
        file_sha256=[],
        width=[],
        height=[],
        palette=[],
    )
    failed: list[tuple[str, Path, str]] = []
    arrays = RowArrays(arrays_dir)
    counts = {"computed": 0, "from_cache": 0}
    bar = tqdm(total=len(items), disable=not progress, unit="img", desc="describing")

    def collect(chunk: _Chunk) -> None:
        """Take a finished chunk's results and cache them at once (resuming depends on it)."""
        for entry, result in zip(chunk.entries, chunk.future.result(), strict=True):
            entry.chunk = None
            if "error" in result:
                entry.error = result["error"]
                continue
            if "record" in result:
                entry.record = result["record"]
                records.put(entry.file_hash, entry.record)
            if "features" in result:
                entry.features = result["features"]
                features.put_array(entry.file_hash, "features", entry.features)
            counts["computed"] += 1
        chunk.future = None

    def emit(entry: _Entry) -> None:
        bar.update(1)
        if entry.error is not None:
            failed.append((entry.culture, entry.path, entry.error))
            return
        row = [float(entry.record["descriptors"][n]) for n in names]
        if net is None:
            arrays.append({"descriptors": np.array(row)})
        else:
            from culturegan.culture.embed import split_features

            parts = split_features(entry.features, net.dim)
            arrays.append(
                {
                    "descriptors": np.concatenate([row, parts["gram"]]),
                    net.name: parts["pooled"],
                    f"{net.name}_channel_stats": parts["channel_stats"],
                }
            )
        table.culture.append(entry.culture)
        table.path.append(entry.path.relative_to(root).as_posix())
        table.file_sha256.append(entry.file_hash)
        table.width.append(int(entry.record["width"]))
        table.height.append(int(entry.record["height"]))
        table.palette.append(entry.record["palette"])

    try:
        with open_executor(
            executor, workers=workers, scheduler=scheduler, n_tasks=to_compute
        ) as pool:
            shared = pool.share(backbone)
            waiting: deque[_Entry] = deque()  # in file order
            in_flight: deque[_Chunk] = deque()
            batch: list[_Entry] = []

            def dispatch() -> None:
                tasks = [
                    (str(e.path), e.record is None, net is not None and e.features is None)
                    for e in batch
                ]
                chunk = _Chunk(pool.submit(analyse_chunk, tasks, size, shared), list(batch))
                for e in batch:
                    e.chunk = chunk
                in_flight.append(chunk)
                batch.clear()

            def drain(block: bool) -> None:
                """Collect finished chunks, emit the complete head; ``block``: wait for one."""
                for chunk in [c for c in in_flight if c.future.done()]:
                    collect(chunk)
                    in_flight.remove(chunk)
                if block and in_flight:
                    collect(in_flight.popleft())
                while waiting and waiting[0].chunk is None:
                    emit(waiting.popleft())

            for i, (culture, path) in enumerate(items):
                entry = _Entry(culture, path, hashes[i], error=errors.get(i))
                if entry.error is None:
                    entry.record = records.get(entry.file_hash)
                    if features is not None:
                        entry.features = features.get_array(entry.file_hash, "features")
                    if entry.record is None or (features is not None and entry.features is None):
                        entry.chunk = _QUEUED
                        batch.append(entry)
                        if len(batch) >= chunk_size:
                            dispatch()
                    else:
                        counts["from_cache"] += 1
                waiting.append(entry)
                drain(block=False)
                while len(in_flight) >= pool.slots or len(waiting) > MAX_WAITING:
                    if waiting[0].chunk is _QUEUED:
                        dispatch()
                    drain(block=True)
            if batch:
                dispatch()
            while waiting:
                drain(block=True)
            label = pool.label
    except BaseException:
        arrays.close()
        raise
    finally:
        bar.close()

    columns = arrays.finish()
    seconds = time.perf_counter() - start
    n_rows = arrays.rows
    table.values = np.array(columns.get("descriptors", np.empty((0, len(names)))))
    info: dict = {}
    embeddings: dict[str, np.ndarray] = {}
    if net is not None:
        from culturegan.culture.embed import embedding_info, gram_names

        table.names = table.names + gram_names()
        table.values = table.values.reshape(n_rows, len(table.names))
        embeddings = {net.name: columns.get(net.name, np.empty((0, net.dim)))}
        stats = columns.get(f"{net.name}_channel_stats", np.empty((0, 0)))
        embeddings[f"{net.name}_channel_stats"] = stats
        info = embedding_info(net, channel_stats_dim=stats.shape[1], cache_hits=features.hits)
    throughput = {
        "executor": label,
        "images": len(items),
        "described": n_rows,
        "computed": counts["computed"],
        "from_cache": counts["from_cache"],
        "failed": len(failed),
        "chunk_size": chunk_size,
        "seconds": seconds,
        "images_per_second": len(items) / seconds if seconds > 0 else None,
    }
    log.info(
        "described %d images in %.1f s (%.1f images/s; %d computed, %d from the cache, "
        "%d unreadable) on %s",
        len(items),
        seconds,
        throughput["images_per_second"] or 0.0,
        counts["computed"],
        counts["from_cache"],
        len(failed),
        label,
    )
    return StudyFeatures(table, embeddings, info, failed, throughput)
