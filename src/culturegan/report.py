"""Building blocks of the project's HTML pages: Jinja2 templates and inline SVG charts.

Pages are single files that link images by relative path (so a run folder can be zipped and
opened anywhere) and draw charts as inline SVG (no JavaScript, no plotting library). Each page
is a template under ``culturegan/templates/`` (package data), rendered by :func:`render_page`
with autoescaping on: every string a user controls (culture, domain and file names, manifest
values, notes) is escaped by the template. The only markup passed in as safe is SVG this
package draws itself (:func:`svg_line_chart`, :mod:`culturegan.culture.plots`), which escapes
every label it prints (:func:`esc`) before :func:`trusted` marks it.

Usage::

    chart = svg_line_chart({"loss/g": [(1, 3.2), (2, 2.9)]}, title="generator loss")
    render_page(path, "demo.html", title="Demo", charts=[chart])
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from culturegan.fileio import atomic_write

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def trusted(markup: str) -> Markup:
    """Mark HTML/SVG drawn by this package as safe for the templates. Only for markup whose
    every user-controlled string went through :func:`esc` (the chart functions do this)."""
    return Markup(markup)


@functools.cache
def environment() -> Environment:
    """The one Jinja2 environment of the pages: package templates, autoescaping always on,
    undefined names an error (a typo in a template fails, not renders empty)."""
    return Environment(
        loader=PackageLoader("culturegan", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(path: str | Path, template: str, **context: object) -> Path:
    """Render ``template`` with ``context`` and write it atomically to ``path``."""
    page = environment().get_template(template).render(**context)
    return atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def svg_line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str = "",
    width: int = 480,
    height: int = 240,
    x_label: str = "step",
) -> Markup:
    """Inline SVG of one or more (x, y) series with axes, ticks and a legend."""
    points = [(x, y) for s in series.values() for x, y in s if math.isfinite(y)]
    if not points:
        return trusted(f"<p>{esc(title)}: no data</p>")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    left, right, top, bottom = 52, 10, 24, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(title)}" font-size="11" font-family="sans-serif">',
        f'<text x="{left}" y="14" font-weight="bold">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for y in _ticks(y0, y1):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>'
        )
    for x in _ticks(x0, x1):
        out.append(f'<text x="{sx(x):.1f}" y="{top + ph + 14}" text-anchor="middle">{x:.0f}</text>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">{esc(x_label)}</text>'
    )
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s if math.isfinite(y))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        ly = top + 12 + 13 * i
        out.append(
            f'<line x1="{left + pw - 110}" x2="{left + pw - 95}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{left + pw - 90}" y="{ly}">{esc(name)}</text>'
        )
    out.append("</svg>")
    return trusted("".join(out))
