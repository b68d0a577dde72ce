"""Read-only browsing for the studio: HTML reports and training runs found under one folder.

An HTML report is any ``index.html`` (what ``analyze``, ``evaluate`` and the demo write) or
``*.html`` file under the folder, up to :data:`MAX_DEPTH` levels down; a training run is a folder
with a ``log.jsonl``. Files are served only from inside the folder (after resolving links), only
with the suffixes in :data:`SERVED`, and HTML with a sandboxing Content-Security-Policy, so a
report cannot run scripts in the studio's origin.

Usage::

    reports = find_reports(Path("runs")); runs = find_runs(Path("runs"))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from culturegan.training.logger import read_log

MAX_DEPTH = 4  # folder levels searched below the reports folder
MAX_ITEMS = 500  # reports or runs listed at most (the rest are counted)
SERVED = {
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".csv": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".css": "text/css",
}
CURVE_WIDTH, CURVE_HEIGHT = 480, 160


@dataclass(frozen=True)
class Listing:
    items: list[str]  # paths relative to the reports folder, with '/'
    more: int  # how many were left out beyond MAX_ITEMS


def _walk(root: Path, wanted) -> Listing:
    found: list[str] = []
    more = 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue  # unreadable folder: nothing to list there
        for child in children:
            if child.name.startswith(".") or child.is_symlink():
                continue
            if wanted(child):
                if len(found) < MAX_ITEMS:
                    found.append(child.relative_to(root).as_posix())
                else:
                    more += 1
            if child.is_dir() and depth + 1 < MAX_DEPTH:
                stack.append((child, depth + 1))
    return Listing(sorted(found), more)


def find_reports(root: Path) -> Listing:
    """HTML files under ``root`` (not inside TensorBoard folders)."""
    return _walk(root, lambda p: p.suffix == ".html" and p.is_file() and "tb" not in p.parts)


def find_runs(root: Path) -> Listing:
    """Training run folders (with ``log.jsonl``) under ``root``."""
    return _walk(root, lambda p: p.is_dir() and (p / "log.jsonl").is_file())


def served_file(root: Path, relative: str) -> tuple[Path, str]:
    """The file ``relative`` inside ``root`` and its media type; ValueError for anything outside
    the folder, hidden, missing or of a type not served."""
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or any(p.startswith(".") for p in Path(relative).parts):
        raise ValueError(f"'{relative}' is not inside the reports folder")
    media = SERVED.get(path.suffix.lower())
    if media is None:
        raise ValueError(f"'{relative}': the studio serves only {', '.join(sorted(SERVED))}")
    if not path.is_file():
        raise FileNotFoundError(f"no file '{relative}' in the reports folder")
    return path, media


def run_view(root: Path, relative: str) -> dict:
    """A run's sample images (newest last) and its loss curves as SVG polyline points."""
    run = (root.resolve() / relative).resolve()
    if not run.is_relative_to(root.resolve()) or not (run / "log.jsonl").is_file():
        raise FileNotFoundError(f"no training run '{relative}' in the reports folder")
    samples = sorted((run / "samples").glob("*.png")) if (run / "samples").is_dir() else []
    records = read_log(run)
    keys = sorted({k for r in records for k in r if k.startswith("loss/")})
    curves = []
    for key in keys:
        points = [
            (r["step"], float(r[key]))
            for r in records
            if isinstance(r.get(key), int | float) and math.isfinite(r[key]) and "step" in r
        ]
        if len(points) >= 2:
            curves.append({"name": key, **_polyline(points)})
    return {
        "name": relative,
        "samples": [p.relative_to(root.resolve()).as_posix() for p in samples[-12:]],
        "n_samples": len(samples),
        "curves": curves,
        "steps": max((r.get("step", 0) for r in records), default=0),
    }


def _polyline(points: list[tuple[float, float]]) -> dict:
    """SVG ``points`` for a (step, value) series fitted to CURVE_WIDTH x CURVE_HEIGHT."""
    steps = [s for s, _ in points]
    values = [v for _, v in points]
    s0, s1 = min(steps), max(steps)
    v0, v1 = min(values), max(values)
    ds, dv = (s1 - s0) or 1.0, (v1 - v0) or 1.0
    coords = " ".join(
        f"{(s - s0) / ds * CURVE_WIDTH:.1f},{CURVE_HEIGHT - (v - v0) / dv * CURVE_HEIGHT:.1f}"
        for s, v in points
    )
    return {"points": coords, "min": f"{v0:.4g}", "max": f"{v1:.4g}", "last": f"{values[-1]:.4g}"}
