"""Inline SVG charts for the culture report: interval bars, heat maps, scatter maps, swatches.

They extend :mod:`culturegan.report` (same conventions: no JavaScript, images linked by
relative path): every label is escaped here, and each function returns its markup marked safe
for the page templates (:func:`culturegan.report.trusted`).

Usage::

    svg_interval_bars([("ink_wash", 0.41, 0.37, 0.45, 48)], title="blank space")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup

from culturegan.report import PALETTE, esc, trusted


def culture_colours(cultures: Sequence[str]) -> dict[str, str]:
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cultures)}


def _fmt(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}"


def svg_interval_bars(
    rows: Sequence[tuple[str, float, float, float, int]],  # label, mean, low, high, n
    *,
    title: str,
    units: str = "",
    colours: dict[str, str] | None = None,
    width: int = 340,
) -> Markup:
    """Horizontal bars of means with interval whiskers; each row is labelled with its n."""
    if not rows:
        return trusted(f"<p>{esc(title)}: no data</p>")
    label_w, right, top, bar_h = 110, 92, 30, 18
    height = top + bar_h * len(rows) + 26
    lo = min(0.0, *(r[2] for r in rows))
    hi = max(*(r[3] for r in rows), lo + 1e-9)
    plot_w = width - label_w - right

    def sx(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}" font-size="11" font-family="sans-serif">',
        f'<text x="4" y="13" font-weight="bold">{esc(title)}</text>',
        f'<text x="4" y="25" fill="#666">{esc(units)}</text>',
    ]
    for i, (label, mean, low, high, n) in enumerate(rows):
        y = top + i * bar_h
        colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
        out.append(
            f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="{sx(min(0.0, mean)):.1f}" y="{y + 3}" height="{bar_h - 6}" '
            f'width="{abs(sx(mean) - sx(0.0)):.1f}" fill="{colour}" opacity="0.75"/>'
            f'<line x1="{sx(low):.1f}" x2="{sx(high):.1f}" y1="{y + 9}" y2="{y + 9}" '
            'stroke="#222"/>'
            f'<line x1="{sx(low):.1f}" x2="{sx(low):.1f}" y1="{y + 5}" y2="{y + 13}" '
            'stroke="#222"/>'
            f'<line x1="{sx(high):.1f}" x2="{sx(high):.1f}" y1="{y + 5}" y2="{y + 13}" '
            'stroke="#222"/>'
            f'<text x="{label_w + plot_w + 4}" y="{y + 12}">{_fmt(mean)} (n={n})</text>'
        )
    axis_y = top + bar_h * len(rows) + 4
    out.append(
        f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#999"/>'
        f'<text x="{label_w}" y="{axis_y + 13}" text-anchor="middle">{_fmt(lo)}</text>'
        f'<text x="{label_w + plot_w}" y="{axis_y + 13}" text-anchor="middle">{_fmt(hi)}</text>'
    )
    out.append("</svg>")
    return trusted("".join(out))


def _heat_colour(value: float, low: float, high: float, diverging: bool) -> str:
    if value is None or not math.isfinite(value):
        return "#eeeeee"
    if diverging:  # blue (negative) - white - red (positive), symmetric about 0
        bound = max(abs(low), abs(high), 1e-12)
        t = max(-1.0, min(1.0, value / bound))
        if t >= 0:
            r, g, b = 255, int(255 * (1 - 0.75 * t)), int(255 * (1 - 0.8 * t))
        else:
            r, g, b = int(255 * (1 + 0.8 * t)), int(255 * (1 + 0.6 * t)), 255
    else:  # white - dark blue
        t = 0.0 if high <= low else max(0.0, min(1.0, (value - low) / (high - low)))
        r, g, b = int(255 - 215 * t), int(255 - 170 * t), int(255 - 90 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def svg_heatmap(
    matrix: Sequence[Sequence[float | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    diverging: bool = False,  # colour around 0 (for signed effect sizes)
    cell: int = 44,
    notes: Sequence[Sequence[str]] | None = None,  # extra text per cell (e.g. "*" for q<0.05)
    label_width: int = 120,
) -> Markup:
    """A matrix of coloured cells with the value printed in each (None/NaN shown grey)."""
    values = [v for row in matrix for v in row if v is not None and math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    # Column labels are rotated 40 degrees: ~6 px per character, sin 40 up and cos 40 right.
    longest = max((len(c) for c in col_labels), default=0)
    top = 30 + 4 * longest
    width = int(label_width + cell * len(col_labels) + 10 + 4.6 * longest)
    height = int(top + cell * len(row_labels) + 10)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}" font-size="10" font-family="sans-serif">',
        f'<text x="4" y="13" font-weight="bold" font-size="11">{esc(title)}</text>',
    ]
    for j, label in enumerate(col_labels):
        x = label_width + cell * j + cell / 2
        out.append(
            f'<text transform="translate({x:.1f},{top - 4:.1f}) rotate(-40)">{esc(label)}</text>'
        )
    for i, label in enumerate(row_labels):
        y = top + cell * i
        out.append(
            f'<text x="{label_width - 4}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">'
            f"{esc(label)}</text>"
        )
        for j, value in enumerate(matrix[i]):
            x = label_width + cell * j
            fill = _heat_colour(value, low, high, diverging)
            dark = fill < "#888888" and not diverging
            note = notes[i][j] if notes else ""
            out.append(
                f'<rect x="{x}" y="{y:.1f}" width="{cell - 1}" height="{cell - 1}" fill="{fill}"/>'
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="{"#fff" if dark else "#111"}">{_fmt(value)}{esc(note)}</text>'
            )
    out.append("</svg>")
    return trusted("".join(out))


def svg_scatter(
    points: Sequence[tuple[float, float, str]],  # x, y, group
    *,
    title: str,
    colours: dict[str, str],
    x_label: str = "",
    y_label: str = "",
    thumbnails: Sequence[tuple[float, float, str, str]] = (),  # x, y, href, group
    markers: Sequence[tuple[float, float, str, str]] = (),  # x, y, text, colour (e.g. centroids)
    width: int = 720,
    height: int = 520,
    thumb: int = 34,
) -> Markup:
    """A 2-D map: dots coloured by group, optional image thumbnails and labelled markers."""
    xs = [p[0] for p in points] + [t[0] for t in thumbnails] + [m[0] for m in markers]
    ys = [p[1] for p in points] + [t[1] for t in thumbnails] + [m[1] for m in markers]
    if not xs:
        return trusted(f"<p>{esc(title)}: no data</p>")
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 44, 150, 26, 34
    pw, ph = width - left - right, height - top - bottom
    pad = thumb / 2

    def sx(x: float) -> float:
        return left + pad + (x - x0) / (x1 - x0) * (pw - 2 * pad)

    def sy(y: float) -> float:
        return top + pad + (1 - (y - y0) / (y1 - y0)) * (ph - 2 * pad)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}" font-size="11" '
        'font-family="sans-serif">',
        f'<text x="{left}" y="15" font-weight="bold">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
        f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{esc(x_label)}</text>',
        f'<text transform="translate(12,{top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{esc(y_label)}</text>",
    ]
    out.append(  # the range of each axis at its ends
        f'<text x="{left}" y="{top + ph + 12}" fill="#666">{_fmt(x0)}</text>'
        f'<text x="{left + pw}" y="{top + ph + 12}" text-anchor="end" fill="#666">{_fmt(x1)}</text>'
        f'<text x="{left - 3}" y="{top + ph}" text-anchor="end" fill="#666">{_fmt(y0)}</text>'
        f'<text x="{left - 3}" y="{top + 9}" text-anchor="end" fill="#666">{_fmt(y1)}</text>'
    )
    for x, y, group in points:
        out.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colours.get(group, "#444")}"'
            ' opacity="0.6"/>'
        )
    for x, y, href, group in thumbnails:
        cx, cy = sx(x) - thumb / 2, sy(y) - thumb / 2
        colour = colours.get(group, "#444")
        out.append(
            f'<image x="{cx:.1f}" y="{cy:.1f}" width="{thumb}" height="{thumb}" '
            f'href="{esc(href)}" preserveAspectRatio="xMidYMid slice"><title>{esc(group)}</title>'
            f'</image><rect x="{cx:.1f}" y="{cy:.1f}" width="{thumb}" height="{thumb}" '
            f'fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    for x, y, text, colour in markers:
        out.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="6" fill="{colour}" stroke="#000"/>'
            f'<text x="{sx(x) + 8:.1f}" y="{sy(y) + 4:.1f}" font-weight="bold">{esc(text)}</text>'
        )
    for i, (group, colour) in enumerate(colours.items()):
        ly = top + 12 + 15 * i
        out.append(
            f'<circle cx="{left + pw + 14}" cy="{ly - 4}" r="5" fill="{colour}"/>'
            f'<text x="{left + pw + 24}" y="{ly}">{esc(group)}</text>'
        )
    out.append("</svg>")
    return trusted("".join(out))


def palette_swatches(palette: Sequence[tuple[str, float]], *, width: int = 240) -> Markup:
    """A strip of colour blocks, each as wide as its share, with the hex code as a tooltip."""
    total = sum(s for _, s in palette) or 1.0
    cells = "".join(
        f'<span title="{esc(c)} ({s:.0%})" style="display:inline-block;height:22px;'
        f'width:{max(2, round(width * s / total))}px;background:{esc(c)}"></span>'
        for c, s in palette
    )
    return trusted(f'<div style="display:flex;width:{width}px;border:1px solid #ccc">{cells}</div>')
