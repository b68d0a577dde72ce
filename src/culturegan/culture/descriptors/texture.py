"""Texture and tone descriptors: GLCM contrast and homogeneity, brush-stroke scale, grey tones.

* GLCM: Haralick, Shanmugam and Dinstein, "Textural features for image classification", IEEE
  Trans. SMC 3(6), 1973; scikit-image's ``graycomatrix`` on the grey image quantised to 32
  levels, neighbours 1 px apart in four directions (0, 45, 90, 135 degrees), symmetric and
  normalised, properties averaged over the directions.
* Brush-stroke scale: the half-width of the autocorrelation of the high-passed grey image
  (the distance at which the texture stops resembling itself), a standard texture-scale
  measure.
* Tone: the grey-level distribution (ink tones of monochrome painting).

Usage::

    compute_descriptors(img, names=["glcm_contrast", "stroke_scale"])
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.feature import graycomatrix, graycoprops

from culturegan.culture.descriptors.base import ImageView, register_descriptor, shannon_entropy

GLCM_LEVELS = 32
GLCM_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
HIGHPASS_FRACTION = 1 / 16  # the high-pass removes structure wider than short side / 16
MIN_TEXTURE_STD = 1e-3  # below this the high-passed picture counts as flat
TONE_BINS = 64
DARK_TONE = 0.3  # grey below this is "dark ink"


def _glcm(view: ImageView) -> np.ndarray:
    def make() -> np.ndarray:
        levels = np.minimum((view.grey * GLCM_LEVELS).astype(np.int64), GLCM_LEVELS - 1)
        return graycomatrix(
            levels.astype(np.uint8),
            distances=[1],
            angles=list(GLCM_ANGLES),
            levels=GLCM_LEVELS,
            symmetric=True,
            normed=True,
        )

    return view.memo("glcm", make)


@register_descriptor(family="texture", units="squared grey-level difference / 31^2, 0-1")
def glcm_contrast(view: ImageView) -> float:
    """GLCM contrast: the mean squared difference between the grey levels (of 32) of
    neighbouring pixels, averaged over four directions and divided by 31^2: 0 for a flat
    picture, 1 if every neighbouring pair is black/white (a checkerboard scores 0.5, since its
    diagonal neighbours match)."""
    return float(graycoprops(_glcm(view), "contrast").mean()) / (GLCM_LEVELS - 1) ** 2


@register_descriptor(family="texture", units="0-1")
def glcm_homogeneity(view: ImageView) -> float:
    """GLCM homogeneity: mean of 1 / (1 + (i - j)^2) over neighbouring pixel pairs with grey
    levels i, j (of 32), averaged over four directions. 1 for a flat picture, lower for rough
    texture."""
    return float(graycoprops(_glcm(view), "homogeneity").mean())


@register_descriptor(family="texture", units="% of the shorter side")
def stroke_scale(view: ImageView) -> float:
    """Brush-stroke scale: the lag (in % of the shorter side) at which the radially averaged
    autocorrelation of the high-passed grey image (grey minus its Gaussian blur of sigma =
    shorter side / 16) first drops to 1/2, linearly interpolated. Fine grain and pixel noise
    give ~0.5 px, broad dabs and washes give larger values; 0 for a picture with no texture."""
    grey = view.grey
    short = view.short_side
    detail = grey - ndimage.gaussian_filter(grey, short * HIGHPASS_FRACTION, mode="reflect")
    if detail.std() < MIN_TEXTURE_STD:
        return 0.0
    detail = detail - detail.mean()
    h, w = detail.shape
    # Zero-padded FFT autocorrelation (no wrap-around), normalised by the overlap area.
    spectrum = np.fft.rfft2(detail, s=(2 * h, 2 * w))
    auto = np.fft.irfft2(np.abs(spectrum) ** 2, s=(2 * h, 2 * w))
    overlap = np.fft.irfft2(np.abs(np.fft.rfft2(np.ones_like(detail), s=(2 * h, 2 * w))) ** 2)
    auto = auto / np.maximum(overlap, 1.0)
    auto = auto / auto[0, 0]
    max_lag = max(2, short // 4)
    dy = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    yy, xx = np.meshgrid(dy, dy, indexing="ij")
    window = auto[np.ix_(dy % (2 * h), dy % (2 * w))]
    radius = np.rint(np.hypot(yy, xx)).astype(int)
    inside = radius <= max_lag
    sums = np.bincount(radius[inside], weights=window[inside], minlength=max_lag + 1)
    radial = sums / np.maximum(np.bincount(radius[inside], minlength=max_lag + 1), 1)
    below = np.nonzero(radial[: max_lag + 1] <= 0.5)[0]
    if len(below) == 0:
        lag = float(max_lag)
    else:
        r = int(below[0])  # r >= 1 since radial[0] == 1
        a, b = radial[r - 1], radial[r]
        lag = (r - 1) + (a - 0.5) / max(a - b, 1e-12)
    return 100.0 * lag / short


@register_descriptor(family="tone", units="grey level, 0-1")
def tone_mean(view: ImageView) -> float:
    """Mean grey level (Rec. 601 luma, 0 black to 1 white): how light the picture is."""
    return float(view.grey.mean())


@register_descriptor(family="tone", units="grey level, 0-1")
def tone_std(view: ImageView) -> float:
    """Standard deviation of the grey level over the pixels: global tonal contrast."""
    return float(view.grey.std())


@register_descriptor(family="tone", units="normalised entropy, 0-1")
def tone_entropy(view: ImageView) -> float:
    """Shannon entropy of the grey-level histogram (64 bins), divided by log(64): 0 for one flat
    tone, higher for pictures using many ink tones (the "five tones of ink")."""
    counts, _ = np.histogram(view.grey, bins=TONE_BINS, range=(0.0, 1.0))
    return shannon_entropy(counts) / math.log(TONE_BINS)


@register_descriptor(family="tone", units="share of pixels, 0-1")
def dark_share(view: ImageView) -> float:
    """Share of pixels darker than grey level 0.3 (dense ink, deep shadow)."""
    return float((view.grey < DARK_TONE).mean())
