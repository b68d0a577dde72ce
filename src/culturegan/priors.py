"""Culture priors: optional losses that a config switches on per target domain.

Each encodes one visible trait of a tradition that an adversarial loss alone learns slowly or
not at all from a few hundred images. All take images in [-1, 1], shape (B, 3, H, W).

* **Edge preservation** (``edge_domains``): the Sobel edge map of the output should match the
  input's, each normalised by its mean magnitude (so a lighter or darker rendering is not
  punished, only moved, lost or invented contours are). Line-based traditions (woodblock
  outlines, ink strokes) keep the photo's structure.
* **Ink-wash view** (``ink_domains``): :func:`ink_view` erodes dark strokes (a 3x3 min filter
  on brightness spreads ink) and blurs, imitating ink bleeding into paper; a second
  discriminator judges real ink paintings against outputs through this view (after the ink
  discriminator of ChipGAN, He et al., ACM MM 2018, here with our own simple operators).
* **Blank space** (``blank_domains``): :func:`paper_share` is a soft count of bright,
  unsaturated, low-texture pixels (the liubai of ink painting); the loss pulls the output's
  share to the running mean share of the target domain's real images.
* **Colour histogram** (``color_domains``): soft per-channel histograms (Gaussian kernels, so
  they have gradients) of the output are pulled toward the running mean histogram of the
  target domain's real images (L1 distance between histograms, in [0, 2] per channel).

Usage::

    loss = edge_loss(real, fake)
    stats = DomainStats(num_domains=4); stats.update(real_ref, y); loss = stats.blank_loss(fake, y)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from culturegan.losses import grey, sobel_gradients


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the grey image, (B, 1, H, W), replicate-padded."""
    gx, gy = sobel_gradients(grey(x))
    return torch.sqrt(gx * gx + gy * gy + 1e-8)


def edge_loss(source: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Mean |e(source)/mean e(source) - e(output)/mean e(output)| over pixels."""
    es, eo = sobel_edges(source), sobel_edges(output)
    es = es / (es.mean(dim=(2, 3), keepdim=True) + 1e-4)
    eo = eo / (eo.mean(dim=(2, 3), keepdim=True) + 1e-4)
    return (es - eo).abs().mean()


def ink_view(x: torch.Tensor, blur_sigma: float = 1.0) -> torch.Tensor:
    """Erode dark strokes (3x3 min filter) and blur: how ink spreads in absorbent paper."""
    eroded = -F.max_pool2d(-x, kernel_size=3, stride=1, padding=1)
    radius = max(1, int(round(2 * blur_sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * blur_sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    padded = F.pad(eroded, (radius, radius, radius, radius), mode="replicate")
    h = F.conv2d(padded, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(h, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def paper_share(x: torch.Tensor, *, sharpness: float = 0.04) -> torch.Tensor:
    """Soft share of bright (V > 0.75), unsaturated (S < 0.2), flat (local std < 0.04) pixels.

    Returns (B,) values in [0, 1]; a flat white image gives ~1, a busy colourful one ~0.
    """
    rgb = (x + 1) / 2
    value = rgb.max(dim=1, keepdim=True).values
    saturation = (value - rgb.min(dim=1, keepdim=True).values) / (value + 1e-4)
    g = grey(x)
    mean = F.avg_pool2d(g, 5, stride=1, padding=2, count_include_pad=False)
    sq = F.avg_pool2d(g * g, 5, stride=1, padding=2, count_include_pad=False)
    local_std = torch.sqrt((sq - mean * mean).clamp_min(0) + 1e-8)
    bright = torch.sigmoid((value - 0.75) / sharpness)
    plain = torch.sigmoid((0.2 - saturation) / sharpness)
    flat = torch.sigmoid((0.04 - local_std) / (sharpness / 2))
    return (bright * plain * flat).mean(dim=(1, 2, 3))


def soft_color_histogram(x: torch.Tensor, bins: int = 16, bandwidth: float = 0.5) -> torch.Tensor:
    """(B, 3, bins) per-channel histograms of values in [0, 1]; each row sums to 1.

    Each pixel adds a Gaussian bump of width ``bandwidth`` bins, so the result is differentiable.
    """
    v = ((x + 1) / 2).clamp(0, 1).flatten(2)  # (B, 3, N)
    centres = (torch.arange(bins, device=x.device, dtype=x.dtype) + 0.5) / bins
    d = (v.unsqueeze(-1) - centres) * bins  # (B, 3, N, bins) in bin units
    w = torch.exp(-0.5 * (d / bandwidth) ** 2)
    w = w / (w.sum(dim=-1, keepdim=True) + 1e-8)
    return w.mean(dim=2)


class DomainStats:
    """Running means (EMA) of each domain's paper share and colour histogram over real images."""

    def __init__(self, num_domains: int, *, bins: int = 16, momentum: float = 0.05) -> None:
        self.momentum, self.bins = momentum, bins
        self.paper = torch.zeros(num_domains)
        self.histogram = torch.full((num_domains, 3, bins), 1.0 / bins)
        self.seen = torch.zeros(num_domains)

    @torch.no_grad()
    def update(self, images: torch.Tensor, y: torch.Tensor) -> None:
        share = paper_share(images).cpu()
        hist = soft_color_histogram(images, self.bins).cpu()
        for i, domain in enumerate(y.tolist()):
            # The first images set the mean; later ones move it by ``momentum``.
            m = 1.0 if self.seen[domain] == 0 else self.momentum
            self.paper[domain] += m * (share[i] - self.paper[domain])
            self.histogram[domain] += m * (hist[i] - self.histogram[domain])
            self.seen[domain] += 1

    def blank_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = self.paper.to(output.device)[y]
        return ((paper_share(output) - target) ** 2).mean()

    def color_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = self.histogram.to(output.device)[y]
        return (soft_color_histogram(output, self.bins) - target).abs().sum(dim=-1).mean()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"paper": self.paper, "histogram": self.histogram, "seen": self.seen}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.paper = state["paper"].clone()
        self.histogram = state["histogram"].clone()
        self.seen = state["seen"].clone()
