"""CPU-practical generators: ``mobile_resnet_{3,6,9}blocks``.

The layout of the CycleGAN ResNet generator (Johnson et al., 2016; Zhu et al., 2017) rebuilt for
a CPU, where a network's time follows its operations *and* the number of full-resolution
tensors it writes:

* **No full-resolution features.** The image is rearranged losslessly to half resolution with a
  pixel unshuffle (space-to-depth: (B, 3, H, W) -> (B, 12, H/2, W/2)) and the output is
  produced at half resolution with a sub-pixel convolution and pixel shuffle (Shi et al., CVPR
  2016), so no tensor wider than 12 channels ever exists at the image's size.
* **A smaller bottleneck.** Three stride-2 stages in all (size multiple 8), and the residual
  blocks run at H/8 x W/8 instead of H/4 x W/4.
* **Depthwise-separable residual blocks** with a pointwise expansion (the inverted residual of
  MobileNetV2, Sandler et al., CVPR 2018): 1x1 expand, 3x3 depthwise, 1x1 project, instance
  norm after each, as in the mobile ResNet blocks of GAN Compression (Li et al., CVPR 2020).
* **Resize-convolution upsampling** (Odena et al., Distill 2016): a 1x1 convolution at the low
  resolution, bilinear upsampling, a 3x3 depthwise convolution; no transposed convolutions and
  so none of their checkerboard patterns.

With ``ngf=32`` (the ``cyclegan_mobile`` preset) a 256 px image costs about 1.4 GFLOP against
99 GFLOP for ``resnet_9blocks`` at ngf 64; ``benchmarks/bench_speed.py`` measures the speed.
All layers sit in one ``nn.Sequential`` named ``model`` (like ``ResnetGenerator``) so that
``culturegan.models.features.encoder_features`` can read intermediate features for PatchNCE.

Usage::

    g_ab = build_generator("mobile_resnet_6blocks", ngf=32)
    fake_b = g_ab(real_a)  # (B, 3, H, W) in [-1, 1], H and W multiples of 8, at least 16
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.models.generators import instance_norm
from culturegan.models.registry import register_generator

PAD_MODES = ("zeros", "reflect")


def check_pad_mode(pad_mode: str) -> None:
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {pad_mode!r}")


MAX_VOTE = 15  # the widest palette_hard window (the generators' grid is 8 px)


def check_palette_hard(window: int, name: str = "palette_hard") -> None:
    """0 (the palette's blend) or an odd vote window of 1-MAX_VOTE pixels (PaletteHead)."""
    odd = type(window) is int and window % 2 == 1 and 1 <= window <= MAX_VOTE  # not a bool
    if not (window == 0 or odd):
        raise ValueError(
            f"{name} must be 0 (blend) or an odd window of 1-{MAX_VOTE} px, got {window}"
        )


def downsampling_conv(cin: int, cout: int, pad_mode: str = "zeros") -> nn.Conv2d:
    """3x3 stride-2 convolution, bias-free (an instance norm follows), ``pad_mode`` padding.

    On an even side its windows are centred on pixels 0, 2, ..., so only the left and top
    padding is ever read: with zeros, the first column and row of every output see a border
    no other position sees, a marker a generator can draw on (measured on cultures-dev: a dark
    band down the left edge of ukiyo-e outputs). ``reflect`` pads with the image itself.
    """
    return nn.Conv2d(cin, cout, 3, stride=2, padding=1, padding_mode=pad_mode, bias=False)


def mobile_stem(in_channels: int, ngf: int, norm: Callable[[int], nn.Module]) -> list[nn.Module]:
    """The mobile generators' first layers: lossless pixel unshuffle to half resolution, then
    a 3x3 convolution to ``ngf`` channels, ``norm`` and ReLU."""
    return [
        nn.PixelUnshuffle(2),  # (B, C, H, W) -> (B, 4C, H/2, W/2), nothing lost
        nn.ReflectionPad2d(1),
        nn.Conv2d(4 * in_channels, ngf, kernel_size=3, bias=False),
        norm(ngf),
        nn.ReLU(inplace=True),
    ]


def mobile_down(channels: int, pad_mode: str, norm: Callable[[int], nn.Module]) -> list[nn.Module]:
    """One stride-2 stage of the mobile generators: ``channels`` -> twice as many, half the side."""
    return [
        downsampling_conv(channels, 2 * channels, pad_mode),
        norm(2 * channels),
        nn.ReLU(inplace=True),
    ]


def icnr_(conv: nn.Conv2d, scale: int = 2) -> None:
    """Initialise a convolution followed by ``PixelShuffle(scale)`` so that the scale x scale
    pixels it draws from one position start out equal (ICNR: Aitken et al., 2017, "Checkerboard
    artifact free sub-pixel convolution"): the weights of the first sub-pixel of every output
    channel are copied to the others. A default initialisation draws each sub-pixel from its
    own random weights, a fixed 2 x 2 pattern over the whole image that training must undo."""
    groups = scale * scale
    if conv.out_channels % groups:
        raise ValueError(f"{conv.out_channels} output channels are not a multiple of {groups}")
    with torch.no_grad():
        weight = conv.weight.view(conv.out_channels // groups, groups, *conv.weight.shape[1:])
        weight.copy_(weight[:, :1].clone().expand_as(weight))
        if conv.bias is not None:
            bias = conv.bias.view(-1, groups)
            bias.copy_(bias[:, :1].clone().expand_as(bias))


class TentFilter(nn.Module):
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 blur of every channel, mirrored at the borders.

    Its response is zero at the highest frequency an image has, so whatever comes before it
    cannot draw a pattern of period two: not the checkerboard and stripe dither a sub-pixel
    output layer falls into when a loss (features of a stride-2 network) cannot see it, as
    measured on the demo's cultures. Symmetric, so nothing is shifted; no parameters. The
    padding is a layer of its own, so that tileable stylizing (``tiling.wrap_around``) can make
    it circular like every other padding of the network."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = x.new_tensor([0.25, 0.5, 0.25])
        kernel = torch.outer(taps, taps).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(self.pad(x), kernel, groups=x.shape[1])


class InvertedResidual(nn.Module):
    """x + project(depthwise(expand(x))); every convolution followed by instance norm."""

    def __init__(self, dim: int, expansion: int) -> None:
        super().__init__()
        hidden = dim * expansion
        # No biases: each convolution is followed by an instance norm that removes them.
        self.conv_block = nn.Sequential(
            nn.Conv2d(dim, hidden, kernel_size=1, bias=False),  # pointwise expansion
            instance_norm(hidden),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(hidden, hidden, kernel_size=3, groups=hidden, bias=False),  # depthwise
            instance_norm(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, kernel_size=1, bias=False),  # pointwise projection
            instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResizeConvUp(nn.Module):
    """(B, C_in, h, w) -> (B, C_out, 2h, 2w): 1x1 conv, bilinear x2, 3x3 depthwise conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # The channel reduction runs before the upsampling, at a quarter of the pixels.
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, groups=out_channels, bias=False),
            instance_norm(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class MobileResnetGenerator(nn.Module):
    """A mobile ResNet generator; input and output (B, C, H, W) in [-1, 1].

    Channels: ``ngf`` at H/2, ``2 ngf`` at H/4, ``4 ngf`` at H/8 (the residual blocks), the
    same on the way up. Sides must be multiples of 8 and at least 16 (the bottleneck needs
    2 x 2 positions for its reflection padding and instance norm).

    ``palette`` K > 0: the last layer draws with K learned colours instead of free RGB. It
    predicts K logits per pixel and the output is the softmax-weighted mix of the colours
    (:class:`PaletteHead`): a sharp softmax paints flat areas of one ink, a soft one blends.
    ``palette_hard`` N (odd): out of training, every pixel is one of the colours instead, the one
    that weighs most over its N x N neighbourhood, as a print is printed (:class:`PaletteHead`).
    """

    size_multiple = 8  # pixel unshuffle + two stride-2 convolutions

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 32,
        n_blocks: int = 6,
        expansion: int = 2,
        palette: int = 0,
        palette_hard: int = 0,
        pad_mode: str = "zeros",
        icnr: bool = False,
        output_tent: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 1 or ngf < 1 or expansion < 1 or not 0 <= palette <= 256:
            raise ValueError(
                f"need n_blocks >= 1, ngf >= 1, expansion >= 1 and 0 <= palette <= 256, got "
                f"{n_blocks}, {ngf}, {expansion}, {palette}"
            )
        check_pad_mode(pad_mode)
        self.config: dict[str, Any] = {
            "name": f"mobile_resnet_{n_blocks}blocks",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "n_blocks": n_blocks,
            "expansion": expansion,
        }
        if palette_hard and not palette:
            raise ValueError("palette_hard needs a palette (palette > 0)")
        check_palette_hard(palette_hard)
        if palette:
            self.config["palette"] = palette
        if palette_hard:  # model folders written before the option read as soft
            self.config["palette_hard"] = palette_hard
        if pad_mode != "zeros":  # model folders written before the option read as zeros
            self.config["pad_mode"] = pad_mode
        if output_tent:
            self.config["output_tent"] = True
        drawn = palette or out_channels  # channels of the last convolution's output
        layers = mobile_stem(in_channels, ngf, instance_norm)
        ch = ngf
        for _ in range(2):  # H/2 -> H/8
            layers += mobile_down(ch, pad_mode, instance_norm)
            ch *= 2
        first_block = len(layers)
        layers += [InvertedResidual(ch, expansion) for _ in range(n_blocks)]
        for _ in range(2):  # H/8 -> H/2
            layers.append(ResizeConvUp(ch, ch // 2))
            ch //= 2
        subpixel = nn.Conv2d(ch, 4 * drawn, kernel_size=3)
        if icnr:
            icnr_(subpixel)
        layers += [
            nn.ReflectionPad2d(1),
            subpixel,  # sub-pixel convolution
            nn.PixelShuffle(2),  # (B, 4C, H/2, W/2) -> (B, C, H, W)
            *([TentFilter()] if output_tent else []),
            PaletteHead(palette, out_channels, hard=palette_hard) if palette else nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        # PatchNCE layers in the spirit of CUT's "0,4,8,12,16" for its ResNet: the first
        # convolution, the two downsamplings, the first and the fifth block. Not the unshuffled
        # image (layer 0): a horizontal flip permutes its channels, which would break CUT's
        # flip-equivariance term.
        self.nce_layers: tuple[int, ...] = tuple(
            sorted({2, 5, 8, first_block, first_block + min(4, n_blocks - 1)})
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model[-1](self.last_input(x))

    def last_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the output layer (``tanh`` or the palette head) receives."""
        for layer in list(self.model)[:-1]:  # (slicing the Sequential builds a new Module)
            x = layer(x)
        return x

    def ink_head(self) -> PaletteHead | None:
        """The output layer when it paints each pixel in one ink (``palette_hard``), else None."""
        head = self.model[-1]
        return head if isinstance(head, PaletteHead) and head.hard else None

    def ink_votes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, K, H, W): every pixel's votes over the K inks of a hard palette
        (:meth:`PaletteHead.votes`); ``self.ink_head().paint`` of them is ``self(x)`` out of
        training. Average them, not the painted pictures, where outputs are averaged."""
        head = self.ink_head()
        if head is None:
            raise ValueError("ink votes need a generator with a hard palette (palette_hard > 0)")
        return head.votes(self.last_input(x))


class PaletteHead(nn.Module):
    """(B, K, H, W) logits -> (B, C, H, W) in [-1, 1]: each pixel the softmax-weighted mean of
    K learned colours (``colors``, stored as their tanh pre-image so they stay in range).

    Woodblock prints and ink paintings are made with a few inks; a generator that must mix
    its pixels from a handful of colours cannot drift into the saturated colour noise a free
    RGB output shows early in training, and flat areas cost it nothing.

    ``hard`` N (odd; 0: blend): out of training (``.eval()``), each pixel takes the one colour
    whose softmax weight summed over its N x N neighbourhood is largest. Training still blends,
    for the gradient. A soft head is free to paint a blend that is none of the inks: the demo's
    woodblock models painted half vermilion, half cream as a greige no print has. Where two
    inks nearly tie, the generator's lattice decides pixel by pixel (N = 1): a checkerboard no
    block prints; a 5 x 5 vote, under the generator's 8-pixel grid, removes it and keeps the
    shapes (docs/quality.md, session 31). Training through the hard choice (straight-through)
    was tried and lost.
    """

    def __init__(self, num_colors: int, channels: int = 3, *, hard: int = 0) -> None:
        super().__init__()
        self.hard = hard
        # Spread over the colour cube: a fixed low-discrepancy start, not the global RNG.
        # Training replaces it with the target art's colours (model.palette_init art).
        k = torch.arange(num_colors, dtype=torch.float32).unsqueeze(1)
        start = ((k * torch.tensor([0.618034, 0.754878, 0.569840])[:channels] + 0.5) % 1.0) * 2 - 1
        self.colors = nn.Parameter(torch.atanh(start.clamp(-0.9, 0.9)))  # (K, C)

    @torch.no_grad()
    def set_colors(self, colors: torch.Tensor) -> None:
        """Start from ``colors`` (K', C) in [-1, 1], e.g. the art's own inks
        (:func:`culturegan.data.palette.art_palette`); with K' < K they are repeated in turn.
        Kept 0.03 inside the range, where tanh's pre-image and its gradient stay finite."""
        colors = torch.as_tensor(colors, dtype=torch.float32)
        if colors.ndim != 2 or len(colors) == 0 or colors.shape[1] != self.colors.shape[1]:
            raise ValueError(
                f"need (K', {self.colors.shape[1]}) colours with K' >= 1, got {tuple(colors.shape)}"
            )
        index = torch.arange(len(self.colors)) % len(colors)
        self.colors.copy_(torch.atanh(colors[index].clamp(-0.97, 0.97)))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if self.hard and not self.training:
            return self.paint(self.votes(logits))
        weights = logits.softmax(dim=1)  # (B, K, H, W)
        return torch.einsum("bkhw,kc->bchw", weights, torch.tanh(self.colors))

    def votes(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) logits -> (B, K, H, W): each colour's softmax weight averaged over the
        pixel's ``hard`` x ``hard`` neighbourhood (edges repeated). :meth:`paint` takes the
        largest. Outputs that are averages (passes moved within the grid, overlapping tiles)
        average these and paint once, so that they are still painted in the inks."""
        if not self.hard:
            raise ValueError("votes need a hard palette (palette_hard > 0)")
        weights = logits.softmax(dim=1)
        half = self.hard // 2
        return F.avg_pool2d(F.pad(weights, (half,) * 4, mode="replicate"), self.hard, 1)

    def paint(self, votes: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) votes -> (B, C, H, W): each pixel the colour with the largest vote."""
        return torch.tanh(self.colors)[votes.argmax(dim=1)].permute(0, 3, 1, 2)


class SkipUp(nn.Module):
    """(B, C_in, h, w) and a skip (B, C_out, 2h, 2w) -> (B, C_out, 2h, 2w).

    Resize-convolution up to the skip's resolution, then the two are concatenated and fused by
    a 1x1 convolution (U-Net, Ronneberger et al., 2015), so fine detail from the encoder reaches
    the output without squeezing through the 1/8-resolution bottleneck.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = ResizeConvUp(in_channels, out_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * out_channels, out_channels, kernel_size=1, bias=False),
            instance_norm(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class MobileUNetGenerator(MobileResnetGenerator):
    """The mobile ResNet generator with U-Net skips at 1/2 and 1/4 resolution.

    Same encoder, blocks and output layer as :class:`MobileResnetGenerator` (so the same
    PatchNCE layers and the same size multiple); the two upsampling stages become
    :class:`SkipUp` stages fed by the encoder's outputs at the same resolution. Measured on
    cultures-dev (docs/quality.md): the plain network's outputs are blurred and blocky after
    minutes of CPU training, because every pixel is redrawn from an 8x smaller map.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config["name"] = f"mobile_unet_{self.config['n_blocks']}blocks"
        layers = list(self.model)
        ups = [i for i, layer in enumerate(layers) if isinstance(layer, ResizeConvUp)]
        for i in ups:
            old = layers[i].block
            layers[i] = SkipUp(old[0].in_channels, old[0].out_channels)
        self.model = nn.Sequential(*layers)
        # Encoder outputs the skips come from: the ReLUs after the first convolution (H/2)
        # and after the first downsampling (H/4); used in reverse order on the way up.
        self.skip_sources = (4, 7)

    def last_input(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        h = x
        for i, layer in enumerate(list(self.model)[:-1]):
            h = layer(h, skips.pop()) if isinstance(layer, SkipUp) else layer(h)
            if i in self.skip_sources:
                skips.append(h)
        return h


def _with_blocks(
    n_blocks: int, kwargs: dict[str, Any], cls: type[MobileResnetGenerator] = MobileResnetGenerator
) -> MobileResnetGenerator:
    # The name fixes the block count; a config.json repeating it (as ``.config`` does) is fine.
    given = kwargs.pop("n_blocks", n_blocks)
    if given != n_blocks:
        name = cls(n_blocks=1, ngf=1).config["name"].replace("1blocks", f"{n_blocks}blocks")
        raise ValueError(f"{name} has {n_blocks} blocks, got {given}")
    return cls(n_blocks=n_blocks, **kwargs)


@register_generator("mobile_resnet_9blocks")
def mobile_resnet_9blocks(**kwargs: Any) -> MobileResnetGenerator:
    return _with_blocks(9, kwargs)


@register_generator("mobile_resnet_6blocks")
def mobile_resnet_6blocks(**kwargs: Any) -> MobileResnetGenerator:
    return _with_blocks(6, kwargs)


@register_generator("mobile_resnet_3blocks")
def mobile_resnet_3blocks(**kwargs: Any) -> MobileResnetGenerator:
    """A shallow variant for quick experiments and tests."""
    return _with_blocks(3, kwargs)


@register_generator("mobile_unet_6blocks")
def mobile_unet_6blocks(**kwargs: Any) -> MobileResnetGenerator:
    return _with_blocks(6, kwargs, MobileUNetGenerator)


@register_generator("mobile_unet_3blocks")
def mobile_unet_3blocks(**kwargs: Any) -> MobileResnetGenerator:
    """A shallow variant for quick experiments and tests."""
    return _with_blocks(3, kwargs, MobileUNetGenerator)
