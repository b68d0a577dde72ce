"""Cultures on disk, their manifest, and the per-image descriptor table.

A study root holds one folder per culture (``ROOT/<culture>/``, any depth below it; folders
starting with "." or "_" are not cultures). Optional manifest CSVs add columns (artist, year,
genre, source, licence, ...) to images: ``ROOT/manifest.csv`` (or ``--manifest FILE``) and
``ROOT/<culture>/manifest.csv`` (as ``culturegan fetch`` writes them). Each needs a ``path``
(or ``file``) column holding each image's path relative to the manifest's folder (relative to
ROOT for ``--manifest``), e.g. ``ink_wash/0001.png`` in ROOT, or, when file names are unique,
just the name.

Usage::

    scan = scan_cultures("art/"); manifest = read_manifest("art/manifest.csv")
    table.write_csv("report/descriptors.csv")
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from culturegan.data.images import scan_images

MANIFEST_NAME = "manifest.csv"
MISSING = "(missing)"  # an empty manifest value, where values are grouped
FIXED_COLUMNS = ("culture", "path", "file_sha256", "width", "height", "palette")


@dataclass
class CultureScan:
    """Image files per culture, and the files skipped while listing them (with reasons)."""

    root: Path
    files: dict[str, list[Path]]  # culture -> image files, sorted
    skipped: list[tuple[str, Path, str]] = field(default_factory=list)  # culture, file, reason
    ignored: int = 0  # files without an image extension

    @property
    def cultures(self) -> list[str]:
        return list(self.files)

    def items(self) -> list[tuple[str, Path]]:
        return [(c, p) for c, paths in self.files.items() for p in paths]


def scan_cultures(
    root: str | os.PathLike,
    *,
    cultures: Sequence[str] | None = None,  # which culture folders (default: all)
    min_cultures: int = 2,
) -> CultureScan:
    """List ``ROOT/<culture>/`` folders with :func:`culturegan.data.images.scan_images`."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"art folder '{root}' does not exist")
    if not root.is_dir():
        raise NotADirectoryError(
            f"'{root}' is a file; expected a folder with one folder per culture"
        )
    available = sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
    names = list(cultures) if cultures is not None else available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"no culture folder {', '.join(map(repr, unknown))} in '{root}' "
            f"(found: {', '.join(available) or 'none'})"
        )
    if len(names) < min_cultures:
        raise ValueError(
            f"'{root}' has {len(names)} culture folder(s) ({', '.join(names) or 'none'}); "
            f"at least {min_cultures} are needed, laid out as ROOT/<culture>/<images>"
        )
    scan = CultureScan(root=root, files={})
    for name in names:
        found = scan_images(root / name, check="header")
        scan.files[name] = found.files
        scan.skipped += [(name, path, reason) for path, reason in found.skipped]
        scan.ignored += found.ignored
    empty = [n for n, f in scan.files.items() if not f]
    if empty:
        raise ValueError(f"culture folder(s) {', '.join(empty)} in '{root}' hold no usable image")
    return scan


def read_manifest(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """(extra column names, rows) of a manifest CSV with a ``path`` (or ``file``) column;
    each row's ``path`` holds that value. Columns named like those culturegan writes itself
    (``culture``, ``width``, ...) are renamed ``manifest_culture``, ..."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest '{path}' does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        key = "path" if "path" in header else "file"
        if key not in header:
            raise ValueError(
                f"manifest '{path}' needs a 'path' or 'file' column (image path relative to the "
                f"manifest's folder, e.g. ink_wash/0001.png); its columns are: {', '.join(header)}"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    # A column culturegan fills itself (a museum's "culture" field, as `culturegan fetch`
    # writes it) is kept as manifest_<name>.
    renamed = {h: f"manifest_{h}" for h in header if h in FIXED_COLUMNS and h not in ("path", key)}
    for row in rows:
        for old, new in renamed.items():
            row[new] = row.pop(old, "")
        row["path"] = row.get(key, "")
    return [renamed.get(h, h) for h in header if h != key], rows


def read_manifests(
    root: Path, cultures: Sequence[str], manifest: str | os.PathLike | None = None
) -> tuple[list[Path], list[str], list[dict[str, str]]]:
    """(files read, column names, rows with ``path`` relative to ROOT) of every manifest of a
    study: each ``ROOT/<culture>/manifest.csv``, then ``manifest`` (paths relative to ROOT) or
    else ``ROOT/manifest.csv``; a later file's row wins where two describe the same image."""
    found = [(root / c / MANIFEST_NAME, f"{c}/") for c in cultures]
    found = [(p, prefix) for p, prefix in found if p.is_file()]
    if manifest is not None or (root / MANIFEST_NAME).is_file():
        found.append((Path(manifest) if manifest is not None else root / MANIFEST_NAME, ""))
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for path, prefix in found:
        names, part = read_manifest(path)
        columns += [c for c in names if c not in columns]
        for row in part:
            row["path"] = prefix + row["path"].replace("\\", "/").removeprefix("./")
        rows += part
    return [p for p, _ in found], columns, rows


def match_manifest(
    rel_paths: Sequence[str], columns: list[str], rows: list[dict[str, str]]
) -> tuple[dict[str, list[str]], int]:
    """Manifest values for each image (``""`` where missing) and the number of images matched.

    A row matches an image by its relative path, or by file name when that name is unique.
    """
    by_path = {r["path"].replace("\\", "/").lstrip("./"): r for r in rows}
    names = [Path(p).name for p in rel_paths]
    unique = {n for n in names if names.count(n) == 1}
    meta = {c: [] for c in columns}
    matched = 0
    for rel, name in zip(rel_paths, names, strict=True):
        row = by_path.get(rel) or (by_path.get(name) if name in unique else None)
        matched += row is not None
        for c in columns:
            meta[c].append(row.get(c, "") if row else "")
    return meta, matched


@dataclass
class DescriptorTable:
    """One row per image: culture, file, descriptor values, palette, manifest columns."""

    names: list[str]  # descriptor columns
    values: np.ndarray  # (N, D) float64
    culture: list[str]
    path: list[str]  # relative to the root, posix
    file_sha256: list[str]
    width: list[int]
    height: list[int]
    palette: list[str]  # "#rrggbb:share ..." per image
    meta: dict[str, list[str]] = field(default_factory=dict)  # manifest columns

    def __len__(self) -> int:
        return len(self.path)

    def subset(self, rows: np.ndarray | Sequence[int]) -> DescriptorTable:
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]

        def pick(values: list) -> list:
            return [values[i] for i in idx]

        return DescriptorTable(
            names=list(self.names),
            values=self.values[idx],
            culture=pick(self.culture),
            path=pick(self.path),
            file_sha256=pick(self.file_sha256),
            width=pick(self.width),
            height=pick(self.height),
            palette=pick(self.palette),
            meta={k: pick(v) for k, v in self.meta.items()},
        )

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def cultures(self) -> list[str]:
        return list(dict.fromkeys(self.culture))

    def counts(self) -> dict[str, int]:
        return {c: self.culture.count(c) for c in self.cultures()}

    def write_csv(self, path: str | os.PathLike) -> Path:
        """Fixed columns, then descriptors (full float precision), then manifest columns."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*FIXED_COLUMNS, *self.names, *self.meta])
            for i in range(len(self)):
                writer.writerow(
                    [
                        self.culture[i],
                        self.path[i],
                        self.file_sha256[i],
                        self.width[i],
                        self.height[i],
                        self.palette[i],
                        *(repr(float(v)) for v in self.values[i]),
                        *(self.meta[k][i] for k in self.meta),
                    ]
                )
        return path

    @classmethod
    def read_csv(cls, path: str | os.PathLike, *, descriptors: Sequence[str]) -> DescriptorTable:
        """Read a table written by :meth:`write_csv`; ``descriptors`` names the value columns."""
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        missing = [c for c in (*FIXED_COLUMNS, *descriptors) if c not in header]
        if missing:
            raise ValueError(f"'{path}' lacks column(s) {', '.join(missing)}")
        extra = [h for h in header if h not in FIXED_COLUMNS and h not in descriptors]
        return cls(
            names=list(descriptors),
            values=np.array([[float(r[n]) for n in descriptors] for r in rows]).reshape(
                len(rows), len(descriptors)
            ),
            culture=[r["culture"] for r in rows],
            path=[r["path"] for r in rows],
            file_sha256=[r["file_sha256"] for r in rows],
            width=[int(r["width"]) for r in rows],
            height=[int(r["height"]) for r in rows],
            palette=[r["palette"] for r in rows],
            meta={k: [r[k] for r in rows] for k in extra},
        )


def format_palette(palette: Sequence[tuple[str, float]]) -> str:
    return " ".join(f"{colour}:{share:.4f}" for colour, share in palette)


def parse_palette(text: str) -> list[tuple[str, float]]:
    out = []
    for item in text.split():
        colour, share = item.split(":")
        out.append((colour, float(share)))
    return out
