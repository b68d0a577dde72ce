"""The evaluation page: tables of every metric with its backbone, and example pictures.

Every number is printed with the backbone that made it and the first 12 hex digits of that
backbone's weight sha256 (``0.123 lite0@579344248a93``); the full hashes and preprocessing are
in the backbones table. Pictures are the PNGs :func:`evaluate_model` saved under the output
folder, linked by relative path, so the folder can be moved or zipped.

The page is the template ``templates/eval_page.html``.

Usage::

    write_eval_page(out_dir / "index.html", result, model="runs/003/model", data="data/")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from culturegan.report import render_page

# Column order of the per-direction table; metrics named "<prefix>_<backbone>" follow it.
_ORDER = (
    "artfid", "fd", "kd", "perceptual", "ssim", "border_band", "grid_peak", "style_acc",
    "diversity",
)  # fmt: skip
_HELP = {
    "fd": "Fréchet distance, outputs vs real target images (FID with inception); lower is better",
    "fd_inputs": "the same distance for the untouched inputs: what the model starts from",
    "kd": "kernel distance (KID with inception), mean over subsets; lower is better",
    "perceptual": "feature-map distance between output and input; lower keeps more content",
    "artfid": "(1 + perceptual) * (1 + fd), after ArtFID; lower is better",
    "ssim": "structural similarity of output and input (pixels); higher keeps more structure",
    "border_band": "colour step the model adds at an image's edge (worst side); lower is better",
    "grid_peak": "pattern fixed to the generator's pixel grid (about 1 = none); lower is better",
    "style_acc": "share of outputs the style classifier assigns to the target; higher is better",
    "diversity": "mean perceptual distance between outputs of one input under different seeds",
}


def _backbone_of(metric: str, backbones: dict[str, Any]) -> str | None:
    if metric == "style_acc":
        return "classifier"
    for name in backbones:
        if metric.endswith(f"_{name}") or f"_{name}_" in metric:
            return name
    return None


def _label(metric: str, backbones: dict[str, Any]) -> str:
    name = _backbone_of(metric, backbones)
    if name is None or name not in backbones:
        return "pixels" if metric in ("ssim", "border_band", "grid_peak") else ""
    return f"{name}@{backbones[name]['weight_sha256'][:12]}"


def _cell(value: Any, metric: str, backbones: dict[str, Any], std: Any = None) -> dict | None:
    """What one metric cell shows (None: no value): the value, its spread, its backbone."""
    if value is None:
        return None
    return {
        "text": f"{value:.4g}" if isinstance(value, float) else str(value),
        "std": f"{std:.2g}" if std is not None else None,
        "label": _label(metric, backbones),
    }


def _sort_key(metric: str) -> tuple[int, str]:
    rank = next((i for i, prefix in enumerate(_ORDER) if metric.startswith(prefix)), len(_ORDER))
    return (rank, metric)


def _metric_names(result: dict[str, Any]) -> list[str]:
    names = {m for pair in result["pairs"].values() for m in pair["metrics"]}
    return sorted((m for m in names if not m.endswith("_std")), key=_sort_key)


def _help_rows(names: list[str], backbones: dict[str, Any]) -> list[list[str]]:
    rows = []
    for metric in names:
        name = _backbone_of(metric, backbones)
        generic = metric.replace(f"_{name}", "") if name and metric != "style_acc" else metric
        rows.append([metric, _HELP.get(generic, "")])
    return rows


def write_eval_page(
    path: str | os.PathLike,
    result: dict[str, Any],
    *,
    model: str = "",
    data: str = "",
) -> Path:
    """Write the HTML page of an :func:`evaluate_model` result (images already saved)."""
    backbones = result["backbones"]
    names = _metric_names(result)
    summary = [
        (m, _cell(result["metrics"].get(m), m, backbones)) for m in names if m in result["metrics"]
    ]
    directions = []
    for key, pair in result["pairs"].items():
        metrics = pair["metrics"]
        cells = []
        for m in names:  # kernel distances carry their spread over subsets
            std = metrics.get(f"{m}_std") if m.startswith("kd_") else None
            cells.append(_cell(metrics.get(m), m, backbones, std))
        directions.append((key, pair["num_inputs"], pair["num_reference"], cells))
    matrices = []
    if len(result["domains"]) > 2:
        for m in names:
            matrix = result["matrices"].get(m)
            if matrix is not None:
                rows = [
                    (src, [_cell(v, m, backbones) for v in row])
                    for src, row in zip(result["domains"], matrix, strict=True)
                ]
                matrices.append((m, rows))
    subtitle = f"split '{result['split']}'"
    if model:
        subtitle += f", model {model}"
    if data:
        subtitle += f", data {data}"
    return render_page(
        path,
        "eval_page.html",
        title="culturegan evaluation",
        subtitle=subtitle,
        result=result,
        names=names,
        summary=summary,
        directions=directions,
        matrices=matrices,
        help=_help_rows(names, backbones),
        backbones=[
            [
                name,
                info["weight_sha256"],
                info["preprocessing"],
                "yes" if info.get("standard_weights") else "no",
                ", ".join(info.get("classes", [])),
            ]
            for name, info in backbones.items()
        ],
        examples=[
            (key, pair["examples"], any(ex.get("samples") for ex in pair["examples"]))
            for key, pair in result["pairs"].items()
            if pair.get("examples")
        ],
    )
