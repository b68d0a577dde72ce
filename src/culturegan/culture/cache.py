"""On-disk cache of per-image results, keyed by the hash of the file's bytes.

Layout: ``CACHE/<settings>/<hh>/<sha256>.json`` for descriptors and palettes, and
``CACHE/<settings>/<hh>/<sha256>.<name>.npz`` for arrays such as embeddings, where
``<settings>`` is a short hash of everything that changes the numbers (descriptor version and
names, working size, backbone and weights hash). Renaming or moving a file keeps its entry;
editing it makes a new one. Nothing is pickled: JSON and ``np.savez`` without object arrays,
read back with ``allow_pickle=False``.

Files are written to a temporary name and renamed, so parallel workers never see half a file.
An unreadable entry is reported once in the log and computed again.

Usage::

    cache = ResultCache("report/cache", settings={"size": 256, "version": 1})
    record = cache.get(file_sha256(path)) or compute(...)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("culturegan.culture")

HASH_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def settings_key(settings: dict[str, Any]) -> str:
    """A 16-character hash of a JSON-able settings dict (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultCache:
    """Per-file-hash JSON records and arrays under one settings folder; ``root=None`` is off."""

    def __init__(self, root: str | os.PathLike | None, *, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.folder = None if root is None else Path(root) / settings_key(settings)
        self.hits = 0
        self.misses = 0
        self.unreadable = 0

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def _path(self, file_hash: str, suffix: str) -> Path:
        assert self.folder is not None
        return self.folder / file_hash[:2] / f"{file_hash}{suffix}"

    def _note_unreadable(self, path: Path, exc: Exception) -> None:
        self.unreadable += 1
        log.warning("cache entry '%s' is unreadable (%s); computing it again", path, exc)

    def contains(self, file_hash: str, name: str | None = None) -> bool:
        """Whether the record (``name=None``) or the array ``name`` is stored (not read)."""
        if self.folder is None:
            return False
        return self._path(file_hash, ".json" if name is None else f".{name}.npz").exists()

    def get(self, file_hash: str) -> dict[str, Any] | None:
        if self.folder is None:
            return None
        path = self._path(file_hash, ".json")
        if not path.exists():
            self.misses += 1
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self._note_unreadable(path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return record

    def put(self, file_hash: str, record: dict[str, Any]) -> None:
        if self.folder is None:
            return
        text = json.dumps(record, sort_keys=True)
        _write_atomically(
            self._path(file_hash, ".json"), lambda tmp: tmp.write_text(text, encoding="utf-8")
        )

    def get_array(self, file_hash: str, name: str) -> np.ndarray | None:
        if self.folder is None:
            return None
        path = self._path(file_hash, f".{name}.npz")
        if not path.exists():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                value = np.array(data["value"])
        except (OSError, ValueError, KeyError) as exc:
            self._note_unreadable(path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_array(self, file_hash: str, name: str, value: np.ndarray) -> None:
        if self.folder is None:
            return

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz"
                np.savez(fh, value=np.asarray(value))

        _write_atomically(self._path(file_hash, f".{name}.npz"), write)
