"""Dataset layouts and splits: both layouts, hash splits that stay put when files are added,
the manifest, and the errors a user can act on."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from culturegan.data.splits import (
    MANIFEST_NAME,
    DatasetSplits,
    detect_layout,
    hash_split,
    load_splits,
)


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


TINY_PNG = _tiny_png()


def write_images(folder: Path, names: list[str]) -> list[Path]:
    """Tiny valid PNGs (all the same bytes: content does not matter to the split)."""
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(TINY_PNG)
        paths.append(path)
    return paths


def numbered(n: int, start: int = 0, prefix: str = "img") -> list[str]:
    return [f"{prefix}_{i:04d}.png" for i in range(start, start + n)]


def assignment(splits: DatasetSplits) -> dict[Path, str]:
    return {
        p: part
        for d in splits.domains
        for part in ("train", "val", "test")
        for p in getattr(d, part)
    }


# ---------------------------------------------------------------------------- layouts


def test_cyclegan_layout(tmp_path):
    write_images(tmp_path / "trainA", numbered(3))
    write_images(tmp_path / "trainB", numbered(4))
    write_images(tmp_path / "testA", numbered(2))
    write_images(tmp_path / "testB", numbered(1))
    write_images(tmp_path / "valB", numbered(2))
    assert detect_layout(tmp_path) == "cyclegan"
    splits = load_splits(tmp_path)
    assert splits.layout == "cyclegan" and splits.names == ["A", "B"]
    assert splits.manifest_path is None and not (tmp_path / MANIFEST_NAME).exists()
    a, b = splits.domain("A"), splits.domain("B")
    assert (len(a.train), len(a.val), len(a.test)) == (3, 0, 2)
    assert (len(b.train), len(b.val), len(b.test)) == (4, 2, 1)
    assert a.train[0] == tmp_path / "trainA" / "img_0000.png"

    named = load_splits(tmp_path, domains=["photo", "monet"])
    assert named.names == ["photo", "monet"] and len(named.domain("monet").train) == 4
    with pytest.raises(ValueError, match="two domain names"):
        load_splits(tmp_path, domains=["photo"])


def test_domains_layout_respects_ratios_and_ignores_hidden_folders(tmp_path):
    write_images(tmp_path / "photo", numbered(200))
    write_images(tmp_path / "ukiyoe", numbered(120, prefix="u") + ["sub/deep.png"])
    write_images(tmp_path / "_heldout_photos", numbered(3))
    write_images(tmp_path / ".cache", numbered(3))
    assert detect_layout(tmp_path) == "domains"
    splits = load_splits(tmp_path)
    assert splits.layout == "domains" and splits.names == ["photo", "ukiyoe"]
    photo = splits.domain("photo")
    counts = [len(photo.train), len(photo.val), len(photo.test)]
    assert sum(counts) == 200
    assert 140 <= counts[0] <= 180 and 6 <= counts[1] <= 35 and 6 <= counts[2] <= 35
    assert splits.manifest_path == tmp_path / MANIFEST_NAME
    manifest = json.loads(splits.manifest_path.read_text())
    assert manifest["format_version"] == 1 and manifest["seed"] == 0
    assert manifest["ratios"] == [0.8, 0.1, 0.1]
    assert len(manifest["files"]) == 321
    assert manifest["files"]["ukiyoe/sub/deep.png"] in ("train", "val", "test")
    for path, part in assignment(splits).items():
        key = path.relative_to(tmp_path).as_posix()
        assert manifest["files"][key] == part
    # Lists are in sorted relative-path order, so runs are deterministic.
    assert photo.train == sorted(photo.train)


def test_domain_selection_and_order(tmp_path):
    for name in ("art", "ink", "photo"):
        write_images(tmp_path / name, numbered(10))
    splits = load_splits(tmp_path, domains=["photo", "ink"])
    assert splits.names == ["photo", "ink"]
    with pytest.raises(KeyError, match="photo, ink"):
        splits.domain("art")
    with pytest.raises(ValueError, match=r"'monet'.*available: art, ink, photo"):
        load_splits(tmp_path, domains=["photo", "monet"])


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        detect_layout(tmp_path / "missing")
    write_images(tmp_path / "_private", numbered(4))
    with pytest.raises(ValueError, match=r"trainA.*one folder per domain"):
        load_splits(tmp_path)  # folders starting with "_" are never domains
    write_images(tmp_path / "only_one", numbered(4))
    assert load_splits(tmp_path).names == ["only_one"]  # e.g. the photos a distillation needs
    with pytest.raises(NotADirectoryError):
        detect_layout(tmp_path / "only_one" / "img_0000.png")


# ---------------------------------------------------------------------------- stability


def test_adding_files_keeps_old_assignments(tmp_path):
    write_images(tmp_path / "photo", numbered(60))
    write_images(tmp_path / "art", numbered(60))
    first = assignment(load_splits(tmp_path))
    write_images(tmp_path / "photo", numbered(40, start=60))
    (tmp_path / "art" / "img_0000.png").unlink()
    second_splits = load_splits(tmp_path)
    second = assignment(second_splits)
    assert len(second) == 159
    for path, part in first.items():
        if path.exists():
            assert second[path] == part
    files = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    assert "photo/img_0099.png" in files and "art/img_0000.png" not in files
    assert len(files) == 159


def test_recorded_assignments_are_reused(tmp_path):
    write_images(tmp_path / "photo", numbered(20))
    write_images(tmp_path / "art", numbered(20))
    load_splits(tmp_path)
    manifest_path = tmp_path / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    key = next(k for k, v in manifest["files"].items() if v == "train" and k.startswith("art/"))
    manifest["files"][key] = "test"  # a hand edit: held out on purpose
    manifest_path.write_text(json.dumps(manifest))
    splits = load_splits(tmp_path)
    assert tmp_path / key in splits.domain("art").test
    assert json.loads(manifest_path.read_text())["files"][key] == "test"


def test_unchanged_manifest_is_not_rewritten(tmp_path):
    write_images(tmp_path / "photo", numbered(10))
    write_images(tmp_path / "art", numbered(10))
    load_splits(tmp_path)
    manifest_path = tmp_path / MANIFEST_NAME
    stamp = manifest_path.stat().st_mtime_ns
    text = manifest_path.read_text()
    load_splits(tmp_path)
    assert manifest_path.stat().st_mtime_ns == stamp and manifest_path.read_text() == text
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [MANIFEST_NAME]  # no temps


def test_subset_load_keeps_other_domains_in_manifest(tmp_path):
    for name in ("art", "ink", "photo"):
        write_images(tmp_path / name, numbered(10))
    load_splits(tmp_path)
    load_splits(tmp_path, domains=["photo", "art"])
    files = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    assert sum(k.startswith("ink/") for k in files) == 10


def test_seed_changes_the_split_and_hash_is_stable():
    keys = [f"img_{i}.png" for i in range(100)]
    ratios = (0.5, 0.25, 0.25)
    a = [hash_split(0, "photo", k, ratios) for k in keys]
    assert a == [hash_split(0, "photo", k, ratios) for k in keys]
    assert a != [hash_split(1, "photo", k, ratios) for k in keys]
    assert a != [hash_split(0, "art", k, ratios) for k in keys]
    assert {hash_split(0, "photo", k, (1.0, 0.0, 0.0)) for k in keys} == {"train"}


# ---------------------------------------------------------------------------- errors


def test_seed_or_ratio_mismatch_with_manifest(tmp_path):
    write_images(tmp_path / "photo", numbered(10))
    write_images(tmp_path / "art", numbered(10))
    load_splits(tmp_path, seed=3)
    with pytest.raises(ValueError, match=r"seed=3.*seed=4"):
        load_splits(tmp_path, seed=4)
    with pytest.raises(ValueError, match=r"ratios"):
        load_splits(tmp_path, seed=3, ratios=(0.7, 0.2, 0.1))
    other = tmp_path.parent / f"{tmp_path.name}_other.json"
    splits = load_splits(tmp_path, seed=4, manifest_path=other)  # a second split, elsewhere
    assert splits.manifest_path == other and other.exists()


def test_unreadable_manifest(tmp_path):
    write_images(tmp_path / "photo", numbered(10))
    write_images(tmp_path / "art", numbered(10))
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_splits(tmp_path)


def test_too_few_images(tmp_path):
    write_images(tmp_path / "photo", numbered(10))
    write_images(tmp_path / "art", numbered(1))
    with pytest.raises(ValueError, match=r"'art'.*has 1 usable image;"):
        load_splits(tmp_path)
    with pytest.raises(ValueError, match=r"'photo'.*10 images but none in the train split"):
        load_splits(
            tmp_path, domains=["photo"], ratios=(0.0, 0.5, 0.5), manifest_path=tmp_path / "m.json"
        )


@pytest.mark.parametrize(
    "ratios", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.1, -0.1, 0.0), (0.5, float("nan"), 0.5)]
)
def test_bad_ratios(tmp_path, ratios):
    write_images(tmp_path / "photo", numbered(4))
    write_images(tmp_path / "art", numbered(4))
    with pytest.raises(ValueError, match="ratios"):
        load_splits(tmp_path, ratios=ratios)


def test_unwritable_manifest_location_suggests_manifest_path(tmp_path):
    write_images(tmp_path / "photo", numbered(4))
    write_images(tmp_path / "art", numbered(4))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="manifest_path"):
        load_splits(tmp_path, manifest_path=blocker / "split.json")


def test_skipped_files_are_collected_and_logged(tmp_path, caplog):
    write_images(tmp_path / "photo", numbered(6))
    write_images(tmp_path / "art", numbered(6))
    (tmp_path / "art" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "art" / "empty.jpg").touch()
    with caplog.at_level(logging.WARNING, logger="culturegan.data"):
        splits = load_splits(tmp_path)
    assert sorted(p.name for p, _ in splits.skipped) == ["broken.png", "empty.jpg"]
    assert "skipped 2 (" in caplog.text and str(tmp_path / "art") in caplog.text
    files = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    assert "art/broken.png" not in files
