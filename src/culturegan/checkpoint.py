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
from hashlib import sha256
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load
from safetensors.torch import save as safetensors_bytes
from torch import nn

from culturegan.fileio import atomic_write, write_json

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_HASH = "weights_sha256"  # config.json key: the SHA-256 of the weights file
CONFIG_NAME = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint or pretrained folder that cannot be read; the message names the file."""


# ----------------------------------------------------------------------------- training state


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    def write(tmp: Path) -> None:
        # Through a Python file: a failed write (disk full) then surfaces as the OSError
        # behind torch's RuntimeError, which atomic_write reports naming the file.
        with open(tmp, "wb") as fh:
            torch.save(state, fh)

    return atomic_write(path, write)


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
    """Write ``modules`` (name -> network) as one safetensors file plus ``config.json``.

    Each file is replaced atomically, the weights first; the config records the weights' SHA-256
    so that a folder left half-written (a save killed between the two renames over an older
    model) is refused by :func:`load_pretrained` instead of pairing one model's config with
    another's weights.
    """
    out_dir = Path(out_dir)
    tensors = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
    # Serialised in memory, written by Python: a failed write is an OSError (safetensors' own
    # writer reports it as a SafetensorError with the errno inside the text).
    data = safetensors_bytes(tensors)
    config = {"format_version": FORMAT_VERSION, **config, WEIGHTS_HASH: sha256(data).hexdigest()}
    atomic_write(out_dir / WEIGHTS_NAME, lambda tmp: tmp.write_bytes(data))
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
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"config.json: 'format_version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"model format version {version} is newer than this culturegan understands "
            f"({FORMAT_VERSION}); upgrade culturegan"
        )
    # Version 1 is the first format: nothing to migrate yet.
    return config


# Limits for sizes read from an untrusted config.json, checked before anything is built: far
# above every network here, far below what exhausts memory. Depth-like fields get a tighter cap
# (each unit is a Python module; 1e8 of them exhaust memory before a tensor is allocated).
MAX_SIZE_FIELD = 4096  # channels, dimensions, domains
MAX_DEPTH_FIELD = 64  # blocks, layers, downsamplings
DEPTH_FIELDS = {"n_blocks", "n_down", "n_bottleneck", "n_layers", "d_layers", "d_down"}
KINDS = ("two_domain", "multi_domain")


def validate_config(config: Any, where: str) -> dict[str, Any]:
    """Check the structure and every size of a pretrained ``config.json`` (``where`` names the
    file in the messages); return it. Sizes are then checked against the weights when the
    networks are built (``inference._load_networks``)."""

    def bad(message: str) -> CheckpointError:
        return CheckpointError(f"'{where}': {message}")

    if not isinstance(config, dict):
        raise bad(f"config.json must hold a JSON object, not {type(config).__name__}")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad(f"'format_version' must be an integer, got {version!r}")
    if config.get("kind", "two_domain") not in KINDS:
        raise bad(f"unknown kind {config.get('kind')!r} (known: {', '.join(KINDS)})")
    domains = config.get("domains")
    if (
        not isinstance(domains, list)
        or not 1 <= len(domains) <= MAX_SIZE_FIELD
        or not all(isinstance(d, str) and d and "->" not in d for d in domains)
        or len(set(domains)) != len(domains)
    ):
        raise bad(f"'domains' must be a list of distinct non-empty names, got {domains!r:.200}")
    networks = config.get("networks")
    if not isinstance(networks, dict) or not networks or len(networks) > 16:
        raise bad("'networks' must be an object of 1 to 16 network configs")
    for name, net in networks.items():
        if not isinstance(net, dict) or not isinstance(net.get("name"), str):
            raise bad(f"network '{name}' needs an object with a string 'name'")
        for key, value in net.items():
            _check_size(key, value, f"networks.{name}.{key}", bad)
    directions = config.get("directions")
    if not isinstance(directions, dict) or not directions:
        raise bad("'directions' must be a non-empty object 'source->target': network")
    for direction, net_name in directions.items():
        source, arrow, target = str(direction).partition("->")
        if not arrow or source not in domains or target not in domains:
            raise bad(f"direction '{direction}' is not 'source->target' over its domains")
        if net_name not in networks:
            raise bad(f"direction '{direction}' names no network of this folder: {net_name!r}")
    multiple = config.get("size_multiple", 4)
    if not isinstance(multiple, int) or isinstance(multiple, bool) or not 1 <= multiple <= 256:
        raise bad(f"'size_multiple' must be an integer in [1, 256], got {multiple!r}")
    margin = config.get("edge_margin", 0)
    if not isinstance(margin, int) or isinstance(margin, bool) or not 0 <= margin <= 256:
        raise bad(f"'edge_margin' must be an integer in [0, 256], got {margin!r}")
    for key in ("latent_dim", "style_dim", "train_crop_size"):
        if key in config:
            _check_size(key, config[key], key, bad, minimum=1)
    return config


def _check_size(key: str, value: Any, path: str, bad, *, minimum: int = 0) -> None:
    if isinstance(value, (bool, str)) or value is None:
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise bad(f"'{path}' is not finite")
        return
    if isinstance(value, int):
        cap = MAX_DEPTH_FIELD if key in DEPTH_FIELDS else MAX_SIZE_FIELD
        if not minimum <= value <= cap:
            raise bad(f"'{path}' = {value} is outside [{minimum}, {cap}]")
        return
    if isinstance(value, list):
        for i, item in enumerate(value[: MAX_SIZE_FIELD + 1]):
            _check_size(key, item, f"{path}[{i}]", bad, minimum=minimum)
        if len(value) > MAX_SIZE_FIELD:
            raise bad(f"'{path}' has {len(value)} items")
        return
    raise bad(f"'{path}' has an unexpected value {value!r:.80}")


def check_finite_weights(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights holding NaN or infinity (they render black or noise images silently)."""
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"'{where}': weight '{key}' holds NaN or infinite values")


def check_tensor_sizes(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuse tensors whose shape claims more elements than their data holds (an expanded,
    stride-0 tensor of a few bytes posing as a huge weight): sizes inferred from such a file
    would make us allocate far more than the file holds."""
    for key, value in tensors.items():
        needed = (value.storage_offset() + value.numel()) * value.element_size()
        if value.numel() and value.untyped_storage().nbytes() < needed:
            raise CheckpointError(
                f"'{where}': weight '{key}' of shape {tuple(value.shape)} holds only "
                f"{value.untyped_storage().nbytes()} bytes of data (an expanded tensor)"
            )


def shape_differences(expected: nn.Module, tensors: dict[str, torch.Tensor]) -> list[str]:
    """The keys where ``tensors`` differ from the state of ``expected`` (missing, extra, or of
    another shape); build ``expected`` on the meta device to compare at no memory cost."""
    want = {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    return sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]


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
    if not isinstance(config, dict):
        raise CheckpointError(f"'{config_path}': config.json must hold a JSON object")
    config = migrate(config)
    if config.get("kind", "two_domain") in KINDS:  # judges and classifiers check their own
        validate_config(config, config_path)
    try:
        data = weights_path.read_bytes()
        expected = config.get(WEIGHTS_HASH)
        if expected is not None and sha256(data).hexdigest() != expected:
            raise CheckpointError(
                f"'{weights_path}' is not the weights '{config_path}' was saved with (their "
                "SHA-256 differs): a save was interrupted between the two files, or one was "
                "changed; save or export the model again"
            )
        tensors = load(data)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read weights '{weights_path}': {exc}") from None
    check_finite_weights(tensors, str(weights_path))
    return config, tensors


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors stored under ``prefix.`` with the prefix removed."""
    start = prefix + "."
    out = {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}
    if not out:
        raise CheckpointError(f"the weights hold no network named '{prefix}'")
    return out
