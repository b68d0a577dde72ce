"""The ``ink`` finish: the model's output redrawn as an ink painting on its own paper.

The model's lightest colour becomes the paper and its darkest the ink; washes follow the
superpixels of the photo and the output (as the print finish cuts them), stepped at the
picture's own tones (the lightest half bare paper); the model's dark marks are kept only where
the photo is busy, and brush lines follow the photo's contours. It takes away the diagonal
quilting that the feature-statistics models paint over every flat area (docs/quality.md,
sessions 12 and 27).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from culturegan.finish.common import (
    MAX_AREAS,
    MAX_MIN_LINE,
    MAX_SIGMA,
    area_means,
    as_arrays,
    check_ranges,
    contour_lines,
    superpixels,
)

if TYPE_CHECKING:  # NumPy, SciPy and scikit-image load when a finish runs, not with the CLI
    from PIL import Image


@dataclass(frozen=True)
class InkFinish:
    """The ``ink`` finish's settings (sizes at a 256 px shorter side; they scale)."""

    areas: int = 800  # superpixels per 256 x 256 pixels: the washes follow them
    paper_share: float = 0.3  # the lightest share of the picture's areas left as bare paper
    washes: int = 3  # wash tones over the paper, each a step darker
    wash: float = 0.5  # ink density of the darkest wash (1 = the ink itself)
    wash_edge: float = 0.08  # width of a step between washes, in density: soft, wet edges
    wash_blur: float = 2.0  # px: a wash spreads over its area's border (wet ink) this far
    bleed: float = 1.0  # px: the lines run into the paper by this Gaussian
    line_sigma: float = 1.2  # XDoG scale (px) of the brush lines along the photo's contours
    min_line: int = 20  # strokes of fewer pixels are dropped
    line_strength: float = 0.8  # 0 = no lines, 1 = lines in full ink
    texture: float = 0.6  # the model's own dark marks kept where the photo is busy
    texture_sigma: float = 1.5  # px: how coarse those marks may be
    texture_floor: float = 0.04  # marks fainter than this density are paper
    ink_depth: float = 0.0  # the ink darkened toward black by this share (1 = black)
    ink_neutral: float = 0.0  # the ink's colour taken toward its own grey (1 = grey ink)

    def __post_init__(self) -> None:
        check_ranges("ink", {
            "areas": (self.areas, 1, MAX_AREAS, "[]"),
            "paper_share": (self.paper_share, 0, 1, "()"),  # 1: no washes
            "washes": (self.washes, 1, 16, "[]"),
            "wash": (self.wash, 0, 1, "[]"),
            "wash_edge": (self.wash_edge, 0, 1, "(]"),
            "wash_blur": (self.wash_blur, 0, MAX_SIGMA, "[]"),
            "bleed": (self.bleed, 0, MAX_SIGMA, "[]"),
            "line_sigma": (self.line_sigma, 0, MAX_SIGMA, "(]"),
            "min_line": (self.min_line, 0, MAX_MIN_LINE, "[]"),
            "line_strength": (self.line_strength, 0, 1, "[]"),
            "texture": (self.texture, 0, 1, "[]"),
            "texture_sigma": (self.texture_sigma, 0, MAX_SIGMA, "(]"),
            "texture_floor": (self.texture_floor, 0, 1, "[]"),
            "ink_depth": (self.ink_depth, 0, 1, "[]"),
            "ink_neutral": (self.ink_neutral, 0, 1, "[]"),
        })  # fmt: skip

    @property
    def smoothing(self) -> float:
        """px at a 256 px side: the widest blur of the output it draws from (the washes'
        spread); a blur this wide is quality_finish.py's control."""
        return self.wash_blur

    def draw(self, photo: Image.Image, stylized: Image.Image) -> Image.Image:
        return ink_finish(photo, stylized, self)


PAPER_SHARE_OF_OUTPUT = 0.2  # the paper's colour: the mean of the output's lightest fifth
INK_SHARE_OF_OUTPUT = 0.03  # the ink's colour: the mean of its darkest 3%
MARK_STEEPNESS = 8.0  # a texture mark reaches full ink 1/8 of density above texture_floor
# px at a 256 px side: the blur that takes the output's grain off before the areas are cut,
# the finest scale of a mark, and the smoothing under the photo's busyness
INK_FIELDS_SIGMA, MARK_FINE_SIGMA, BUSY_SIGMA = 2.0, 0.7, 2.0


def ink_finish(
    photo: Image.Image,  # the picture the model was given
    stylized: Image.Image,  # the model's output (resized to the photo's size if it differs)
    settings: InkFinish | None = None,
) -> Image.Image:
    """The model's output redrawn as an ink painting on its own paper: washes, marks, lines.

    Paper and ink are the model's lightest and darkest colours. Each superpixel of photo and
    output (as the print finish cuts them) takes the output's mean ink density there; the
    lightest ``paper_share`` of the picture stays bare paper and the rest steps up through
    ``washes`` tones to ``wash``, each reached ``wash_edge`` of density above its step (a
    picture of one tone is all paper). Over them go the model's own dark marks where the
    photo is busy (foliage, rock: what the model hatches everywhere is kept only there) and
    brush lines along the photo's contours (XDoG); the washes spread ``wash_blur`` px over
    their areas' borders and the lines run ``bleed`` px into the paper.
    Layers darken each other as ink on paper does: 1 - (1 - wash)(1 - marks)(1 - lines)."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage as ndi
    from skimage.color import rgb2lab

    from culturegan.losses import GREY_WEIGHTS

    settings = settings or InkFinish()
    rgb_photo, rgb_out, scale = as_arrays(photo, stylized)
    luma = np.array(GREY_WEIGHTS, dtype=np.float32)
    grey_photo, grey_out = rgb_photo @ luma, rgb_out @ luma
    paper = rgb_out[grey_out >= np.quantile(grey_out, 1 - PAPER_SHARE_OF_OUTPUT)].mean(0)
    ink = rgb_out[grey_out <= np.quantile(grey_out, INK_SHARE_OF_OUTPUT)].mean(0)
    ink = (1.0 - settings.ink_neutral) * ink + settings.ink_neutral * float(ink @ luma)
    ink = ink * (1.0 - settings.ink_depth)
    paper_grey = max(float(paper @ luma), 1e-3)
    density = np.clip((paper_grey - grey_out) / paper_grey, 0.0, 1.0)

    # Washes: the areas' mean density, stepped at the picture's own quantiles.
    labels = superpixels(
        rgb2lab(rgb_photo), rgb2lab(rgb_out), settings.areas, INK_FIELDS_SIGMA, scale
    )
    means, count = area_means(labels, density[..., None])
    order = np.argsort(means[:, 0])
    cumulative = np.cumsum(count[order]) / count.sum()
    shares = np.linspace(settings.paper_share, 1.0, settings.washes + 1)[:-1]
    steps = means[order, 0][np.searchsorted(cumulative, shares).clip(max=len(order) - 1)]
    soft = means[labels, 0]
    wash = sum(np.clip((soft - q) / settings.wash_edge, 0.0, 1.0) for q in steps)
    wash = settings.wash / settings.washes * wash

    # Marks: the model's darker-than-around detail, where the photo has texture.
    fine = ndi.gaussian_filter(density, MARK_FINE_SIGMA * scale) - ndi.gaussian_filter(
        density, 2 * settings.texture_sigma * scale
    )
    smooth = ndi.gaussian_filter(grey_photo, BUSY_SIGMA * scale)
    busy = np.hypot(ndi.sobel(smooth, 0), ndi.sobel(smooth, 1))
    busy = np.clip(busy / (busy.mean() + 1e-6), 0.0, 2.0) / 2.0
    marks = np.clip((fine - settings.texture_floor) * MARK_STEEPNESS, 0.0, 1.0)
    marks = settings.texture * marks * busy

    lines = contour_lines(
        grey_photo, settings.line_sigma, settings.min_line, settings.line_strength, scale
    )
    if settings.wash_blur > 0:
        wash = ndi.gaussian_filter(wash, settings.wash_blur * scale)
    if settings.bleed > 0:
        lines = ndi.gaussian_filter(lines, settings.bleed * scale)
    cover = 1.0 - (1.0 - wash) * (1.0 - marks) * (1.0 - lines)
    painted = paper * (1.0 - cover[..., None]) + ink * cover[..., None]
    return Image.fromarray(np.round(np.clip(painted, 0.0, 1.0) * 255.0).astype(np.uint8))
