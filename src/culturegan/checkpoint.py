"""Saving and loading: pretrained folders and resumable training state.

* A **pretrained folder** holds ``model.safetensors`` (weights, nothing executable) and
  ``config.json`` (format version, architecture of every network, domain names, normalisation),
  so it loads with no flags: ``load_pretrained(dir)``.
* **Training state** (networks, EMA copies, optimisers, schedulers, image pools, RNG states,
  step) is one ``torch.save`` file of tensors and plain containers, read back with
  ``weights_only=True`` so loading it cannot run code.

Every file is written atomically: to a temporary file in the same folder, flushed and fsynced,
then renamed over the old one. A process killed at any moment leaves either the previous file or
the new one, never a torn file.

Usage::

    save_pretrained(out_dir, {"g_ab": g_ab}, config)
    config, tensors = load_pretrained(out_dir)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from culturegan.fileio import atomic_write, write_json

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint or pretrained folder that cannot be read; the message names the file."""


# ----------------------------------------------------------------------------- training state


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state at '{path}'")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        raise CheckpointError(
            f"cannot read training state '{path}': {type(exc).__name__}: {exc}"
        ) from exc


# ----------------------------------------------------------------------------- pretrained folders


def save_pretrained(
    out_dir: str | Path, modules: dict[str, nn.Module], config: dict[str, Any]
) -> Path:
    """Write ``modules`` (name -> network) as one safetensors file plus ``config.json``."""
    out_dir = Path(out_dir)
    tensors = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
    config = {"format_version": FORMAT_VERSION, **config}
    atomic_write(out_dir / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp)))
    write_json(out_dir / CONFIG_NAME, config)
    return out_dir


# Every generator here maps images in [-1, 1] (pixels / 127.5 - 1) to images in [-1, 1].
NORMALIZATION = {"input_range": [-1.0, 1.0], "mean": [0.5] * 3, "std": [0.5] * 3}


def pretrained_config(
    *,
    kind: str,  # "two_domain" | "multi_domain"
    recipe: str,  # the recipe (or importer) that made the weights
    domains: list[str],
    networks: dict[str, nn.Module],  # name -> network carrying its ``.config``
    directions: dict[str, str],  # "source->target" -> network name
    size_multiple: int,  # images are padded to multiples of this
    **extra: Any,  # e.g. train_crop_size, latent_dim
) -> dict[str, Any]:
    """The ``config.json`` content of a pretrained folder (``save_pretrained`` adds the version)."""
    return {
        "kind": kind,
        "recipe": recipe,
        "domains": list(domains),
        "networks": {name: net.config for name, net in networks.items()},
        "directions": dict(directions),
        "size_multiple": size_multiple,
        "normalization": NORMALIZATION,
        **extra,
    }


def migrate(config: dict[str, Any]) -> dict[str, Any]:
    """Bring a pretrained ``config.json`` of an older format version up to the current one."""
    version = config.get("format_version")
    if version is None:
        raise CheckpointError("config.json has no 'format_version'; not a culturegan model")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"model format version {version} is newer than this culturegan understands "
            f"({FORMAT_VERSION}); upgrade culturegan"
        )
    # Version 1 is the first format: nothing to migrate yet.
    return config


def load_pretrained(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a pretrained folder: its migrated config and all its tensors (on the CPU)."""
    model_dir = Path(model_dir)
    config_path, weights_path = model_dir / CONFIG_NAME, model_dir / WEIGHTS_NAME
    if not model_dir.is_dir():
        raise CheckpointError(f"model folder '{model_dir}' does not exist")
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointError(
                f"'{model_dir}' is not a culturegan model folder: missing {needed.name}"
            )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"'{config_path}' is not valid JSON: {exc}") from None
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read weights '{weights_path}': {exc}") from None
    return migrate(config), tensors


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors stored under ``prefix.`` with the prefix removed."""
    start = prefix + "."
    out = {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}
    if not out:
        raise CheckpointError(f"the weights hold no network named '{prefix}'")
    return out
