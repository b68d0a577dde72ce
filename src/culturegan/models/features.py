"""Intermediate generator features and the patch projection heads of PatchNCE (CUT).

Contrastive unpaired translation (Park et al., ECCV 2020) compares encoder features of an input
image and of its translation, patch by patch. ``encoder_features`` reads those features from any
generator whose layers sit in one ``nn.Sequential`` named ``model`` (``ResnetGenerator`` and
``MobileResnetGenerator``): it runs the layers one by one and stops after the last one asked
for, so state-dict keys stay those of the plain network. ``PatchProjector`` is CUT's
``PatchSampleF``: for each chosen layer a two-layer MLP maps the features at the sampled
positions to unit vectors. The positions are drawn by the caller (the training recipe owns all
randomness) and passed in.

Usage::

    layers = nce_layers_of(g_ab)                        # e.g. (0, 4, 7, 10, 14)
    feats = encoder_features(g_ab, real_a, layers)      # [(B, C_l, H_l, W_l), ...]
    heads = PatchProjector([f.shape[1] for f in feats])
    ids = [torch.randperm(f.shape[2] * f.shape[3])[:256] for f in feats]
    vectors = heads(feats, ids)                         # [(B * 256, 256), ...] unit length
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.models.generators import ResnetGenerator


def nce_layers_of(generator: nn.Module) -> tuple[int, ...]:
    """The generator's default PatchNCE layers: indices into ``generator.model``.

    CUT uses ``0,4,8,12,16`` on its ResNet (the padded image, the two downsampling
    convolutions, the first and the fifth residual block). Our ``ResnetGenerator`` has no
    anti-aliasing layers, so the same places are 0, 4, 7, 10 and 14; a network with fewer
    blocks takes its last one instead of the fifth. Other generators declare ``nce_layers``.
    """
    declared = getattr(generator, "nce_layers", None)
    if declared is not None:
        return tuple(declared)
    if isinstance(generator, ResnetGenerator):
        first_block = 10
        n_blocks = generator.config["n_blocks"]
        if n_blocks == 0:
            return (0, 4, 7)
        return tuple(sorted({0, 4, 7, first_block, first_block + min(4, n_blocks - 1)}))
    raise ValueError(
        f"{type(generator).__name__} declares no nce_layers; pass the layer indices explicitly"
    )


def parse_layers(value: str | Sequence[int] | None, generator: nn.Module) -> tuple[int, ...]:
    """``"0,4,7"`` or ``[0, 4, 7]``; empty or None means the generator's defaults."""
    if value is None or (isinstance(value, str) and not value.strip()) or len(value) == 0:
        return nce_layers_of(generator)
    items = value.split(",") if isinstance(value, str) else value
    try:
        layers = tuple(sorted({int(str(v).strip()) for v in items}))
    except ValueError:
        raise ValueError(f"nce_layers must be integers like '0,4,7', got {value!r}") from None
    n = len(_layers(generator))
    if layers[0] < 0 or layers[-1] >= n:
        raise ValueError(f"nce_layers {layers} out of range: the generator has layers 0..{n - 1}")
    return layers


def _layers(generator: nn.Module) -> nn.Sequential:
    model = getattr(generator, "model", None)
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"{type(generator).__name__} has no nn.Sequential 'model'; encoder_features "
            "needs the layers in order"
        )
    return model


def encoder_features(
    generator: nn.Module, x: torch.Tensor, layers: Sequence[int]
) -> list[torch.Tensor]:
    """Outputs of ``generator.model[i]`` for each i in ``layers`` (sorted), for input ``x``.

    Only the layers up to ``max(layers)`` run. A feature followed by an in-place layer (ReLU)
    is copied first, so the in-place operation cannot change it.
    """
    model = _layers(generator)
    wanted = sorted(set(layers))
    if not wanted:
        return []
    last = wanted[-1]
    if wanted[0] < 0 or last >= len(model):
        raise ValueError(f"layers {wanted} out of range: the generator has 0..{len(model) - 1}")
    feats = []
    h = x
    for i, layer in enumerate(model):
        h = layer(h)
        if i in wanted:
            following = model[i + 1] if i + 1 < len(model) else None
            feats.append(h.clone() if getattr(following, "inplace", False) else h)
        if i == last:
            break
    return feats


class PatchProjector(nn.Module):
    """One MLP per feature layer (Linear-ReLU-Linear, CUT's ``netF``) and L2 normalisation.

    ``forward(feats, patch_ids)`` takes features (B, C_l, H_l, W_l) and, per layer, a 1-D
    tensor of flat positions in [0, H_l W_l); the same positions are used for every image of
    the batch. Returns per layer (B * len(ids), dim) unit vectors, image-major.
    """

    def __init__(self, channels: Sequence[int], dim: int = 256) -> None:
        super().__init__()
        self.config = {"channels": list(channels), "dim": dim}
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
            for c in channels
        )
        for mlp in self.mlps:  # CUT initialises netF with xavier, gain 0.02
            for m in mlp:
                if isinstance(m, nn.Linear):
                    nn.init.xavier_normal_(m.weight, gain=0.02)
                    nn.init.zeros_(m.bias)

    def forward(
        self, feats: Sequence[torch.Tensor], patch_ids: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        if len(feats) != len(self.mlps) or len(patch_ids) != len(self.mlps):
            raise ValueError(
                f"PatchProjector has {len(self.mlps)} heads, got {len(feats)} feature maps "
                f"and {len(patch_ids)} id sets"
            )
        out = []
        for feat, ids, mlp in zip(feats, patch_ids, self.mlps, strict=True):
            b, c = feat.shape[:2]
            flat = feat.flatten(2).transpose(1, 2)  # (B, H W, C)
            picked = flat[:, ids.to(feat.device), :].reshape(-1, c)  # (B N, C)
            out.append(F.normalize(mlp(picked), dim=1))
        return out
