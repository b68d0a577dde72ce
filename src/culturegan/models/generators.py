"""Image-to-image generators.

``resnet_9blocks`` / ``resnet_6blocks`` follow the ResNet generator of Johnson et al. (2016) as
used by CycleGAN (Zhu et al., ICCV 2017): c7s1-ngf, two stride-2 downsamplings, N residual
blocks, two stride-2 transposed convolutions, c7s1-3 with tanh. Layers sit in one
``nn.Sequential`` named ``model`` in the same order as the official CycleGAN code, so that its
checkpoints load key for key (``model.1.weight`` is the first convolution, ``model.10`` the
first residual block, ``model.19`` the first transposed convolution with 9 blocks). Only the
official zoo setting is built: instance norm without affine parameters or running statistics,
so every convolution carries a bias, and no dropout.

Usage::

    g_ab = build_generator("resnet_9blocks", ngf=64)
    fake_b = g_ab(real_a)  # (B, 3, H, W) in [-1, 1], H and W multiples of g_ab.size_multiple
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from culturegan.models.registry import GENERATORS, build_generator, register_generator


def instance_norm(channels: int) -> nn.Module:
    # affine=False and no running stats: the official CycleGAN zoo setting.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), reflection padded (keys ``conv_block.{1,5}``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            instance_norm(dim),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator; input and output (B, C, H, W) in [-1, 1]."""

    size_multiple = 4  # two stride-2 downsamplings

    def __init__(
        self, *, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9
    ) -> None:
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"need n_blocks >= 0 and ngf >= 1, got {n_blocks}, {ngf}")
        self.config: dict[str, Any] = {
            "name": f"resnet_{n_blocks}blocks",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "n_blocks": n_blocks,
        }
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=True),
            instance_norm(ngf),
            nn.ReLU(inplace=True),
        ]
        for i in range(2):  # downsampling: (B, ngf, H, W) -> (B, 4 ngf, H/4, W/4)
            ch = ngf * 2**i
            layers += [
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=1, bias=True),
                instance_norm(ch * 2),
                nn.ReLU(inplace=True),
            ]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):  # upsampling back to (B, ngf, H, W)
            ch = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True
                ),
                instance_norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register_generator("resnet_9blocks")
def resnet_9blocks(**kwargs: Any) -> ResnetGenerator:
    return ResnetGenerator(n_blocks=9, **kwargs)


@register_generator("resnet_6blocks")
def resnet_6blocks(**kwargs: Any) -> ResnetGenerator:
    return ResnetGenerator(n_blocks=6, **kwargs)


@register_generator("resnet_2blocks")
def resnet_2blocks(**kwargs: Any) -> ResnetGenerator:
    """A shallow variant for quick CPU experiments and tests (not a CycleGAN zoo layout)."""
    return ResnetGenerator(n_blocks=2, **kwargs)


def generator_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a generator from the ``config`` dict it carries (as written to config.json).

    ``resnet_*`` configs build a ``ResnetGenerator`` of any block count (also unregistered ones
    such as files imported from the official code). Every other name goes through the
    registry: a registered generator accepts each key of the ``.config`` it carries, so
    ``build_generator(name, **rest)`` rebuilds it.
    """
    name = config.get("name", "")
    args = {k: v for k, v in config.items() if k != "name"}
    if name.startswith("resnet_") and "n_blocks" in config:
        return ResnetGenerator(
            in_channels=config["in_channels"],
            out_channels=config["out_channels"],
            ngf=config["ngf"],
            n_blocks=config["n_blocks"],
        )
    if name not in GENERATORS:
        raise ValueError(
            f"cannot rebuild generator from config {config}: unknown name '{name}' "
            f"(known: {', '.join(sorted(GENERATORS))})"
        )
    try:
        net = build_generator(name, **args)
    except TypeError as exc:
        raise ValueError(f"cannot rebuild generator from config {config}: {exc}") from None
    if getattr(net, "config", None) != config:
        raise ValueError(
            f"generator '{name}' rebuilt from {config} describes itself as "
            f"{getattr(net, 'config', None)}; the config.json does not match this culturegan"
        )
    return net


def convert_cyclegan_state_dict(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Clean an official CycleGAN generator state dict and infer its architecture.

    Drops a DataParallel ``module.`` prefix and the InstanceNorm ``running_mean`` /
    ``running_var`` / ``num_batches_tracked`` entries that checkpoints saved by old PyTorch
    versions carry (the official code patches them out the same way). Returns the cleaned state
    and the ``ResnetGenerator`` keyword arguments.
    """
    cleaned = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.rsplit(".", 1)[-1] in {"running_mean", "running_var", "num_batches_tracked"}:
            continue
        cleaned[key] = value
    if "model.1.weight" not in cleaned:
        raise ValueError(
            "not a CycleGAN ResNet generator state dict: no 'model.1.weight' key "
            f"(first keys: {', '.join(list(cleaned)[:5])})"
        )
    blocks = {k.split(".")[1] for k in cleaned if ".conv_block." in k}
    if not all(b.isdigit() for b in blocks):
        raise ValueError(f"unexpected residual block names {sorted(blocks)[:5]}")
    n_blocks = len(blocks)
    if {int(b) for b in blocks} != set(range(10, 10 + n_blocks)):
        raise ValueError(f"unexpected residual block positions {sorted(map(int, blocks))}")
    last_key = f"model.{10 + n_blocks + 7}.weight"
    if last_key not in cleaned:
        raise ValueError(f"no '{last_key}' (the last convolution of {n_blocks} blocks)")
    first, last = cleaned["model.1.weight"], cleaned[last_key]
    for key, weight in (("model.1.weight", first), (last_key, last)):  # 7 x 7 convolutions
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"'{key}' must be a tensor, got a {type(weight).__name__}")
        if weight.dim() != 4:
            raise ValueError(f"'{key}' must be a 4-D convolution weight, got {tuple(weight.shape)}")
    arch = {
        "in_channels": int(first.shape[1]),
        "out_channels": int(last.shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": n_blocks,
    }
    return cleaned, arch
