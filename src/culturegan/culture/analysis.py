"""``culturegan analyze``: describe every artwork, compare the cultures, write the report.

:func:`analyze_cultures` runs the whole study on ``ROOT/<culture>/`` folders and writes into
``out_dir``:

* ``descriptors.csv``: one row per image (culture, path, file hash, original size, palette,
  every descriptor, the manifest columns);
* ``map_coordinates.csv``: every image's position on the 2-D maps;
* ``classifiers.csv``: every classifier's cross-validated accuracy with its interval;
* ``summary.json``: settings, counts, skipped files, provenance (images per source and licence,
  source-culture confounds), every statistic, warnings;
* ``index.html`` with ``thumbs/``: the report for readers who do not code;
* ``arrays/``: ``descriptors.npy`` and each embedding as ``<name>.npy``, (N, D) float64, row i
  of each the image of row i of ``descriptors.csv`` (written row by row while streaming);
* ``cache/``: per-file-hash descriptor and embedding records (reused by the next run, and by a
  run started again after being killed: only the images not yet cached are computed).

Usage::

    result = analyze_cultures("art/", "report/", by="genre")
    print(result.headline())
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturegan.culture.classify import fit_pca, format_accuracy, umap_coordinates
from culturegan.culture.compare import (
    CompareSettings,
    classifier_rows,
    compare_cultures,
    write_classifier_csv,
)
from culturegan.culture.descriptors import DEFAULT_SIZE, DESCRIPTOR_VERSION, DESCRIPTORS
from culturegan.culture.descriptors.colour import (
    MERGE_DELTA_E,
    lab_to_hex,
    merge_close,
    weighted_kmeans,
)
from culturegan.culture.extract import sample_per_culture, write_thumbnails
from culturegan.culture.provenance import provenance_csv_rows, provenance_summary
from culturegan.culture.stream import stream_study
from culturegan.culture.table import (
    MANIFEST_NAME,
    MISSING,
    DescriptorTable,
    match_manifest,
    parse_palette,
    read_manifests,
    scan_cultures,
)
from culturegan.fileio import write_json

log = logging.getLogger("culturegan.culture")

SUMMARY_FORMAT_VERSION = 1
MAX_MAP_POINTS = 3000  # dots drawn per map (a seeded sample beyond that; the CSV has all)
CULTURE_PALETTE_K = 8


@dataclass
class AnalysisResult:
    """Where the study was written, and a few headline numbers."""

    out_dir: Path
    descriptors_csv: Path
    summary_json: Path
    index_html: Path
    cultures: dict[str, int]  # images analysed per culture
    n_skipped: int  # files that could not be read (listed in the report)
    classifier_accuracy: float | None  # descriptor classifier, first comparison
    classifier_chance: float | None
    embedding_accuracy: float | None  # classifier on the learned embedding, if computed
    n_significant: int  # (pair, descriptor) differences with q < alpha, first comparison
    n_tests: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)  # executor, images/s, computed, cached
    classifier_ci: tuple[float, float] | None = None  # interval of classifier_accuracy

    def headline(self) -> str:
        parts = [f"{sum(self.cultures.values())} images in {len(self.cultures)} cultures"]
        if self.classifier_accuracy is not None:
            parts.append(
                "descriptor classifier "
                + format_accuracy(self.classifier_accuracy, *self.classifier_ci)
                + f" (chance {self.classifier_chance:.0%})"
            )
        if self.embedding_accuracy is not None:
            parts.append(f"embedding classifier {self.embedding_accuracy:.0%}")
        parts.append(f"{self.n_significant}/{self.n_tests} descriptor differences with q < 0.05")
        return "; ".join(parts)

    def _repr_html_(self) -> str:
        """Jupyter's view: headline, per-culture and per-pair tables, the descriptor map."""
        from culturegan.culture.notebook import analysis_html

        return analysis_html(self)

    def to_pandas(self) -> Any:
        """The descriptor table as a pandas DataFrame (one row per image); needs pandas."""
        from culturegan.culture.notebook import analysis_frame

        return analysis_frame(self)


def analyze_cultures(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int = DEFAULT_SIZE,  # working resolution: shorter side in pixels
    cultures: Sequence[str] | None = None,  # culture folders to use (default: all)
    manifest: str | os.PathLike | None = None,  # default: ROOT/manifest.csv when present
    # (ROOT/<culture>/manifest.csv files are read too)
    by: str | None = None,  # manifest column: compare only within each of its values
    embeddings: bool = True,  # learned embedding and Gram summaries (needs the backbone)
    backbone: object = "lite0",  # a culturegan.metrics backbone name (or Backbone object)
    workers: int | None = None,  # descriptor processes (default: all usable cores)
    executor: str = "local",  # where the per-image work runs: "local" or "dask"
    scheduler: str | None = None,  # Dask scheduler address (default: a new LocalCluster)
    cache_dir: str | os.PathLike | None = "default",  # "default": OUT/cache; None: no cache
    thumbnails_per_culture: int = 24,  # images per culture shown in the report (bounded)
    settings: CompareSettings | None = None,
    title: str = "Cultural difference study",
    note: str = "",  # shown at the top of the report (e.g. "synthetic cultures")
    progress: bool = True,
) -> AnalysisResult:
    """Run the study (see the module docstring) and return where it was written."""
    start = time.perf_counter()
    root, out_dir = Path(root), Path(out_dir)
    settings = settings or CompareSettings()
    scan = scan_cultures(root, cultures=cultures)
    manifests, columns, manifest_rows = read_manifests(root, scan.cultures, manifest)
    if by is not None and by not in columns:
        raise ValueError(
            f"--by '{by}' is not a manifest column"
            + (
                f" (columns: {', '.join(columns)})"
                if columns
                else f" (no manifest: give --manifest or put {MANIFEST_NAME} in '{root}')"
            )
        )
    cache = out_dir / "cache" if cache_dir == "default" else cache_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    study = stream_study(
        scan.items(),
        root=root,
        size=size,
        cache_dir=cache,
        arrays_dir=out_dir / "arrays",
        backbone=backbone if embeddings else None,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
    )
    table, failed, emb = study.table, study.failed, study.embeddings
    skipped = scan.skipped + failed
    if not len(table):
        raise ValueError(f"no image under '{root}' could be read ({len(skipped)} skipped)")
    table.meta, matched = match_manifest(table.path, columns, manifest_rows)

    embedding_info = study.embedding_info or {
        "computed": False,
        "reason": "turned off (--no-embeddings)",
    }

    comparisons = []
    for label, rows in _strata(table, by):
        part = table.subset(rows)
        if len(part.cultures()) < 2:
            comparisons.append(
                {
                    "label": label,
                    "n_images": len(part),
                    "counts": part.counts(),
                    "skipped_reason": "fewer than two cultures in this stratum",
                }
            )
            continue
        comparisons.append(
            compare_cultures(
                part,
                embeddings={k: v[rows] for k, v in emb.items()},
                settings=settings,
                label=label,
            )
        )

    sample = sample_per_culture(table, thumbnails_per_culture, seed=settings.seed)
    thumbs = write_thumbnails(
        [root / table.path[i] for i in sample],
        out_dir,
        [f"thumbs/{table.culture[i]}/{n:04d}.jpg" for n, i in enumerate(sample)],
    )
    thumbnails = {i: t for i, t in zip(sample, thumbs, strict=True) if t is not None}
    maps = build_maps(table, emb, seed=settings.seed)
    write_map_csv(out_dir / "map_coordinates.csv", table, maps)

    table.write_csv(out_dir / "descriptors.csv")
    provenance = provenance_summary(table, settings=settings, by=by)
    warnings = [w for c in comparisons for w in c.get("warnings", [])]
    warnings += provenance["warnings"] if provenance else []
    write_classifier_csv(
        out_dir / "classifiers.csv", classifier_rows(comparisons) + provenance_csv_rows(provenance)
    )
    if scan.skipped or failed:
        warnings.insert(0, f"{len(skipped)} file(s) could not be read and were left out")
    if columns and matched < len(table):
        warnings.append(f"the manifest describes {matched} of the {len(table)} images")
    summary = {
        "format_version": SUMMARY_FORMAT_VERSION,
        "title": title,
        "note": note,
        "root": str(root),
        "settings": {
            "working_size": size,
            "descriptor_version": DESCRIPTOR_VERSION,
            "by": by,
            "manifest": ", ".join(map(str, manifests)) or None,
            "manifest_columns": columns,
            "manifest_matched": matched,
            **settings.to_dict(),
        },
        "cultures": table.counts(),
        "skipped": [{"culture": c, "path": str(p), "reason": r} for c, p, r in skipped],
        "descriptors": {
            name: {"family": d.family, "units": d.units, "definition": d.doc}
            for name, d in DESCRIPTORS.items()
        },
        "learned": embedding_info,
        "palettes": culture_palettes(table),
        "provenance": provenance,
        "comparisons": comparisons,
        "maps": {k: {kk: vv for kk, vv in v.items() if kk != "coords"} for k, v in maps.items()},
        "warnings": warnings,
        "throughput": study.throughput,
        "seconds": time.perf_counter() - start,
    }
    write_json(out_dir / "summary.json", summary)

    from culturegan.culture.report import write_analysis_report

    index = write_analysis_report(out_dir, summary, table, maps, thumbnails)
    first = next((c for c in comparisons if "classifiers" in c), {})
    clf = first.get("classifiers", {})
    return AnalysisResult(
        out_dir=out_dir,
        descriptors_csv=out_dir / "descriptors.csv",
        summary_json=out_dir / "summary.json",
        index_html=index,
        cultures=table.counts(),
        n_skipped=len(skipped),
        classifier_accuracy=clf.get("descriptors", {}).get("accuracy"),
        classifier_chance=clf.get("descriptors", {}).get("chance"),
        embedding_accuracy=clf.get(f"embedding:{embedding_info.get('backbone')}", {}).get(
            "accuracy"
        ),
        n_significant=sum(p["n_significant"] for p in first.get("pairs", [])),
        n_tests=first.get("n_tests", 0),
        seconds=time.perf_counter() - start,
        warnings=warnings,
        throughput=study.throughput,
        classifier_ci=tuple(clf["descriptors"]["accuracy_ci"]) if "descriptors" in clf else None,
    )


def _strata(table: DescriptorTable, by: str | None) -> list[tuple[str, np.ndarray]]:
    """(label, row indices) of each comparison: all images, or one per value of ``by``."""
    if by is None:
        return [("all images", np.arange(len(table)))]
    values = np.array([v or MISSING for v in table.meta[by]])
    return [(f"{by} = {v}", np.nonzero(values == v)[0]) for v in sorted(set(values))]


def build_maps(table: DescriptorTable, emb: dict[str, np.ndarray], *, seed: int) -> dict:
    """2-D maps: PCA of the standardised descriptors, PCA of each embedding, UMAP if present."""
    maps: dict[str, dict] = {}
    if len(table) < 3:
        return maps
    projection = fit_pca(table.values, 2)
    loadings = {n: [float(v) for v in projection.basis[j]] for j, n in enumerate(table.names)}
    maps["descriptors_pca"] = {
        "title": "PCA of the standardised descriptors",
        "axes": [f"PC{i + 1} ({e:.0%} of variance)" for i, e in enumerate(projection.explained)],
        "explained": projection.explained,
        "loadings": loadings,
        "coords": projection.transform(table.values),
    }
    for name, vectors in emb.items():
        p = fit_pca(vectors, 2, scale=False)
        maps[f"{name}_pca"] = {
            "title": f"PCA of the {name} embeddings",
            "axes": [f"PC{i + 1} ({e:.0%} of variance)" for i, e in enumerate(p.explained)],
            "explained": p.explained,
            "coords": p.transform(vectors),
        }
    coords = umap_coordinates(table.values, seed=seed)
    if coords is not None:
        maps["descriptors_umap"] = {
            "title": "UMAP of the standardised descriptors",
            "axes": ["UMAP 1", "UMAP 2"],
            "coords": coords,
        }
    return maps


def write_map_csv(path: Path, table: DescriptorTable, maps: dict) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["culture", "path", *(f"{k}_{a}" for k in maps for a in "xy")])
        for i in range(len(table)):
            coords = [repr(float(v)) for m in maps.values() for v in m["coords"][i][:2]]
            writer.writerow([table.culture[i], table.path[i], *coords])
    return path


def culture_palettes(table: DescriptorTable) -> dict[str, list[tuple[str, float]]]:
    """Each culture's palette: weighted k-means (k = 8, CIELAB) of its images' palette colours,
    each weighted by its share of its picture, close colours merged."""
    from skimage.color import rgb2lab

    out = {}
    for culture in table.cultures():
        colours, weights = [], []
        for i, c in enumerate(table.culture):
            if c == culture:
                for colour, share in parse_palette(table.palette[i]):
                    colours.append([int(colour[k : k + 2], 16) for k in (1, 3, 5)])
                    weights.append(share)
        if not colours:
            out[culture] = []
            continue
        lab = rgb2lab(np.array(colours, dtype=np.float64)[None] / 255.0)[0]
        centres, shares = weighted_kmeans(lab, np.array(weights), CULTURE_PALETTE_K)
        centres, shares = merge_close(centres, shares, MERGE_DELTA_E)
        order = np.argsort(-shares, kind="stable")
        out[culture] = [(lab_to_hex(centres[j]), float(shares[j])) for j in order]
    return out
