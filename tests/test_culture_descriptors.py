"""Descriptors on hand-made images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from culturegan.culture.descriptors import (
    DESCRIPTORS,
    ImageView,
    compute_descriptors,
    dominant_palette,
    list_descriptors,
    working_size,
)
from culturegan.culture.descriptors.complexity import complexity_entropy

SIZE = 64


def flat(rgb, h=SIZE, w=SIZE) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (h, w, 1))


def describe(arr: np.ndarray, size: int = SIZE) -> dict[str, float]:
    return compute_descriptors(arr, size=size)


def stripes(period: int = 8, vertical: bool = True) -> np.ndarray:
    arr = flat((0, 0, 0))
    on = (np.arange(SIZE) // (period // 2)) % 2 == 0
    if vertical:
        arr[:, on] = 255
    else:
        arr[on, :] = 255
    return arr


def noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def test_registry_has_every_family_and_docs():
    families = {d.family for d in DESCRIPTORS.values()}
    assert families == {
        "colour",
        "blank space",
        "line and edge",
        "texture",
        "complexity",
        "composition",
        "tone",
    }
    for d in DESCRIPTORS.values():
        assert len(d.doc) > 40 and d.units, d.name


@pytest.mark.parametrize("name", list_descriptors())
def test_every_descriptor_is_finite_and_deterministic(name):
    for arr in (flat((255, 255, 255)), noise(), stripes()):
        a = compute_descriptors(arr, size=SIZE, names=[name])[name]
        b = compute_descriptors(arr.copy(), size=SIZE, names=[name])[name]
        assert np.isfinite(a) and a == b


def test_flat_white_is_blank_with_no_edges():
    d = describe(flat((255, 255, 255)))
    assert d["blank_space"] == pytest.approx(1.0)
    assert d["edge_density"] == pytest.approx(0.0)
    assert d["colourfulness"] == 0.0
    assert d["palette_size"] == 1
    assert d["permutation_entropy"] == 0.0 and d["statistical_complexity"] == 0.0
    assert d["glcm_contrast"] == 0.0 and d["glcm_homogeneity"] == 1.0
    assert d["symmetry_lr"] == 1.0
    assert (d["mass_centre_x"], d["mass_centre_y"]) == (0.5, 0.5)


def test_blank_space_accepts_cream_paper_but_not_dark_or_saturated():
    assert describe(flat((243, 237, 222)))["blank_space"] == pytest.approx(1.0)
    assert describe(flat((40, 40, 40)))["blank_space"] == 0.0
    assert describe(flat((250, 60, 60)))["blank_space"] == 0.0
    half = flat((255, 255, 255))
    half[:, : SIZE // 2] = (30, 30, 30)
    # Half the sheet, minus a band along the border where the local texture window sees ink.
    assert 0.35 < describe(half)["blank_space"] <= 0.5


def test_colourfulness_saturated_beats_grey():
    red_blue = flat((230, 20, 20))
    red_blue[SIZE // 2 :] = (20, 40, 230)
    grey = flat((128, 128, 128))
    grey[SIZE // 2 :] = (60, 60, 60)
    assert describe(red_blue)["colourfulness"] > 100
    assert describe(grey)["colourfulness"] == pytest.approx(0.0, abs=1e-9)


def test_hue_entropy_single_hue_zero_rainbow_high():
    assert describe(flat((200, 30, 30)))["hue_entropy"] == 0.0
    hue = np.linspace(0, 1, SIZE, endpoint=False)
    hsv = np.stack(np.broadcast_arrays(hue[None, :], 1.0, 1.0), -1).astype(np.float32)
    rainbow = np.asarray(
        Image.fromarray((hsv * 255).astype(np.uint8), "HSV").convert("RGB"), dtype=np.uint8
    )
    assert describe(rainbow)["hue_entropy"] > 0.95


def test_palette_of_three_flat_colours():
    arr = flat((230, 20, 20))
    arr[:, 21:42] = (20, 40, 230)
    arr[:, 42:] = (250, 250, 250)
    palette = dominant_palette(ImageView.from_image(arr, size=SIZE))
    assert len(palette) == 3
    assert sum(s for _, s in palette) == pytest.approx(1.0, abs=0.01)
    assert all(c.startswith("#") and len(c) == 7 for c, _ in palette)


def test_stripes_have_low_orientation_entropy_and_noise_high():
    for vertical in (True, False):
        d = describe(stripes(vertical=vertical))
        assert d["edge_density"] > 0.1
        assert d["edge_orientation_entropy"] < 0.1
    assert describe(noise())["edge_orientation_entropy"] > 0.9


def test_outlines_dominate_a_line_drawing_not_a_colour_field():
    drawing = flat((255, 255, 255))
    drawing[16, 10:54] = drawing[48, 10:54] = 0  # a drawn rectangle, 1 px lines
    drawing[16:49, 10] = drawing[16:49, 53] = 0
    field = flat((255, 255, 255))
    field[16:49, 10:54] = (90, 90, 90)  # the same rectangle as a filled area, no outline
    assert describe(drawing)["outline_dominance"] > 0.8
    assert describe(drawing)["line_density"] > 0.02
    assert describe(field)["outline_dominance"] < 0.2


def test_permutation_entropy_of_noise_near_max_and_complexity_low():
    h, c = complexity_entropy(np.random.default_rng(1).random((128, 128)))
    assert h > 0.99 and c < 0.02
    d = describe(noise())
    assert d["permutation_entropy"] > 0.98
    # A smooth gradient is perfectly ordered: one pattern only.
    ramp = np.add.outer(np.arange(32.0), np.arange(32.0) * 0.5)
    assert complexity_entropy(ramp) == (0.0, 0.0)


def test_glcm_contrast_checkerboard_is_one():
    board = (np.indices((SIZE, SIZE)).sum(0) % 2 * 255).astype(np.uint8)
    view = ImageView(np.repeat(board[..., None], 3, -1) / 255.0)  # no resize: keep the pixels
    d = compute_descriptors(view, names=["glcm_contrast", "glcm_homogeneity"])
    # Horizontal and vertical neighbours differ by 31 levels, diagonal ones by 0.
    assert d["glcm_contrast"] == pytest.approx(0.5)
    assert d["glcm_homogeneity"] == pytest.approx(0.5 + 0.5 / (1 + 31**2))


def test_stroke_scale_grows_with_blob_size():
    rng = np.random.default_rng(0)
    small = np.kron(rng.integers(0, 2, (32, 32)), np.ones((2, 2))) * 255
    large = np.kron(rng.integers(0, 2, (8, 8)), np.ones((8, 8))) * 255
    values = [
        describe(np.repeat(a[..., None], 3, -1).astype(np.uint8))["stroke_scale"]
        for a in (small, large)
    ]
    assert 0 < values[0] < values[1]
    assert describe(flat((10, 200, 10)))["stroke_scale"] == 0.0


def test_composition_mass_symmetry_and_splits():
    left = flat((255, 255, 255))
    left[20:40, 4:20] = 0
    d = describe(left)
    assert d["mass_centre_x"] < 0.3 and d["mass_centre_y"] == pytest.approx(0.47, abs=0.03)
    assert d["symmetry_lr"] < 0.5
    bands = flat((255, 255, 255))
    bands[SIZE // 4 :] = 0  # a horizon a quarter of the way down
    d = describe(bands)
    assert d["horizontal_split_position"] == pytest.approx(0.25, abs=0.02)
    assert d["horizontal_split_strength"] == pytest.approx(1.0, abs=0.02)
    assert d["vertical_split_strength"] == pytest.approx(0.0, abs=1e-6)
    assert d["symmetry_lr"] == pytest.approx(1.0)


def test_tone_descriptors():
    d = describe(flat((0, 0, 0)))
    assert d["dark_share"] == 1.0 and d["tone_mean"] == 0.0 and d["tone_entropy"] == 0.0
    half = flat((255, 255, 255))
    half[SIZE // 2 :] = 0
    d = describe(half)
    assert d["tone_mean"] == pytest.approx(0.5, abs=0.01)
    assert d["tone_std"] == pytest.approx(0.5, abs=0.01)


def test_working_resolution_makes_scans_comparable():
    assert working_size(1000, 500, 256) == (512, 256)
    assert working_size(32, 48, 64) == (64, 96)
    assert working_size(5000, 100, 64) == (256, 5)  # a long scroll: longer side capped at 4x
    with pytest.raises(ValueError, match="at least 16"):
        working_size(10, 10, 8)
    # The same smooth picture at 32 and 128 px gives the same numbers at working size 32.
    coarse = Image.fromarray(noise()[:8, :8])
    base = np.asarray(coarse.resize((32, 32), Image.Resampling.BICUBIC))
    big = np.asarray(coarse.resize((128, 128), Image.Resampling.BICUBIC))
    small, large = describe(base, 32), describe(big, 32)
    for name in ("colourfulness", "saturation_mean", "tone_mean", "blank_space"):
        assert small[name] == pytest.approx(large[name], rel=0.05, abs=0.01), name
