"""Dataset layouts on disk and their reproducible train / val / test splits.

Two layouts are understood (:func:`detect_layout`):

* ``cyclegan``: the folders of the official CycleGAN datasets, ``trainA/ trainB/`` and
  optionally ``testA/ testB/ valA/ valB/``; the split is the one the folders give.
* ``domains``: one folder per domain (``photo/ ukiyoe/ ink_wash/ ...``), nothing split yet.
  Each file goes to train, val or test by a stable hash of ``(seed, domain, relative path)``,
  so adding files never moves the ones already there. The assignment is recorded in a JSON
  manifest (``root/culturegan_split.json`` unless told otherwise) and reused on the next load.

Folders whose names start with "." or "_" are never domains (``_heldout_photos/`` is safe).

Usage::

    splits = load_splits("data/", domains=["photo", "ukiyoe"]); files = splits.domain("photo").train
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from culturegan.data.images import SKIPPED_SHOWN, scan_images
from culturegan.fileio import atomic_write

log = logging.getLogger("culturegan.data")

MANIFEST_NAME = "culturegan_split.json"
MANIFEST_FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")

_LAYOUT_HELP = (
    "expected either the CycleGAN layout (trainA/ and trainB/, optionally testA/ testB/ "
    "valA/ valB/) or one folder per domain (e.g. photo/ and ukiyoe/)"
)


@dataclass
class DomainSplit:
    """The image files of one domain, split three ways."""

    name: str
    train: list[Path] = field(default_factory=list)
    val: list[Path] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)


@dataclass
class DatasetSplits:
    """Every domain of a dataset root, with the files that were skipped while scanning it."""

    root: Path
    layout: str  # "cyclegan" or "domains"
    domains: list[DomainSplit]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    manifest_path: Path | None = None  # None for the cyclegan layout

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.domains]

    def domain(self, name: str) -> DomainSplit:
        for split in self.domains:
            if split.name == name:
                return split
        raise KeyError(f"no domain '{name}' in '{self.root}' (known: {', '.join(self.names)})")


def _visible_subdirs(root: Path) -> list[str]:
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


def detect_layout(root: str | os.PathLike) -> Literal["cyclegan", "domains"]:
    """``"cyclegan"`` if ``root`` has trainA/ and trainB/, ``"domains"`` if it has domain
    folders; otherwise a ValueError that describes both layouts."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder '{root}' does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"dataset root '{root}' is a file, not a folder")
    if (root / "trainA").is_dir() and (root / "trainB").is_dir():
        return "cyclegan"
    subdirs = _visible_subdirs(root)
    if subdirs:  # recipes that need two or more domains say so themselves
        return "domains"
    found = ", ".join(f"{d}/" for d in subdirs) or "no subfolders"
    raise ValueError(f"cannot tell the layout of '{root}' (found {found}): {_LAYOUT_HELP}")


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or any(not math.isfinite(r) or r < 0 for r in values):
        raise ValueError(
            f"split ratios must be three non-negative numbers (train, val, test), got {ratios}"
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must sum to 1, got {ratios} (sum {sum(values):g})")
    return values[0], values[1], values[2]


def hash_split(seed: int, domain: str, relpath: str, ratios: Sequence[float]) -> str:
    """The split of one file: a stable hash of (seed, domain, relpath) in [0, 1) against the
    cumulative ratios. Independent of the other files, so new files never move old ones."""
    digest = hashlib.sha256(f"{seed}\0{domain}\0{relpath}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < ratios[0]:
        return "train"
    if u < ratios[0] + ratios[1]:
        return "val"
    return "test"


def _check_domain(name: str, folder: Path, split: DomainSplit) -> None:
    total = len(split.train) + len(split.val) + len(split.test)
    if total < 2:
        raise ValueError(
            f"domain '{name}' (folder '{folder}') has {total} usable image"
            f"{'' if total == 1 else 's'}; at least 2 are needed"
        )
    if not split.train:
        raise ValueError(
            f"domain '{name}' (folder '{folder}') has {total} images but none in the train "
            "split; add images or raise the train ratio"
        )


def load_splits(
    root: str | os.PathLike,
    *,
    domains: Sequence[str] | None = None,  # which domains, in order (default: all, sorted)
    ratios: Sequence[float] = (0.8, 0.1, 0.1),  # train, val, test (domains layout only)
    seed: int = 0,  # salt of the split hash (domains layout only)
    manifest_path: str | os.PathLike | None = None,  # default root/culturegan_split.json
    check: Literal["header", "full", "none"] = "header",  # passed to scan_images
) -> DatasetSplits:
    """Find the layout of ``root`` and split every domain into train / val / test."""
    root = Path(root)
    ratios = _check_ratios(ratios)
    layout = detect_layout(root)
    if layout == "cyclegan":
        splits = _load_cyclegan(root, domains, check)
    else:
        path = Path(manifest_path) if manifest_path is not None else root / MANIFEST_NAME
        splits = _load_domains(root, domains, ratios, seed, path, check)
    return splits


def _scan(folder: Path, check: str, skipped: list[tuple[Path, str]]) -> list[Path]:
    scan = scan_images(folder, check=check)
    if scan.skipped:  # each file named with why, up to a screenful
        log.warning("%s", scan.report(limit=SKIPPED_SHOWN))
    skipped += scan.skipped
    return scan.files


def _load_cyclegan(root: Path, domains: Sequence[str] | None, check: str) -> DatasetSplits:
    if domains is not None and len(domains) != 2:
        raise ValueError(
            f"'{root}' has the CycleGAN layout (A and B): give two domain names, got {domains}"
        )
    names = list(domains) if domains is not None else ["A", "B"]
    skipped: list[tuple[Path, str]] = []
    result = []
    for letter, name in zip("AB", names, strict=True):
        split = DomainSplit(name=name)
        for part in SPLIT_NAMES:
            folder = root / f"{part}{letter}"
            if folder.is_dir():
                setattr(split, part, _scan(folder, check, skipped))
        _check_domain(name, root / f"train{letter}", split)
        result.append(split)
    return DatasetSplits(root=root, layout="cyclegan", domains=result, skipped=skipped)


def _read_manifest(path: Path, seed: int, ratios: tuple[float, float, float]) -> dict[str, str]:
    """The recorded file -> split map, after checking that seed and ratios match."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version, files = data["format_version"], data["files"]
        old_seed, old_ratios = data["seed"], [float(r) for r in data["ratios"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"split manifest '{path}' is unreadable ({exc}); delete it to split again"
        ) from exc
    if version != MANIFEST_FORMAT_VERSION or not isinstance(files, dict):
        raise ValueError(
            f"split manifest '{path}' has format_version {version}; this culturegan reads "
            f"version {MANIFEST_FORMAT_VERSION}"
        )
    same_ratios = len(old_ratios) == 3 and all(
        math.isclose(a, b, abs_tol=1e-9) for a, b in zip(old_ratios, ratios, strict=False)
    )
    if old_seed != seed or not same_ratios:
        raise ValueError(
            f"split manifest '{path}' was made with seed={old_seed}, ratios={old_ratios}, but "
            f"this load asks for seed={seed}, ratios={list(ratios)}; use the recorded values, "
            "or pass another manifest_path (or delete this one) to make a new split"
        )
    return {k: v for k, v in files.items() if v in SPLIT_NAMES}


def _write_manifest(path: Path, content: dict) -> None:
    text = json.dumps(content, indent=1, sort_keys=True) + "\n"
    try:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return  # unchanged: a read-only dataset with an up-to-date manifest still loads
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ValueError(
            f"cannot write the split manifest '{path}' ({exc}); if the dataset folder is "
            "read-only, pass manifest_path (--data.manifest) pointing somewhere writable"
        ) from exc


def _load_domains(
    root: Path,
    domains: Sequence[str] | None,
    ratios: tuple[float, float, float],
    seed: int,
    manifest_path: Path,
    check: str,
) -> DatasetSplits:
    available = _visible_subdirs(root)
    if domains is None:
        names = available
    else:
        names = list(domains)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(
                f"no domain folder {', '.join(repr(n) for n in unknown)} in '{root}' "
                f"(available: {', '.join(available)})"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"domain names repeat: {names}")

    recorded = _read_manifest(manifest_path, seed, ratios)
    loaded = set(names)
    # Entries of domains not loaded this time are kept as they are; ours are rebuilt below,
    # which drops files that are gone (or no longer readable).
    assignments = {k: v for k, v in recorded.items() if k.split("/", 1)[0] not in loaded}
    skipped: list[tuple[Path, str]] = []
    result = []
    for name in names:
        folder = root / name
        split = DomainSplit(name=name)
        for path in _scan(folder, check, skipped):
            key = f"{name}/{path.relative_to(folder).as_posix()}"
            part = recorded.get(key) or hash_split(seed, name, key.split("/", 1)[1], ratios)
            assignments[key] = part
            getattr(split, part).append(path)
        _check_domain(name, folder, split)
        result.append(split)

    _write_manifest(
        manifest_path,
        {
            "format_version": MANIFEST_FORMAT_VERSION,
            "seed": seed,
            "ratios": list(ratios),
            "files": assignments,
        },
    )
    return DatasetSplits(
        root=root,
        layout="domains",
        domains=result,
        skipped=skipped,
        manifest_path=manifest_path,
    )
