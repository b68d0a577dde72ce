"""The ``print`` finish: the model's output redrawn as a woodblock print.

A ukiyo-e model's output has the prints' colours in soft, hatched areas with no keyblock line
(docs/quality.md, session 26). The finish keeps what the model chose and draws it the way a
woodblock print is made:

1. **Flat colour areas.** The picture is cut into superpixels (SLIC, Achanta et al., TPAMI
   2012) on the photo and the model's output together, so areas follow the photo's shapes and
   the model's colour fields alike; each area takes the mean of the output's colours in it
   (CIELAB), and those means are clustered (weighted k-means) into ``colours`` inks: one ink
   per area, the same inks across the picture. Averaging dulls colours, so the coloured inks'
   chroma is scaled by ``chroma`` (hue and lightness kept; paper and greys keep theirs).
   Neighbouring areas of the photo within ``merge`` of each other in CIELAB (a flat sky, a
   lake) are printed in one ink where one ink covers ``merge_share`` of them, so the model's
   specks there are not printed as patches the photo does not have. With ``cohere``, areas
   alike in the photo and near each other vote on their ink across the picture (a sea the
   model painted in blue and cream patches is printed in the ink it gave the sea more than the
   rest of the picture; :func:`cohered_inks`).
2. **Some of the model's texture back.** ``detail`` times the output's own fine structure
   (output minus its Gaussian blur) is added on top, as the grain of paper and pigment.
3. **Keyblock lines.** Outlines from the photo's grey levels by an extended difference of
   Gaussians (XDoG, Winnemöller et al., Computers & Graphics 2012), drawn in ``ink``; strokes
   shorter than ``min_line`` pixels (foliage, noise) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from culturegan.finish.common import (
    MAX_AREAS,
    MAX_MIN_LINE,
    MAX_SEED,
    MAX_SIGMA,
    area_means,
    as_arrays,
    check_ranges,
    contour_lines,
    merge_alike,
    superpixels,
)

if TYPE_CHECKING:  # NumPy, SciPy and scikit-image load when a finish runs, not with the CLI
    import numpy as np
    from PIL import Image


KMEANS_STARTS = 4  # k-means runs from other seeds; the one with the least spread is kept
# CIELAB chroma: inks below GREY_CHROMA (greys, white and pale paper) keep theirs under the
# ``chroma`` setting; above FULL_CHROMA it applies in full; between, in proportion.
GREY_CHROMA, FULL_CHROMA = 15.0, 35.0
GAMUT_TOLERANCE = 0.5  # CIELAB distance an ink may move when sRGB clips it: still inside
GAMUT_STEPS = 12  # bisection steps of an ink's chroma scale: 1/4096 of its range
MAX_REACH = 4096.0  # px at a 256 px side: a ``cohere_reach`` this wide is the whole picture
VOTE_ROWS = 512  # areas whose votes are counted at once
# An earlier frame's inks are kept while their mean squared CIELAB distance to a frame's areas
# is at most REFIT_COST times that of the frame's own k-means inks plus REFIT_SLACK squared (the
# same areas a few units of colour away): past it, a new scene.
REFIT_COST, REFIT_SLACK = 2.0, 10.0


@dataclass(frozen=True)
class PrintFinish:
    """The ``print`` finish's settings (sizes at a 256 px shorter side; they scale)."""

    colours: int = 8  # inks the areas are drawn with
    chroma: float = 2.0  # coloured inks' CIELAB chroma scaled by this (averaging dulls them)
    areas: int = 400  # superpixels per 256 x 256 pixels
    merge: float = 10.0  # CIELAB distance: neighbouring areas of the photo this alike merge
    merge_share: float = 0.6  # ... into one ink where that ink covers this share of them
    cohere: float = 8.0  # CIELAB: areas vote on one ink with areas this alike (0 = off) ...
    cohere_reach: float = 64.0  # px: ... and this near in the photo (Gaussians' sigmas) ...
    cohere_margin: float = 2.0  # ... taking an ink whose vote is this many times its own ink's
    detail: float = 0.5  # share of the model's own fine texture added back
    detail_sigma: float = 2.0  # blur (px) that separates that texture from the colour areas
    line_sigma: float = 1.2  # XDoG scale (px): wider lines, fewer of them
    min_line: int = 80  # strokes of fewer pixels are dropped
    line_strength: float = 1.0  # 0 = no lines, 1 = lines in full ink
    ink: tuple[int, int, int] = (28, 26, 30)  # the keyblock's colour (sumi ink)
    seed: int = 0  # k-means seeding: the same picture gives the same print

    def __post_init__(self) -> None:
        ink_inside = len(self.ink) == 3 and all(0 <= c <= 255 for c in self.ink)
        ink_fault = [] if ink_inside else [f"ink must be three values in [0, 255], got {self.ink}"]
        check_ranges("print", {
            "colours": (self.colours, 1, 64, "[]"),
            "chroma": (self.chroma, 0, 4, "[]"),
            "areas": (self.areas, 1, MAX_AREAS, "[]"),
            "merge": (self.merge, 0, 100, "[]"),  # CIELAB: L* spans 100
            "merge_share": (self.merge_share, 0, 1, "[]"),
            "cohere": (self.cohere, 0, 100, "[]"),
            "cohere_reach": (self.cohere_reach, 0, MAX_REACH, "(]"),
            "cohere_margin": (self.cohere_margin, 1, 100, "[]"),
            "detail": (self.detail, 0, 2, "[]"),
            "detail_sigma": (self.detail_sigma, 0, MAX_SIGMA, "(]"),
            "line_sigma": (self.line_sigma, 0, MAX_SIGMA, "(]"),
            "min_line": (self.min_line, 0, MAX_MIN_LINE, "[]"),
            "line_strength": (self.line_strength, 0, 1, "[]"),
            "seed": (self.seed, 0, MAX_SEED - KMEANS_STARTS, "[]"),
        }, ink_fault)  # fmt: skip

    @property
    def smoothing(self) -> float:
        """px at a 256 px side: the widest blur of the output it draws from (the one that
        separates grain from colour areas); a blur this wide is quality_finish.py's control."""
        return self.detail_sigma

    def draw(self, photo: Image.Image, stylized: Image.Image) -> Image.Image:
        return print_finish(photo, stylized, self)


def gamut_scale(palette: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each CIELAB ink's chroma ``scale``, lowered as far as its colour needs to stay inside
    sRGB: an ink past the gamut (strengthened, or a mean of colours outside it) would be
    clipped channel by channel, which changes its hue (a dark brown turned orange)."""
    import warnings

    import numpy as np
    from skimage.color import lab2rgb, rgb2lab

    def inside(factor: np.ndarray) -> np.ndarray:  # clipping shows in the way back to CIELAB
        lab = palette.copy()
        lab[:, 1:] *= factor[:, None]
        with warnings.catch_warnings():  # skimage warns of the negative Z it clips
            warnings.simplefilter("ignore")
            back = rgb2lab(lab2rgb(lab[None]))[0]
        return np.linalg.norm(back - lab, axis=1) < GAMUT_TOLERANCE

    scale = np.asarray(scale, dtype=np.float64)
    low, high = np.zeros_like(scale), scale.copy()  # grey (factor 0) is inside at any L*
    for _ in range(GAMUT_STEPS):  # bisection: ``low`` stays inside, ``high`` does not
        middle = (low + high) / 2
        fits = inside(middle)
        low, high = np.where(fits, middle, low), np.where(fits, high, middle)
    return np.where(inside(scale), scale, low)


def flat_areas(
    photo_lab: np.ndarray,  # (H, W, 3) CIELAB of the photo
    out_lab: np.ndarray,  # (H, W, 3) CIELAB of the model's output
    settings: PrintFinish,
    scale: float,
) -> np.ndarray:
    """(H, W, 3) CIELAB: one ink per superpixel of photo and output together; with ``merge``,
    one per merged area of the photo where one ink covers ``merge_share`` of it or more."""
    return flat_areas_and_inks(photo_lab, out_lab, settings, scale)[0]


def flat_areas_and_inks(
    photo_lab: np.ndarray,
    out_lab: np.ndarray,
    settings: PrintFinish,
    scale: float,
    held: np.ndarray | None = None,  # (colours, 3) CIELAB inks of an earlier frame, or None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`flat_areas`, and the inks it chose (CIELAB, before ``chroma``). Given ``held``,
    the areas take those inks unless they fit this picture's areas much worse than its own
    inks would (:data:`REFIT_COST`, :data:`REFIT_SLACK`: a new scene): a video's frames are
    printed in the same inks, not in inks fitted afresh to every frame."""
    import numpy as np

    from culturegan.culture.descriptors.colour import weighted_kmeans

    labels = superpixels(photo_lab, out_lab, settings.areas, settings.detail_sigma, scale)
    means, count = area_means(labels, out_lab)
    present = count > 0
    points, weights = means[present], count[present]
    best_cost, chosen, palette = np.inf, np.zeros(len(means), np.int64), None
    for start in range(KMEANS_STARTS):  # k-means++ can settle with two fields under one ink
        inks, _ = weighted_kmeans(points, weights, settings.colours, seed=settings.seed + start)
        distances = ((points[:, None, :] - inks[None]) ** 2).sum(-1)  # (areas, inks)
        cost = (distances.min(1) * weights).sum()
        if cost < best_cost:
            best_cost, palette = cost, inks
            chosen[present] = distances.argmin(1)
    if held is not None and len(held) == settings.colours:
        distances = ((points[:, None, :] - held[None]) ** 2).sum(-1)
        held_cost = (distances.min(1) * weights).sum()
        if held_cost <= REFIT_COST * best_cost + REFIT_SLACK**2 * weights.sum():
            palette = held
            chosen[present] = distances.argmin(1)
    palette = np.array(palette, dtype=np.float64)
    inks = palette.copy()  # before their chroma: what a later frame fits its areas to
    # a* and b*: the same hue and lightness, stronger or weaker, and inside sRGB
    held = np.hypot(palette[:, 1], palette[:, 2])
    colourful = np.clip((held - GREY_CHROMA) / (FULL_CHROMA - GREY_CHROMA), 0.0, 1.0)
    palette[:, 1:] *= gamut_scale(palette, 1.0 + (settings.chroma - 1.0) * colourful)[:, None]
    if settings.cohere > 0:  # what the photo shows alike, in one ink
        chosen = cohered_inks(labels, photo_lab, chosen, len(palette), settings, scale)
    ink_of_pixel = chosen[labels]
    if settings.merge > 0:  # a merged area in the ink that covers most of it
        regions = merge_alike(labels, photo_lab, settings.merge)
        votes = np.bincount(
            (regions * len(palette) + ink_of_pixel).ravel(),
            minlength=(regions.max() + 1) * len(palette),
        ).reshape(-1, len(palette))
        share = votes.max(1) / np.maximum(votes.sum(1), 1)
        settled = share >= settings.merge_share  # else its superpixels keep their own inks
        ink_of_pixel = np.where(settled[regions], votes.argmax(1)[regions], ink_of_pixel)
    return palette[ink_of_pixel], inks


def cohered_inks(
    labels: np.ndarray,  # (H, W) areas 0..n-1
    photo_lab: np.ndarray,  # (H, W, 3) CIELAB of the photo
    chosen: np.ndarray,  # (n,) each area's ink
    inks: int,
    settings: PrintFinish,
    scale: float,
) -> np.ndarray:
    """(n,) each area's ink by a vote of the areas alike in the photo and near it.

    The model paints one field of the photo in several inks at random (a sea in slate blue and
    cream patches). Each area's pixels vote for its ink, weighted by exp(-d^2 / 2 cohere^2)
    of the CIELAB distance d between the two areas' photo colours times exp(-r^2 / 2 reach^2)
    of the distance r between their centres (px at a 256 px side), and each ink's votes are
    divided by all the pixels it has in the picture: an area takes the ink the model gave to
    more of the areas like it than to the picture at large, where that ink's vote is
    ``cohere_margin`` times its own ink's or more (else it keeps its own: a close vote is the
    model's choice). Without the division the ink with the most pixels (the pale paper) would
    win nearly every vote."""
    import numpy as np

    h, w = labels.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64) / scale
    colour, count = area_means(labels, photo_lab)
    centre = area_means(labels, np.stack([rows, cols], -1))[0]
    ballot = np.zeros((len(count), inks), np.float32)  # each area's pixels, in its ink's column
    ballot[np.arange(len(count)), chosen] = count
    held = np.maximum(ballot.sum(0), 1.0)  # each ink's pixels in the picture
    # Both Gaussians as one, over colour / cohere and centre / reach: the squared distances
    # as |a|^2 + |b|^2 - 2 a.b, a product of matrices (a picture of 2048 px has 25,600 areas).
    where = np.concatenate([colour / settings.cohere, centre / settings.cohere_reach], 1)
    where = where.astype(np.float32)
    norms = (where**2).sum(1)
    voted = chosen.copy()
    for start in range(0, len(count), VOTE_ROWS):  # VOTE_ROWS x areas weights at a time
        block = slice(start, start + VOTE_ROWS)
        apart = norms[block, None] + norms[None] - 2.0 * where[block] @ where.T
        weight = np.exp(-0.5 * np.maximum(apart, 0.0))
        score = weight @ ballot / held
        own = score[np.arange(len(score)), chosen[block]]  # the area's own ink's
        clear = score.max(1) > settings.cohere_margin * own
        voted[block] = np.where(clear, score.argmax(1), chosen[block])
    return np.where(count > 0, voted, chosen)


def print_finish(
    photo: Image.Image,  # the picture the model was given
    stylized: Image.Image,  # the model's output (resized to the photo's size if it differs)
    settings: PrintFinish | None = None,
) -> Image.Image:
    """The model's output redrawn as a woodblock print: flat inks, its grain, keyblock lines."""
    return print_finish_and_inks(photo, stylized, settings)[0]


def print_finish_and_inks(
    photo: Image.Image,
    stylized: Image.Image,
    settings: PrintFinish | None = None,
    held: np.ndarray | None = None,  # an earlier frame's inks (see flat_areas_and_inks)
) -> tuple[Image.Image, np.ndarray]:
    """:func:`print_finish`, and the inks it printed in (CIELAB, before ``chroma``)."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage as ndi
    from skimage.color import lab2rgb, rgb2lab

    from culturegan.losses import GREY_WEIGHTS  # the luma every grey SSIM uses

    settings = settings or PrintFinish()
    rgb_photo, rgb_out, scale = as_arrays(photo, stylized)
    flat, inks = flat_areas_and_inks(rgb2lab(rgb_photo), rgb2lab(rgb_out), settings, scale, held)
    painted = lab2rgb(flat)
    if settings.detail > 0:
        sigma = settings.detail_sigma * scale
        grain = rgb_out - ndi.gaussian_filter(rgb_out, (sigma, sigma, 0))
        painted = painted + settings.detail * grain
    grey = rgb_photo @ np.array(GREY_WEIGHTS, dtype=np.float32)
    lines = contour_lines(
        grey, settings.line_sigma, settings.min_line, settings.line_strength, scale
    )
    ink = np.array(settings.ink, dtype=np.float64) / 255.0
    painted = np.clip(painted, 0.0, 1.0) * (1.0 - lines[..., None]) + ink * lines[..., None]
    return Image.fromarray(np.round(painted * 255.0).astype(np.uint8)), inks
