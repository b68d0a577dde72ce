"""What the fetchers share on disk: ``manifest.csv``, a perceptual hash, the checked image save.

* :class:`Manifest` is one CSV row per saved image (RFC 4180 via :mod:`csv`), read back on the
  next run so that what is already there is skipped; it is rewritten atomically, so a killed
  run leaves the old manifest or the new one, never half a line.
* :func:`dhash` is the difference hash (Krawetz, "Kind of like that", 2013): the grey image
  shrunk to 9 x 8, one bit per horizontal neighbour pair (left brighter than right). Re-encoding,
  resizing and small colour changes move few of its 64 bits, so two pictures whose hashes differ
  in at most ``max_distance`` bits are taken as the same picture. :class:`DuplicateIndex` keeps
  the hashes of a folder and answers "is this one already here?".
* :func:`save_checked_image` is the one way a fetched image lands: its bytes go to a temporary
  file, :func:`culturegan.data.images.load_image` must decode it (else :class:`ImageRejected`
  says why), its hash must not match a kept one, and only then is it renamed into place.

Usage::

    manifest = Manifest(out / "manifest.csv", MUSEUM_FIELDS)
    saved = save_checked_image(data, out / "met-45734", duplicates=index)
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from culturegan.data.images import ImageLoadError, load_image, to_rgb
from culturegan.fileio import atomic_write

log = logging.getLogger("culturegan.fetch")

MANIFEST_NAME = "manifest.csv"
# Bits in which two 64-bit difference hashes may differ and still be the same picture: a JPEG
# re-encode or a resize moves 0-3 of them; different pictures differ in about 32.
DUPLICATE_DISTANCE = 5
# Magic numbers of the formats the loader reads, and the suffix each file gets.
_SIGNATURES = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"BM", ".bmp"),
)


class ImageRejected(ValueError):
    """A fetched image that was not kept; ``reason`` says why (corrupt, duplicate, ...)."""

    def __init__(self, reason: str, *, duplicate_of: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.duplicate_of = duplicate_of


# ----------------------------------------------------------------------------- manifest


class Manifest:
    """The rows of ``path`` (created on the first save), keyed by ``key_fields``."""

    def __init__(
        self, path: str | Path, fields: Sequence[str], *, key_fields: Sequence[str]
    ) -> None:
        self.path = Path(path)
        self.fields = tuple(fields)
        self.key_fields = tuple(key_fields)
        self.rows: list[dict[str, str]] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                missing = [
                    f for f in self.key_fields + ("file",) if f not in (reader.fieldnames or [])
                ]
                if missing:
                    raise ValueError(
                        f"'{self.path}' is not a culturegan manifest (no column "
                        f"{', '.join(missing)}); use another --out folder or remove the file"
                    )
                self.rows = [dict(row) for row in reader]
        self._by_key = {self.key(row): row for row in self.rows}

    def key(self, row: Mapping[str, object]) -> tuple[str, ...]:
        return tuple(str(row.get(f, "")) for f in self.key_fields)

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self.rows)

    def has_file(self, key: tuple[str, ...]) -> bool:
        """Whether ``key`` has a row and its file is still on disk."""
        row = self._by_key.get(key)
        return (
            row is not None and bool(row.get("file")) and (self.path.parent / row["file"]).is_file()
        )

    def add(self, row: Mapping[str, object]) -> None:
        key = self.key(row)
        if key in self._by_key:  # a file that had gone missing and was fetched again
            self.rows = [r for r in self.rows if self.key(r) != key]
        self.rows.append({f: "" if row.get(f) is None else str(row.get(f)) for f in self.fields})
        self._by_key[key] = self.rows[-1]

    def count(self, **where: str) -> int:
        return sum(all(row.get(k) == v for k, v in where.items()) for row in self.rows)

    def save(self) -> Path:
        fields = list(self.fields) + [  # keep columns an older version wrote
            f for f in (self.rows[0].keys() if self.rows else ()) if f not in self.fields
        ]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(self.rows)

        return atomic_write(self.path, write)


# ----------------------------------------------------------------------------- near-duplicates


def dhash(img: Image.Image) -> int:
    """The 64-bit difference hash of ``img`` (any mode)."""
    grey = to_rgb(img).convert("L").resize((9, 8), Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.int16)  # (8, 9)
    bits = (pixels[:, :-1] > pixels[:, 1:]).ravel()  # (64,)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


class DuplicateIndex:
    """Difference hashes of the kept images; :meth:`find` names a near-duplicate."""

    def __init__(self, max_distance: int = DUPLICATE_DISTANCE) -> None:
        self.max_distance = max_distance
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._names: list[str] = []

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]], max_distance: int = DUPLICATE_DISTANCE):
        index = cls(max_distance)
        for row in rows:
            if row.get("dhash"):
                index.add(int(row["dhash"], 16), row.get("file", ""))
        return index

    def find(self, value: int) -> str | None:
        if not self._names:
            return None
        distances = np.bitwise_count(self._hashes ^ np.uint64(value))
        best = int(np.argmin(distances))
        return self._names[best] if distances[best] <= self.max_distance else None

    def add(self, value: int, name: str) -> None:
        self._hashes = np.append(self._hashes, np.uint64(value))
        self._names.append(name)

    def __len__(self) -> int:
        return len(self._names)


# ----------------------------------------------------------------------------- saving


def image_suffix(data: bytes) -> str | None:
    """The file suffix for ``data`` from its magic number (None: not an image we read)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in _SIGNATURES if data.startswith(magic)), None)


def encode_jpeg(img: Image.Image, quality: int = 95) -> bytes:
    """An in-memory image (e.g. a decoded dataset record) as JPEG bytes."""
    buffer = io.BytesIO()
    to_rgb(img).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@dataclass
class SavedImage:
    path: Path
    sha256: str
    dhash: str  # 16 hex digits
    width: int
    height: int


def save_checked_image(
    data: bytes,
    stem: Path,
    *,
    duplicates: DuplicateIndex | None = None,  # refuse near-duplicates of these; add this one
    root: Path | None = None,  # the index names files relative to this folder (default: name)
) -> SavedImage:
    """Save ``data`` as ``stem`` + the suffix its format implies, if it decodes and is not a
    near-duplicate of an image in ``duplicates`` (else :class:`ImageRejected`, nothing written).
    """
    suffix = image_suffix(data)
    if suffix is None:
        raise ImageRejected("not a recognised image format (is it an error page?)")
    dest = stem.with_name(stem.name + suffix)
    name = dest.relative_to(root).as_posix() if root else dest.name
    found: dict[str, object] = {}

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        try:
            img = load_image(tmp)
        except ImageLoadError as exc:
            raise ImageRejected(exc.reason) from None
        value = dhash(img)
        twin = duplicates.find(value) if duplicates is not None else None
        if twin is not None and twin != name:  # (a file fetched again is not its own twin)
            raise ImageRejected(f"near-duplicate of {twin}", duplicate_of=twin)
        found.update(hash=value, size=img.size)

    atomic_write(dest, write)
    value = int(found["hash"])  # type: ignore[arg-type]
    if duplicates is not None:
        duplicates.add(value, name)
    width, height = found["size"]  # type: ignore[misc]
    return SavedImage(dest, hashlib.sha256(data).hexdigest(), f"{value:016x}", width, height)
