"""Small, dependency-free building blocks for the project's HTML pages.

Pages are single files that link images by relative path (so a run folder can be zipped and
opened anywhere) and draw charts as inline SVG (no JavaScript, no plotting library).

Usage::

    chart = svg_line_chart({"loss/g": [(1, 3.2), (2, 2.9)]}, title="generator loss")
    write_page(path, "Demo", [section("Losses", chart)])
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222;
       padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: .6rem 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border: 1px solid #ddd; padding: .3rem .5rem; text-align: center; vertical-align: top; }
th { background: #f3f3f3; } td img { display: block; margin: auto; image-rendering: pixelated; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: .85rem; color: #555; }
code, pre { background: #f5f5f5; padding: .1rem .3rem; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def img(src: str | Path, *, alt: str = "", width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img src="{esc(Path(src).as_posix())}" alt="{esc(alt)}"{w} loading="lazy">'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (for cells holding images)."""
    cell = (lambda c: str(c)) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{''.join(parts)}</section>"


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
) -> str:
    """Inline SVG of one or more (x, y) series with axes, ticks and a legend."""
    points = [(x, y) for s in series.values() for x, y in s if math.isfinite(y)]
    if not points:
        return f"<p>{esc(title)}: no data</p>"
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
    return "".join(out)


def write_page(path: str | Path, title: str, body: Sequence[str], *, subtitle: str = "") -> Path:
    path = Path(path)
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{sub}{''.join(body)}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
