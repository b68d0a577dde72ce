"""Files of a transfer analysis: ``descriptors.csv`` of all groups and the ``index.html`` page
(the template ``templates/transfer_report.html``).

Usage::

    index, csv_path = write_transfer_outputs(out_dir, summary, photos, outputs, art, ...)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from markupsafe import Markup

from culturegan.culture.classify import fit_pca
from culturegan.culture.extract import write_thumbnails
from culturegan.culture.plots import culture_colours, svg_scatter
from culturegan.culture.table import DescriptorTable
from culturegan.report import render_page

EXAMPLES = 6  # photos shown before/after
MAP_THUMBS = 5  # outputs per target shown on the map


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _combined(groups: list[tuple[str, DescriptorTable]]) -> DescriptorTable:
    first = groups[0][1]
    out = DescriptorTable(
        names=list(first.names),
        values=np.concatenate([t.values for _, t in groups]),
        culture=[g for g, t in groups for _ in range(len(t))],
        path=[p for _, t in groups for p in t.path],
        file_sha256=[h for _, t in groups for h in t.file_sha256],
        width=[w for _, t in groups for w in t.width],
        height=[h for _, t in groups for h in t.height],
        palette=[p for _, t in groups for p in t.palette],
    )
    return out


def write_transfer_outputs(
    out_dir: Path,
    summary: dict,
    photos: DescriptorTable,
    outputs: dict[str, DescriptorTable],
    art: dict[str, DescriptorTable],
    photo_root: Path,
    stylized_root: Path,
    art_root: Path,
) -> tuple[Path, Path]:
    """Write ``descriptors.csv`` (column ``culture`` = group) and ``index.html``."""
    targets = summary["targets"]
    groups = [("photos", photos)]
    groups += [(f"stylized:{t}", outputs[t]) for t in targets]
    groups += [(f"art:{t}", art[t]) for t in targets]
    csv_path = _combined(groups).write_csv(out_dir / "descriptors.csv")

    # Before / after thumbnails for the first photos.
    names = photos.path[:EXAMPLES]
    photo_thumbs = write_thumbnails(
        [photo_root / n for n in names],
        out_dir,
        [f"thumbs/photos/{i:03d}.jpg" for i in range(len(names))],
    )
    out_thumbs = {}
    for t in targets:
        stems = {Path(p).stem: p for p in outputs[t].path}
        files = [stylized_root / stems[Path(n).stem] for n in names if Path(n).stem in stems]
        out_thumbs[t] = write_thumbnails(
            files, out_dir, [f"thumbs/{t}/{i:03d}.jpg" for i in range(len(files))]
        )
    before_after = [  # (photo thumbnail, [(target, output thumbnail)]); None: unreadable
        (thumb, [(t, out_thumbs[t][i] if i < len(out_thumbs[t]) else None) for t in targets])
        for i, thumb in enumerate(photo_thumbs)
    ]
    index = render_page(
        out_dir / "index.html",
        "transfer_report.html",
        title="Transfer analysis",
        subtitle=f"{len(photos)} photos stylized into {', '.join(targets)}.",
        summary=summary,
        targets=targets,
        before_after=before_after,
        movement=_movement_rows(summary),
        details={t: _target_details(summary, t) for t in targets},
        map=_map(photos, outputs, art, targets, out_thumbs),
    )
    return index, csv_path


def _movement_rows(summary: dict) -> list[list[str]]:
    rows = []
    for t, s in summary["per_target"].items():
        emb = s.get("embedding")
        rows.append(
            [
                t,
                f"{s['n_photos']} photos, {s['n_outputs']} outputs, {s['n_art']} artworks",
                f"{_pct(s['gap_closed'])} (projection {_pct(s['gap_closed_projection'])})",
                f"{s['distance_before_sd']:.2f} -> {s['distance_after_sd']:.2f}",
                _pct(emb["gap_closed_frechet"]) if emb else "not computed",
                f"{s['classified_as_target']:.0%}",
            ]
        )
    return rows


def _target_details(summary: dict, t: str) -> dict:
    s = summary["per_target"][t]
    rows = []
    for name in s["most_changed"]:
        r = s["descriptors"][name]
        rows.append(
            [
                name,
                f"{r['photos']:.3g}",
                f"{r['outputs']:.3g}",
                f"{r['art']:.3g}",
                f"{r['change_sd']:+.2f}",
                _pct(r["share_closed"]),
            ]
        )
    header = [
        "descriptor",
        "photos (mean)",
        "outputs (mean)",
        f"{t} art (mean)",
        "change (SD)",
        "share of its gap closed",
    ]
    taken = ", ".join(f"{k}: {v:.0%}" for k, v in s["classified_as"].items())
    return {"header": header, "rows": rows, "taken": taken, "n_outputs": s["n_outputs"]}


def _map(photos, outputs, art, targets, out_thumbs) -> Markup:
    reference = np.concatenate([photos.values] + [art[t].values for t in targets])
    projection = fit_pca(reference, 2)
    groups = ["photos"] + [f"art:{t}" for t in targets] + [f"stylized:{t}" for t in targets]
    colours = culture_colours(groups)
    points, markers, thumbs = [], [], []
    for group, tab in (
        [("photos", photos)]
        + [(f"art:{t}", art[t]) for t in targets]
        + [(f"stylized:{t}", outputs[t]) for t in targets]
    ):
        coords = projection.transform(tab.values)
        points += [(x, y, group) for x, y in coords[:, :2]]
        if len(coords):
            cx, cy = coords[:, :2].mean(0)
            markers.append((cx, cy, group, colours[group]))
    for t in targets:
        coords = projection.transform(outputs[t].values)
        for i, href in enumerate(out_thumbs[t][:MAP_THUMBS]):
            if href and i < len(coords):
                thumbs.append((coords[i, 0], coords[i, 1], href, f"stylized:{t}"))
    axes = [f"PC{i + 1} ({e:.0%})" for i, e in enumerate(projection.explained)]
    return svg_scatter(
        points,
        title="photos, outputs and art",
        colours=colours,
        x_label=axes[0],
        y_label=axes[1],
        thumbnails=thumbs,
        markers=markers,
    )
