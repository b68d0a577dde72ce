"""Synthetic demo data: determinism, shapes, the visible traits of each style, and a demo
dataset that load_splits can read."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from culturegan.data.splits import load_splits
from culturegan.data.synthetic import (
    ART_STYLES,
    build_demo_dataset,
    list_styles,
    make_art_image,
    make_photo_crops,
    photo_sources,
)


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


@pytest.mark.parametrize("style", sorted(ART_STYLES))
@pytest.mark.parametrize("size", [16, 48, 64])
def test_art_shape_and_determinism(style, size):
    img = make_art_image(style, seed=7, size=size)
    assert img.mode == "RGB" and img.size == (size, size)
    arr = ART_STYLES[style](np.random.default_rng(7), size)
    assert arr.dtype == np.uint8 and arr.shape == (size, size, 3)
    assert img.tobytes() == make_art_image(style, seed=7, size=size).tobytes()
    assert img.tobytes() != make_art_image(style, seed=8, size=size).tobytes()


def test_registry():
    assert list_styles() == ["ink_wash", "woodblock", "impasto"]
    with pytest.raises(ValueError, match="known: ink_wash, woodblock, impasto"):
        make_art_image("cubism", seed=0)


def test_ink_wash_leaves_large_blank_paper():
    for seed in range(8):
        arr = as_array(make_art_image("ink_wash", seed, 64)).astype(int)
        near_paper = (arr.min(-1) >= 200).mean()
        assert near_paper > 0.4, (seed, near_paper)
        assert arr.min() < 80  # and there is dark ink somewhere


def unique_colours(arr: np.ndarray) -> int:
    return len(np.unique(arr.reshape(-1, 3), axis=0))


def test_woodblock_is_flat_and_impasto_is_textured():
    for seed in range(4):
        wood = unique_colours(as_array(make_art_image("woodblock", seed, 64)))
        impasto = unique_colours(as_array(make_art_image("impasto", seed, 64)))
        assert wood <= 8 and impasto > 20 * wood, (seed, wood, impasto)


def test_impasto_is_saturated_and_covers_the_canvas():
    arr = as_array(make_art_image("impasto", 0, 64)).astype(float) / 255
    saturation = (arr.max(-1) - arr.min(-1)) / np.maximum(arr.max(-1), 1e-6)
    assert np.median(saturation) > 0.5
    # No large flat patch: every 8x8 block has many distinct colours.
    blocks = arr.reshape(8, 8, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(64, 64, 3)
    assert min(unique_colours(b) for b in blocks) > 10


def test_photo_sources_and_crops():
    sources = photo_sources()
    assert set(sources) == {"astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"}
    assert all(img.mode == "RGB" and min(img.size) >= 256 for img in sources.values())
    crops = make_photo_crops(["chelsea", "coffee"], count=5, size=32, seed=3)
    assert len(crops) == 5 and all(c.size == (32, 32) and c.mode == "RGB" for c in crops)
    again = make_photo_crops(["chelsea", "coffee"], count=5, size=32, seed=3)
    assert [c.tobytes() for c in crops] == [c.tobytes() for c in again]
    other = make_photo_crops(["chelsea", "coffee"], count=5, size=32, seed=4)
    assert [c.tobytes() for c in crops] != [c.tobytes() for c in other]
    with pytest.raises(ValueError, match="known"):
        make_photo_crops(["lena"], count=1, size=32, seed=0)


def small_build(root, seed=0):
    return build_demo_dataset(
        root,
        size=32,
        photos=10,
        art_per_style=10,
        heldout_photos=3,
        styles=("woodblock", "ink_wash"),
        seed=seed,
    )


def test_build_demo_dataset_layout_loads(tmp_path):
    root = small_build(tmp_path / "demo")
    assert sorted(p.name for p in root.iterdir()) == [
        "README.txt",
        "_heldout_photos",
        "ink_wash",
        "photo",
        "woodblock",
    ]
    assert len(list((root / "_heldout_photos").glob("*.png"))) == 3
    readme = (root / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "not real artworks" in readme
    splits = load_splits(root, check="full")
    assert splits.names == ["ink_wash", "photo", "woodblock"] and not splits.skipped
    photo = splits.domain("photo")
    assert len(photo.train) + len(photo.val) + len(photo.test) == 10
    with Image.open(photo.train[0]) as img:
        assert img.size == (32, 32) and img.mode == "RGB"


def test_build_demo_dataset_is_byte_identical_for_a_seed(tmp_path):
    def contents(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.png")}

    a = contents(small_build(tmp_path / "a"))
    b = contents(small_build(tmp_path / "b"))
    c = contents(small_build(tmp_path / "c", seed=1))
    assert len(a) == 33 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_build_demo_dataset_refuses_non_empty_root_and_unknown_style(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        small_build(tmp_path)
    with pytest.raises(ValueError, match="unknown synthetic style"):
        build_demo_dataset(tmp_path / "new", styles=("photo",))
    assert not (tmp_path / "new").exists()


def test_default_demo_dataset(tmp_path):
    root = build_demo_dataset(tmp_path / "demo")
    counts = {p.name: len(list(p.glob("*.png"))) for p in root.iterdir() if p.is_dir()}
    assert counts == {
        "photo": 48,
        "ink_wash": 48,
        "woodblock": 48,
        "impasto": 48,
        "_heldout_photos": 8,
    }
    with Image.open(root / "impasto" / "0000.png") as img:
        assert img.size == (64, 64)
