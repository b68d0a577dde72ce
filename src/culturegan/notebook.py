"""What the result objects share to show themselves in Jupyter and to become pandas tables.

Result objects (:class:`culturegan.culture.AnalysisResult`,
:class:`culturegan.metrics.evaluate.EvaluationResult`, :class:`culturegan.inference.StylizeResult`)
define ``_repr_html_``, which Jupyter
calls to display them, and ``to_pandas()``. Every string that comes from outside (culture and
domain names, paths, warnings) is escaped here, so a folder called ``<script>`` shows as text.
pandas is optional: ``to_pandas()`` raises an ImportError that says how to install it.

Usage::

    html = html_table(["culture", "images"], [["ukiyoe", 120]], caption="images read")
    pd = require_pandas("AnalysisResult.to_pandas()")
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0 10px 0"
CELL_STYLE = "border:1px solid #ccc;padding:2px 6px;text-align:left"


def esc(value: object) -> str:
    """``value`` as text that HTML shows as written (quotes escaped too, for attributes)."""
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    """A number in 4 significant digits, ``n/a`` for None or NaN, anything else as text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def html_table(
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    caption: str = "",
    cell_colours: Sequence[Sequence[str | None]] | None = None,  # background per cell
) -> str:
    """An HTML table whose every cell is escaped (numbers through :func:`format_value`)."""
    out = [f'<table style="{TABLE_STYLE}">']
    if caption:
        out.append(f'<caption style="text-align:left;font-weight:bold">{esc(caption)}</caption>')
    out.append(
        "<tr>" + "".join(f'<th style="{CELL_STYLE}">{esc(h)}</th>' for h in header) + "</tr>"
    )
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            colour = cell_colours[i][j] if cell_colours is not None else None
            background = f";background:{esc(colour)}" if colour else ""
            cells.append(f'<td style="{CELL_STYLE}{background}">{esc(format_value(value))}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def require_pandas(caller: str) -> Any:
    """The pandas module, or an ImportError that names it and how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs pandas, which is not installed: pip install pandas "
            "(the rest of culturegan works without it)"
        ) from exc
    return pandas


THUMBNAIL_SIDE = 256  # longest side of an image shown in a notebook


def html_images(images: Sequence[Any], labels: Sequence[str], *, caption: str = "") -> str:
    """PIL images side by side as inline PNG thumbnails (longest side at most
    ``THUMBNAIL_SIDE``), each over its escaped label: the notebook holds no file paths."""
    out = ['<div style="font-size:12px">']
    if caption:
        out.append(f'<div style="font-weight:bold">{esc(caption)}</div>')
    for image, label in zip(images, labels, strict=True):
        thumb = image.copy()
        thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        thumb.save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        out.append(
            '<figure style="display:inline-block;margin:4px;text-align:center">'
            f'<img src="data:image/png;base64,{data}" alt="{esc(label)}">'
            f"<figcaption>{esc(label)}</figcaption></figure>"
        )
    out.append("</div>")
    return "".join(out)
