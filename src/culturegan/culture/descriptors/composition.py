"""Blank space and composition: liubai, centre of visual mass, mirror symmetry, partitions.

Blank space (liubai, the deliberately empty paper of Chinese and Japanese ink painting) is
paper that is light, nearly colourless and untextured. Composition descriptors read the grey
image; positions are fractions of the picture's width or height (0 left/top, 1 right/bottom).

Usage::

    compute_descriptors(img, names=["blank_space", "mass_centre_x"])
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from culturegan.culture.descriptors.base import ImageView, register_descriptor

PAPER_GREY = 0.75  # blank paper is at least this light ...
PAPER_SATURATION = 0.3  # ... at most this saturated (beige and cream papers pass) ...
PAPER_TEXTURE = 0.03  # ... and its local grey standard deviation is at most this
TEXTURE_SIGMA = 2.0  # working pixels: the window of the local standard deviation
FLAT_STD = 1e-6  # a grey image with a smaller standard deviation counts as flat


@register_descriptor(family="blank space", units="share of pixels, 0-1")
def blank_space(view: ImageView) -> float:
    """Share of the picture that is blank paper (liubai): pixels that are light (grey at least
    0.75), nearly colourless (HSV saturation at most 0.3) and untextured (standard deviation of
    grey in a Gaussian window of sigma 2 px at most 0.03). 1 for a blank white sheet; 0 for a
    dark or fully painted surface."""
    grey = view.grey
    mean = ndimage.gaussian_filter(grey, TEXTURE_SIGMA, mode="reflect")
    mean_sq = ndimage.gaussian_filter(grey * grey, TEXTURE_SIGMA, mode="reflect")
    local_std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    paper = (grey >= PAPER_GREY) & (view.hsv[..., 1] <= PAPER_SATURATION)
    return float((paper & (local_std <= PAPER_TEXTURE)).mean())


def _mass(view: ImageView) -> tuple[float, float]:
    """(x, y) centre of visual mass; see :func:`mass_centre_x`."""

    def make() -> tuple[float, float]:
        grey = view.grey
        weight = np.abs(grey - np.median(grey))
        total = float(weight.sum())
        if total <= 1e-9:
            return 0.5, 0.5
        h, w = grey.shape
        ys = (np.arange(h) + 0.5) / h
        xs = (np.arange(w) + 0.5) / w
        return float((weight.sum(0) * xs).sum() / total), float((weight.sum(1) * ys).sum() / total)

    return view.memo("mass", make)


@register_descriptor(family="composition", units="fraction of the width, 0-1")
def mass_centre_x(view: ImageView) -> float:
    """Horizontal position of the centre of visual mass, each pixel weighted by how far its grey
    level is from the picture's median grey (the dominant ground counts as empty, whatever its
    tone). 0.5 is centred (also for a flat picture), smaller is left."""
    return _mass(view)[0]


@register_descriptor(family="composition", units="fraction of the height, 0-1")
def mass_centre_y(view: ImageView) -> float:
    """Vertical position of the centre of visual mass (weights as for mass_centre_x). 0.5 is
    centred, smaller is higher in the picture."""
    return _mass(view)[1]


def _mirror_correlation(grey: np.ndarray, axis: int) -> float:
    flipped = np.flip(grey, axis=axis)
    a, b = grey - grey.mean(), flipped - flipped.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= FLAT_STD * grey.size:
        return 1.0  # a flat picture is perfectly symmetric
    return float((a * b).sum() / denom)


@register_descriptor(family="composition", units="correlation, -1 to 1")
def symmetry_lr(view: ImageView) -> float:
    """Left-right mirror symmetry: Pearson correlation between the grey image and its mirror
    image about the vertical centre line. 1 symmetric (or flat), ~0 unrelated halves."""
    return _mirror_correlation(view.grey, axis=1)


@register_descriptor(family="composition", units="correlation, -1 to 1")
def symmetry_tb(view: ImageView) -> float:
    """Top-bottom mirror symmetry: Pearson correlation between the grey image and its mirror
    image about the horizontal centre line (reflections in water score high)."""
    return _mirror_correlation(view.grey, axis=0)


def best_split(grey: np.ndarray, axis: int) -> tuple[float, float]:
    """(position, strength) of the straight cut across ``axis`` that best divides the picture.

    The cut between rows (axis 0) or columns (axis 1) maximising the between-part variance of
    the grey level (Otsu's criterion on positions); strength is that variance divided by the
    total grey variance (0-1). A flat picture gives (0.5, 0).
    """
    profile = grey.mean(axis=1 - axis)  # (n,) mean grey of each row / column
    n = len(profile)
    total_var = float(grey.var())
    if n < 2 or total_var <= FLAT_STD**2:
        return 0.5, 0.0
    k = np.arange(1, n)  # cut after k rows
    cum = np.cumsum(profile)[:-1]
    mean_1 = cum / k
    mean_2 = (profile.sum() - cum) / (n - k)
    between = (k / n) * (1 - k / n) * (mean_1 - mean_2) ** 2
    best = int(np.argmax(between))
    return float(k[best] / n), float(min(1.0, between[best] / total_var))


def _splits(view: ImageView) -> dict[int, tuple[float, float]]:
    return view.memo("splits", lambda: {a: best_split(view.grey, a) for a in (0, 1)})


@register_descriptor(family="composition", units="fraction of the height, 0-1")
def horizontal_split_position(view: ImageView) -> float:
    """Height (0 top, 1 bottom) of the horizontal line that best divides the picture into a
    lighter and a darker part (Otsu's criterion on rows): a horizon, the edge of a mountain
    range. 0.5 for a flat picture."""
    return _splits(view)[0][0]


@register_descriptor(family="composition", units="share of grey variance, 0-1")
def horizontal_split_strength(view: ImageView) -> float:
    """Share of the grey-level variance explained by the best horizontal division: 1 for two
    flat bands one above the other, 0 for a flat picture or no horizontal structure."""
    return _splits(view)[0][1]


@register_descriptor(family="composition", units="fraction of the width, 0-1")
def vertical_split_position(view: ImageView) -> float:
    """Position (0 left, 1 right) of the vertical line that best divides the picture into a
    lighter and a darker part (Otsu's criterion on columns). 0.5 for a flat picture."""
    return _splits(view)[1][0]


@register_descriptor(family="composition", units="share of grey variance, 0-1")
def vertical_split_strength(view: ImageView) -> float:
    """Share of the grey-level variance explained by the best vertical division: 1 for two flat
    bands side by side, 0 for a flat picture or no vertical structure."""
    return _splits(view)[1][1]
