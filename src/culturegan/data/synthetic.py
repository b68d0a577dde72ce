"""Embedded demo data: photo crops from scikit-image and procedurally generated "art".

SYNTHETIC: the art styles here are procedurally generated stand-ins made with numpy, not real
artworks and not samples of any artist's work. They exist so that the demo and the tests run
offline on data we may ship; each imitates a few visible traits of a tradition:

* ``ink_wash``: off-white fibrous paper, soft grey washes of misty mountains, a few dark
  calligraphic strokes, and large areas of blank paper.
* ``woodblock``: flat areas of a small palette (indigo, prussian blue, beige, vermilion, dark
  green): sky band, sun, mountain, stylised waves, with dark outlines along region borders.
* ``impasto``: dense, short, thick, oriented dabs of saturated broken colour with bristle
  texture, covering the whole canvas.

The photos are the colour pictures that ship inside scikit-image (no download). Everything is
a pure function of the seed: the same seed writes byte-identical files.

Usage::

    build_demo_dataset(Path("demo_data"), size=64)   # photo/ ink_wash/ woodblock/ impasto/
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

StyleFn = Callable[[np.random.Generator, int], np.ndarray]  # (rng, size) -> (size, size, 3) u8
ART_STYLES: dict[str, StyleFn] = {}

# scikit-image's colour sample photos, all shipped in its wheel (checked to load offline).
TRAIN_PHOTOS = ("astronaut", "rocket", "motorcycle_left")
HELDOUT_PHOTOS = ("chelsea", "coffee")
PHOTO_NAMES = TRAIN_PHOTOS + HELDOUT_PHOTOS


def register_style(fn: StyleFn) -> StyleFn:
    """Add ``fn`` to :data:`ART_STYLES` under its function name."""
    ART_STYLES[fn.__name__] = fn
    return fn


def list_styles() -> list[str]:
    return list(ART_STYLES)


# ----------------------------------------------------------------------------- helpers


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """(size, size) noise blurred by ``sigma`` px and rescaled to [0, 1]."""
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    field -= field.min()
    return field / max(float(field.max()), 1e-8)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in units of the image side: yy, xx of shape (size, size)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="ij")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all inputs in [0, 1]; output (..., 3) in [0, 1]."""
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ]
    )  # (6, ..., 3)
    return np.take_along_axis(table, i[None, ..., None].repeat(3, -1), 0)[0]


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- styles


@register_style
def ink_wash(rng: np.random.Generator, size: int) -> np.ndarray:
    """Paper, grey washes fading into mist, a few dark brush strokes.

    Half of the works are mountain landscapes; the other half are studies of free shapes
    (rocks, foliage, a shore) in the same washes, so that what makes a work ink_wash is how it
    is painted, not one kind of scene (a classifier taught on one scene learns the scene)."""
    yy, xx = _grid(size)
    paper = np.array([243.0, 237.0, 222.0]) + rng.uniform(-4, 4, 3)
    # Paper fibres: faint noise stretched along a random direction.
    fibre = ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.6, 2.5), mode="wrap")
    fibre = fibre if rng.random() < 0.5 else fibre.T
    ink = _ink_landscape(rng, size, yy, xx) if rng.random() < 0.5 else _ink_study(rng, size)
    # Calligraphic strokes: discs along a curve, thick in the middle and tapering at the ends.
    for _ in range(int(rng.integers(2, 5))):
        ink = np.maximum(ink, _brush_stroke(rng, yy, xx, size))

    rgb = paper[None, None, :] + 3.0 * fibre[..., None]
    ink_colour = np.array([22.0, 22.0, 28.0])
    rgb = rgb * (1 - ink[..., None]) + ink_colour * ink[..., None]
    return _to_uint8(rgb)


def _ink_study(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ink density (size, size) of free wash shapes: a smooth field cut at a level that leaves
    most of the paper blank, graded in two or three tones with soft, bleeding edges."""
    field = _smooth_noise(rng, size, size / rng.uniform(6, 12))
    level = np.quantile(field, rng.uniform(0.6, 0.75))  # a quarter to 40% of the paper inked
    inside = np.clip((field - level) / 0.08, 0, 1)
    tones = rng.uniform(0.25, 0.9, int(rng.integers(2, 4)))
    texture = _smooth_noise(rng, size, size / 16)
    tone = tones[np.minimum((texture * len(tones)).astype(int), len(tones) - 1)]
    return ndimage.gaussian_filter(inside * tone, size / 64).astype(np.float32)


def _ink_landscape(
    rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Ink density (size, size) of misty mountain ranges and a few soft blobs."""
    ink = np.zeros((size, size), np.float32)  # ink density in [0, 1]

    # Mountains: a ridge line y(x); ink darkest at the ridge, fading to mist below it.
    # Nearer ranges sit lower and are darker.
    n_ranges = int(rng.integers(1, 3))
    for depth_rank in range(n_ranges):
        base = rng.uniform(0.55, 0.7) + 0.12 * depth_rank
        ridge = base - 0.3 * _ridge_profile(rng, size)  # (size,) y of the ridge per column
        below = yy - ridge[None, :]  # > 0 under the ridge
        fade = rng.uniform(0.1, 0.2)
        wash = np.where(below > 0, np.exp(-((below / fade) ** 2)), 0.0)
        strength = rng.uniform(0.3, 0.5) + 0.2 * depth_rank
        ink = np.maximum(ink, strength * wash * (0.6 + 0.4 * _smooth_noise(rng, size, size / 10)))
    # A soft blob or two (distant trees, a boat, a rock).
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(0.55, 0.9), rng.uniform(0.1, 0.9)
        r = rng.uniform(0.03, 0.08)
        ink = np.maximum(ink, 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
    return ndimage.gaussian_filter(ink, size / 64)


def _ridge_profile(rng: np.random.Generator, size: int) -> np.ndarray:
    """A mountain skyline in [0, 1] over the columns: a peak or two plus smooth bumps."""
    x = (np.arange(size) + 0.5) / size
    profile = np.zeros(size)
    for _ in range(int(rng.integers(1, 3))):
        peak, width = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.35)
        profile = np.maximum(profile, 1 - np.abs(x - peak) / width)
    bumps = ndimage.gaussian_filter1d(rng.standard_normal(size), size / 20, mode="wrap")
    return np.clip(profile + 0.15 * bumps / (np.abs(bumps).max() + 1e-8), 0, 1)


def _brush_stroke(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int
) -> np.ndarray:
    """Ink density (size, size) of one tapering stroke along a quadratic Bezier curve."""
    p0, p2 = rng.uniform(0.1, 0.9, 2), rng.uniform(0.1, 0.9, 2)
    p2 = p0 + (p2 - p0) * rng.uniform(0.2, 0.45) / max(np.linalg.norm(p2 - p0), 1e-3)
    p1 = (p0 + p2) / 2 + rng.normal(0, 0.08, 2)
    t = np.linspace(0, 1, 40)[:, None]
    points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (40, 2) as (y, x)
    width = rng.uniform(0.015, 0.035) * np.sin(np.pi * (0.1 + 0.8 * t[:, 0])) + 0.004
    dist = np.sqrt(
        (yy[None] - points[:, 0, None, None]) ** 2 + (xx[None] - points[:, 1, None, None]) ** 2
    )  # (40, size, size)
    # Soft edge one pixel wide; the ink is a little translucent.
    cover = np.clip((width[:, None, None] - dist) * size + 0.5, 0, 1).max(0)
    return cover * rng.uniform(0.8, 0.95)


WOODBLOCK_PALETTE = np.array(
    [
        [236, 222, 188],  # 0 beige paper / sky
        [30, 48, 96],  # 1 indigo
        [26, 78, 122],  # 2 prussian blue
        [214, 66, 42],  # 3 vermilion
        [44, 84, 58],  # 4 dark green
        [250, 246, 236],  # 5 snow / foam white
    ],
    np.uint8,
)
WOODBLOCK_OUTLINE = np.array([28, 26, 32], np.uint8)


@register_style
def woodblock(rng: np.random.Generator, size: int) -> np.ndarray:
    """Flat regions of a small palette with dark outlines.

    Half of the prints are landscapes (sky band, sun, mountain, waves); the other half cut
    free shapes into three to five flat areas, so that what makes a print woodblock is the
    flat palette and the outlines, not one kind of scene."""
    labels = _woodblock_landscape(rng, size) if rng.random() < 0.5 else _woodblock_areas(rng, size)
    rgb = WOODBLOCK_PALETTE[labels]
    # Outlines where the region changes, between a pixel and its right or lower neighbour.
    edge = np.zeros((size, size), bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    rgb[edge] = WOODBLOCK_OUTLINE
    return rgb


def _woodblock_areas(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) palette labels: a smooth field cut into 3-5 areas of distinct colours."""
    field = _smooth_noise(rng, size, size / rng.uniform(5, 10))
    n = int(rng.integers(3, 6))
    # Two or more of the strong inks (indigo, prussian blue, vermilion, green) in every print,
    # then paper or snow white: a print is never only pale areas.
    strong, pale = rng.permutation([1, 2, 3, 4]), rng.permutation([0, 5])
    colours = np.concatenate([strong[:2], rng.permutation(np.concatenate([strong[2:], pale]))])
    colours = rng.permutation(colours[:n])
    cuts = np.quantile(field, np.sort(rng.uniform(0.1, 0.9, n - 1)))
    return colours[np.digitize(field, cuts)].astype(np.uint8)


def _woodblock_landscape(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) palette labels of a sky band, sun, snow-capped mountain and waves."""
    yy, xx = _grid(size)
    labels = np.zeros((size, size), np.uint8)  # beige sky
    labels[yy < rng.uniform(0.1, 0.22)] = 2  # prussian-blue band at the top

    sun_y, sun_x, sun_r = rng.uniform(0.2, 0.4), rng.uniform(0.15, 0.85), rng.uniform(0.06, 0.1)
    labels[(yy - sun_y) ** 2 + (xx - sun_x) ** 2 < sun_r**2] = 3

    # A mountain with straight flanks and a snow cap.
    peak_x, peak_y = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.4)
    slope = rng.uniform(0.5, 0.9)
    flank = peak_y + slope * np.abs(xx - peak_x)
    mountain = yy > flank
    labels[mountain] = int(rng.choice([1, 4]))
    # The snow cap's lower edge zigzags, as carved.
    teeth = xx * rng.uniform(6, 10) + rng.random()
    zigzag = 0.05 * np.abs(teeth - np.floor(teeth) - 0.5)  # triangle wave
    labels[mountain & (yy < peak_y + rng.uniform(0.08, 0.12) + zigzag)] = 5

    # Waves: a wavy sea line, crest curls, and alternating stripes of two blues.
    sea_level = rng.uniform(0.55, 0.7)
    freq, phase = rng.uniform(10, 18), rng.uniform(0, 2 * np.pi)
    sea_line = sea_level + 0.04 * np.sin(xx * freq + phase)
    sea = yy > sea_line
    stripes = np.sin((yy - sea_line) * rng.uniform(35, 55) + 0.5 * np.sin(xx * freq)) > 0.3
    labels[sea] = 1
    labels[sea & stripes] = 2
    crest = sea & (yy - sea_line < 0.025) & (np.sin(xx * freq * 2 + phase) > 0.2)
    labels[crest] = 5
    if rng.random() < 0.5:  # a distant boat or island in dark green
        bx, by = rng.uniform(0.2, 0.8), sea_level - 0.02
        labels[(np.abs(xx - bx) < 0.08) & (np.abs(yy - by) < 0.025)] = 4
    return labels


@register_style
def impasto(rng: np.random.Generator, size: int) -> np.ndarray:
    """Many short thick dabs of saturated broken colour following a swirling flow field."""
    # Flow direction and dominant hue vary smoothly over the canvas.
    angle_field = _smooth_noise(rng, size, size / 6) * 2 * np.pi
    hue_field = (_smooth_noise(rng, size, size / 5) * 0.35 + rng.random()) % 1.0

    half_len = rng.uniform(size / 28, size / 14, 1)[0]
    half_wid = max(1.0, half_len * 0.4)
    n_dabs = int(3.2 * size * size / (np.pi * half_len * half_wid))
    cy = rng.uniform(0, size, n_dabs)
    cx = rng.uniform(0, size, n_dabs)
    iy, ix = cy.astype(int).clip(0, size - 1), cx.astype(int).clip(0, size - 1)
    theta = angle_field[iy, ix] + rng.normal(0, 0.35, n_dabs)
    lengths = half_len * rng.uniform(0.7, 1.3, n_dabs)
    widths = half_wid * rng.uniform(0.8, 1.3, n_dabs)
    # Broken colour: near the local hue, sometimes its complement, high saturation.
    hue = hue_field[iy, ix] + rng.normal(0, 0.05, n_dabs)
    hue = (hue + 0.5 * (rng.random(n_dabs) < 0.25)) % 1.0
    colour = _hsv_to_rgb(hue, rng.uniform(0.6, 1.0, n_dabs), rng.uniform(0.55, 1.0, n_dabs))

    # Rasterise all dabs at once in a K x K box around each centre; where dabs overlap the
    # later one (higher index) wins, like paint laid on top.
    k = int(np.ceil(half_len * 1.3)) + 1
    offsets = np.arange(-k, k + 1)
    py = iy[:, None, None] + offsets[None, :, None]  # (N, K, 1)
    px = ix[:, None, None] + offsets[None, None, :]  # (N, 1, K)
    dy, dx = py + 0.5 - cy[:, None, None], px + 0.5 - cx[:, None, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    along = (dx * cos + dy * sin) / lengths[:, None, None]  # (N, K, K)
    across = (-dx * sin + dy * cos) / widths[:, None, None]
    inside = (along**2 + across**2 < 1.0) & (py >= 0) & (py < size) & (px >= 0) & (px < size)
    dab_id, oy, ox = np.nonzero(inside)
    flat = py[dab_id, oy, 0] * size + px[dab_id, 0, ox]
    winner = np.full(size * size, -1)
    np.maximum.at(winner, flat, dab_id)

    # Underpainting for any pixel no dab reached.
    under = _hsv_to_rgb(hue_field, np.full_like(hue_field, 0.7), np.full_like(hue_field, 0.6))
    rgb = under.reshape(-1, 3).copy()
    won = dab_id == winner[flat]  # the (dab, pixel) pairs that show
    a, c = along[dab_id[won], oy[won], ox[won]], across[dab_id[won], oy[won], ox[won]]
    # Thick paint: bristle ridges across the stroke, light from the upper side, dark rims.
    shade = 1.0 + 0.12 * np.cos(c * np.pi * 2.5 + dab_id[won]) - 0.18 * c
    shade *= 1.0 - 0.25 * (a**2 + c**2) ** 2
    rgb[flat[won]] = colour[dab_id[won]] * shade[:, None]
    return _to_uint8(rgb.reshape(size, size, 3) * 255.0)


def make_art_image(style: str, seed: int, size: int = 64) -> Image.Image:
    """One synthetic artwork of ``style`` (a key of :data:`ART_STYLES`) as a PIL RGB image."""
    if style not in ART_STYLES:
        raise ValueError(f"unknown synthetic style '{style}' (known: {', '.join(ART_STYLES)})")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    arr = ART_STYLES[style](np.random.default_rng(seed), size)
    return Image.fromarray(arr, "RGB")


# ----------------------------------------------------------------------------- photos


def _load_skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle_left":
        return skimage.data.stereo_motorcycle()[0]  # (left, right, disparity)
    return getattr(skimage.data, name)()


@functools.cache
def _photo_array(name: str) -> np.ndarray:
    try:
        arr = _load_skimage_photo(name)
    except Exception as exc:  # re-raised with the photo's name and the likely cause
        raise RuntimeError(
            f"cannot load scikit-image's sample photo '{name}' ({exc}); it ships with "
            "scikit-image, so check that scikit-image is installed completely"
        ) from exc
    arr = np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
    arr.flags.writeable = False  # shared by every caller through the cache
    return arr


def photo_sources() -> dict[str, Image.Image]:
    """The colour photos shipped inside scikit-image, by name (new PIL images each call)."""
    return {name: Image.fromarray(_photo_array(name).copy()) for name in PHOTO_NAMES}


def make_photo_crops(names: Sequence[str], count: int, size: int, seed: int) -> list[Image.Image]:
    """``count`` random square crops of the named photos, taken in turn, resized to ``size``.

    Each crop's side is 30-100% of the photo's shorter side, at a random position, flipped
    left-right half of the time, and resized with Lanczos.
    """
    unknown = [n for n in names if n not in PHOTO_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown photo names {unknown} (known: {', '.join(PHOTO_NAMES)})")
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        photo = _photo_array(names[i % len(names)])
        h, w = photo.shape[:2]
        side = max(8, int(round(min(h, w) * rng.uniform(0.3, 1.0))))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        img = Image.fromarray(photo[top : top + side, left : left + side].copy())
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crops.append(img.resize((size, size), Image.Resampling.LANCZOS))
    return crops


# ----------------------------------------------------------------------------- dataset

README_TEXT = """\
culturegan demo dataset (written by culturegan.data.synthetic.build_demo_dataset)

photo/            crops of the colour sample photos shipped with scikit-image
                  ({train_photos})
{style_lines}
_heldout_photos/  crops of other scikit-image photos ({heldout_photos}), never used in
                  training; the demo stylizes these

THE ART IS SYNTHETIC. The style folders hold procedurally generated stand-ins made with
numpy, not real artworks and not samples of any artist's work. They imitate a few visible
traits of a tradition so that the pipeline can be demonstrated offline.

Settings: size={size} px, seed={seed}. The same settings write byte-identical files.
See scikit-image's data README for the sources and licences of the photos.
"""


def build_demo_dataset(
    root: str | os.PathLike,
    *,
    size: int = 64,  # side of every square image, pixels
    photos: int = 48,  # photo crops written to photo/ (load_splits splits them)
    art_per_style: int = 48,  # images written to each style folder
    heldout_photos: int = 8,  # crops of other photos, written to _heldout_photos/
    styles: Sequence[str] = ("ink_wash", "woodblock", "impasto"),
    seed: int = 0,
) -> Path:
    """Write the per-domain demo dataset under ``root`` (which must be new or empty).

    Layout: ``photo/``, one folder per style, ``_heldout_photos/`` and ``README.txt``; the
    result loads with :func:`culturegan.data.splits.load_splits`.
    """
    root = Path(root)
    for style in styles:
        if style not in ART_STYLES:
            raise ValueError(f"unknown synthetic style '{style}' (known: {', '.join(ART_STYLES)})")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"'{root}' already exists and is not an empty folder; remove it or pick another"
        )
    children = np.random.SeedSequence(seed).spawn(2)
    photo_seed, heldout_seed = (int(c.generate_state(1)[0]) for c in children)

    def write(folder: Path, images: Sequence[Image.Image]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            img.save(folder / f"{i:04d}.png")

    write(root / "photo", make_photo_crops(TRAIN_PHOTOS, photos, size, photo_seed))
    write(
        root / "_heldout_photos",
        make_photo_crops(HELDOUT_PHOTOS, heldout_photos, size, heldout_seed),
    )
    for style in styles:
        # Seeds depend on (seed, index) only, so a style's images do not depend on `styles`.
        seeds = [
            int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            for i in range(art_per_style)
        ]
        write(root / style, [make_art_image(style, s, size) for s in seeds])

    style_lines = "\n".join(f"{s + '/':<17} SYNTHETIC {s} images (see below)" for s in styles)
    (root / "README.txt").write_text(
        README_TEXT.format(
            train_photos=", ".join(TRAIN_PHOTOS),
            heldout_photos=", ".join(HELDOUT_PHOTOS),
            style_lines=style_lines,
            size=size,
            seed=seed,
        ),
        encoding="utf-8",
    )
    return root
