"""Losses of the training recipes.

Adversarial losses take discriminator logits (any shape, e.g. PatchGAN's (B, 1, H', W')):

* ``lsgan``: least squares (Mao et al., 2017), the CycleGAN default;
* ``nonsaturating``: the logistic loss with the generator maximising log D(G(z))
  (Goodfellow et al., 2014);
* ``hinge``: Lim & Ye (2017) / Miyato et al. (2018).

Also PatchNCE (Park et al., 2020: contrastive patch correspondence, the content loss of the
``cut`` recipe), the cycle-consistency and identity L1 terms of CycleGAN (Zhu et al., 2017,
eq. 2 and the identity mapping of section 5.2) and the history buffer of generated images
(Shrivastava et al., 2017) that CycleGAN shows its discriminators, and the few-shot terms:
perceptual content and the collection's style statistics on Lite0 features, sliced Wasserstein
distances on colours, patches and features, the photo's drawing (grey SSIM), flat colour
inside the photo's superpixels (after White-box Cartoonization's structure representation) and
dark outlines along the photo's contours.

Usage::

    adv = AdversarialLoss("lsgan")
    loss_g = adv.generator(d_b(fake_b))
    loss_d = adv.discriminator(d_b(real_b), d_b(fake_b.detach()))
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "nonsaturating", "hinge")
Logits = torch.Tensor | list[torch.Tensor]  # one map, or one per discriminator scale


def _mean(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(values).mean()


class AdversarialLoss:
    def __init__(self, mode: str) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"unknown gan_mode '{mode}' (known: {', '.join(GAN_MODES)})")
        self.mode = mode

    def generator(self, fake_logits: Logits) -> torch.Tensor:
        """Loss of the generator whose outputs got ``fake_logits``.

        A list of logit maps (one per scale of a projected discriminator) gives the mean of
        the per-map losses, so every scale counts the same whatever its size.
        """
        if isinstance(fake_logits, list | tuple):
            return _mean([self.generator(t) for t in fake_logits])
        if self.mode == "lsgan":
            return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
        if self.mode == "nonsaturating":
            return F.softplus(-fake_logits).mean()
        return -fake_logits.mean()

    def discriminator(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """Loss of the discriminator: real images should score high, fakes low."""
        if isinstance(real_logits, list | tuple):
            pairs = zip(real_logits, fake_logits, strict=True)
            return _mean([self.discriminator(r, f) for r, f in pairs])
        if self.mode == "lsgan":
            real = F.mse_loss(real_logits, torch.ones_like(real_logits))
            fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
        elif self.mode == "nonsaturating":
            real = F.softplus(-real_logits).mean()
            fake = F.softplus(fake_logits).mean()
        else:
            real = F.relu(1.0 - real_logits).mean()
            fake = F.relu(1.0 + fake_logits).mean()
        # CycleGAN halves the discriminator objective to slow D relative to G.
        return 0.5 * (real + fake)


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """||F(G(x)) - x||_1, averaged over pixels."""
    return F.l1_loss(reconstructed, original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """||G(y) - y||_1: a target-domain image should pass through its generator unchanged."""
    return F.l1_loss(mapped, original)


class ImagePool:
    """Holds up to ``size`` past generated images; ``query`` returns a batch mixing new and old.

    Each incoming image is, with probability 1/2 once the pool is full, swapped for a random
    stored one (which the discriminator then sees instead). Randomness comes from the pool's own
    seeded generator so a resumed run draws the same images.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.cpu().clone())
                out.append(image)
                continue
            if torch.rand((), generator=self.generator).item() < 0.5:
                idx = int(torch.randint(len(self.images), (), generator=self.generator))
                old = self.images[idx].to(image.device)
                self.images[idx] = image.cpu().clone()
                out.append(old)
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {
            "size": self.size,
            "images": list(self.images),
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = [t.clone() for t in state["images"]]
        self.generator.set_state(state["rng"])


def patch_nce_loss(
    query: torch.Tensor, key: torch.Tensor, *, batch_size: int, temperature: float = 0.07
) -> torch.Tensor:
    """PatchNCE over (B * N, D) unit vectors, image-major: query i's positive is key i.

    The negatives of a query are the other N - 1 key patches of the same image (CUT's default,
    ``nce_includes_all_negatives_from_minibatch=False``). Keys are detached: only the query
    side trains. Returns the mean over the B * N queries.
    """
    if query.shape != key.shape or query.dim() != 2 or query.shape[0] % batch_size:
        raise ValueError(
            f"query and key must both be (B * N, D) with B = {batch_size}, got "
            f"{tuple(query.shape)} and {tuple(key.shape)}"
        )
    dim = query.shape[1]
    q = query.reshape(batch_size, -1, dim)  # (B, N, D)
    k = key.detach().reshape(batch_size, -1, dim)
    n = q.shape[1]
    # Row i of image b: similarity of query patch i to every key patch; the diagonal holds the
    # positive. (CUT lists the positive first and masks the diagonal of the negatives; the two
    # differ by exp(-10 / tau) ~ 1e-62.)
    logits = torch.bmm(q, k.transpose(1, 2)) / temperature  # (B, N, N)
    target = torch.arange(n, device=query.device).repeat(batch_size)
    return F.cross_entropy(logits.reshape(-1, n), target)


def _channel_normalised(feat: torch.Tensor) -> torch.Tensor:
    """Each position's feature vector scaled to unit length (as LPIPS does)."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt()


def content_loss(maps_out: list[torch.Tensor], maps_in: list[torch.Tensor]) -> torch.Tensor:
    """Perceptual content distance: mean squared difference of channel-normalised feature maps
    of the output and the input, averaged over layers (Johnson et al., 2016, with LPIPS'
    normalisation). The input side is a fixed target (detached)."""
    terms = [
        (_channel_normalised(o) - _channel_normalised(i.detach())).pow(2).sum(1).mean()
        for o, i in zip(maps_out, maps_in, strict=True)
    ]
    return _mean(terms)


def feature_stats(feat: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2C): each channel's mean and standard deviation over positions,
    each position counted with ``weights`` (B, 1, H, W; non-negative, any scale) if given."""
    flat = feat.flatten(2)
    if weights is None:
        return torch.cat([flat.mean(2), (flat.var(2, unbiased=False) + 1e-8).sqrt()], dim=1)
    w = weights.flatten(2)
    w = w / w.sum(dim=2, keepdim=True)
    mean = (flat * w).sum(2, keepdim=True)
    var = ((flat - mean).pow(2) * w).sum(2)
    return torch.cat([mean.squeeze(2), (var + 1e-8).sqrt()], dim=1)


def focus_weights(source: torch.Tensor, focus: float, *, sigma: float = 2.0) -> torch.Tensor:
    """Where the style statistics are read, (B, 1, H, W): ``1 - focus`` everywhere plus ``focus``
    times the photo's smoothed grey-level gradient magnitude over its image mean. At focus 0
    every position counts alike; at 1 a position counts in proportion to the photo's drawing
    around it, and its flat sky next to nothing. A constant (the photo is detached)."""
    g = gaussian_blur(grey(source.detach()), sigma)
    gx, gy = sobel_gradients(g)
    magnitude = torch.sqrt(gx * gx + gy * gy)
    magnitude = magnitude / (magnitude.mean(dim=(2, 3), keepdim=True) + 1e-6)
    return (1 - focus) + focus * magnitude


def style_stats_loss(
    maps_out: list[torch.Tensor],
    maps_style: list[torch.Tensor],
    *,
    paired: bool = False,
    focus: torch.Tensor | None = None,
    target: str = "mean",
    bank: list[torch.Tensor] | None = None,
    mix: torch.Tensor | None = None,
) -> torch.Tensor:
    """Collection style loss: per-channel means and standard deviations of each output's
    feature maps against their *average* over a batch of the target culture's images, squared
    error, averaged over layers.

    Feature means and deviations are the style representation of AdaIN (Huang and Belongie,
    ICCV 2017); matching them is style transfer with a linear-kernel MMD (Li et al., IJCAI 2017,
    "Demystifying neural style transfer"). Measured on cultures-dev with Lite0 blocks 0/2/4/7,
    they tell photos from a culture's art better than Gram matrices do (a photo's distance to
    the culture's mean over an artwork's: 2.0 / 3.6 / 1.8 for ukiyo-e / Chinese ink / Monet,
    against 1.3 / 2.3 / 1.7 with Gram matrices). A batch drawn afresh every step is an unbiased
    estimate of the culture's average, the minimiser of the squared error: the target is the
    collection, not one artwork. ``paired``: output i's target is style image i alone (the
    multi-domain recipe, whose batch mixes target cultures; still unbiased per culture).
    ``focus`` (B, 1, H, W) at the outputs' resolution (:func:`focus_weights`): the outputs'
    statistics count each position with its weight (area-averaged to each map's size), so that
    the art's feature spread is asked of the photo's drawing rather than of its flat areas; the
    art's statistics are read over all of it as before.

    ``target="nearest"``: output i's target is the one style image j of the batch whose
    statistics are nearest its own (the smallest squared error averaged over layers), not the
    batch's average. The average asks every output for the whole collection's mix of colours and
    textures, whatever the photo; the nearest artwork lets each output take one artwork's
    statistics, the one nearest what it already is (on ukiyo-e level with the average within the
    spread between seeds: docs/quality.md, "Session 35"). The choice is made on detached values;
    the gradient is that of the chosen artwork's squared error. ``bank``: with "nearest", the
    statistics of earlier artworks (one (K, 2C) tensor per layer, :func:`feature_stats` of
    their maps), candidates beside the batch's, so that an output can find an artwork like it
    (a night scene among night prints) in more of the collection than one batch holds.

    ``target="mixed"``: output i's target is ``mix[i] @`` the artworks' statistics (``mix``
    (B, M) with rows summing to 1; M counts the bank's artworks first, then the batch's): a
    chosen set of artworks averaged, such as the prints whose light and dark lie where the
    photo's do (:func:`grey_layout`).
    """
    if target not in ("mean", "nearest", "mixed"):
        raise ValueError(f"target must be 'mean', 'nearest' or 'mixed', got {target!r}")
    if paired and target != "mean":
        raise ValueError("paired statistics have one target per output: none to choose")
    if bank is not None and target == "mean":
        raise ValueError("a bank of artworks' statistics is for the 'nearest' or 'mixed' target")
    if (mix is not None) != (target == "mixed"):
        raise ValueError("the 'mixed' target takes a mix, and only it")
    outs, refs = [], []
    for o, s in zip(maps_out, maps_style, strict=True):
        weights = None if focus is None else F.adaptive_avg_pool2d(focus, o.shape[-2:])
        outs.append(feature_stats(o, weights))  # (B, 2C)
        refs.append(feature_stats(s.detach()))  # (M, 2C)
    if bank is not None:
        refs = [torch.cat([k.detach().to(r), r]) for k, r in zip(bank, refs, strict=True)]
    if target == "mixed":
        expected = (outs[0].shape[0], refs[0].shape[0])
        if tuple(mix.shape) != expected:
            raise ValueError(f"mix must be (outputs, artworks) = {expected}, got "
                             f"{tuple(mix.shape)}")  # fmt: skip
        mix = mix.detach().to(refs[0])
        return _mean([(o - mix @ r).pow(2).mean(dim=1).mean() for o, r in
                      zip(outs, refs, strict=True)])  # fmt: skip
    if target == "nearest":
        # (B, M): each output's squared error to each artwork, averaged over layers
        costs = sum((o.unsqueeze(1) - r.unsqueeze(0)).pow(2).mean(dim=2)
                    for o, r in zip(outs, refs, strict=True)) / len(outs)  # fmt: skip
        return costs.gather(1, costs.detach().argmin(dim=1, keepdim=True)).mean()
    terms = []
    for o, r in zip(outs, refs, strict=True):
        ref = r if paired else r.mean(dim=0, keepdim=True)
        terms.append((o - ref).pow(2).mean(dim=1).mean())
    return _mean(terms)


def random_directions(dim: int, count: int, *, seed: int, device: torch.device) -> torch.Tensor:
    """(dim, count) unit vectors drawn from a generator seeded by ``seed`` alone, so that a
    resumed run draws the same directions at the same step."""
    gen = torch.Generator().manual_seed(seed % 2**63)
    dirs = torch.randn(dim, count, generator=gen)
    return (dirs / dirs.norm(dim=0, keepdim=True)).to(device)


def sliced_wasserstein(
    samples_out: torch.Tensor, samples_ref: torch.Tensor, directions: torch.Tensor
) -> torch.Tensor:
    """Squared sliced Wasserstein-2 distance between each output's point cloud and one reference
    cloud: ``samples_out`` (B, C, N), ``samples_ref`` (C, M), ``directions`` (C, K).

    Both clouds are projected on K directions and sorted; the reference's sorted projections are
    read at the output's N quantiles, so M and N may differ. The distance compares whole
    distributions, not only their first two moments (Heitz et al., CVPR 2021, "A sliced
    Wasserstein loss for neural texture synthesis"): two pictures with the same mean and spread
    of a feature but different shapes of its histogram (flat areas and outlines against a smooth
    ramp) are apart here and equal for :func:`style_stats_loss`.
    """
    proj_out = torch.einsum("bcn,ck->bkn", samples_out, directions).sort(dim=2).values
    proj_ref = (directions.t() @ samples_ref.detach()).sort(dim=1).values  # (K, M)
    n, m = proj_out.shape[2], proj_ref.shape[1]
    index = ((torch.arange(n, device=proj_ref.device) + 0.5) * m / n).long().clamp_(max=m - 1)
    return (proj_out - proj_ref[:, index].unsqueeze(0)).pow(2).mean()


def style_swd_loss(
    maps_out: list[torch.Tensor], maps_style: list[torch.Tensor], *, seed: int, count: int = 32
) -> torch.Tensor:
    """Collection style as a distribution: the sliced Wasserstein distance between each output's
    feature vectors and those of a batch of the culture's images pooled together, averaged over
    layers. Features are divided by the reference's per-channel spread so that no layer's scale
    dominates. ``seed`` picks the projection directions (vary it per step)."""
    terms = []
    for k, (o, s) in enumerate(zip(maps_out, maps_style, strict=True)):
        ref = s.detach().transpose(0, 1).flatten(1)  # (C, B*H*W)
        scale = ref.std(dim=1, keepdim=True) + 1e-3
        dirs = random_directions(ref.shape[0], count, seed=seed * 31 + k, device=ref.device)
        terms.append(sliced_wasserstein(o.flatten(2) / scale, ref / scale, dirs))
    return _mean(terms)


def palette_loss(
    output: torch.Tensor, style: torch.Tensor, *, seed: int, count: int = 16
) -> torch.Tensor:
    """The output's colours against the culture's: sliced Wasserstein distance between the RGB
    values of each output (B, 3, H, W) and those of a batch of the culture's images pooled, in
    [-1, 1] units. A palette loss in pixels: the judge of colour is the eye, not a network."""
    ref = style.detach().transpose(0, 1).flatten(1)  # (3, B*H*W)
    dirs = random_directions(3, count, seed=seed, device=ref.device)
    return sliced_wasserstein(output.flatten(2), ref, dirs)


PATCH_SCALES = (1, 2, 4)  # image downsampling factors of patch_swd_loss


def _patches(x: torch.Tensor, size: int, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C*size*size, N): every ``size``-pixel patch of ``x`` downsampled
    ``scale`` times (area average), one column per position."""
    if scale > 1:
        x = F.avg_pool2d(x, scale)
    return F.unfold(x, kernel_size=size)


def patch_swd_loss(
    output: torch.Tensor,
    style: torch.Tensor,
    *,
    seed: int,
    size: int = 5,
    count: int = 64,
    max_patches: int = 4096,
) -> torch.Tensor:
    """The art's small-scale look in pixels: the sliced Wasserstein distance between the
    distribution of ``size`` x ``size`` colour patches of each output and of a batch of the
    culture's images, at 1, 1/2 and 1/4 resolution (patch-distribution texture matching, as
    in Wasserstein patch priors; Hertrich et al., 2022). Flat colour areas, outlines, brush
    dabs and paper grain are patch statistics, and pixels cannot be gamed the way the features
    of one network can. At most ``max_patches`` positions per image are used (drawn with
    ``seed``)."""
    gen = torch.Generator().manual_seed(seed % 2**63)
    terms = []
    for k, scale in enumerate(PATCH_SCALES):
        if min(output.shape[-2:]) < size * scale:  # too small for a patch at this scale
            continue
        out = _patches(output, size, scale)  # (B, D, N)
        ref = _patches(style.detach(), size, scale)  # (B', D, M)
        ref = ref.transpose(0, 1).flatten(1)  # (D, B'*M)
        if out.shape[2] > max_patches:
            keep = torch.randperm(out.shape[2], generator=gen)[:max_patches].to(out.device)
            out = out[:, :, keep]
        if ref.shape[1] > max_patches:
            keep = torch.randperm(ref.shape[1], generator=gen)[:max_patches].to(ref.device)
            ref = ref[:, keep]
        dirs = random_directions(out.shape[1], count, seed=seed * 7 + k, device=out.device)
        terms.append(sliced_wasserstein(out, ref, dirs))
    if not terms:
        raise ValueError(
            f"images of {tuple(output.shape[-2:])} px are smaller than a {size} px patch"
        )
    return _mean(terms)


GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as the benchmarks' grey SSIM


def grey_layout(x: torch.Tensor, cells: int = 4) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, cells * cells): the picture's luma averaged over a
    ``cells`` x ``cells`` grid, where its light and dark lie (a night sky, a bright sea)."""
    return F.adaptive_avg_pool2d(grey(x), cells).flatten(1)


def matched_mix(layouts: torch.Tensor, candidates: torch.Tensor, count: int) -> torch.Tensor:
    """(B, M) weights: for each of ``layouts`` (B, L), 1 / count on the ``count`` of
    ``candidates`` (M, L) nearest it (Euclidean), 0 elsewhere."""
    count = min(count, candidates.shape[0])
    nearest = torch.cdist(layouts, candidates).topk(count, dim=1, largest=False).indices
    mix = layouts.new_zeros(layouts.shape[0], candidates.shape[0])
    return mix.scatter_(1, nearest, 1.0 / count)


def grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 1, H, W) luma in [0, 1]."""
    w = x.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    return ((x + 1) / 2 * w).sum(dim=1, keepdim=True)


def gaussian_weights(size: int, sigma: float) -> torch.Tensor:
    """(size,) float64 Gaussian weights centred on the middle, summing to one."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """(size, size) float64 Gaussian weights summing to one (SSIM's window)."""
    g = gaussian_weights(size, sigma)
    return torch.outer(g, g)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) under a separable Gaussian of ``sigma`` px (reflected at the borders, the
    kernel cut at 3 sigma); ``sigma`` 0 returns ``images`` itself."""
    if sigma <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)  # reflect needs pad < side
    g = gaussian_weights(2 * radius + 1, sigma).to(images)
    channels = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Per-position SSIM (Wang et al., IEEE TIP 2004; K1 = 0.01, K2 = 0.03, data range 1) of
    (B, C, H, W) images, each channel on its own, over the "valid" part (no padding): the one
    implementation behind the metric (``metrics.content.ssim``) and :func:`structure_loss`.
    ``window`` (k, k) weights summing to one, in the dtype and on the device of ``x``."""
    channels = x.shape[1]
    kernel = window.expand(channels, 1, *window.shape).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    return num / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def structure_loss(
    output: torch.Tensor, source: torch.Tensor, *, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """The photo's drawing kept: 1 - SSIM (Wang et al., 2004) between the grey levels of each
    output and of the photo it was made from, at full and half resolution, averaged.

    The perceptual content loss compares deep Lite0 features, which a generator can satisfy
    while it paints new edges everywhere (the embossed look the style statistics pull towards:
    art has more edge energy than photos). SSIM's contrast-structure factor asks for the edges
    where the photo has them, and its luminance factor leaves the tone free to move only
    slowly, so the style terms can still choose the colours. The source side is detached."""
    weights = gaussian_window(window, sigma).to(output.device, output.dtype)
    x, y = grey(output), grey(source.detach())
    pad = (window // 2,) * 4
    terms = []
    for scale in (1, 2):
        if scale > 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        if min(x.shape[-2:]) < window:
            break
        # Mirrored borders: every pixel is a window's centre. Over the valid part alone the
        # outer five pixels are only a window's faint Gaussian tail, and a generator trained
        # with the term painted a dark band down the image's left edge there.
        mirrored = [F.pad(t, pad, mode="reflect") for t in (x, y)]
        terms.append(1 - ssim_map(*mirrored, weights).mean())
    if not terms:
        raise ValueError(f"images of {tuple(output.shape[-2:])} px are smaller than the window")
    return _mean(terms)


def shift_equivariance_loss(
    generator: Callable[[torch.Tensor], torch.Tensor],
    source: torch.Tensor,
    output: torch.Tensor,
    *,
    multiple: int,
    rng: torch.Generator,
    items: int = 2,
) -> torch.Tensor:
    """A drawing that moves with the photo: L1 between ``generator``'s output for a crop of
    ``source`` and the same crop of ``output`` (``generator(source)``, computed by the caller).

    A generator that downsamples by ``multiple`` can paint a pattern fixed to its own pixel
    grid, the same wherever the photo's content falls (the shipped models' 8-pixel diagonal
    lattice, docs/quality.md, session 29). Such a pattern stays put when the photo moves by a
    number of pixels that is not a multiple of the grid, so the crop's output and the output's
    crop disagree by it; content-driven texture moves with the photo and costs nothing. The
    crop starts at a random offset (1 to ``multiple`` - 1 rows and columns, never both
    multiples of the grid), is ``multiple`` pixels smaller, and is compared away from its
    borders (``multiple`` pixels, where the padding differs). The first ``items`` images of the
    batch are used; both sides carry gradients. ``rng`` draws the offsets."""
    height, width = source.shape[-2:]
    if multiple < 2 or height < 4 * multiple or width < 4 * multiple:
        raise ValueError(
            f"the shift term needs images of at least {4 * max(multiple, 2)} px "
            f"and a grid of at least 2 px, got {height} x {width} and {multiple}"
        )
    dy, dx = (int(v) for v in torch.randint(0, multiple, (2,), generator=rng))
    if dy == 0 and dx == 0:  # a whole-grid move proves nothing: move one axis instead
        dx = int(torch.randint(1, multiple, (1,), generator=rng))
    h, w, m = height - multiple, width - multiple, multiple
    moved = generator(source[:items, :, dy : dy + h, dx : dx + w])
    expected = output[:items, :, dy : dy + h, dx : dx + w]
    return (moved - expected)[..., m : h - m, m : w - m].abs().mean()


def sobel_gradients(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel derivatives of (B, 1, H, W) maps, replicate-padded."""
    kx = g.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    padded = F.pad(g, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(2, 3))


# (dy, dx) of the neighbour across an edge whose gradient points at 0, 45, 90 and 135 degrees
_ACROSS = ((0, 1), (1, 1), (1, 0), (1, -1))


@torch.no_grad()
def photo_outlines(
    source: torch.Tensor, *, share: float, sigma: float = 1.5, floor: float = 0.15
) -> torch.Tensor:
    """The photo's main contours as one-pixel lines: (B, 1, H, W) booleans.

    The grey image is smoothed (Gaussian, ``sigma`` pixels: leaves and grain stop being
    contours), its Sobel gradient thinned to the ridge across each edge (non-maximum
    suppression in four directions, after Canny) and the strongest ``share`` of the pixels
    kept, none weaker than ``floor`` (a Sobel magnitude; a grey step of about 0.04 after the
    smoothing): a sky without a horizon gets no line."""
    g = grey(source)
    window = gaussian_window(5, sigma).to(g.device, g.dtype).view(1, 1, 5, 5)
    g = F.conv2d(F.pad(g, (2, 2, 2, 2), mode="reflect"), window)
    gx, gy = sobel_gradients(g)
    magnitude = torch.sqrt(gx * gx + gy * gy)
    direction = torch.round(torch.atan2(gy, gx) % torch.pi / (torch.pi / 4)).long() % 4
    h, w = magnitude.shape[-2:]
    padded = F.pad(magnitude, (1, 1, 1, 1))
    ridge = torch.zeros_like(magnitude, dtype=torch.bool)
    for k, (dy, dx) in enumerate(_ACROSS):
        ahead = padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        ridge |= (direction == k) & (magnitude >= ahead) & (magnitude >= behind)
    strength = (magnitude * ridge).flatten(1)
    keep = max(1, int(share * h * w))
    threshold = strength.topk(keep, dim=1).values[:, -1:].clamp_min(floor)
    return (strength >= threshold).view_as(magnitude)


def outline_loss(
    output: torch.Tensor, source: torch.Tensor, style: torch.Tensor, *, share: float
) -> torch.Tensor:
    """Dark lines along the photo's contours, in the colour of the art's darkest ink.

    A woodblock print draws its shapes with a black key block; an ink painting with strokes.
    A generator trained on a few hundred prints with the other terms fills the areas with the
    art's colours but draws no line: the statistics of Lite0 features and colours barely see
    a one-pixel line. Here each output pixel on :func:`photo_outlines` (``share`` of the
    pixels) is asked to be at most as light as the 5 % grey quantile of the art in ``style``
    (about 0.21 for cultures-dev's ukiyo-e, 0.34 for its ink: the line's darkness comes from
    the collection, not from a constant) and to have the hue of the art's pixels at or below
    that level (their mean colour less its grey: near-neutral for ukiyo-e's key block, a warm
    brown-grey for ink): per line pixel max(0, grey - level) plus the mean absolute
    difference of the two colours' departures from grey, averaged over the line pixels.
    Without the hue a generator meets the level with any dark colour (crimson or brown lines
    on ukiyo-e). Pixels off the lines are left to the other terms."""
    lines = photo_outlines(source.detach(), share=share).to(output.dtype)
    art = style.detach()
    art_grey = grey(art)
    dark = torch.quantile(art_grey.flatten().float(), 0.05).to(output.dtype)
    inked = (art_grey <= dark).to(art.dtype)
    art_hue = ((art + 1) / 2 - art_grey) * inked
    ink_hue = art_hue.sum(dim=(0, 2, 3), keepdim=True) / inked.sum().clamp_min(1.0)
    shade = grey(output)
    hue = ((output + 1) / 2 - shade - ink_hue).abs().mean(dim=1, keepdim=True)
    excess = (F.relu(shade - dark) + hue) * lines
    return excess.sum() / lines.sum().clamp_min(1.0)


def photo_regions(
    images: torch.Tensor, *, segments: int, compactness: float = 10.0
) -> torch.Tensor:
    """(B, 3, H, W) images in [-1, 1] -> (B, H, W) int64 labels of their SLIC superpixels
    (Achanta et al., TPAMI 2012; scikit-image's implementation, in CIELAB): about ``segments``
    regions of similar colour per image, numbered from 0 in each image. Deterministic; no
    gradient (the regions are a constant of the photo). Four k-means iterations instead of
    scikit-image's ten: about 7 ms instead of 17 for a 128 px image, and the regions of a
    training crop need not be the best ones."""
    from skimage.segmentation import slic  # scikit-image: a dependency, imported when used

    rgb = ((images.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    labels = [
        slic(im, n_segments=segments, compactness=compactness, sigma=0.5, start_label=0,
             channel_axis=-1, max_num_iter=4)
        for im in rgb
    ]  # fmt: skip
    return torch.from_numpy(np.stack(labels).astype(np.int64)).to(images.device)


def region_means(
    x: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Each pixel of ``x`` (B, C, H, W) replaced by the mean of its region (``labels``, (B, H,
    W), numbered from 0 in each image), the mean taken over the pixels with ``weight`` (B, H, W)
    > 0 (all pixels if None; a region without any keeps its own pixels)."""
    b, c, h, w = x.shape
    per_image = int(labels.max()) + 1
    index = (labels + per_image * torch.arange(b, device=x.device).view(b, 1, 1)).reshape(-1)
    values = x.permute(0, 2, 3, 1).reshape(-1, c)
    mask = torch.ones_like(index, dtype=x.dtype) if weight is None else weight.reshape(-1).to(
        x.dtype)  # fmt: skip
    sums = x.new_zeros(b * per_image, c).index_add_(0, index, values * mask[:, None])
    counts = x.new_zeros(b * per_image).index_add_(0, index, mask)
    means = (sums / counts.clamp_min(1e-12)[:, None])[index]
    means = torch.where(counts[index][:, None] > 0, means, values)
    return means.view(b, h, w, c).permute(0, 3, 1, 2)


def region_interior(labels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool: the pixels whose 3 x 3 neighbourhood lies in one region (not on a
    boundary between two)."""
    lab = labels.unsqueeze(1).double()  # exact for any label count a picture has
    high = F.max_pool2d(F.pad(lab, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    low = -F.max_pool2d(F.pad(-lab, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (high == low).squeeze(1)


def flat_loss(output: torch.Tensor, source: torch.Tensor, *, segments: int) -> torch.Tensor:
    """Flat colour areas that follow the photo's shapes: the L1 distance between each output
    and itself painted with one colour per superpixel of the photo it was made from (about
    ``segments`` regions, :func:`photo_regions`), inside the regions only.

    After the structure representation of White-box Cartoonization (Wang & Yu, CVPR 2020),
    which compares an output with its own superpixel-averaged version; here the regions are
    the photo's (so the areas follow its shapes from the first step), the comparison is in
    pixels, and the pixels on a region boundary are left out, so the generator may draw an
    outline there. The averaged image is a constant (detached): the term only asks each
    region to agree with its own mean colour, whatever colour the other terms choose."""
    labels = photo_regions(source, segments=segments)
    inside = region_interior(labels)
    target = region_means(output.detach(), labels, inside)
    weight = inside.unsqueeze(1).to(output.dtype)
    diff = (output - target).abs() * weight
    return diff.sum() / (weight.sum() * output.shape[1]).clamp_min(1.0)


def _quantile_index(n: int, m: int, device: torch.device) -> torch.Tensor:
    """The positions in a sorted sample of ``m`` values of the quantiles of ``n`` sorted
    values (each at the middle of its 1/n share)."""
    return (torch.arange(n, device=device) * 2 + 1) * m // (2 * n)


def colour_transfer(
    source: torch.Tensor, reference: torch.Tensor, *, seed: int, iterations: int = 10
) -> torch.Tensor:
    """Each image of ``source`` (B, 3, H, W) with its colours moved onto the distribution of
    the pixels of ``reference`` (any batch, pooled): iterative distribution transfer (Pitie,
    Kokaram & Dahyot, ICCV 2005). Each iteration turns the colour space by a random rotation
    (drawn with ``seed``) and gives every axis the reference's histogram by 1-D quantile
    matching; the pixels keep their order along each axis, so the photo's brightest area takes
    the art's brightest colours, its sky the colours that rank like a sky. The "rotations" are
    random orthonormal bases (a reflection now and then changes nothing here). A constant."""
    ref = reference.detach().transpose(0, 1).flatten(1)  # (3, M)
    x = source.detach().flatten(2).clone()  # (B, 3, N)
    b, c, n = x.shape
    m = ref.shape[1]
    index = _quantile_index(n, m, ref.device)  # x's quantiles in ref
    gen = torch.Generator().manual_seed(seed % 2**63)
    for _ in range(iterations):
        rot = torch.linalg.qr(torch.randn(c, c, generator=gen, dtype=torch.float64))[0]
        rot = rot.to(device=x.device, dtype=x.dtype)
        proj = torch.einsum("ck,bcn->bkn", rot, x)
        ref_sorted = (rot.t() @ ref).sort(dim=1).values[:, index]  # (3, N) at x's quantiles
        matched = torch.empty_like(proj)
        matched.scatter_(2, proj.argsort(dim=2), ref_sorted.unsqueeze(0).expand(b, -1, -1))
        x = x + torch.einsum("ck,bkn->bcn", rot, matched - proj)
    return x.view_as(source).clamp(-1.0, 1.0)


_CB, _CR = 0.564, 0.713  # BT.601: Cb = 0.564 (B - Y), Cr = 0.713 (R - Y), Y by GREY_WEIGHTS
NEUTRAL_CHROMA = 0.03  # chroma under which hue_transfer (and colour_stats.py) count a pixel grey


def luma_chroma_hue(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(3, N) RGB in [0, 1] -> luma, chroma (the length of (Cb, Cr)) and hue angle (radians,
    in (-pi, pi]; pure blue about -0.16, red 1.90, green -2.24) per pixel, in BT.601."""
    y = GREY_WEIGHTS[0] * x[0] + GREY_WEIGHTS[1] * x[1] + GREY_WEIGHTS[2] * x[2]
    cb, cr = (x[2] - y) * _CB, (x[0] - y) * _CR
    return y, torch.hypot(cb, cr), torch.atan2(cr, cb)


def _rgb(y: torch.Tensor, chroma: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`luma_chroma_hue`: (3, N) RGB in [0, 1]. A colour outside the RGB
    cube keeps its luma and hue and loses chroma until it fits (clamping the channels instead
    would turn a bright blue cyan or grey)."""
    y = y.clamp(0.0, 1.0)
    cos, sin = torch.cos(hue), torch.sin(hue)
    g_per_chroma = -(GREY_WEIGHTS[0] * sin / _CR + GREY_WEIGHTS[2] * cos / _CB) / GREY_WEIGHTS[1]
    slopes = torch.stack([sin / _CR, g_per_chroma, cos / _CB])  # d(R, G, B) / d(chroma)
    room = torch.where(slopes > 0, 1.0 - y, y) / slopes.abs().clamp_min(1e-12)
    chroma = torch.minimum(chroma, room.min(dim=0).values)
    return (y + chroma * slopes).clamp(0.0, 1.0)  # the clamp only mops up rounding


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    """Angles in radians folded into [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def _quantile_match(values: torch.Tensor, ref_sorted: torch.Tensor) -> torch.Tensor:
    """Each value replaced by the sorted reference's value at the value's own quantile."""
    out = torch.empty_like(values)
    index = _quantile_index(values.numel(), ref_sorted.numel(), values.device)
    out[values.argsort()] = ref_sorted[index]
    return out


def hue_transfer(
    source: torch.Tensor,
    reference: torch.Tensor,
    *,
    neutral: float = NEUTRAL_CHROMA,
    sectors: int = 12,
    min_share: float = 0.02,
) -> torch.Tensor:
    """Each image of ``source`` (B, 3, H, W, in [-1, 1]) recoloured with the art's colours of
    its own hue: a blue sky takes the art's blues, foliage its greens, a grey wall its paper.

    In the BT.601 luma-chroma space, the photo's luma takes the art's distribution of luma
    (1-D quantile matching: the photo's brightest pixels get the art's brightest level, so
    light and dark stay where they were). Its pixels are then split by chroma (below
    ``neutral``: grey) and by hue into ``sectors`` equal sectors; within each class the
    chroma and the hue (its offset from the sector's centre) take the distribution of the
    art's pixels of the same class, so the photo's most saturated blue gets the art's most
    saturated blue, and its greys the art's greys (an art without greys, its least coloured
    tenth: a print's paper tint). A sector the art hardly uses (under ``min_share`` of its
    pixels) reads a wider arc of hues around it, half a sector more each time; an art with
    hardly any colour (Chinese ink) gives every photo colour its greys.

    :func:`colour_transfer` ranks the pixels along random colour axes instead, so a bright
    blue sky takes the art's brightest colour, usually its paper. Matching the luma within
    each class as well was tried: a bright sky took the prints' dark blues and went dark. A
    deterministic constant (no seed)."""
    ref = (reference.detach().transpose(0, 1).flatten(1) + 1) / 2  # (3, M) pooled
    ry, rc, rh = luma_chroma_hue(ref)
    coloured = rc >= neutral
    # The art's greys; an art without any (a tinted paper) lends its least coloured tenth.
    grey_ref = rc <= max(neutral, float(rc.quantile(0.1))) if coloured.all() else ~coloured
    width = 2 * math.pi / sectors
    need = max(1.0, min_share * ref.shape[1])
    centres = [-math.pi + (k + 0.5) * width for k in range(sectors)]
    plans = []  # per sector: the art's sorted chroma and hue offsets to match against
    for centre in centres:
        offset = _wrap(rh - centre)
        half = width / 2
        pick = coloured & (offset.abs() <= half)
        while pick.sum() < need and half < math.pi:
            half += width / 2
            pick = coloured & (offset.abs() <= half)
        if pick.sum() < need:  # hardly any colour in the art: its greys
            pick, offset = grey_ref, torch.zeros_like(offset)
        plans.append([v[pick].sort().values for v in (rc, offset)])
    luma = ry.sort().values
    grey_chroma, grey_hue = rc[grey_ref].sort().values, rh[grey_ref].sort().values
    out = []
    for image in (source.detach().flatten(2) + 1) / 2:  # (3, N)
        y, c, h = luma_chroma_hue(image)
        ny, nc, nh = _quantile_match(y, luma), c.clone(), h.clone()
        grey = c < neutral
        if grey.any():
            nc[grey] = _quantile_match(c[grey], grey_chroma)
            nh[grey] = _quantile_match(h[grey], grey_hue)
        sector = torch.floor((h + math.pi) / width).long().clamp(0, sectors - 1)
        for k, (centre, (pc, ph)) in enumerate(zip(centres, plans, strict=True)):
            sel = ~grey & (sector == k)
            if sel.any():
                nc[sel] = _quantile_match(c[sel], pc)
                nh[sel] = centre + _quantile_match(_wrap(h[sel] - centre), ph)
        out.append(_rgb(ny, nc, nh) * 2 - 1)
    return torch.stack(out).view_as(source)


def guide_loss(
    output: torch.Tensor,
    source: torch.Tensor,
    style: torch.Tensor,
    *,
    seed: int,
    pool: int,
    mode: str = "rank",
) -> torch.Tensor:
    """Where the art's colours go: the L1 distance, at 1/``pool`` resolution (area average),
    between each output and its photo recoloured with the art's palette
    (:func:`colour_transfer` against the batch of art). :func:`palette_loss` asks for the art's
    colours anywhere, and a generator can meet it with blobs of the missing colour wherever
    they are cheapest; this term places them by the photo's own colours, and being read at low
    resolution it leaves the texture and the outlines to the other terms. The transfer runs on
    the photo averaged over ``work`` x ``work`` pixels and on every ``work``-th pixel of the art
    (its colours as they are, not mixed), ``work`` the largest divisor of ``pool`` up to a
    quarter of it: 2 at the default pool 8, a quarter of the sorting, the guide still four times
    as fine as it is read. ``mode``: "rank" recolours by :func:`colour_transfer` (the photo's
    brightest area takes the art's brightest colours), "hue" by :func:`hue_transfer` (each
    colour takes the art's colours of its own hue)."""
    work = max(d for d in range(1, max(1, pool // 4) + 1) if pool % d == 0)
    if work > 1:
        source, style = F.avg_pool2d(source, work), style[..., ::work, ::work]
    if mode == "hue":
        guide = hue_transfer(source, style)
    elif mode == "rank":
        guide = colour_transfer(source, style, seed=seed)
    else:
        raise ValueError(f"guide mode must be 'rank' or 'hue', got {mode!r}")
    return (F.avg_pool2d(output, pool) - F.avg_pool2d(guide, pool // work)).abs().mean()
