"""Untrusted CycleGAN ``.pth`` files: every malformed state dict is refused by
``import-cyclegan`` with one line naming the file and the key, before anything large is built,
and the input file is left as it was (issue #14, item 4)."""

from __future__ import annotations

import contextlib
import hashlib
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturegan.checkpoint import CheckpointError
from culturegan.cli import main
from culturegan.importers import import_cyclegan
from culturegan.inference import Stylizer
from culturegan.models.generators import ResnetGenerator


def good_state() -> dict[str, torch.Tensor]:
    """An official-layout generator state dict, as small as it gets (ngf 2, one block)."""
    torch.manual_seed(0)
    return ResnetGenerator(ngf=2, n_blocks=1).state_dict()


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def huge_expanded() -> torch.Tensor:
    # Four bytes of data posing as a (100000, 3, 7, 7) weight: ngf 100000 if trusted.
    return torch.zeros(1).expand(100_000, 3, 7, 7)


def nan_weight() -> torch.Tensor:
    weight = good_state()["model.4.weight"].clone()
    weight.view(-1)[3] = float("nan")
    return weight


CASES = [  # (what, key to set, value, or a whole object; expected text besides the file)
    ("1-D first weight", "model.1.weight", torch.zeros(6), "'model.1.weight' must be a 4-D"),
    ("a string value", "model.4.bias", "hello", "'model.4.bias' holds a str"),
    ("an integer key", 7, torch.zeros(2), "key 7 is not a weight name"),
    (
        "an expanded tensor claiming ngf 100000",
        "model.1.weight",
        huge_expanded(),
        "'model.1.weight' of shape (100000, 3, 7, 7) holds only 4 bytes",
    ),  # fmt: skip
    ("NaN weights", "model.4.weight", nan_weight(), "'model.4.weight' holds NaN"),
    (
        "integer weights",
        "model.4.weight",
        torch.zeros(4, 2, 3, 3, dtype=torch.int64),
        "'model.4.weight' is torch.int64",
    ),  # fmt: skip
    ("a wrong shape", "model.4.weight", torch.zeros(4, 2, 5, 5), "model.4.weight"),
    ("a missing key", "model.4.bias", None, "model.4.bias"),
    ("a list", None, [1, 2], "holds a list, not a state dict"),
    ("no generator keys", None, {"weight": torch.zeros(2)}, "no 'model.1.weight' key"),
]


@pytest.mark.parametrize(("what", "key", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_state_dicts_are_refused_naming_file_and_key(tmp_path, capsys, what, key,
                                                              value, message):  # fmt: skip
    if key is None and value is not None:
        state = value
    else:
        state = good_state()
        if value is None:
            del state[key]
        else:
            state[key] = value
    pth = tmp_path / "latest_net_G.pth"
    torch.save(state, pth)
    before = sha(pth)
    out = tmp_path / "imported"
    t0 = time.perf_counter()
    code = main(["import-cyclegan", str(pth), "--out", str(out)])
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 5  # nothing huge was built
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(pth) in err and message in err, err
    assert sha(pth) == before and not out.exists()


def test_a_good_state_dict_imports_and_stylizes(tmp_path):
    pth = tmp_path / "g.pth"
    torch.save(good_state(), pth)
    out = import_cyclegan(pth, tmp_path / "m", domains=("photo", "art"))
    stylizer = Stylizer.from_pretrained(out)
    assert list(stylizer.directions) == ["photo->art"]


def tensors() -> st.SearchStrategy:
    shapes = st.lists(st.integers(0, 5), min_size=0, max_size=5)
    plain = shapes.map(lambda s: torch.ones(s))
    huge = st.tuples(st.integers(1, 10**6), st.integers(1, 10**4)).map(
        lambda s: torch.ones(1, 1, 1, 1).expand(s[0], s[1], 7, 7)
    )
    special = st.sampled_from([float("nan"), float("inf"), 0.0]).map(lambda v: torch.full((4,), v))
    return plain | huge | special | st.just(torch.zeros(2, dtype=torch.int32))


VALUES = tensors() | st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers())
KEYS = st.sampled_from(list(good_state())) | st.text(max_size=20) | st.integers()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(KEYS, VALUES, min_size=1, max_size=3))
def test_any_state_dict_imports_or_is_refused_cleanly(tmp_path, changes):
    """Property: whatever the .pth holds, importing works (and the model loads) or raises
    CheckpointError naming the file; never another exception, never a long allocation."""
    state: dict = dict(good_state())
    state.update(changes)
    pth = tmp_path / "g.pth"
    torch.save(state, pth)
    t0 = time.perf_counter()
    with contextlib.suppress(CheckpointError):
        Stylizer.from_pretrained(import_cyclegan(pth, tmp_path / "m"))
    assert time.perf_counter() - t0 < 5
