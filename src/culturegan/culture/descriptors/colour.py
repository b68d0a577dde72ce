"""Colour descriptors: saturation and value statistics, colourfulness, hue entropy, palette.

* Colourfulness is the metric of Hasler and Suesstrunk, "Measuring colourfulness in natural
  images", SPIE Human Vision and Electronic Imaging VIII, 2003 (their M^(3), computed on the
  opponent axes rg = R - G and yb = (R + G) / 2 - B of 8-bit RGB).
* The dominant palette is k-means (k-means++ seeding, fixed seed) in CIELAB on a fixed
  subsample of pixels; clusters closer than ``MERGE_DELTA_E`` are merged.

Usage::

    palette = dominant_palette(ImageView.from_image(img))   # [(hex, share), ...]
"""

from __future__ import annotations

import math

import numpy as np
from skimage.color import lab2rgb, rgb2lab

from culturegan.culture.descriptors.base import ImageView, register_descriptor, shannon_entropy

HUE_BINS = 36  # 10-degree bins
CHROMATIC_S, CHROMATIC_V = 0.2, 0.2  # pixels below either have no meaningful hue
PALETTE_K = 6
PALETTE_SAMPLE = 4096  # pixels used for k-means
MERGE_DELTA_E = 12.0  # CIE76 distance under which two palette colours count as one
MIN_PALETTE_SHARE = 0.05  # a palette colour must cover at least 5% of the picture


@register_descriptor(family="colour", units="HSV saturation, 0-1")
def saturation_mean(view: ImageView) -> float:
    """Mean HSV saturation (max - min) / max of the pixels. 0 for a grey picture."""
    return float(view.hsv[..., 1].mean())


@register_descriptor(family="colour", units="HSV saturation, 0-1")
def saturation_std(view: ImageView) -> float:
    """Standard deviation of HSV saturation over the pixels: how much colour strength varies."""
    return float(view.hsv[..., 1].std())


@register_descriptor(family="colour", units="HSV value, 0-1")
def value_mean(view: ImageView) -> float:
    """Mean HSV value (brightest channel) of the pixels: overall lightness of the colours."""
    return float(view.hsv[..., 2].mean())


@register_descriptor(family="colour", units="HSV value, 0-1")
def value_std(view: ImageView) -> float:
    """Standard deviation of HSV value over the pixels: the spread of light and dark."""
    return float(view.hsv[..., 2].std())


@register_descriptor(family="colour", units="Hasler-Suesstrunk M, 8-bit RGB units (0 to ~180)")
def colourfulness(view: ImageView) -> float:
    """Hasler-Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 mu_rgyb. With rg = R - G and
    yb = (R + G)/2 - B on 0-255 RGB, sigma_rgyb = sqrt(var(rg) + var(yb)) and mu_rgyb =
    sqrt(mean(rg)^2 + mean(yb)^2). 0 for any grey picture; the authors call ~33 "moderately" and
    above ~59 "highly" colourful."""
    rgb = view.rgb * 255.0
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    sigma = math.sqrt(float(rg.var()) + float(yb.var()))
    mu = math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
    return sigma + 0.3 * mu


@register_descriptor(family="colour", units="normalised entropy, 0-1")
def hue_entropy(view: ImageView) -> float:
    """Shannon entropy of the hue histogram (36 bins of 10 degrees) of the chromatic pixels
    (saturation and value both at least 0.2), divided by its maximum log(36). 0 for a single hue
    or no chromatic pixel; 1 when all hues are equally common."""
    hsv = view.hsv
    chromatic = (hsv[..., 1] >= CHROMATIC_S) & (hsv[..., 2] >= CHROMATIC_V)
    hues = hsv[..., 0][chromatic]
    counts, _ = np.histogram(hues, bins=HUE_BINS, range=(0.0, 1.0))
    return shannon_entropy(counts) / math.log(HUE_BINS)


@register_descriptor(family="colour", units="number of colours, 1-6")
def palette_size(view: ImageView) -> float:
    """Number of colours in the dominant palette: k-means (k = 6) in CIELAB on up to 4096
    pixels, clusters closer than Delta E 12 merged, colours covering less than 5% of the picture
    dropped. A flat picture has 1; a picture of three flat colours has 3."""
    return float(len(dominant_palette(view)))


def dominant_palette(view: ImageView) -> list[tuple[str, float]]:
    """The image's dominant colours as ``[("#rrggbb", share), ...]``, largest share first.

    Shares are of the whole picture and sum to at most 1 (dropped small clusters are missing).
    """
    return view.memo("palette", lambda: _palette(view.rgb))


def _palette(rgb: np.ndarray) -> list[tuple[str, float]]:
    pixels = rgb.reshape(-1, 3)
    if len(pixels) > PALETTE_SAMPLE:
        # A fixed regular subsample: deterministic and spread over the whole picture.
        pixels = pixels[np.linspace(0, len(pixels) - 1, PALETTE_SAMPLE).astype(int)]
    lab = rgb2lab(pixels[None])[0]
    centres, shares = weighted_kmeans(lab, np.ones(len(lab)), PALETTE_K, seed=0)
    centres, shares = merge_close(centres, shares, MERGE_DELTA_E)
    keep = shares >= MIN_PALETTE_SHARE
    order = np.argsort(-shares[keep], kind="stable")
    return [
        (lab_to_hex(c), float(s))
        for c, s in zip(centres[keep][order], shares[keep][order], strict=True)
    ]


def lab_to_hex(lab: np.ndarray) -> str:
    rgb = np.clip(lab2rgb(np.asarray(lab, dtype=np.float64)[None, None])[0, 0], 0, 1)
    r, g, b = (int(round(c * 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def hex_to_lab(colour: str) -> np.ndarray:
    value = colour.lstrip("#")
    rgb = np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0
    return rgb2lab(rgb[None, None])[0, 0]


def weighted_kmeans(
    points: np.ndarray,  # (N, D)
    weights: np.ndarray,  # (N,) non-negative
    k: int,
    *,
    seed: int = 0,
    iterations: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (k-means++ seeding); returns centres (k', D) and weight shares (k',).

    Fewer than ``k`` distinct points give one centre per distinct point, exactly.
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if total <= 0:
        raise ValueError("k-means needs a positive total weight")
    distinct, inverse = np.unique(points.round(6), axis=0, return_inverse=True)
    if len(distinct) <= k:
        shares = np.bincount(inverse.ravel(), weights=weights, minlength=len(distinct)) / total
        return distinct, shares
    rng = np.random.default_rng(seed)
    centres = [points[rng.choice(len(points), p=weights / total)]]
    for _ in range(1, k):
        d2 = ((points[:, None, :] - np.array(centres)[None]) ** 2).sum(-1).min(1) * weights
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centres = np.array(centres)
    for _ in range(iterations):
        labels = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        mass = np.bincount(labels, weights=weights, minlength=k)
        moved = centres.copy()
        for j in np.nonzero(mass > 0)[0]:
            moved[j] = (points[labels == j] * weights[labels == j, None]).sum(0) / mass[j]
        if np.allclose(moved, centres):
            break
        centres = moved
    labels = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    shares = np.bincount(labels, weights=weights, minlength=k) / total
    used = shares > 0
    return centres[used], shares[used]


def merge_close(
    centres: np.ndarray, shares: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge centres closer than ``threshold`` (share-weighted means), largest first."""
    centres, shares = list(np.asarray(centres, float)), list(np.asarray(shares, float))
    merged = True
    while merged and len(centres) > 1:
        merged = False
        for i in range(len(centres)):
            for j in range(i + 1, len(centres)):
                if np.linalg.norm(centres[i] - centres[j]) < threshold:
                    w = shares[i] + shares[j]
                    centres[i] = (centres[i] * shares[i] + centres[j] * shares[j]) / w
                    shares[i] = w
                    del centres[j], shares[j]
                    merged = True
                    break
            if merged:
                break
    return np.array(centres), np.array(shares)
