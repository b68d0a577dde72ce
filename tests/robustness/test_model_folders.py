"""Untrusted model folders: every malformed config.json or weight file is refused with a message
naming the file, before anything large is allocated (issue #14, items 2, 3 and 9)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from conftest import save_tiny_model
from culturegan.checkpoint import CheckpointError
from culturegan.cli import main
from culturegan.inference import Stylizer


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid two-domain folder (mobile generator, ngf 4) and its config."""
    out = save_tiny_model(tmp_path_factory.mktemp("good") / "model")
    return out, json.loads((out / "config.json").read_text())


def folder_with(tmp_path, good, config_text: str):
    src, _ = good
    out = tmp_path / "m"
    out.mkdir(exist_ok=True)
    (out / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    (out / "config.json").write_text(config_text)
    return out


def save_weights(folder, tensors) -> None:
    """Replace the folder's weights and record their hash in its config, as a save would: the
    checks after the hash (values, names, shapes) are then the ones that must refuse them."""
    save_file(tensors, str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(
        (folder / "model.safetensors").read_bytes()
    ).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def edited(config: dict, path: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


DELETE = object()
CASES = [  # (what, config.json text or an edit of the good config, expected message)
    ("a list", "[]", "must hold a JSON object"),
    ("a string", '"model"', "must hold a JSON object"),
    ("not JSON", "{", "not valid JSON"),
    ("no domains", ("domains", DELETE), "'domains' must be"),
    ("no networks", ("networks", DELETE), "'networks' must be"),
    ("string version", ("format_version", "1"), "must be an integer"),
    ("future version", ("format_version", 99), "newer than this culturegan"),
    ("size_multiple 0", ("size_multiple", 0), "'size_multiple' must be"),
    ("size_multiple 100000", ("size_multiple", 100000), "'size_multiple' must be"),
    ("edge_margin -1", ("edge_margin", -1), "'edge_margin' must be"),
    ("edge_margin true", ("edge_margin", True), "'edge_margin' must be"),
    ("direction without arrow", ("directions", {"photoart": "g_ab"}), "not 'source->target'"),
    ("direction to unknown domain", ("directions", {"photo->x": "g_ab"}), "not 'source->target'"),
    ("direction to no network", ("directions", {"photo->art": "nope"}), "names no network"),
    ("latent_dim 0", ("latent_dim", 0), "'latent_dim' = 0"),
    ("n_blocks 1e8", ("networks.g_ab.n_blocks", 100_000_000), "n_blocks' = 100000000"),
    ("ngf 1e6", ("networks.g_ab.ngf", 1_000_000), "ngf' = 1000000"),
    ("num_domains 1e6", ("networks.g_ab.num_domains", 1_000_000), "num_domains' = 1000000"),
    ("ngf that the weights do not have", ("networks.g_ab.ngf", 8), "do not fit"),
    ("unknown generator", ("networks.g_ab.name", "nope"), "cannot be built"),
    ("unexpected argument", ("networks.g_ab.colour", 3), "cannot be built"),
    ("unknown kind", ("kind", "three_domain"), "not a style-transfer model"),
    ("duplicate domains", ("domains", ["a", "a"]), "distinct"),
    ("NaN size", ("networks.g_ab.expansion", math.nan), "not finite"),
]


@pytest.mark.parametrize(("what", "change", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_config_is_refused_with_the_file_named(tmp_path, capsys, good, what, change,
                                                         message):  # fmt: skip
    text = change if isinstance(change, str) else json.dumps(edited(good[1], *change))
    folder = folder_with(tmp_path, good, text)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=message):
        Stylizer.from_pretrained(folder)
    assert time.perf_counter() - t0 < 5  # refused before anything large is built
    for command in (["info", str(folder)], ["stylize", str(folder), "--model", str(folder),
                                             "--out", str(tmp_path / "out")]):  # fmt: skip
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and message.split("'")[0] in err
    assert not (tmp_path / "out").exists()


def test_weights_with_nan_are_refused(tmp_path, good):
    folder = folder_with(tmp_path, good, json.dumps(good[1]))
    tensors = load_file(str(folder / "model.safetensors"))
    key = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_weights(folder, tensors)
    with pytest.raises(CheckpointError, match=f"weight '{key}' holds NaN"):
        Stylizer.from_pretrained(folder)


def test_missing_or_extra_weights_are_refused(tmp_path, good):
    folder = folder_with(tmp_path, good, json.dumps(good[1]))
    tensors = load_file(str(folder / "model.safetensors"))
    extra = dict(tensors, **{"g_ab.model.99.weight": torch.zeros(3)})
    save_weights(folder, extra)
    with pytest.raises(CheckpointError, match="do not fit"):
        Stylizer.from_pretrained(folder)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=6,
)
FIELDS = ["format_version", "kind", "domains", "networks", "directions", "size_multiple",
          "networks.g_ab", "networks.g_ab.name", "networks.g_ab.ngf", "networks.g_ab.n_blocks",
          "networks.g_ab.expansion", "networks.g_ab.in_channels", "latent_dim"]  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_value_in_any_field_loads_or_is_refused_cleanly(tmp_path, good, field, value):
    """Property: whatever a config.json holds, loading either works or raises CheckpointError
    (never another exception, never a long allocation)."""
    text = json.dumps(edited(good[1], field, value))
    folder = folder_with(tmp_path, good, text)
    t0 = time.perf_counter()
    with contextlib.suppress(CheckpointError):
        Stylizer.from_pretrained(folder)
    assert time.perf_counter() - t0 < 5
