"""Import models trained by other code into culturegan pretrained folders.

``import_cyclegan`` reads a generator saved by the official CycleGAN code
(``torch.save(net.state_dict())``, e.g. ``latest_net_G.pth`` or the ``style_ukiyoe`` /
``style_vangogh`` / ``style_monet`` / ``style_cezanne`` zoo models) with ``weights_only=True``,
infers its size, and writes safetensors + config.json. The imported network is the official one
key for key, so it produces the same output.

The file is untrusted: every key must name a finite float tensor whose data holds its shape, the
inferred sizes are capped like those of a ``config.json``, and the shapes are compared on the
meta device before anything is allocated; a bad file is refused with a :class:`CheckpointError`
naming it and the key.

Usage::

    import_cyclegan("style_ukiyoe.pth", "models/ukiyoe", domains=("photo", "ukiyoe"))
"""

from __future__ import annotations

from pathlib import Path

import torch

from culturegan.checkpoint import (
    DEPTH_FIELDS,
    MAX_DEPTH_FIELD,
    MAX_SIZE_FIELD,
    CheckpointError,
    check_finite_weights,
    check_tensor_sizes,
    pretrained_config,
    save_pretrained,
    shape_differences,
)
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
    where = str(checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError(f"'{checkpoint}' holds a {type(state).__name__}, not a state dict")
    # Untrusted until checked: names, types, values and sizes, before anything is built.
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"'{checkpoint}': key {key!r:.80} is not a weight name")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"'{checkpoint}': '{key}' holds a {type(value).__name__}, not a tensor"
            )
    check_tensor_sizes(state, where)
    try:
        cleaned, arch = convert_cyclegan_state_dict(state)
    except ValueError as exc:
        raise CheckpointError(f"'{checkpoint}': {exc}") from None
    for key, value in cleaned.items():
        if not value.is_floating_point():
            raise CheckpointError(f"'{checkpoint}': weight '{key}' is {value.dtype}, not float")
    check_finite_weights(cleaned, where)
    for key, value in arch.items():
        cap = MAX_DEPTH_FIELD if key in DEPTH_FIELDS else MAX_SIZE_FIELD
        if not 1 <= value <= cap and not (key == "n_blocks" and value == 0):
            raise CheckpointError(f"'{checkpoint}': inferred {key} = {value} is outside [1, {cap}]")
    with torch.device("meta"):  # the shapes the inferred sizes imply, at no memory cost
        probe = ResnetGenerator(**arch)
    wrong = shape_differences(probe, cleaned)
    if wrong:
        raise CheckpointError(
            f"'{checkpoint}' does not match a CycleGAN generator with {arch}: first "
            f"differences: {', '.join(wrong[:3])}"
        )
    net = ResnetGenerator(**arch)
    net.load_state_dict(cleaned)
    source, target = domains
    config = pretrained_config(
        kind="two_domain",
        recipe="imported_cyclegan",
        domains=[source, target],
        networks={"g_ab": net},
        directions={f"{source}->{target}": "g_ab"},
        size_multiple=net.size_multiple,
        edge_margin=0,  # the official network's own output, pixel for pixel
        imported_from=checkpoint.name,
    )
    return save_pretrained(out_dir, {"g_ab": net}, config)
