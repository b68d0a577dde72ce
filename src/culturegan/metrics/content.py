"""Content preservation and diversity: SSIM, a deep perceptual distance, pairwise diversity.

* :func:`ssim` is the structural similarity of Wang et al. (IEEE TIP 2004) with their settings:
  an 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, pixel values in [0, 1],
  statistics over the window with weights summing to one, the "valid" part of the image only
  (no padding), per RGB channel and then averaged. 1 means identical; it compares an output with
  its input, so it says how much of the photo's structure survives the stylization.
* :func:`perceptual_distance` compares two images through a backbone's feature maps, in the
  manner of LPIPS (Zhang et al., CVPR 2018) but without its learned layer weights: at each
  tapped layer the channel vector of every position is scaled to unit length, the squared
  difference is summed over channels and averaged over positions, and the layers are averaged.
  0 means identical features; for ReLU features it lies in [0, 2].
* :func:`pairwise_diversity` is the mean perceptual distance over all pairs of several outputs
  of one input (StarGAN v2's diversity score, with our distance in place of LPIPS).
* :func:`grid_peaks` measures a pattern fixed to a generator's pixel grid: how far the grey
  level's spectrum peaks at the harmonics of a period (8 px: a generator that draws from 1/8
  resolution) above the frequencies around them. About 1 to 2 for photos and paintings; the
  diagonal lattice of the models shipped in session 28 reads 11 to 44 (docs/quality.md,
  session 29).
* :func:`border_steps` measures a band along an image's edge: per side, how far the mean colour
  of the outermost strip is from that of the strip just inside it. A generator that reads its
  zero padding as a position marker paints such a band on every output, whatever the photo.

Usage::

    s = ssim(inputs, outputs)                         # (B,) in [-1, 1]
    b = border_steps(outputs) - border_steps(inputs)  # (B, 4): left, right, top, bottom
    band = added_band(outputs, inputs)                # (B,): the worst side, what was added
    peak = grid_peaks(outputs, period=8)              # (B,): 1 = no grid pattern
    d = perceptual_distance(inputs, outputs, backbone) # (B,)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from culturegan.losses import GREY_WEIGHTS, gaussian_window, ssim_map
from culturegan.losses import grey as grey_levels  # ssim() has a "grey" flag
from culturegan.metrics.backbones import Backbone

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def ssim_map_mean(x: torch.Tensor, y: torch.Tensor, *, window: int = SSIM_WINDOW) -> torch.Tensor:
    """Mean SSIM of (B, C, H, W) images with values in [0, 1], per image: (B,)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) batches of one shape: {x.shape} {y.shape}")
    side = min(x.shape[-2:])
    if side < window:
        window = side if side % 2 else side - 1  # small images: the largest odd window that fits
        if window < 1:
            raise ValueError(f"images of {tuple(x.shape[-2:])} pixels are too small for SSIM")
    weights = gaussian_window(window, SSIM_SIGMA).to(x.device)
    return ssim_map(x.double(), y.double(), weights).mean(dim=(1, 2, 3)).float()


def ssim(
    a: torch.Tensor | Sequence[torch.Tensor],
    b: torch.Tensor | Sequence[torch.Tensor],
    *,
    grey: bool = False,  # compare luminance (ITU-R BT.601 weights) instead of RGB channels
) -> torch.Tensor:
    """SSIM of image pairs given in [-1, 1] (batches, or lists of (3, H, W) of any sizes): (B,)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        pairs = [(a, b)]
    else:
        pairs = [(x.unsqueeze(0), y.unsqueeze(0)) for x, y in zip(a, b, strict=True)]
    values = []
    for x, y in pairs:
        x, y = (x.float() + 1) / 2, (y.float() + 1) / 2  # [-1, 1] -> [0, 1]
        if grey:
            weights = x.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
            x, y = (x * weights).sum(1, keepdim=True), (y * weights).sum(1, keepdim=True)
        values.append(ssim_map_mean(x, y))
    return torch.cat(values) if values else torch.empty(0)


BORDER_STRIP = 1 / 32  # the outer strip's width as a share of the side (4 px of 128)


def border_steps(
    images: torch.Tensor | Sequence[torch.Tensor], *, strip: float = BORDER_STRIP
) -> torch.Tensor:
    """Colour step at each edge of images in [-1, 1] (a batch, or (3, H, W) of any sizes): (B, 4).

    For the left, right, top and bottom side in that order: the mean absolute difference, over
    the RGB channels on a [0, 1] scale, between the mean colour of the outermost strip
    (``strip`` of the side, at least one pixel) and that of the strip of twice its width just
    inside it. A flat image gives 0; a black band 1/32 wide down one side of a white image
    gives 1 on that side. Subtract the inputs' steps from the outputs' to see what a model added.
    """
    if isinstance(images, torch.Tensor) and images.dim() != 4:
        raise ValueError(f"border_steps needs (B, 3, H, W) or a list of (3, H, W): {images.shape}")
    rows = []
    for image in images:
        x = (image.float() + 1) / 2
        if x.dim() != 3 or min(x.shape[-2:]) < 3:
            raise ValueError(f"border_steps needs (3, H, W) images of 3 px or more: {x.shape}")
        height, width = x.shape[-2:]
        w, h = max(1, round(width * strip)), max(1, round(height * strip))
        w2, h2 = min(2 * w, width - w), min(2 * h, height - h)  # inner strips, inside the image
        pairs = [  # (outer strip, the strip inside it) for the left, right, top and bottom
            (x[:, :, :w], x[:, :, w : w + w2]),
            (x[:, :, -w:], x[:, :, -w - w2 : -w]),
            (x[:, :h, :], x[:, h : h + h2, :]),
            (x[:, -h:, :], x[:, -h - h2 : -h, :]),
        ]
        rows.append(
            torch.stack([(a.mean(dim=(1, 2)) - b.mean(dim=(1, 2))).abs().mean() for a, b in pairs])
        )
    return torch.stack(rows) if rows else torch.empty(0, 4)


def added_band(
    outputs: torch.Tensor | Sequence[torch.Tensor], inputs: torch.Tensor | Sequence[torch.Tensor]
) -> torch.Tensor:
    """Per output: the largest colour step at one of its sides less the input's there, not
    below 0 (the ``border_band`` metric of one image): (B,)."""
    return (border_steps(outputs) - border_steps(inputs)).amax(dim=1).clamp(min=0)


def grid_peaks(images: torch.Tensor | Sequence[torch.Tensor], *, period: int = 8) -> torch.Tensor:
    """Per image: the power of its grey level at the harmonics of ``period`` (the frequencies
    (i, j) / ``period`` cycles a pixel, except 0), summed, over the same sum of the mean power
    of the 8 frequencies around each: (B,). Images in [-1, 1], at least 2 periods a side; only
    the top-left whole periods are read.

    A pattern that repeats every ``period`` pixels puts all its power on those harmonics, while
    a picture's own content spreads its power smoothly: white noise reads 1, photos and
    paintings about 1 to 2 (up to 4), a lattice tied to a generator's 8-pixel grid 5 to 40."""
    rows = []
    for x in images:
        h, w = (side - side % period for side in x.shape[-2:])
        if period < 2 or h < 2 * period or w < 2 * period:
            size = tuple(x.shape[-2:])
            raise ValueError(f"grid_peaks needs a period of at least 2 px and images of at least "
                             f"two periods a side, got {period} and {size}")  # fmt: skip
        g = grey_levels(x[None, :, :h, :w].double())[0, 0]
        power = torch.fft.fft2(g - g.mean()).abs() ** 2
        ky, kx = h // period, w // period
        # Sum of each 3 x 3 neighbourhood (circular), less its centre, over 8.
        around = (
            sum(power.roll((a, b), dims=(0, 1)) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b)
            / 8
        )
        at, near = power[::ky, ::kx], around[::ky, ::kx]
        rows.append((at.sum() - at[0, 0]) / (near.sum() - near[0, 0] + 1e-12))
    return torch.stack(rows).float() if rows else torch.empty(0)


def map_distance(maps_a: Sequence[torch.Tensor], maps_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Unweighted LPIPS-style distance between two lists of (B, C, h, w) maps: (B,)."""
    per_layer = []
    for fa, fb in zip(maps_a, maps_b, strict=True):
        na = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
        nb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
        per_layer.append(((na - nb) ** 2).sum(dim=1).mean(dim=(1, 2)))
    return torch.stack(per_layer).mean(dim=0).float().cpu()


def perceptual_distance(
    a: torch.Tensor | Sequence[torch.Tensor],
    b: torch.Tensor | Sequence[torch.Tensor],
    backbone: Backbone,
) -> torch.Tensor:
    """Perceptual distance of image pairs (in [-1, 1]) through ``backbone``'s maps: (B,)."""
    return map_distance(backbone.extract(a)[1], backbone.extract(b)[1])


def pairwise_diversity(samples: Sequence[torch.Tensor], backbone: Backbone) -> float:
    """Mean perceptual distance over all pairs of ``samples`` (K >= 2 outputs of one input)."""
    if len(samples) < 2:
        raise ValueError(f"diversity needs at least 2 samples of one input, got {len(samples)}")
    maps = backbone.extract(list(samples))[1]
    pairs = list(itertools.combinations(range(len(samples)), 2))
    first = [m[[i for i, _ in pairs]] for m in maps]
    second = [m[[j for _, j in pairs]] for m in maps]
    return float(map_distance(first, second).mean())
