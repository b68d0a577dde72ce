"""Line and edge descriptors: edge density, edge-orientation entropy, outline dominance.

Edges are Canny edges (Canny 1986; scikit-image's implementation) of the grey image with a
Gaussian of sigma 1 working pixel and fixed hysteresis thresholds on the gradient magnitude, so
that a flat picture has no edges and thresholds do not adapt to each picture's contrast.
Edge-orientation entropy follows Redies, Brachmann and Wagemans, "High entropy of edge
orientations characterizes visual artworks from diverse cultural backgrounds", Vision Research
133, 2017 (here on a single scale with 16 orientation bins).

Usage::

    edges = canny_edges(ImageView.from_image(img))      # (H, W) bool
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.feature import canny

from culturegan.culture.descriptors.base import ImageView, register_descriptor, shannon_entropy

CANNY_SIGMA = 1.0  # working pixels
CANNY_LOW, CANNY_HIGH = 0.04, 0.08  # on the gradient magnitude of grey in [0, 1] (Sobel / 4)
ORIENTATION_BINS = 16  # over 0-180 degrees
LINE_RADIUS = 2  # thin dark lines are up to 2 * LINE_RADIUS + 1 working pixels wide
LINE_DEPTH = 0.15  # a line pixel is at least this much darker than its closing


def canny_edges(view: ImageView) -> np.ndarray:
    """(H, W) bool Canny edge map of the grey image (see the module docstring)."""

    def make() -> np.ndarray:
        # skimage's Canny takes magnitudes of unnormalised Sobel filters (a unit step gives 4
        # after smoothing at most); scaling the image by 1/4 would change nothing else, so
        # the thresholds are multiplied instead.
        return canny(
            view.grey,
            sigma=CANNY_SIGMA,
            low_threshold=4 * CANNY_LOW,
            high_threshold=4 * CANNY_HIGH,
            mode="nearest",
        )

    return view.memo("canny", make)


def _gradients(view: ImageView) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradients (gy, gx) of the grey image smoothed like Canny's."""

    def make() -> tuple[np.ndarray, np.ndarray]:
        smooth = ndimage.gaussian_filter(view.grey, CANNY_SIGMA, mode="nearest")
        return ndimage.sobel(smooth, 0, mode="nearest"), ndimage.sobel(smooth, 1, mode="nearest")

    return view.memo("gradients", make)


@register_descriptor(family="line and edge", units="share of pixels, 0-1")
def edge_density(view: ImageView) -> float:
    """Share of pixels on a Canny edge (sigma 1 px, thresholds 0.04 / 0.08 of the grey range per
    pixel). 0 for a flat picture; busy, detailed pictures reach 0.2-0.3."""
    return float(canny_edges(view).mean())


@register_descriptor(family="line and edge", units="normalised entropy, 0-1")
def edge_orientation_entropy(view: ImageView) -> float:
    """Shannon entropy of the orientations (16 bins over 0-180 degrees, each pixel weighted by
    its gradient magnitude) of the Canny edge pixels, divided by log(16). 0 when every edge has
    one orientation (stripes) or there is no edge; near 1 when all orientations are equally
    common (Redies et al. 2017 found high values typical of artworks)."""
    edges = canny_edges(view)
    if not edges.any():
        return 0.0
    gy, gx = _gradients(view)
    angle = np.arctan2(gy[edges], gx[edges]) % math.pi  # the edge normal, mod 180 degrees
    weight = np.hypot(gy[edges], gx[edges])
    # Bins centred on 0, 11.25, ... degrees, so horizontal and vertical edges sit mid-bin.
    shifted = (angle + math.pi / (2 * ORIENTATION_BINS)) % math.pi
    counts, _ = np.histogram(shifted, bins=ORIENTATION_BINS, range=(0, math.pi), weights=weight)
    return shannon_entropy(counts) / math.log(ORIENTATION_BINS)


def dark_lines(view: ImageView) -> np.ndarray:
    """(H, W) bool: thin dark lines, where the black top-hat (grey closing minus grey, disk of
    radius 2 px) is at least 0.15: pixels much darker than a neighbourhood on both sides."""

    def make() -> np.ndarray:
        footprint = _disk(LINE_RADIUS)
        closing = ndimage.grey_closing(view.grey, footprint=footprint, mode="nearest")
        return (closing - view.grey) >= LINE_DEPTH

    return view.memo("dark_lines", make)


@register_descriptor(family="line and edge", units="share of edge pixels, 0-1")
def outline_dominance(view: ImageView) -> float:
    """Share of the Canny edge pixels that belong to drawn outlines: that lie within 2 px of a
    thin dark line (black top-hat with a disk of radius 2 px at least 0.15). Near 1 for
    contour drawings and outlined woodblock prints, near 0 for pictures whose edges are borders
    between areas of colour; 0 when there is no edge. Dense textures of small dark marks (noise,
    the dark rims of impasto dabs) also count as lines, so read it together with
    line_density and edge_density."""
    edges = canny_edges(view)
    if not edges.any():
        return 0.0
    near_line = ndimage.binary_dilation(dark_lines(view), structure=_disk(2))
    return float(near_line[edges].mean())


@register_descriptor(family="line and edge", units="share of pixels, 0-1")
def line_density(view: ImageView) -> float:
    """Share of pixels on thin dark lines (black top-hat with a disk of radius 2 px at least
    0.15): the amount of drawn line, strokes and outlines, whatever their direction."""
    return float(dark_lines(view).mean())


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius
