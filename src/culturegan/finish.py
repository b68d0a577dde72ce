"""Finishes: a non-learned last stage that redraws a model's output in a medium's own terms.

A model trained for minutes on a CPU paints a culture's palette and texture, but not its
technique: a ukiyo-e model's output has the prints' colours in soft, hatched areas with no
keyblock line (docs/quality.md, session 26). The ``print`` finish keeps what the model chose and
draws it the way a woodblock print is made:

1. **Flat colour areas.** The picture is cut into superpixels (SLIC, Achanta et al., TPAMI
   2012) on the photo and the model's output together, so areas follow the photo's shapes and
   the model's colour fields alike; each area takes the mean of the output's colours in it
   (CIELAB), and those means are clustered (weighted k-means) into ``colours`` inks: one ink
   per area, the same inks across the picture.
2. **Some of the model's texture back.** ``detail`` times the output's own fine structure
   (output minus its Gaussian blur) is added on top, as the grain of paper and pigment.
3. **Keyblock lines.** Outlines from the photo's grey levels by an extended difference of
   Gaussians (XDoG, Winnemöller et al., Computers & Graphics 2012), drawn in ``ink``; strokes
   shorter than ``min_line`` pixels (foliage, noise) are dropped.

The ``ink`` finish does the same for Chinese ink: the model's lightest colour becomes the
paper and its darkest the ink; washes follow the same superpixels, stepped at the picture's
own tones (the lightest half bare paper); the model's dark marks are kept only where the photo
is busy, and brush lines follow the photo's contours. It takes away the diagonal quilting that
the feature-statistics models paint over every flat area (docs/quality.md, session 12).

Sizes are given for a picture whose shorter side is 256 px and scale with the picture, so a
large photo gets as many areas per square inch and lines as wide relative to it.

Chosen on the ukiyo-e training photos and judged on 64 held-out photos by the independent
Lite1 judge: session 7's shipped ``ukiyoe`` model's hit rate 0.75 -> 1.00, grey SSIM to the photo
0.377 -> 0.396, kd_lite0 to held-out prints 0.244 -> 0.219. A plain blur of the output lifts
the hit rate as much (0.98: the judge holds the models' fine relief texture against them) but
not SSIM or kd_lite0 (docs/quality.md, session 26). Not for ink or painting: Chinese ink's hit
rate falls, Monet's broken colour is gone. The ``ink`` finish, chosen on the ink training
photos, on the same 64 held-out photos (docs/quality.md, session 27): hit rate held or up by
0.02 for the two-domain ink models (the shipped one 0.94 -> 0.95), grey SSIM up 0.05-0.09,
kd_lite0 up 0.01-0.07; a blur as wide as its washes loses hit rate instead (down to 0.58).

Usage::

    stylizer(["photo.jpg"], target="ukiyoe", finish="print")   # or `--finish print`
    print_finish(photo, stylized).save("print.png")
    ink_finish(photo, stylized, InkFinish(washes=2)).save("ink.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # NumPy, SciPy and scikit-image load when a finish runs, not with the CLI
    import numpy as np
    from PIL import Image

REFERENCE_SIDE = 256  # the sizes below are for a picture whose shorter side is this long
KMEANS_STARTS = 4  # k-means runs from other seeds; the one with the least spread is kept
# The finish works on the whole picture (areas and lines do not tile): about 175 MB and 1-4 s
# per megapixel, so a 24-megapixel photo needs some 4 GB.
MAX_FINISH_PIXELS = 24_000_000


@dataclass(frozen=True)
class PrintFinish:
    """The ``print`` finish's settings (sizes at a 256 px shorter side; they scale)."""

    colours: int = 8  # inks the areas are drawn with
    areas: int = 400  # superpixels per 256 x 256 pixels
    detail: float = 0.5  # share of the model's own fine texture added back
    detail_sigma: float = 2.0  # blur (px) that separates that texture from the colour areas
    line_sigma: float = 2.0  # XDoG scale (px): wider lines, fewer of them
    min_line: int = 40  # strokes of fewer pixels are dropped
    line_strength: float = 1.0  # 0 = no lines, 1 = lines in full ink
    ink: tuple[int, int, int] = (28, 26, 30)  # the keyblock's colour (sumi ink)
    seed: int = 0  # k-means seeding: the same picture gives the same print

    def __post_init__(self) -> None:
        if not 1 <= self.colours <= 64:
            raise ValueError(f"print finish: colours must be in [1, 64], got {self.colours}")
        if self.areas < 1:
            raise ValueError(f"print finish: areas must be >= 1, got {self.areas}")
        if self.detail < 0 or self.detail_sigma <= 0 or self.line_sigma <= 0:
            raise ValueError("print finish: detail must be >= 0 and the sigmas > 0")
        if not 0 <= self.line_strength <= 1:
            raise ValueError(
                f"print finish: line_strength must be in [0, 1], got {self.line_strength}"
            )
        if len(self.ink) != 3 or not all(0 <= c <= 255 for c in self.ink):
            raise ValueError(f"print finish: ink must be three values in [0, 255], got {self.ink}")

    def draw(self, photo: Image.Image, stylized: Image.Image) -> Image.Image:
        return print_finish(photo, stylized, self)


@dataclass(frozen=True)
class InkFinish:
    """The ``ink`` finish's settings (sizes at a 256 px shorter side; they scale)."""

    areas: int = 800  # superpixels per 256 x 256 pixels: the washes follow them
    paper_share: float = 0.5  # the lightest share of the picture's areas left as bare paper
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

    def __post_init__(self) -> None:
        if self.areas < 1 or not 1 <= self.washes <= 16:
            raise ValueError(
                f"ink finish: areas must be >= 1 and washes in [1, 16], got {self.areas} and "
                f"{self.washes}"
            )
        shares = {"paper_share": self.paper_share, "wash": self.wash,
                  "line_strength": self.line_strength, "texture": self.texture,
                  "texture_floor": self.texture_floor}  # fmt: skip
        outside = [f"{k}={v}" for k, v in shares.items() if not 0 <= v <= 1]
        if outside or not 0 < self.paper_share < 1:
            raise ValueError(
                f"ink finish: these must be in [0, 1] (paper_share inside it): "
                f"{', '.join(outside) or f'paper_share={self.paper_share}'}"
            )
        if (
            self.wash_edge <= 0
            or min(self.bleed, self.wash_blur) < 0
            or self.line_sigma <= 0
            or self.texture_sigma <= 0
        ):
            raise ValueError("ink finish: wash_edge, line_sigma and texture_sigma must be > 0, "
                             "wash_blur and bleed >= 0")  # fmt: skip

    def draw(self, photo: Image.Image, stylized: Image.Image) -> Image.Image:
        return ink_finish(photo, stylized, self)


FINISHES = {"print": PrintFinish, "ink": InkFinish}


def check_finish(name: str | None) -> None:
    """Refuse an unknown finish name before any work (None = no finish)."""
    if name is not None and name not in FINISHES:
        raise ValueError(f"unknown finish '{name}'; choose from {', '.join(sorted(FINISHES))}")


def check_finish_size(name: str, size: tuple[int, int], source: str = "") -> None:
    """Refuse a picture too large for the finish, naming it, before the model runs."""
    width, height = size
    if width * height > MAX_FINISH_PIXELS:
        what = f"'{source}'" if source else "an image"
        raise ValueError(
            f"{what} is {width} x {height} px: the '{name}' finish works on whole pictures of "
            f"at most {MAX_FINISH_PIXELS // 1_000_000} megapixels (memory); downscale it or "
            "drop the finish"
        )


def apply_finish(name: str, photo: Image.Image, stylized: Image.Image) -> Image.Image:
    """The finish ``name`` with its default settings (see :data:`FINISHES`)."""
    check_finish(name)
    return FINISHES[name]().draw(photo, stylized)


def xdog_lines(grey: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) grey in [0, 1] -> line darkness in [0, 1] (1 = full line), by XDoG.

    A sharpened difference of Gaussians (scales sigma and 1.6 sigma, sharpening 20) that is
    paper (0) above a small threshold and falls smoothly to a full line below it.
    """
    import numpy as np
    from scipy import ndimage as ndi

    fine = ndi.gaussian_filter(grey, sigma)
    coarse = ndi.gaussian_filter(grey, 1.6 * sigma)
    sharpened = 21.0 * fine - 20.0 * coarse
    threshold, steepness = 0.02, 10.0
    return np.where(sharpened >= threshold, 0.0, -np.tanh(steepness * (sharpened - threshold)))


def drop_short_strokes(lines: np.ndarray, min_pixels: int) -> np.ndarray:
    """``lines`` with every 8-connected stroke (darkness > 0.5) of < ``min_pixels`` removed."""
    import numpy as np
    from scipy import ndimage as ndi

    stroke = lines > 0.5
    labels, _ = ndi.label(stroke, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = True  # the background is not a stroke: its faint tails stay as they are
    return np.where(keep[labels], lines, 0.0)


def superpixels(
    photo_lab: np.ndarray,  # (H, W, 3) CIELAB of the photo
    out_lab: np.ndarray,  # (H, W, 3) CIELAB of the model's output
    areas: int,  # superpixels per 256 x 256 pixels
    fields_sigma: float,  # px at a 256 px side: the blur that takes the output's grain away
    scale: float,
) -> np.ndarray:
    """(H, W) labels 0..n-1: SLIC areas of the photo and the output's colour fields together."""
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.segmentation import slic

    h, w = photo_lab.shape[:2]
    # The areas come from the output's colour fields, not its grain: segmenting the raw output
    # lets SLIC cut noise into fragments that its connectivity pass merges across the photo's
    # edges.
    sigma = fields_sigma * scale
    fields = ndi.gaussian_filter(out_lab, (sigma, sigma, 0))
    features = np.concatenate([photo_lab, fields], axis=-1).astype(np.float32) / 100.0
    return slic(
        features,
        n_segments=max(1, round(areas * h * w / REFERENCE_SIDE**2)),
        compactness=0.1,  # for features in [-1, 1]: areas follow colour more than the grid
        sigma=scale,
        start_label=0,
        channel_axis=-1,
        convert2lab=False,
    )


def area_means(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each label's mean of ``values`` (H, W, C) and its pixel count: ((n, C), (n,)); labels
    with no pixel get 0."""
    import numpy as np

    flat = labels.ravel()
    count = np.bincount(flat).astype(np.float64)
    pixels = values.reshape(flat.size, -1).astype(np.float64)
    means = np.stack([np.bincount(flat, pixels[:, c]) for c in range(pixels.shape[1])], axis=1)
    present = count > 0
    means[present] /= count[present, None]
    return means, count


def flat_areas(
    photo_lab: np.ndarray,  # (H, W, 3) CIELAB of the photo
    out_lab: np.ndarray,  # (H, W, 3) CIELAB of the model's output
    settings: PrintFinish,
    scale: float,
) -> np.ndarray:
    """(H, W, 3) CIELAB: one ink per superpixel of photo and output together."""
    import numpy as np

    from culturegan.culture.descriptors.colour import weighted_kmeans

    labels = superpixels(photo_lab, out_lab, settings.areas, settings.detail_sigma, scale)
    means, count = area_means(labels, out_lab)
    present = count > 0
    points, weights = means[present], count[present]
    best_cost, fill = np.inf, np.zeros_like(means)
    for start in range(KMEANS_STARTS):  # k-means++ can settle with two fields under one ink
        inks, _ = weighted_kmeans(points, weights, settings.colours, seed=settings.seed + start)
        distances = ((points[:, None, :] - inks[None]) ** 2).sum(-1)  # (areas, inks)
        cost = (distances.min(1) * weights).sum()
        if cost < best_cost:
            best_cost = cost
            fill[present] = inks[distances.argmin(1)]
    return fill[labels]


def _as_arrays(photo: Image.Image, stylized: Image.Image) -> tuple[np.ndarray, np.ndarray, float]:
    """(photo, output) as (H, W, 3) float32 RGB in [0, 1], the output resized to the photo's
    size if it differs, and the picture's scale against :data:`REFERENCE_SIDE`."""
    import numpy as np
    from PIL import Image

    photo = photo.convert("RGB")
    stylized = stylized.convert("RGB")
    if stylized.size != photo.size:
        stylized = stylized.resize(photo.size, Image.Resampling.BICUBIC)
    rgb_photo = np.asarray(photo, dtype=np.float32) / 255.0
    rgb_out = np.asarray(stylized, dtype=np.float32) / 255.0
    return rgb_photo, rgb_out, min(photo.size) / REFERENCE_SIDE


def _contour_lines(
    grey: np.ndarray, sigma: float, min_line: int, strength: float, scale: float
) -> np.ndarray:
    """Line darkness (H, W) in [0, strength] along the contours of ``grey`` (XDoG at ``sigma``
    px, strokes under ``min_line`` px dropped; both at a 256 px side, scaled)."""
    lines = xdog_lines(grey, sigma * scale)
    return strength * drop_short_strokes(lines, max(1, round(min_line * scale**2)))


def print_finish(
    photo: Image.Image,  # the picture the model was given
    stylized: Image.Image,  # the model's output (resized to the photo's size if it differs)
    settings: PrintFinish | None = None,
) -> Image.Image:
    """The model's output redrawn as a woodblock print: flat inks, its grain, keyblock lines."""
    import numpy as np
    from PIL import Image
    from scipy import ndimage as ndi
    from skimage.color import lab2rgb, rgb2lab

    from culturegan.losses import GREY_WEIGHTS  # the luma every grey SSIM uses

    settings = settings or PrintFinish()
    rgb_photo, rgb_out, scale = _as_arrays(photo, stylized)
    painted = lab2rgb(flat_areas(rgb2lab(rgb_photo), rgb2lab(rgb_out), settings, scale))
    if settings.detail > 0:
        sigma = settings.detail_sigma * scale
        grain = rgb_out - ndi.gaussian_filter(rgb_out, (sigma, sigma, 0))
        painted = painted + settings.detail * grain
    grey = rgb_photo @ np.array(GREY_WEIGHTS, dtype=np.float32)
    lines = _contour_lines(
        grey, settings.line_sigma, settings.min_line, settings.line_strength, scale
    )
    ink = np.array(settings.ink, dtype=np.float64) / 255.0
    painted = np.clip(painted, 0.0, 1.0) * (1.0 - lines[..., None]) + ink * lines[..., None]
    return Image.fromarray(np.round(painted * 255.0).astype(np.uint8))


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
    rgb_photo, rgb_out, scale = _as_arrays(photo, stylized)
    luma = np.array(GREY_WEIGHTS, dtype=np.float32)
    grey_photo, grey_out = rgb_photo @ luma, rgb_out @ luma
    paper = rgb_out[grey_out >= np.quantile(grey_out, 1 - PAPER_SHARE_OF_OUTPUT)].mean(0)
    ink = rgb_out[grey_out <= np.quantile(grey_out, INK_SHARE_OF_OUTPUT)].mean(0)
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

    lines = _contour_lines(
        grey_photo, settings.line_sigma, settings.min_line, settings.line_strength, scale
    )
    if settings.wash_blur > 0:
        wash = ndi.gaussian_filter(wash, settings.wash_blur * scale)
    if settings.bleed > 0:
        lines = ndi.gaussian_filter(lines, settings.bleed * scale)
    cover = 1.0 - (1.0 - wash) * (1.0 - marks) * (1.0 - lines)
    painted = paper * (1.0 - cover[..., None]) + ink * cover[..., None]
    return Image.fromarray(np.round(np.clip(painted, 0.0, 1.0) * 255.0).astype(np.uint8))
