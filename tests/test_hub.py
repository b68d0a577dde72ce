"""Hugging Face Hub: push a model folder, get it back, revisions, refusals, offline, ids.

Everything runs against the in-memory fake Hub of ``hub_server.py`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import write_domain
from culturegan.checkpoint import CheckpointError
from culturegan.config import load_config
from culturegan.hub import HubError, download_model, is_repo_id, model_card, push_to_hub
from culturegan.inference import Stylizer
from culturegan.training import train
from hub_server import FakeHub, closed_port_url, silent_url, use_hub

pytest.importorskip("huggingface_hub")

REPO = "culture-lab/ukiyoe-tiny"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real (one training step) CycleGAN folder: config.json + model.safetensors, no card."""
    root = tmp_path_factory.mktemp("hub_model")
    write_domain(root / "data/photo", 4, "photo", seed=1)
    write_domain(root / "data/art", 4, "art", seed=2)
    cfg = load_config(
        "cyclegan_tiny",
        {
            "data.root": str(root / "data"),
            "data.domains": "photo,art",
            "data.load_size": 36,
            "data.crop_size": 32,
            "model.ngf": 4,
            "model.ndf": 4,
            "train.steps": 1,
            "train.batch_size": 1,
            "train.num_samples": 1,
            "train.runs_dir": str(root / "runs"),
        },
    )
    return train(cfg, progress=False).run_dir / "model"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as server:
        use_hub(monkeypatch, server.url, tmp_path / "hf")
        yield server


def _photo() -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8))


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4:].split("\n---", 1)[0])


def test_push_then_download_gives_the_same_stylizer(hub, model_dir, tmp_path):
    url = push_to_hub(model_dir, REPO)
    assert re.fullmatch(rf"{hub.url}/{REPO}/commit/[0-9a-f]{{40}}", url)
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors"]

    folder = download_model(REPO, cache_dir=tmp_path / "fresh_cache")
    assert folder.is_relative_to(tmp_path / "fresh_cache")
    # Only the model files: the repo's .gitattributes is not fetched.
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    original, downloaded = Stylizer.from_pretrained(model_dir), Stylizer.from_pretrained(folder)
    for target in ("art", "photo"):
        a = np.asarray(original(_photo(), target=target).images[0])
        b = np.asarray(downloaded(_photo(), target=target).images[0])
        assert np.array_equal(a, b)

    card = (folder / "README.md").read_text()
    front = _front_matter(card)
    assert front["library_name"] == "culturegan"
    assert front["tags"] == ["culturegan", "style-transfer", "gan"]
    assert "license" not in front  # the config names none
    assert "photo, art" in card and "photo->art" in card and "art->photo" in card
    assert f'Stylizer.from_pretrained("{REPO}")' in card
    assert f"culturegan stylize photo.jpg --model {REPO} --out out/" in card


def test_the_cli_and_from_pretrained_take_hub_ids(hub, model_dir, tmp_path, capsys):
    from culturegan.cli import main

    assert main(["push-to-hub", str(model_dir), REPO, "--message", "first"]) == 0
    assert f"-> {hub.url}/{REPO}/commit/" in capsys.readouterr().out
    photo = tmp_path / "p.png"
    _photo().save(photo)
    out = tmp_path / "out"
    assert main(["stylize", str(photo), "--model", REPO, "--target", "art", "--out", str(out)]) == 0
    by_id = Stylizer.from_pretrained(REPO)(_photo(), target="art").images[0]
    local = Stylizer.from_pretrained(model_dir)(_photo(), target="art").images[0]
    assert np.array_equal(np.asarray(by_id), np.asarray(local))
    assert np.array_equal(np.asarray(Image.open(out / "p.png")), np.asarray(local))
    assert main(["stylize", str(photo), "--model", "culture-lab/nope", "--out", str(out)]) == 2
    assert "culture-lab/nope" in capsys.readouterr().err


def test_a_revision_gets_the_version_pushed_then(hub, model_dir, tmp_path):
    first = push_to_hub(model_dir, REPO).rsplit("/", 1)[1]
    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**config, "license": "MIT"}))
    second = push_to_hub(edited, REPO, commit_message="add a licence").rsplit("/", 1)[1]
    assert second != first

    latest = download_model(REPO)
    assert latest.is_relative_to(tmp_path / "hf" / "hub")  # HF_HUB_CACHE, as use_hub set it
    assert json.loads((latest / "config.json").read_text())["license"] == "MIT"
    assert _front_matter((latest / "README.md").read_text())["license"] == "mit"
    for old in (download_model(REPO, revision=first), download_model(f"{REPO}@{first}")):
        assert old.name == first and old != latest
        assert "license" not in json.loads((old / "config.json").read_text())
    # The weights did not change, so the second commit did not upload them again.
    assert sum(method == "PUT" for method, _ in hub.requests) == 1


def test_push_to_a_branch(hub, model_dir):
    push_to_hub(model_dir, REPO)
    url = push_to_hub(model_dir, REPO, revision="v2", commit_message="v2")
    assert download_model(REPO, revision="v2").name == url.rsplit("/", 1)[1]


def test_a_refused_or_unreachable_push_says_what_to_check(hub, model_dir, monkeypatch, tmp_path):
    hub.deny_writes = True
    with pytest.raises(HubError, match=f"refused the push to '{REPO}' \\(HTTP 403: .*logged in"):
        push_to_hub(model_dir, REPO)
    use_hub(monkeypatch, closed_port_url(), tmp_path / "hf")
    with pytest.raises(HubError, match="cannot reach the Hub at http://127.0.0.1"):
        push_to_hub(model_dir, REPO)
    assert not hub.repos


def test_refusals_name_the_repo_and_the_reason(hub, model_dir, tmp_path):
    with pytest.raises(HubError, match="no model 'culture-lab/missing' on http://127.0.0.1"):
        download_model("culture-lab/missing")
    push_to_hub(model_dir, REPO)
    with pytest.raises(HubError, match=f"'{REPO}' has no revision 'v9'"):
        download_model(REPO, revision="v9")

    hub.add_repo("culture-lab/pickled", {"config.json": b"{}", "pytorch_model.bin": b"\x80\x04"})
    with pytest.raises(HubError, match="no safetensors weights.*pytorch_model.bin.*never from"):
        download_model("culture-lab/pickled")
    assert not any("pytorch_model.bin" in path for _, path in hub.requests)  # nothing fetched
    hub.add_repo("culture-lab/weights-only", {"model.safetensors": b"\0" * 8})
    with pytest.raises(HubError, match="not a culturegan model: it has no config.json"):
        download_model("culture-lab/weights-only")

    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    with pytest.raises(CheckpointError, match="missing config.json"):
        push_to_hub(not_a_model, REPO)
    with pytest.raises(ValueError, match="not a Hub model id"):
        download_model("not/a/repo")


def test_unreachable_hub_fails_fast_or_uses_the_cache(
    hub, model_dir, monkeypatch, tmp_path, caplog
):
    push_to_hub(model_dir, REPO)
    cached = download_model(REPO)
    home = tmp_path / "hf"  # the same cache, a Hub that is gone

    use_hub(monkeypatch, closed_port_url(), home)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="culturegan.hub"):
        assert download_model(REPO) == cached
    assert time.perf_counter() - start < 2
    assert "cannot reach the Hub" in caplog.text and "using the cached" in caplog.text
    start = time.perf_counter()
    with pytest.raises(
        HubError, match="cannot reach the Hub at http://127.0.0.1.*not in the cache"
    ):
        download_model("culture-lab/never-downloaded")
    assert time.perf_counter() - start < 2

    use_hub(monkeypatch, hub.url, home, offline=True)
    n_requests = len(hub.requests)
    assert download_model(REPO) == cached
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set, and 'culture-lab/other'"):
        download_model("culture-lab/other")
    assert len(hub.requests) == n_requests  # offline means no request at all


def test_a_hub_that_never_answers_the_connection_fails_within_two_seconds(monkeypatch, tmp_path):
    with silent_url() as url:
        use_hub(monkeypatch, url, tmp_path / "hf")
        start = time.perf_counter()
        with pytest.raises(HubError, match="not in the cache"):
            download_model(REPO)
        assert time.perf_counter() - start < 2


def test_missing_extra_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # "import huggingface_hub" fails
    # Checked first: before the id, the folder or the network.
    for call in (lambda: download_model(REPO), lambda: push_to_hub(tmp_path, REPO)):
        with pytest.raises(HubError, match=re.escape("pip install 'culturegan[hub]'")):
            call()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("culture-lab/ukiyoe-tiny", True),
        ("Org_1/model.v1.5", True),
        ("org/name@main", True),
        ("org/name@0123456789abcdef0123456789abcdef01234567", True),
        ("org/name@refs/pr/3", True),
        ("name", False),  # a Hub id has a namespace
        ("runs/000-cyclegan/model", False),
        ("./org/name", False),
        ("/org/name", False),
        ("~/org/name", False),
        ("org\\name", False),
        ("org/config.json", False),
        ("org/model.safetensors", False),
        ("org/name@", False),
        ("org/-name", False),
        ("org/name.", False),
        ("org/na--me", False),
        ("org/na..me", False),
        ("org/name.git", False),
        ("org/na me", False),
        ("org/", False),
        ("", False),
        ("local/model", False),  # exists in the working folder (made below)
    ],
)
def test_is_repo_id(text, expected, tmp_path, monkeypatch):
    (tmp_path / "local/model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert is_repo_id(text) is expected


def test_model_card_of_a_multi_domain_config():
    config = {
        "kind": "multi_domain",
        "recipe": "multidomain",
        "domains": ["photo", "ukiyoe", "ink_wash"],
        "directions": {"photo->ukiyoe": "g", "photo->ink_wash": "g"},
        "networks": {"g": {"name": "stargan", "ngf": 8}},
        "license": "Apache-2.0",
    }
    card = model_card(config, repo_id="org/cultures")
    assert _front_matter(card) == {
        "library_name": "culturegan",
        "tags": ["culturegan", "style-transfer", "gan"],
        "license": "apache-2.0",
    }
    assert "- **Kind:** multi_domain" in card and "- **Recipe:** multidomain" in card
    assert "`g`: stargan (ngf=8)" in card and "photo->ink_wash: network `g`" in card
    assert 'stylizer("photo.jpg", target="ukiyoe")' in card
