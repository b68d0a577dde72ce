"""Networks of the multi-domain, multimodal recipe (after StarGAN v2, Choi et al., CVPR 2020).

Written from the paper; names follow it:

* ``StyleGenerator`` G(x, s): an encoder of down-sampling residual blocks, then residual blocks
  whose instance norms take their scale and shift from a style code ``s`` (AdaIN, Huang &
  Belongie 2017), then up-sampling AdaIN blocks back to the input size. By default (ours, not
  the paper's) it predicts a change to the input image rather than a new image.
* ``MappingNetwork`` F_y(z): a shared MLP and one output head per domain, turning a noise
  vector ``z`` into a style code of domain ``y`` (latent-guided synthesis, diverse outputs).
* ``StyleEncoder`` E_y(x): the style code of image ``x`` as domain ``y`` (reference-guided
  synthesis). It also carries a domain classifier head, which the paper does not have: it lets
  a reference image or an input name its own domain when the user does not.
* ``MultiDomainDiscriminator`` D_y(x): one real/fake logit per domain.

Differences from the paper: global average pooling before the heads (any input size works), a
``tanh`` on G's output (images in [-1, 1] throughout the project), reflection padding and
bilinear upsampling in the generator (fewer border and block artefacts in short CPU runs), no
face-specific high-pass masks, and slimmer defaults so that a model trains on a CPU.

Usage::

    g = StyleGenerator(ngf=32, style_dim=32)
    f = MappingNetwork(num_domains=4, latent_dim=16, style_dim=32)
    fake = g(x, f(torch.randn(B, 16), y))  # x: (B, 3, H, W), y: (B,) domain indices
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.models.fast import TentFilter, check_pad_mode, icnr_, mobile_down, mobile_stem


class AdaIN(nn.Module):
    """Instance norm whose per-channel scale (1 + gamma) and shift beta come from ``s``."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return (1 + gamma) * self.norm(x) + beta


class DownBlock(nn.Module):
    """Pre-activation residual block, optionally halving the resolution (average pooling)."""

    def __init__(self, cin: int, cout: int, *, downsample: bool, normalize: bool) -> None:
        super().__init__()
        self.downsample, self.normalize = downsample, normalize
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        if normalize:
            self.norm1 = nn.InstanceNorm2d(cin, affine=True)
            self.norm2 = nn.InstanceNorm2d(cin, affine=True)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.skip(x) if self.skip is not None else x
        if self.downsample:
            shortcut = F.avg_pool2d(shortcut, 2)
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(F.leaky_relu(h, 0.2))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        h = self.norm2(h) if self.normalize else h
        h = self.conv2(F.leaky_relu(h, 0.2))
        return (shortcut + h) / math.sqrt(2)  # keeps unit variance through the sum


class AdaINBlock(nn.Module):
    """Residual block modulated by a style code, optionally doubling the resolution."""

    def __init__(self, cin: int, cout: int, style_dim: int, *, upsample: bool) -> None:
        super().__init__()
        # A module (no weights), so that wrap-around inference can swap it for a circular one.
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear") if upsample else None
        self.norm1 = AdaIN(cin, style_dim)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        self.norm2 = AdaIN(cout, style_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, padding_mode="reflect")
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.upsample is not None:
            shortcut = self.upsample(shortcut)
        if self.skip is not None:
            shortcut = self.skip(shortcut)
        h = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample is not None:
            h = self.upsample(h)
        h = self.conv1(h)
        h = self.conv2(F.leaky_relu(self.norm2(h, s), 0.2))
        return (shortcut + h) / math.sqrt(2)


def _widths(base: int, n_down: int, max_channels: int) -> list[int]:
    """Channel widths at each resolution, doubling per downsampling up to ``max_channels``."""
    return [min(base * 2**i, max_channels) for i in range(n_down + 1)]


class StyleGenerator(nn.Module):
    """G(x, s): (B, 3, H, W) in [-1, 1] and (B, style_dim) -> (B, 3, H, W) in [-1, 1]."""

    def __init__(
        self,
        *,
        ngf: int = 32,  # channels at full resolution
        style_dim: int = 32,  # length of the style code s
        n_down: int = 2,  # downsamplings (H and W must be multiples of 2**n_down)
        n_bottleneck: int = 2,  # AdaIN residual blocks at the lowest resolution
        max_channels: int = 256,
        residual: bool = True,  # add the output to the input image (in tanh's pre-image)
        skips: bool = False,  # U-Net: add each encoder resolution's features to the decoder's
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "name": "style_generator",
            "ngf": ngf,
            "style_dim": style_dim,
            "n_down": n_down,
            "n_bottleneck": n_bottleneck,
            "max_channels": max_channels,
            "residual": residual,
        }
        if skips:  # only written when on: folders exported before the option load unchanged
            self.config["skips"] = True
        self.residual, self.skips = residual, skips
        self.size_multiple = 2**n_down
        widths = _widths(ngf, n_down, max_channels)
        self.from_rgb = nn.Conv2d(3, ngf, 3, padding=1, padding_mode="reflect")
        self.encode = nn.ModuleList(
            [
                DownBlock(widths[i], widths[i + 1], downsample=True, normalize=True)
                for i in range(n_down)
            ]
        )
        self.encode_bottleneck = DownBlock(widths[-1], widths[-1], downsample=False, normalize=True)
        self.bottleneck = nn.ModuleList(
            [
                AdaINBlock(widths[-1], widths[-1], style_dim, upsample=False)
                for _ in range(n_bottleneck)
            ]
        )
        self.decode = nn.ModuleList(
            [
                AdaINBlock(widths[i + 1], widths[i], style_dim, upsample=True)
                for i in reversed(range(n_down))
            ]
        )
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(ngf, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(ngf, 3, 1)
        )

    def forward(self, x: torch.Tensor, s: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """``strength`` (residual generators) scales the predicted change: 0 returns x."""
        h = self.from_rgb(x)
        features = [h]  # the encoder's output at every resolution, finest first
        for block in self.encode:
            h = block(h)
            features.append(h)
        h = self.encode_bottleneck(h)  # (B, C, H / 2**n_down, W / 2**n_down)
        for block in self.bottleneck:
            h = block(h, s)
        for i, block in enumerate(self.decode, start=2):
            h = block(h, s)
            if self.skips:  # same width and resolution as the encoder's features there
                h = (h + features[-i]) / math.sqrt(2)
        out = self.to_rgb(h)
        # Residual: the network predicts a change to the input in tanh's pre-image.
        return _tanh_residual(out, x, strength) if self.residual else torch.tanh(out)


ADAIN_INIT_STD = 0.02  # MobileStyleGenerator's AdaIN weights at initialisation


def _affine_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


def _tanh_residual(out: torch.Tensor, x: torch.Tensor, strength: float) -> torch.Tensor:
    """The predicted change ``out`` added to the input in tanh's pre-image, scaled by
    ``strength``: every pixel moves monotonically from the input (0) to the rendering (1)."""
    return torch.tanh(strength * out + torch.atanh(x.clamp(-0.999, 0.999)))


class _StyledSeparable(nn.Module):
    """x + project(depthwise(expand(x))) with every norm an AdaIN of the style code: the
    inverted residual of the mobile generators (``culturegan.models.fast``), style-modulated."""

    def __init__(self, dim: int, expansion: int, style_dim: int) -> None:
        super().__init__()
        hidden = dim * expansion
        self.expand = nn.Conv2d(dim, hidden, 1, bias=False)
        self.norm1 = AdaIN(hidden, style_dim)
        self.pad = nn.ReflectionPad2d(1)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=False)
        self.norm2 = AdaIN(hidden, style_dim)
        self.project = nn.Conv2d(hidden, dim, 1, bias=False)
        self.norm3 = AdaIN(dim, style_dim)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.expand(x), s))
        h = F.relu(self.norm2(self.depthwise(self.pad(h)), s))
        return x + self.norm3(self.project(h), s)


class _StyledSkipUp(nn.Module):
    """Resize-convolution to twice the size, concatenated with the encoder's features there and
    fused by a 1x1 convolution (U-Net); both norms are AdaINs of the style code."""

    def __init__(self, cin: int, cout: int, style_dim: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 1, bias=False)  # at a quarter of the pixels
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.pad = nn.ReflectionPad2d(1)
        self.depthwise = nn.Conv2d(cout, cout, 3, groups=cout, bias=False)
        self.norm1 = AdaIN(cout, style_dim)
        self.fuse = nn.Conv2d(2 * cout, cout, 1, bias=False)
        self.norm2 = AdaIN(cout, style_dim)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.pad(self.upsample(self.reduce(x))))
        h = F.relu(self.norm1(h, s))
        return F.relu(self.norm2(self.fuse(torch.cat([h, skip], dim=1)), s))


class MobileStyleGenerator(nn.Module):
    """G(x, s) at the cost of the two-domain ``mobile_unet`` generators.

    The layout of ``culturegan.models.fast.MobileUNetGenerator`` (pixel unshuffle to half
    resolution, two stride-2 convolutions, depthwise-separable blocks at 1/8, resize-convolution
    back up with U-Net skips at 1/4 and 1/2, sub-pixel output), with every norm after the
    encoder an AdaIN of the style code: the encoder reads the photo, the style code decides how
    it is drawn. A 128 px image costs about a twentieth of ``StyleGenerator``'s convolutions.

    ``domain_branch`` "decoder" gives every domain its own way up to RGB, "blocks" its own
    style blocks too (ours, not StarGAN v2's): one shared decoder, steered by norm modulation
    alone, drew the same strokes for every culture (docs/quality.md). Each item then costs what
    it cost before, and ``forward`` takes the domain that draws it.
    """

    size_multiple = 8

    def __init__(
        self,
        *,
        ngf: int = 32,
        style_dim: int = 64,
        n_blocks: int = 6,
        expansion: int = 2,
        residual: bool = False,
        pad_mode: str = "zeros",  # of the stride-2 convolutions (fast.downsampling_conv)
        icnr: bool = False,  # sub-pixel output layer initialised without a 2 x 2 pattern
        output_tent: bool = False,  # no pattern of period 2 can be drawn (fast.TentFilter)
        domain_branch: str = "none",  # none | decoder | blocks: that part once per domain
        num_domains: int = 0,  # the number of branches (domain_branch other than none)
    ) -> None:
        super().__init__()
        check_pad_mode(pad_mode)
        if domain_branch not in DOMAIN_BRANCHES:
            raise ValueError(
                f"domain_branch must be one of {', '.join(DOMAIN_BRANCHES)}, got {domain_branch!r}"
            )
        if domain_branch != "none" and num_domains < 2:
            raise ValueError(f"domain_branch {domain_branch!r} needs num_domains >= 2")
        self.config: dict[str, Any] = {
            "name": "mobile_style_generator",
            "ngf": ngf,
            "style_dim": style_dim,
            "n_blocks": n_blocks,
            "expansion": expansion,
            "residual": residual,
        }
        if pad_mode != "zeros":  # model folders written before the option read as zeros
            self.config["pad_mode"] = pad_mode
        if output_tent:
            self.config["output_tent"] = True
        if domain_branch != "none":
            self.config.update(domain_branch=domain_branch, num_domains=num_domains)
        self.tent = TentFilter() if output_tent else None
        self.residual = residual
        # The encoder of fast.MobileUNetGenerator, its norms with learned scale and shift.
        self.stem = nn.Sequential(*mobile_stem(3, ngf, _affine_norm))
        self.down = nn.ModuleList(
            nn.Sequential(*mobile_down(c, pad_mode, _affine_norm)) for c in (ngf, 2 * ngf)
        )

        def blocks() -> nn.ModuleList:
            return nn.ModuleList(
                _StyledSeparable(4 * ngf, expansion, style_dim) for _ in range(n_blocks)
            )

        def decoder() -> _StyledDecoder:
            return _StyledDecoder(ngf, style_dim, blocks() if domain_branch == "blocks" else None)

        self.blocks = blocks() if domain_branch != "blocks" else nn.ModuleList()
        # The decoder's modules sit on the generator itself when shared (the state-dict keys of
        # the model folders written before branches existed), in ``branches`` otherwise.
        self.branches: nn.ModuleList | None = None
        if domain_branch == "none":
            shared = decoder()
            self.up, self.to_rgb = shared.up, shared.to_rgb
        else:
            self.branches = nn.ModuleList(decoder() for _ in range(num_domains))
        # PyTorch's default initialisation (as the two-domain mobile generators, which train
        # well in minutes), except the AdaINs: small random weights, so that each domain's
        # style code starts with its own mild modulation (about 0.25 for a code of norm 13).
        for module in self.modules():
            if isinstance(module, AdaIN):
                nn.init.normal_(module.fc.weight, std=ADAIN_INIT_STD)
                nn.init.zeros_(module.fc.bias)
        if icnr:
            for decoder_ in self.branches if self.branches is not None else [self]:
                icnr_(decoder_.to_rgb[1])

    def forward(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        strength: float = 1.0,
        domain: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``strength`` (residual generators) scales the predicted change: 0 returns x.

        ``domain`` (generators with per-domain branches, required there): (B,) indices of the
        branch that draws each item, or (B, num_domains) weights blending the branches' outputs
        before the final tanh (cultures mixed, or the way from the input's own domain)."""
        h = self.stem(x)
        skips = [h]  # H/2, then H/4
        for i, block in enumerate(self.down):
            h = block(h)
            if i == 0:
                skips.append(h)
        for block in self.blocks:
            h = block(h, s)
        if self.branches is None:
            out = _decode((), self.up, self.to_rgb, h, skips, s)
        else:
            out = self._branched(h, skips, s, self.domain_weights(domain, len(x)))
        if self.tent is not None:
            out = self.tent(out)
        return _tanh_residual(out, x, strength) if self.residual else torch.tanh(out)

    def domain_weights(self, domain: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(batch, num_domains) branch weights from indices or weights, checked."""
        k = len(self.branches) if self.branches is not None else 0
        if domain is None:
            raise ValueError(
                f"this generator draws with one branch per domain ({k}): pass domain= "
                "(the target domain's index per item, or weights over the domains)"
            )
        if domain.dtype in (torch.int64, torch.int32):
            if domain.shape != (batch,) or not bool(((domain >= 0) & (domain < k)).all()):
                raise ValueError(f"domain: expected {batch} indices in [0, {k}), got {domain}")
            return F.one_hot(domain.long(), k).float()
        if domain.shape != (batch, k):
            raise ValueError(
                f"domain weights: expected shape ({batch}, {k}), got {tuple(domain.shape)}"
            )
        return domain

    def _branched(
        self, h: torch.Tensor, skips: list[torch.Tensor], s: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Each item through the branches it weighs on (one branch per item in training: the
        cost of the shared decoder), the outputs summed by weight."""
        out: torch.Tensor | None = None
        assert self.branches is not None
        for d, branch in enumerate(self.branches):
            rows = weights[:, d].nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            part = branch(h[rows], [k[rows] for k in skips], s[rows])
            part = part * weights[rows, d].to(part.dtype)[:, None, None, None]
            if out is None:
                out = h.new_zeros((len(h), *part.shape[1:]))
            out = out.index_add(0, rows, part)
        if out is None:
            raise ValueError("domain weights: every item has weight 0 on every branch")
        return out


class _StyledDecoder(nn.Module):
    """The part of ``MobileStyleGenerator`` after the shared encoder: optionally the blocks at
    1/8, then the U-Net way up and the sub-pixel output (pre-activation, 3 channels)."""

    def __init__(self, ngf: int, style_dim: int, blocks: nn.ModuleList | None) -> None:
        super().__init__()
        self.blocks = blocks if blocks is not None else nn.ModuleList()
        self.up = nn.ModuleList(
            [_StyledSkipUp(4 * ngf, 2 * ngf, style_dim), _StyledSkipUp(2 * ngf, ngf, style_dim)]
        )
        self.to_rgb = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ngf, 12, 3), nn.PixelShuffle(2)
        )

    def forward(self, h: torch.Tensor, skips: list[torch.Tensor], s: torch.Tensor) -> torch.Tensor:
        return _decode(self.blocks, self.up, self.to_rgb, h, skips, s)


def _decode(
    blocks: Iterable[nn.Module],
    up: nn.ModuleList,
    to_rgb: nn.Module,
    h: torch.Tensor,
    skips: list[torch.Tensor],
    s: torch.Tensor,
) -> torch.Tensor:
    """Style blocks at 1/8, then up with the encoder's skips (last first), then to RGB."""
    for block in blocks:
        h = block(h, s)
    for block, skip in zip(up, reversed(skips), strict=True):
        h = block(h, skip, s)
    return to_rgb(h)


DOMAIN_BRANCHES = ("none", "decoder", "blocks")


class MappingNetwork(nn.Module):
    """F_y(z): shared MLP, then the head of domain y gives a (B, style_dim) style code."""

    def __init__(
        self,
        *,
        num_domains: int,
        latent_dim: int = 16,
        style_dim: int = 32,
        hidden: int = 256,
        n_shared: int = 3,
    ) -> None:
        super().__init__()
        self.config = {
            "name": "mapping",
            "num_domains": num_domains,
            "latent_dim": latent_dim,
            "style_dim": style_dim,
            "hidden": hidden,
            "n_shared": n_shared,
        }
        layers: list[nn.Module] = []
        for i in range(n_shared):
            layers += [nn.Linear(latent_dim if i == 0 else hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, style_dim))
                for _ in range(num_domains)
            ]
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        styles = torch.stack([head(h) for head in self.heads], dim=1)  # (B, K, style_dim)
        return styles[torch.arange(len(y), device=y.device), y]


class _ConvBody(nn.Module):
    """Convolutional trunk shared by the style encoder and the discriminator: (B, C) features."""

    def __init__(self, ndf: int, n_down: int, max_channels: int) -> None:
        super().__init__()
        widths = _widths(ndf, n_down, max_channels)
        self.from_rgb = nn.Conv2d(3, ndf, 3, padding=1)
        self.blocks = nn.Sequential(
            *[
                DownBlock(widths[i], widths[i + 1], downsample=True, normalize=False)
                for i in range(n_down)
            ]
        )
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.blocks(self.from_rgb(x)), 0.2)
        return h.mean(dim=(2, 3))  # global average pool: any input size


class StyleEncoder(nn.Module):
    """E_y(x): the (B, style_dim) style of image x read as domain y; ``classify`` names y."""

    def __init__(
        self,
        *,
        num_domains: int,
        style_dim: int = 32,
        ndf: int = 16,
        n_down: int = 4,
        max_channels: int = 256,
        read_size: int = 0,
    ) -> None:
        super().__init__()
        self.config = {
            "name": "style_encoder",
            "num_domains": num_domains,
            "style_dim": style_dim,
            "ndf": ndf,
            "n_down": n_down,
            "max_channels": max_channels,
        }
        if read_size:  # written only when set: model folders from before read as 0
            self.config["read_size"] = read_size
        self.read_size = read_size
        self.body = _ConvBody(ndf, n_down, max_channels)
        c = self.body.out_channels
        self.heads = nn.ModuleList([nn.Linear(c, style_dim) for _ in range(num_domains)])
        self.classifier = nn.Linear(c, num_domains)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.style_of(self.trunk(x), y)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) trunk features of images x, read at ``read_size`` when it is set: an image whose
        shorter side is longer is first area-averaged down to it (differentiable, and a style is
        a global statistic: a quarter of the pixels reads it at a quarter of the cost)."""
        short = min(x.shape[-2:])
        if self.read_size and short > self.read_size:
            scale = self.read_size / short
            size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
            x = F.interpolate(x, size=size, mode="area")
        return self.body(x)

    def style_of(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The styles read from trunk features ``h = trunk(x)`` (B, C) as domains ``y``."""
        styles = torch.stack([head(h) for head in self.heads], dim=1)  # (B, K, style_dim)
        return styles[torch.arange(len(y), device=y.device), y]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_domains) logits of which domain x belongs to."""
        return self.classifier(self.trunk(x))


class MultiDomainDiscriminator(nn.Module):
    """D_y(x): the real/fake logit of image x for domain y, shape (B,)."""

    def __init__(
        self, *, num_domains: int, ndf: int = 16, n_down: int = 4, max_channels: int = 256
    ) -> None:
        super().__init__()
        self.config = {
            "name": "multidomain_discriminator",
            "num_domains": num_domains,
            "ndf": ndf,
            "n_down": n_down,
            "max_channels": max_channels,
        }
        self.body = _ConvBody(ndf, n_down, max_channels)
        self.head = nn.Linear(self.body.out_channels, num_domains)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(x))  # (B, K)
        return logits[torch.arange(len(y), device=y.device), y]


MULTIDOMAIN_NETWORKS = {
    "style_generator": StyleGenerator,
    "mobile_style_generator": MobileStyleGenerator,
    "mapping": MappingNetwork,
    "style_encoder": StyleEncoder,
    "multidomain_discriminator": MultiDomainDiscriminator,
}


def multidomain_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild one of the networks above from the ``config`` dict it carries."""
    args = dict(config)
    name = args.pop("name", None)
    if name not in MULTIDOMAIN_NETWORKS:
        raise ValueError(f"not a multi-domain network config: {config}")
    return MULTIDOMAIN_NETWORKS[name](**args)
