"""Descriptors of one image, of many files, and the sample of thumbnails shown in a report.

:func:`describe_image` is the per-image work: every descriptor and the dominant palette at the
study's working resolution. :func:`describe_files` runs it over many files through
:func:`culturegan.culture.stream.stream_study` (hashed, cached per file, streamed through a
local process pool or a Dask cluster, in order) and returns the table. Thumbnails are made
afterwards for a bounded, seeded sample per culture only.

Usage::

    table, failed = describe_files(scan.items(), root=scan.root, size=256, cache_dir="cache")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from culturegan.culture.descriptors import (
    DESCRIPTOR_VERSION,
    ImageView,
    compute_descriptors,
    dominant_palette,
    list_descriptors,
)
from culturegan.culture.table import DescriptorTable, format_palette
from culturegan.data.images import ImageLoadError, load_image


def descriptor_settings(size: int) -> dict[str, Any]:
    """What the descriptor numbers depend on (the cache key)."""
    return {
        "kind": "descriptors",
        "version": DESCRIPTOR_VERSION,
        "size": size,
        "names": list_descriptors(),
    }


def describe_image(image: Image.Image, size: int) -> dict[str, Any]:
    """The cached record of one picture: original size, every descriptor, the palette."""
    view = ImageView.from_image(image, size=size)
    return {
        "width": image.width,
        "height": image.height,
        "descriptors": compute_descriptors(view),
        "palette": format_palette(dominant_palette(view)),
    }


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
    from culturegan.culture.stream import stream_study

    study = stream_study(
        items, root=root, size=size, cache_dir=cache_dir, workers=workers, progress=progress
    )
    return study.table, study.failed


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
