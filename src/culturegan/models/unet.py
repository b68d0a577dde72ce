"""The U-Net generator of pix2pix (Isola et al., "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017), for paired translation such as old-photo restoration.

An encoder of ``n_down`` stride-2 4x4 convolutions (LeakyReLU 0.2; no norm on the first and the
innermost layer) and a mirrored decoder of stride-2 4x4 transposed convolutions (ReLU), where
each decoder layer also sees the encoder features of its resolution (the skip connections that
carry the input's detail past the bottleneck). Channels ``ngf, 2 ngf, 4 ngf, 8 ngf, 8 ngf, ...``
(capped at ``max_channels``), as in the paper's C64-C128-C256-C512-C512... encoder.

Registered as ``unet_N`` like the official code's ``unet_128`` / ``unet_256``: log2(N)
downsamplings, so an N px input reaches a 1x1 bottleneck; ``unet_32`` (5 downsamplings) is the
CPU-sized one. Where this code differs from the paper, and why:

* instance norm instead of batch norm (the official code's ``--norm instance``): each image is
  processed on its own, at training batch 1 and at inference alike;
* no dropout in the decoder (the paper's noise source): outputs are a pure function of the
  input, so a restoration is reproducible and tiles agree;
* ``residual=True`` (off by default, on in the restoration presets) predicts a change to the
  input instead of the image: ``out = tanh(atanh(x) + y)`` where ``y`` is the last layer's
  output. A freshly initialised network (``y`` near 0) then returns its input, and the
  network only learns the degradation; doing the sum in tanh's domain keeps the output in
  [-1, 1] without a clamp that would zero gradients (``x`` is clamped to 1 - 1e-3 first, an
  identity error below 0.13 of an 8-bit level).

Usage::

    g = build_generator("unet_32", ngf=32, max_channels=64, residual=True)
    restored = g(old)  # (B, 3, H, W) in [-1, 1]; inputs are padded to multiples of 32 inside
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.models.generators import instance_norm
from culturegan.models.registry import register_generator

RESIDUAL_EPS = 1e-3  # inputs are kept 1e-3 inside (-1, 1) before atanh


class UNetGenerator(nn.Module):
    """pix2pix's U-Net; input and output (B, C, H, W) in [-1, 1]."""

    def __init__(
        self,
        *,
        name: str,  # the registered name this network is rebuilt from
        n_down: int,  # stride-2 encoder layers (size multiple 2**n_down)
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,  # channels of the first encoder layer
        max_channels: int = 512,  # channel cap (the paper: 512 = 8 ngf)
        residual: bool = False,  # predict a change to the input (see the module doc)
    ) -> None:
        super().__init__()
        if not 2 <= n_down <= 10 or ngf < 1 or max_channels < 1:
            raise ValueError(f"need 2 <= n_down <= 10, ngf >= 1, max_channels >= 1, got "
                             f"{n_down}, {ngf}, {max_channels}")  # fmt: skip
        if residual and in_channels != out_channels:
            raise ValueError("a residual U-Net needs as many output channels as input channels")
        self.config: dict[str, Any] = {
            "name": name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "n_down": n_down,
            "max_channels": max_channels,
            "residual": residual,
        }
        self.size_multiple = 2**n_down
        self.residual = residual
        channels = [min(ngf * 2**i, max_channels) for i in range(n_down)]  # encoder outputs
        self.down = nn.ModuleList()
        for i, cout in enumerate(channels):
            innermost = i == n_down - 1
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            cin = in_channels if i == 0 else channels[i - 1]
            normed = i > 0 and not innermost
            layers.append(nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=not normed))
            if normed:
                layers.append(instance_norm(cout))
            self.down.append(nn.Sequential(*layers))
        # up[k] undoes down[n_down - 1 - k]; all but the innermost also read the skip features.
        self.up = nn.ModuleList()
        for i in reversed(range(n_down)):
            cin = channels[i] * (1 if i == n_down - 1 else 2)
            cout = out_channels if i == 0 else channels[i - 1]
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=i == 0),
            ]
            if i > 0:
                layers.append(instance_norm(cout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.size_multiple, (-width) % self.size_multiple
        if pad_h or pad_w:  # any size works; callers that pad (Stylizer) make this a no-op
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            return self.forward(F.pad(x, (0, pad_w, 0, pad_h), mode=mode))[..., :height, :width]
        skips = []
        h = x
        for layer in self.down:
            h = layer(h)
            skips.append(h)  # (B, c_i, H / 2**(i+1), W / 2**(i+1))
        h = self.up[0](skips[-1])
        for layer, skip in zip(self.up[1:], reversed(skips[:-1]), strict=True):
            h = layer(torch.cat([h, skip], dim=1))
        if self.residual:  # h: (B, C, H, W), a change in tanh's domain
            x = x.clamp(-1 + RESIDUAL_EPS, 1 - RESIDUAL_EPS)
            return torch.tanh(torch.atanh(x) + h)
        return torch.tanh(h)


def _register(name: str, n_down: int) -> None:
    @register_generator(name)
    def build(**kwargs: Any) -> UNetGenerator:
        if kwargs.setdefault("n_down", n_down) != n_down:
            raise ValueError(f"{name} has {n_down} downsamplings, not {kwargs['n_down']}")
        return UNetGenerator(name=name, **kwargs)

    build.__doc__ = f"pix2pix U-Net with {n_down} downsamplings ({2**n_down} px -> 1x1)."


for _side, _n_down in (("32", 5), ("64", 6), ("128", 7), ("256", 8)):
    _register(f"unet_{_side}", _n_down)
