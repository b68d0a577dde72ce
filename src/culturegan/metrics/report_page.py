"""The evaluation page: tables of every metric with its backbone, and example pictures.

Every number is printed with the backbone that made it and the first 12 hex digits of that
backbone's weight sha256 (``0.123 lite0@579344248a93``); the full hashes and preprocessing are
in the backbones table. Pictures are the PNGs :func:`evaluate_model` saved under the output
folder, linked by relative path, so the folder can be moved or zipped.

Usage::

    write_eval_page(out_dir / "index.html", result, model="runs/003/model", data="data/")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from culturegan.report import esc, img, section, table, write_page

# Column order of the per-direction table; metrics named "<prefix>_<backbone>" follow it.
_ORDER = ("artfid", "fd", "kd", "perceptual", "ssim", "style_acc", "diversity")
_HELP = {
    "fd": "Fréchet distance, outputs vs real target images (FID with inception); lower is better",
    "fd_inputs": "the same distance for the untouched inputs: what the model starts from",
    "kd": "kernel distance (KID with inception), mean over subsets; lower is better",
    "perceptual": "feature-map distance between output and input; lower keeps more content",
    "artfid": "(1 + perceptual) * (1 + fd), after ArtFID; lower is better",
    "ssim": "structural similarity of output and input (pixels); higher keeps more structure",
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
        return "pixels" if metric == "ssim" else ""
    return f"{name}@{backbones[name]['weight_sha256'][:12]}"


def _cell(value: Any, metric: str, backbones: dict[str, Any]) -> str:
    if value is None:
        return "&ndash;"
    text = f"{value:.4g}" if isinstance(value, float) else esc(value)
    label = _label(metric, backbones)
    return f"{text}<br><small>{esc(label)}</small>" if label else text


def _sort_key(metric: str) -> tuple[int, str]:
    prefix = metric.split("_")[0] if not metric.startswith("style_acc") else "style_acc"
    return (_ORDER.index(prefix) if prefix in _ORDER else len(_ORDER), metric)


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
    parts = []

    summary = [
        [m, _cell(result["metrics"].get(m), m, backbones)] for m in names if m in result["metrics"]
    ]
    primary = result.get("primary")
    note = f"<p>Primary metric (picks the best training step): <code>{esc(primary)}</code></p>"
    parts.append(
        section(
            "Summary (mean over directions)",
            note if primary else "",
            table(["metric", "value"], summary, raw=True),
        )
    )

    header = ["direction", "inputs", "real images"] + names
    rows = []
    for key, pair in result["pairs"].items():
        metrics = pair["metrics"]
        cells = [esc(key), str(pair["num_inputs"]), str(pair["num_reference"])]
        for m in names:
            cell = _cell(metrics.get(m), m, backbones)
            if m.startswith("kd_") and f"{m}_std" in metrics and metrics[m] is not None:
                cell = cell.replace("<br>", f" &plusmn; {metrics[f'{m}_std']:.2g}<br>", 1)
            cells.append(cell)
        rows.append(cells)
    parts.append(section("Per direction", table(header, rows, raw=True)))

    domains = result["domains"]
    if len(domains) > 2:
        blocks = []
        for m in names:
            matrix = result["matrices"].get(m)
            if matrix is None:
                continue
            body = [
                [esc(src)] + [_cell(v, m, backbones) for v in row]
                for src, row in zip(domains, matrix, strict=True)
            ]
            blocks.append(
                f"<h3>{esc(m)}</h3>" + table(["source \\ target"] + domains, body, raw=True)
            )
        parts.append(section("Matrices (rows: source, columns: target)", *blocks))

    parts.append(
        section("What the metrics mean", table(["metric", "meaning"], _help_rows(names, backbones)))
    )

    bb_rows = [
        [
            name,
            info["weight_sha256"],
            info["preprocessing"],
            "yes" if info.get("standard_weights") else "no",
            ", ".join(info.get("classes", [])),
        ]
        for name, info in backbones.items()
    ]
    parts.append(
        section(
            "Backbones",
            table(
                ["name", "weight sha256", "preprocessing", "standard weights", "classes"], bb_rows
            ),
        )
    )

    for key, pair in result["pairs"].items():
        if not pair.get("examples"):
            continue
        seeds = any(ex.get("samples") for ex in pair["examples"])
        rows = []
        for ex in pair["examples"]:
            row = [
                img(ex["input"], alt="input", width=160),
                img(ex["output"], alt="output", width=160),
            ]
            if seeds:
                row.append(
                    "".join(img(s, alt="seed sample", width=96) for s in ex.get("samples", []))
                )
            rows.append(row)
        header = ["input", "output"] + (["the same input, seeds 0, 1, ..."] if seeds else [])
        parts.append(section(f"Examples {key}", table(header, rows, raw=True)))

    if result.get("notes"):
        parts.append(
            section(
                "Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in result["notes"]) + "</ul>"
            )
        )
    subtitle = f"split '{result['split']}'"
    if model:
        subtitle += f", model {model}"
    if data:
        subtitle += f", data {data}"
    return write_page(path, "culturegan evaluation", parts, subtitle=subtitle)
