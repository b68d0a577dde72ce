"""PatchGAN discriminator (Isola et al., pix2pix, CVPR 2017; used by CycleGAN).

With ``n_layers=3`` each output logit sees a 70x70 patch of the input. Layer order matches the
official ``NLayerDiscriminator`` (``model.0`` first convolution) with instance norm, so its
weights load key for key when spectral norm is off. Spectral normalisation (Miyato et al., 2018)
can be switched on for extra stability; it then replaces the normalisation layers' role.

Usage::

    d_b = build_discriminator("patchgan", ndf=64, n_layers=3)
    logits = d_b(images)  # (B, 1, H', W') patch logits
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations

from culturegan.models.generators import instance_norm
from culturegan.models.registry import register_discriminator


class PatchDiscriminator(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.config = {
            "name": "patchgan",
            "in_channels": in_channels,
            "ndf": ndf,
            "n_layers": n_layers,
            "spectral_norm": spectral_norm,
        }

        def conv(cin: int, cout: int, stride: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1, bias=bias)
            return parametrizations.spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = [conv(in_channels, ndf, 2), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps the resolution
            layers += [
                conv(ndf * prev, ndf * mult, stride),
                instance_norm(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(conv(ndf * mult, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register_discriminator("patchgan")
def patchgan(**kwargs: Any) -> PatchDiscriminator:
    # Options of other discriminators that every recipe passes (see training/base.py).
    for key in ("train_size", "mix_seed"):
        kwargs.pop(key, None)
    if kwargs.pop("num_domains", 1) != 1:
        raise ValueError("patchgan judges one domain; use projected_lite0 for several")
    return PatchDiscriminator(**kwargs)
