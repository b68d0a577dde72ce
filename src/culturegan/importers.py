"""Import models trained by other code into culturegan pretrained folders.

``import_cyclegan`` reads a generator saved by the official CycleGAN code
(``torch.save(net.state_dict())``, e.g. ``latest_net_G.pth`` or the ``style_ukiyoe`` /
``style_vangogh`` / ``style_monet`` / ``style_cezanne`` zoo models) with ``weights_only=True``,
infers its size, and writes safetensors + config.json. The imported network is the official
one key for key, so it produces the same output.

Usage::

    import_cyclegan("style_ukiyoe.pth", "models/ukiyoe", domains=("photo", "ukiyoe"))
"""

from __future__ import annotations

from pathlib import Path

import torch

from culturegan.checkpoint import CheckpointError, pretrained_config, save_pretrained
from culturegan.models.generators import ResnetGenerator, convert_cyclegan_state_dict


def import_cyclegan(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    domains: tuple[str, str] = ("A", "B"),
) -> Path:
    """Convert an official CycleGAN ResNet generator (domains[0] -> domains[1])."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"no checkpoint file at '{checkpoint}'")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read '{checkpoint}' as a PyTorch state dict: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"'{checkpoint}' holds a {type(state).__name__}, not a state dict")
    try:
        cleaned, arch = convert_cyclegan_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"'{checkpoint}': {exc}") from None
    net = ResnetGenerator(**arch)
    try:
        net.load_state_dict(cleaned)
    except RuntimeError as exc:
        raise CheckpointError(
            f"'{checkpoint}' does not match a CycleGAN generator: {exc}"
        ) from None
    source, target = domains
    config = pretrained_config(
        kind="two_domain",
        recipe="imported_cyclegan",
        domains=[source, target],
        networks={"g_ab": net},
        directions={f"{source}->{target}": "g_ab"},
        size_multiple=net.size_multiple,
        imported_from=checkpoint.name,
    )
    return save_pretrained(out_dir, {"g_ab": net}, config)
