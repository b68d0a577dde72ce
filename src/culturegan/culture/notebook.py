"""An :class:`~culturegan.culture.analysis.AnalysisResult` in Jupyter: summary tables and the map.

What the notebook shows is read back from the files the study wrote (``summary.json``,
``map_coordinates.csv``, ``descriptors.csv``), so a result rebuilt from a report folder shows
the same; the map is the report's own SVG scatter (:func:`culturegan.culture.plots.svg_scatter`)
of the descriptors' PCA, without thumbnails (their paths are relative to the report folder).

Usage::

    result = analyze_cultures("art/", "report/")
    result            # in a notebook: headline, tables, map
    frame = result.to_pandas()  # one row per image: culture, path, descriptors, manifest columns
"""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, Any

from culturegan.notebook import esc, html_table, require_pandas

if TYPE_CHECKING:
    from culturegan.culture.analysis import AnalysisResult

MAP_NAME = "descriptors_pca"  # the map shown: always computed when there are >= 3 images
MAX_MAP_POINTS = 3000  # as in the report: more dots only hide each other


def _map_svg(result: AnalysisResult, summary: dict) -> str:
    from culturegan.culture.plots import culture_colours, svg_scatter

    info = summary.get("maps", {}).get(MAP_NAME)
    path = result.out_dir / "map_coordinates.csv"
    if info is None or not path.is_file():
        return "<p>map: none (fewer than three images)</p>"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    step = max(1, -(-len(rows) // MAX_MAP_POINTS))  # every k-th row, deterministic
    points = [
        (float(r[f"{MAP_NAME}_x"]), float(r[f"{MAP_NAME}_y"]), r["culture"]) for r in rows[::step]
    ]
    colours = culture_colours(list(summary.get("cultures", result.cultures)))
    centroids = []
    for culture, colour in colours.items():
        members = [(x, y) for x, y, c in points if c == culture]
        if members:
            cx = sum(x for x, _ in members) / len(members)
            cy = sum(y for _, y in members) / len(members)
            centroids.append((cx, cy, culture, colour))
    axes = info.get("axes", ["PC1", "PC2"])
    return str(
        svg_scatter(
            points,
            title=f"{info.get('title', 'map')} ({len(rows)} images)",
            colours=colours,
            x_label=axes[0],
            y_label=axes[1],
            markers=centroids,
        )
    )


def analysis_html(result: AnalysisResult) -> str:
    """The HTML Jupyter shows for ``result``: headline, per-culture and per-pair tables, map."""
    summary: dict[str, Any] = {}
    if result.summary_json.is_file():
        summary = json.loads(result.summary_json.read_text(encoding="utf-8"))
    parts = [
        f"<div><b>{esc(summary.get('title', 'Cultural difference study'))}</b>",
        f"<p>{esc(result.headline())}</p>",
        html_table(
            ["culture", "images"],
            [[culture, n] for culture, n in result.cultures.items()],
            caption="images analysed",
        ),
    ]
    comparisons = summary.get("comparisons") or []
    if comparisons:
        first = comparisons[0]
        n_descriptors = len(summary.get("descriptors", []))
        alpha = summary.get("settings", {}).get("alpha", 0.05)
        rows = [
            [
                f"{p['a']} vs {p['b']}",
                f"{p['n_significant']}/{n_descriptors}",
                (p.get("classifier") or {}).get("accuracy_text", "n/a"),
                ", ".join(p.get("separating", [])),
            ]
            for p in first.get("pairs", [])
        ]
        parts.append(
            html_table(
                ["pair", f"differences with q < {alpha}", "pair classifier", "most separating"],
                rows,
                caption=f"pairs ({first.get('label', 'all images')})",
            )
        )
    parts.append(_map_svg(result, summary))
    for warning in result.warnings:
        parts.append(f"<p>warning: {esc(warning)}</p>")
    if result.n_skipped:
        parts.append(f"<p>{result.n_skipped} unreadable files skipped (listed in the report)</p>")
    parts.append(f"<p>report: <code>{esc(result.index_html)}</code></p></div>")
    return "".join(parts)


def analysis_frame(result: AnalysisResult) -> Any:
    """``descriptors.csv`` as a pandas DataFrame: one row per image."""
    pd = require_pandas("AnalysisResult.to_pandas()")
    return pd.read_csv(result.descriptors_csv)
