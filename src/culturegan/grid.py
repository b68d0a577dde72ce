"""A labelled picture of inputs x cultures: one row per input, one column per target domain.

Usage::

    picture = style_grid(Stylizer.from_pretrained(model_dir), ["a.jpg", "b.jpg"], samples=2)
    picture.save("grid.png")
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from culturegan.inference import ImageInput, Stylizer, read_inputs, sample_seeds

LABEL_HEIGHT = 18
GAP = 4


def _fit(img: Image.Image, cell: int) -> Image.Image:
    """``img`` scaled to fit a ``cell`` x ``cell`` square, centred on white."""
    scale = cell / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    canvas = Image.new("RGB", (cell, cell), "white")
    canvas.paste(img.resize(size, Image.LANCZOS), ((cell - size[0]) // 2, (cell - size[1]) // 2))
    return canvas


def style_grid(
    stylizer: Stylizer,
    images: Sequence[ImageInput],
    *,
    targets: Sequence[str] | None = None,  # default: every domain (multi-domain models)
    samples: int = 1,  # renderings per target (multi-domain: seeds seed, seed + 1, ...)
    seed: int | None = None,  # None: one sample is the average style, several start at 0
    strength: float = 1.0,
    cell: int = 128,  # side of one picture in pixels
) -> Image.Image:
    if not images:
        raise ValueError("the grid needs at least one input image")
    diverse = "seed" in stylizer.options
    if targets is None:
        # A model with a style code renders every domain; otherwise its first direction.
        targets = stylizer.domains if diverse else [stylizer.resolve_direction().split("->")[1]]
    if samples > 1 and not diverse:
        raise ValueError(f"samples: this {stylizer.kind} model gives one rendering per input")
    seeds = sample_seeds(seed, samples) if diverse else [None]
    for name in targets:  # every option checked before any rendering
        stylizer.check_inputs(target=name, seed=seeds[0], strength=strength)
    pils, _ = read_inputs(images)
    columns: list[tuple[str, list[Image.Image]]] = [("input", pils)]
    for name in targets:
        for k, k_seed in enumerate(seeds):
            out = stylizer(pils, target=name, strength=strength, seed=k_seed).images
            label = name if samples == 1 else f"{name} #{k + 1}"
            columns.append((label, out))

    return column_grid(columns, cell=cell)


def column_grid(
    columns: Sequence[tuple[str, Sequence[Image.Image]]], *, cell: int = 128
) -> Image.Image:
    """Labelled columns of pictures (label, one picture per row), each fitted to a cell."""
    rows = max(len(column) for _, column in columns)
    step = cell + GAP
    grid = Image.new("RGB", (len(columns) * step + GAP, LABEL_HEIGHT + rows * step), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c, (label, column) in enumerate(columns):
        x = GAP + c * step
        text = label if len(label) * 6 <= cell else label[: cell // 6 - 1] + "…"
        draw.text((x + 2, 3), text, fill="black", font=font)
        for r, img in enumerate(column):
            grid.paste(_fit(img, cell), (x, LABEL_HEIGHT + r * step))
    return grid
