"""The finishes: ``print`` (flat inks per area, the model's grain, keyblock lines from the photo)
and ``ink`` (the model's paper, washes by area, its marks where the photo is busy, brush lines)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from conftest import save_tiny_model
from culturegan.cli import main
from culturegan.finish import (
    InkFinish,
    PrintFinish,
    apply_finish,
    flat_areas,
    ink_finish,
    parse_finish,
    print_finish,
)
from culturegan.finish.common import merge_alike
from culturegan.finish.woodblock import FULL_CHROMA, GREY_CHROMA, gamut_scale
from culturegan.inference import Stylizer
from culturegan.losses import GREY_WEIGHTS

INK = np.array(PrintFinish().ink, dtype=float)


def quadrants(side: int, colours: list[tuple[int, int, int]]) -> np.ndarray:
    """(side, side, 3) uint8: four flat quadrants, top-left, top-right, bottom-left, -right."""
    img = np.zeros((side, side, 3), np.uint8)
    h = side // 2
    for k, (rows, cols) in enumerate(
        [(slice(0, h), slice(0, h)), (slice(0, h), slice(h, side)),
         (slice(h, side), slice(0, h)), (slice(h, side), slice(h, side))]
    ):  # fmt: skip
        img[rows, cols] = colours[k]
    return img


def noisy(base: np.ndarray, amount: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(base + rng.normal(0, amount, base.shape), 0, 255).astype(np.uint8)


PHOTO_COLOURS = [(40, 60, 200), (200, 190, 60), (30, 140, 40), (220, 220, 220)]
ART_COLOURS = [(150, 60, 60), (230, 210, 170), (60, 80, 120), (200, 120, 60)]


def test_each_area_takes_one_ink_near_the_outputs_mean_there():
    side = 96
    photo = quadrants(side, PHOTO_COLOURS).astype(np.float32) / 255
    out = noisy(quadrants(side, ART_COLOURS).astype(float), 25).astype(np.float32) / 255
    settings = PrintFinish(colours=4, chroma=1.0)  # the areas' own means, not strengthened
    flat = flat_areas(rgb2lab(photo), rgb2lab(out), settings, scale=side / 256)
    inks = np.unique(flat.reshape(-1, 3).round(4), axis=0)
    assert len(inks) <= 4  # the areas share four inks, however noisy the output was
    # Inside each quadrant (away from the seams) nearly every pixel has one ink, the output's
    # mean colour there.
    out_lab = rgb2lab(out)
    h, m = side // 2, 8
    chosen = []
    for rows in (slice(m, h - m), slice(h + m, side - m)):
        for cols in (slice(m, h - m), slice(h + m, side - m)):
            region = flat[rows, cols].reshape(-1, 3).round(4)
            values, counts = np.unique(region, axis=0, return_counts=True)
            ink = values[counts.argmax()]
            assert counts.max() >= 0.9 * len(region)
            assert np.abs(ink - out_lab[rows, cols].reshape(-1, 3).mean(0)).max() < 3.0
            chosen.append(tuple(ink))
    assert len(set(chosen)) == 4  # four quadrants, four inks


def test_chroma_strengthens_coloured_inks_and_leaves_paper_and_greys_alone():
    side = 96
    photo = quadrants(side, PHOTO_COLOURS).astype(np.float32) / 255
    # Rose, off-white paper, slate blue, tan: CIELAB chroma 42, 4, 25 and 40 (the first and
    # last stay in sRGB at 1.5 times: see the next test for inks that would leave it).
    colours = [(150, 60, 60), (235, 232, 228), (60, 80, 120), (200, 140, 90)]
    out = noisy(quadrants(side, colours).astype(float), 6).astype(np.float32) / 255
    photo_lab, out_lab, scale = rgb2lab(photo), rgb2lab(out), side / 256
    plain = flat_areas(photo_lab, out_lab, PrintFinish(colours=4, chroma=1.0), scale)
    strong = flat_areas(photo_lab, out_lab, PrintFinish(colours=4, chroma=1.5), scale)
    assert np.array_equal(strong[..., 0], plain[..., 0])  # the same areas and lightness
    held = np.hypot(plain[..., 1], plain[..., 2])
    gained = np.hypot(strong[..., 1], strong[..., 2])
    hue = np.arctan2(strong[..., 2], strong[..., 1]) - np.arctan2(plain[..., 2], plain[..., 1])
    assert np.abs(hue[held > 1]).max() < 1e-6  # the same hues
    full, grey = held >= FULL_CHROMA, held <= GREY_CHROMA
    assert full.mean() > 0.4 and grey.mean() > 0.2  # rose and orange; the paper
    assert gained[full] == pytest.approx(1.5 * held[full], abs=1e-3)
    assert gained[grey] == pytest.approx(held[grey], abs=1e-6)  # the paper stays as it was
    middle = ~full & ~grey  # the slate blue: in between
    assert np.all((gained[middle] > held[middle]) & (gained[middle] < 1.5 * held[middle]))
    # Through the whole finish (no lines, no grain): the picture's saturation goes up.
    settings = {"colours": 4, "detail": 0.0, "line_strength": 0.0}
    images = [
        np.asarray(print_finish(Image.fromarray((photo * 255).astype(np.uint8)),
                                Image.fromarray((out * 255).astype(np.uint8)),
                                PrintFinish(chroma=c, **settings)), float)
        for c in (1.0, 1.5)
    ]  # fmt: skip
    spread = [float((im.max(-1) - im.min(-1)).mean()) for im in images]
    assert spread[1] > 1.2 * spread[0]


@pytest.mark.parametrize("colour", [(100, 50, 20), (20, 30, 110), (30, 90, 40), (200, 40, 40)])
def test_strengthened_inks_stay_in_srgb_and_keep_their_hue(colour):
    # Dark brown, navy, forest green and red: doubled, their chroma leaves sRGB, and clipping
    # each channel would turn the brown orange, (100, 50, 20) -> (125, 27, 0).
    flat = Image.new("RGB", (64, 64), colour)
    ink = np.asarray(print_finish(flat, flat), float)[32, 32]  # the default settings
    before, after = rgb2lab(np.array(colour, float) / 255), rgb2lab(ink / 255)
    hue = np.degrees(np.arctan2([before[2], after[2]], [before[1], after[1]]))
    # One unit of 8-bit rounding moves a hue of chroma >= 30 by under 1.5 degrees.
    assert abs(hue[1] - hue[0]) < 1.5
    assert abs(after[0] - before[0]) < 1.0  # the lightness kept
    assert np.hypot(after[1], after[2]) > 1.1 * np.hypot(before[1], before[2])  # stronger


def test_an_ink_outside_srgb_is_brought_inside_at_its_own_hue():
    from skimage.color import lab2rgb

    # A light saturated blue that sRGB cannot show, a dull brown well inside it.
    inks = np.array([[85.0, 0.0, -60.0], [50.0, 10.0, 10.0]])
    factor = gamut_scale(inks, np.array([1.0, 2.0]))
    assert 0.2 < factor[0] < 0.6 and factor[1] == 2.0  # the blue dulled, the brown doubled
    fitted = inks.copy()
    fitted[:, 1:] *= factor[:, None]
    back = rgb2lab(lab2rgb(fitted[None]))[0]  # unclipped: the same colour comes back
    assert np.abs(back - fitted).max() < 0.5
    # As little chroma as needed is taken: 5% more and the blue is clipped.
    over = inks[:1].copy()
    over[:, 1:] *= 1.05 * factor[0]
    assert np.abs(rgb2lab(lab2rgb(over[None]))[0] - over).max() > 0.5


def test_merge_prints_a_flat_area_of_the_photo_in_one_ink_without_the_models_specks():
    side = 128
    rng = np.random.default_rng(5)
    photo = np.zeros((side, side, 3), np.uint8)
    photo[:, : side // 2], photo[:, side // 2 :] = (90, 140, 220), (40, 130, 50)  # sky | field
    photo = noisy(photo.astype(float), 2)
    out = np.zeros((side, side, 3), np.uint8)
    out[:, : side // 2], out[:, side // 2 :] = (235, 220, 185), (190, 70, 50)  # cream | red
    for y, x in rng.integers(4, side // 2 - 12, (14, 2)):  # the model's blue specks in the sky
        out[y : y + 8, x : x + 8] = (50, 70, 120)
    photo_lab = rgb2lab(photo.astype(np.float32) / 255)
    out_lab = rgb2lab(out.astype(np.float32) / 255)
    sky = (slice(4, side - 4), slice(4, side // 2 - 4))

    def inks_in_sky(merge: float) -> np.ndarray:
        settings = PrintFinish(colours=3, chroma=1.0, merge=merge)
        flat = flat_areas(photo_lab, out_lab, settings, scale=side / 256)[sky]
        return np.unique(flat.reshape(-1, 3).round(3), axis=0, return_counts=True)[1]

    specks = inks_in_sky(0.0)  # the specks printed as patches of their own ink
    assert len(specks) >= 2 and specks.min() > 0.03 * specks.sum()
    merged = inks_in_sky(6.0)
    assert len(merged) == 1  # the sky is one area of the photo: one ink
    # Unless no ink covers merge_share of it: then its superpixels keep their own inks.
    share = specks.max() / specks.sum()
    assert 0.6 < share < 0.97
    strict = PrintFinish(colours=3, chroma=1.0, merge=6.0, merge_share=0.98)
    kept = flat_areas(photo_lab, out_lab, strict, scale=side / 256)[sky]
    assert np.array_equal(kept, flat_areas(photo_lab, out_lab, PrintFinish(
        colours=3, chroma=1.0, merge=0.0), scale=side / 256)[sky])  # fmt: skip
    full = flat_areas(photo_lab, out_lab, PrintFinish(colours=3, chroma=1.0, merge=6.0), 0.5)
    assert np.abs(full[sky].reshape(-1, 3).mean(0) - rgb2lab(np.array([[[235, 220, 185]]]) / 255)
                  .reshape(3)).max() < 6  # fmt: skip  # the sky's ink: the cream most of it has
    assert np.abs(full[4:-4, side // 2 + 4 : -4, 0] - full[4, -5, 0]).max() < 1e-6  # the field


def test_cohere_prints_the_photos_field_in_the_ink_the_model_gave_it_more_than_elsewhere():
    side = 128
    photo = np.zeros((side, side, 3))
    photo[:, : side // 2], photo[:, side // 2 :] = (40, 90, 160), (205, 210, 225)  # sea | sky
    photo_lab = rgb2lab(noisy(photo, 3).astype(np.float32) / 255)
    out = np.zeros((side, side, 3), np.uint8)
    out[:] = (235, 220, 185)  # cream
    for patch in np.random.default_rng(8).permutation(32)[:13]:  # 13 of the sea's 32 patches
        y, x = divmod(int(patch) * 16, 64)
        out[y * 16 : y * 16 + 16, x : x + 16] = (50, 70, 120)  # blue
    out_lab = rgb2lab(out.astype(np.float32) / 255)

    def blue_share(cohere: float, reach: float = 64.0, margin: float = 2.0) -> tuple:
        settings = PrintFinish(colours=2, chroma=1.0, merge=0.0, cohere=cohere,
                               cohere_reach=reach, cohere_margin=margin)  # fmt: skip
        dark = flat_areas(photo_lab, out_lab, settings, scale=side / 256)[..., 0] < 50
        return dark[:, : side // 2 - 4].mean(), dark[:, side // 2 + 4 :].mean()  # sea, sky

    assert blue_share(0.0)[0] == pytest.approx(13 / 32, abs=0.03)  # the model's patches
    # Cream has more of the sea (60%), blue is the ink the model gave the sea more than the
    # picture at large (all of its pixels against a third of cream's): the sea is printed blue.
    sea, sky = blue_share(5.0, 4096.0)  # every area votes with every alike area
    assert sea > 0.95 and sky == 0.0
    sea, sky = blue_share(5.0, 64.0)  # with the near: where the sea's blue is thin, not there
    assert 0.6 < sea < 0.95 and sky == 0.0
    # Blue's vote in the sea is (13/32) / (13/32) = 1 to cream's (19/32) / (19/32 + 1) = 0.37,
    # under 4 times: with that margin every area keeps the model's ink.
    assert blue_share(5.0, 4096.0, margin=4.0)[0] == pytest.approx(blue_share(0.0)[0])


def test_a_videos_frames_are_printed_in_the_first_frames_inks_until_a_new_scene():
    from culturegan.finish import FinishFrames
    from culturegan.finish.woodblock import print_finish_and_inks

    photo = Image.fromarray(noisy(quadrants(64, PHOTO_COLOURS).astype(float), 10))

    def output(colours, shift: float, seed: int) -> Image.Image:
        return Image.fromarray(noisy(quadrants(64, colours).astype(float) + shift, 20, seed))

    frames = FinishFrames("print:colours=4")
    first = frames(photo, output(ART_COLOURS, 0, seed=2))
    inks = frames.inks.copy()
    assert np.array_equal(np.asarray(first), np.asarray(print_finish(photo, output(
        ART_COLOURS, 0, seed=2), PrintFinish(colours=4))))  # fmt: skip  # the first: as alone
    # The next frame's colours moved a little (other noise, 6 levels lighter): its own k-means
    # inks differ from the first frame's, and the frame is printed in the first frame's.
    _, own = print_finish_and_inks(photo, output(ART_COLOURS, 6, seed=3), PrintFinish(colours=4))
    frames(photo, output(ART_COLOURS, 6, seed=3))
    assert not np.allclose(own, inks, atol=0.5) and np.array_equal(frames.inks, inks)
    # A new scene (other colours altogether): the inks are fitted to it.
    scene = [(20, 160, 90), (240, 240, 120), (120, 40, 160), (90, 200, 230)]
    _, fresh = print_finish_and_inks(photo, output(scene, 0, seed=4), PrintFinish(colours=4))
    frames(photo, output(scene, 0, seed=4))
    assert np.array_equal(frames.inks, fresh)
    # The other finishes are drawn frame by frame, as alone.
    inked = FinishFrames("ink:washes=2")
    for seed in (5, 6):
        out = output(ART_COLOURS, 0, seed)
        expected = apply_finish("ink:washes=2", photo, out)
        assert np.array_equal(np.asarray(inked(photo, out)), np.asarray(expected))


def test_merging_handles_one_area_and_tiny_pictures():
    flat = Image.new("RGB", (8, 8), (200, 180, 150))
    for photo, out in [(flat, flat), (Image.new("RGB", (80, 64), (90, 120, 150)), flat)]:
        result = np.asarray(print_finish(photo, out, PrintFinish(chroma=1.0)), dtype=float)
        assert result.shape == (photo.size[1], photo.size[0], 3)
        assert np.abs(result - (200, 180, 150)).max() <= 2  # one area, one ink: the output's
    labels = np.zeros((6, 6), np.int64)
    assert np.array_equal(merge_alike(labels, np.zeros((6, 6, 3)), 10.0), labels)
    # Labels need not be contiguous; a merged area is compared by its new mean (52 to 58: 6).
    labels = np.repeat(np.array([[3, 7, 9, 20]]), 4, axis=0)
    lab = np.zeros((4, 4, 3))
    lab[..., 0] = np.array([50.0, 54.0, 58.0, 90.0])  # L*: 4 apart, then 32
    assert merge_alike(labels, lab, 5.0)[0].tolist() == [0, 0, 1, 2]
    assert merge_alike(labels, lab, 7.0)[0].tolist() == [0, 0, 0, 1]
    assert merge_alike(labels, lab, 3.0)[0].tolist() == [0, 1, 2, 3]


def slow_merge(labels: np.ndarray, lab: np.ndarray, distance: float) -> list[set[int]]:
    """merge_alike's partition as plainly as it can be written: over and over, the nearest
    pair of touching groups (8-connected; mean photo colour by pixels) merges, until the
    nearest pair is ``distance`` or more apart."""
    groups = [{int(a)} for a in np.unique(labels)]
    touching = set()
    for one, other in [
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1], labels[1:]),
        (labels[:-1, :-1], labels[1:, 1:]),
        (labels[:-1, 1:], labels[1:, :-1]),
    ]:
        touching |= {
            frozenset(p) for p in zip(one.ravel().tolist(), other.ravel().tolist(), strict=True)
        }

    def mean(group: set[int]) -> np.ndarray:
        return lab[np.isin(labels, list(group))].mean(0)

    while len(groups) > 1:
        gaps = [(np.linalg.norm(mean(a) - mean(b)), i, j)
                for i, a in enumerate(groups) for j, b in enumerate(groups[:i])
                if any(frozenset((x, y)) in touching for x in a for y in b)]  # fmt: skip
        if not gaps or min(gaps)[0] >= distance:
            break
        _, i, j = min(gaps)
        groups[j] |= groups.pop(i)
    return groups


def test_merge_alike_finds_the_partition_of_nearest_pair_first_merging():
    rng = np.random.default_rng(11)
    for case in range(12):
        side = int(rng.integers(6, 14))
        # areas of random shapes (nearest of random centres) and random photo colours, the
        # pixels of an area scattered about its colour
        centres = rng.uniform(0, side, (int(rng.integers(3, 16)), 2))
        yy, xx = np.mgrid[0:side, 0:side]
        near = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
        labels = near.argmin(-1) * 3  # not contiguous
        colours = rng.uniform([20, -30, -30], [90, 30, 30], (len(centres), 3))
        lab = colours[labels // 3] + rng.normal(0, 2, (side, side, 3))
        for distance in (5.0, 15.0, 30.0):
            merged = merge_alike(labels, lab, distance)
            found = {frozenset(labels[merged == m].tolist()) for m in np.unique(merged)}
            expected = {frozenset(g) for g in slow_merge(labels, lab, distance)}
            assert found == expected, (case, distance)


def test_lines_follow_the_photos_contours_and_short_strokes_are_dropped():
    side = 128
    photo = np.full((side, side, 3), 235, np.uint8)
    photo[40:100, 40:100] = 30  # a dark square: its outline must be drawn
    photo[15, 110] = 0  # a one-pixel speck: a stroke too short to keep
    out = Image.new("RGB", (side, side), (150, 170, 190))
    result = np.asarray(print_finish(Image.fromarray(photo), out), dtype=float)
    ink_distance = np.abs(result - INK).max(-1)  # (H, W)
    # Along the square's edge (just inside the bright side) the line is near the ink.
    assert ink_distance[70, 36:41].min() < 40
    assert ink_distance[36:41, 70].min() < 40
    # Far from every contour the output's colour stays.
    far = result[5:30, 5:30].reshape(-1, 3)
    assert np.abs(far - [150, 170, 190]).max() < 6
    # Around the speck at most a faint tail: nothing as dark as half way to the ink.
    half_way = np.abs((np.array([150, 170, 190]) - INK) / 2).max()
    assert ink_distance[11:20, 106:115].min() > half_way


def test_the_drawing_scales_with_the_picture():
    def line_share(side: int) -> float:
        photo = quadrants(side, PHOTO_COLOURS)
        out = Image.new("RGB", (side, side), (200, 200, 200))
        result = np.asarray(print_finish(Image.fromarray(photo), out), dtype=float)
        return float((np.abs(result - INK).max(-1) < 60).mean())

    small, large = line_share(96), line_share(192)
    assert small > 0.005  # the seams between the quadrants are drawn
    assert 0.67 < large / small < 1.5  # the same share of the picture at twice the size


def test_the_finish_is_deterministic_and_takes_the_photos_size():
    photo = Image.fromarray(noisy(quadrants(64, PHOTO_COLOURS).astype(float), 10))
    out = Image.fromarray(noisy(quadrants(32, ART_COLOURS).astype(float), 30, seed=1))
    first, second = print_finish(photo, out), print_finish(photo, out)
    assert first.size == (64, 64) and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(second))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colours": 0}, "colours must be in"),
        ({"areas": 0}, "areas must be"),
        ({"line_sigma": 0}, r"line_sigma must be in \(0, 32\], got 0"),
        ({"detail_sigma": 40.0}, "detail_sigma must be in"),
        ({"seed": -1}, "seed must be in"),
        ({"min_line": -5}, "min_line must be in"),
        ({"ink": (0, 0, 300)}, "ink must be"),
        ({"line_strength": 1.5}, "line_strength must be in"),
        ({"chroma": -0.5}, "chroma must be in"),
        ({"merge": -1.0}, r"merge must be in \[0, 100\], got -1.0"),
        ({"merge_share": 1.5}, "merge_share must be in"),
        ({"colours": 0, "chroma": 9.0}, "colours must be in .*; chroma must be in"),
        ({"cohere": -2.0}, r"cohere must be in \[0, 100\], got -2.0"),
        ({"cohere_reach": 0.0}, r"cohere_reach must be in \(0, 4096\], got 0.0"),
        ({"cohere_margin": 0.5}, r"cohere_margin must be in \[1, 100\], got 0.5"),
        ({"chroma": 9.0, "ink": (1, 2)}, r"chroma must be in .*; ink must be three values"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        PrintFinish(**settings)


def test_the_stylizer_applies_the_finish_to_its_own_output(tmp_path):
    stylizer = Stylizer.from_pretrained(save_tiny_model(tmp_path / "model"))
    photo = Image.fromarray(noisy(quadrants(48, PHOTO_COLOURS).astype(float), 10))
    stylizer([photo])  # warm-up: a process's first convolutions may round one unit apart
    plain = stylizer([photo]).images[0]
    finished = stylizer([photo], finish="print").images[0]
    assert finished.size == photo.size
    assert np.array_equal(np.asarray(finished), np.asarray(apply_finish("print", photo, plain)))
    assert not np.array_equal(np.asarray(finished), np.asarray(plain))


def test_the_stylizer_refuses_unknown_and_seamless_finishes(tmp_path):
    stylizer = Stylizer.from_pretrained(save_tiny_model(tmp_path / "model"))
    photo = Image.new("RGB", (32, 32), (90, 120, 150))
    with pytest.raises(ValueError, match="unknown finish 'oil'; choose from ink, paint, print"):
        stylizer([photo], finish="oil")
    with pytest.raises(ValueError, match="the 'print' finish draws areas .* do not wrap around"):
        stylizer([photo], finish="print:merge=6", tileable=True)
    with pytest.raises(ValueError, match="ink finish has no setting 'chroma'"):
        stylizer([photo], finish="ink:chroma=2")


def test_a_finish_takes_its_settings_by_name():
    assert parse_finish("print") == ("print", PrintFinish())
    assert parse_finish(" print: merge=6, chroma=1.5 ,") == (
        "print", PrintFinish(merge=6.0, chroma=1.5)
    )  # fmt: skip
    assert parse_finish("print:ink=10/20/30,colours=5")[1] == PrintFinish(
        ink=(10, 20, 30), colours=5
    )
    assert parse_finish("ink:paper_share=0.5")[1] == InkFinish(paper_share=0.5)
    for spec, message in [
        ("woodcut", "unknown finish 'woodcut'; choose from ink, paint, print"),
        ("print:merg=3", "print finish has no setting 'merg'; choose from colours, chroma"),
        ("print:merge", "print finish: give 'merge' a value, as merge=VALUE"),
        ("print:colours=2.5", "print finish: colours=2.5 is not int"),
        ("print:ink=1/2", "print finish: ink=1/2 is not int/int/int"),
        ("print:chroma=9", "print finish: chroma must be in"),
        ("paint:length=long", "paint finish: length=long is not float"),
        ("print:=3", "print finish: no setting name before '=' in '=3'"),
        ("print:merge=6;chroma=1.5", "print finish: separate settings with ',' not ';'"),
        ("print:merge=6,merge=3", "print finish: merge is given twice"),
        ("ink:wash_edge=nan", "ink finish: wash_edge=nan is not a finite number"),
        ("print:chroma=inf", "print finish: chroma=inf is not a finite number"),
        ("print:ink=1/2/3/4", "print finish: ink=1/2/3/4 is not int/int/int"),
        ("print:areas=100000", "print finish: areas must be in [1, 4096], got 100000"),
        ("paint:seed=-1", "paint finish: seed must be in [0, 2147483647], got -1"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_finish(spec)
    # Drawn by name with settings: the same picture as the settings object draws.
    photo = Image.fromarray(noisy(quadrants(64, PHOTO_COLOURS).astype(float), 10))
    out = Image.fromarray(noisy(quadrants(64, ART_COLOURS).astype(float), 20, seed=2))
    named = np.asarray(apply_finish("print:chroma=1.0,merge=6", photo, out))
    drawn = print_finish(photo, out, PrintFinish(chroma=1.0, merge=6.0))
    assert np.array_equal(named, np.asarray(drawn))
    assert not np.array_equal(named, np.asarray(apply_finish("print", photo, out)))


def test_cli_refuses_a_bad_finish_setting_before_any_work(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "model")
    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 32), (90, 120, 150)).save(photo)
    out = tmp_path / "out"
    for finish, message in [
        ("print:merg=3", "has no setting 'merg'"),
        ("oil", "unknown finish 'oil'"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["stylize", str(photo), "--model", str(model), "--out", str(out),
                  "--finish", finish])  # fmt: skip
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_a_picture_too_large_for_the_finish_is_refused_by_name_before_the_model_runs(
    tmp_path, monkeypatch
):
    import culturegan.finish

    stylizer = Stylizer.from_pretrained(save_tiny_model(tmp_path / "model"))
    path = tmp_path / "big.png"
    Image.new("RGB", (40, 30), (90, 120, 150)).save(path)
    monkeypatch.setattr(culturegan.finish, "MAX_FINISH_PIXELS", 1000)
    ran = []
    monkeypatch.setattr(stylizer, "_stylize", lambda *a: ran.append(1))
    with pytest.raises(ValueError, match=r"'.*big.png' is 40 x 30 px: the 'print' finish"):
        stylizer([path], finish="print")
    assert ran == []  # refused before any stylization


def test_a_transparent_input_keeps_its_alpha_through_the_finish(tmp_path):
    stylizer = Stylizer.from_pretrained(save_tiny_model(tmp_path / "model"))
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = quadrants(40, PHOTO_COLOURS)
    rgba[..., 3] = np.linspace(0, 255, 40, dtype=np.uint8)[None, :]
    result = stylizer([Image.fromarray(rgba, "RGBA")], finish="print").images[0]
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result)[..., 3], rgba[..., 3])


@pytest.mark.parametrize(
    "finish", ["print", "ink", "paint", "print:merge=6,chroma=1.0", "ink:ink_depth=0.4"]
)
def test_cli_stylize_with_a_finish(tmp_path, capsys, finish):
    model = save_tiny_model(tmp_path / "model")
    photos = tmp_path / "photos"
    photos.mkdir()
    torch.manual_seed(0)
    for k in range(2):
        Image.fromarray(noisy(quadrants(40, PHOTO_COLOURS).astype(float), 10, seed=k)).save(
            photos / f"p{k}.png"
        )
    # Warm-up: a process's first convolutions may round one unit apart from the later ones.
    Stylizer.from_pretrained(model)([photos / "p0.png", photos / "p1.png"])
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(tmp_path / "a")]) == 0
    args = ["stylize", str(photos), "--model", str(model), "--out", str(tmp_path / "b")]
    assert main([*args, "--finish", finish]) == 0
    assert "stylized 2 images" in capsys.readouterr().out
    for k in range(2):
        plain = Image.open(tmp_path / "a" / f"p{k}.png")
        finished = np.asarray(Image.open(tmp_path / "b" / f"p{k}.png"))
        photo = Image.open(photos / f"p{k}.png")
        assert np.array_equal(finished, np.asarray(apply_finish(finish, photo, plain)))


PAPER, SUMI = (225, 210, 180), (60, 50, 45)
LUMA = np.array(GREY_WEIGHTS)


def ink_output(side: int, tones: list[float], seed: int = 0) -> np.ndarray:
    """A model's ink output: four quadrants of ink density ``tones`` (0 = paper, 1 = sumi)."""
    paper, sumi = np.array(PAPER, float), np.array(SUMI, float)
    dens = quadrants(side, [(t * 100, 0, 0) for t in tones])[..., 0] / 100.0
    img = paper * (1 - dens[..., None]) + sumi * dens[..., None]
    return noisy(img, 2, seed)


def test_ink_washes_keep_the_outputs_tones_on_its_own_paper():
    side = 128
    photo = Image.new("RGB", (side, side), (120, 150, 90))  # flat: no lines, no marks
    out = Image.fromarray(ink_output(side, [0.0, 0.2, 0.5, 0.8]))
    # A fifth of the picture stays paper: the steps fall in the first three quadrants, so each
    # quadrant is one wash darker than the one before it.
    result = np.asarray(ink_finish(photo, out, InkFinish(paper_share=0.2)), dtype=float)
    h, m = side // 2, 12
    means = [
        result[rows, cols].reshape(-1, 3).mean(0)
        for rows in (slice(m, h - m), slice(h + m, side - m))
        for cols in (slice(m, h - m), slice(h + m, side - m))
    ]
    grey = [float(c @ LUMA) for c in means]
    assert np.abs(means[0] - PAPER).max() < 6  # bare paper: the output's own
    # The ink is the output's darkest tone (the 0.8 quadrant): the washes step a third of the
    # way to `wash` = 0.5 of the way from paper to that ink each.
    paper_grey = np.array(PAPER) @ LUMA
    ink_grey = (np.array(PAPER) * 0.2 + np.array(SUMI) * 0.8) @ LUMA
    reached = [(paper_grey - g) / (paper_grey - ink_grey) for g in grey]
    assert reached == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6], abs=0.05)
    # Half of the picture paper: the two lightest quadrants are both paper.
    half = np.asarray(ink_finish(photo, out, InkFinish(paper_share=0.5)), dtype=float)
    assert np.abs(half[m : h - m, h + m : side - m] - PAPER).max() < 8
    # One tone all over: all paper.
    flat = np.asarray(ink_finish(photo, Image.new("RGB", (side, side), PAPER)), dtype=float)
    assert np.abs(flat - PAPER).max() <= 1


def test_ink_lines_follow_the_photo_and_marks_stay_where_the_photo_is_busy():
    side = 128
    rng = np.random.default_rng(3)
    photo = np.full((side, side, 3), 200, np.uint8)
    photo[:, : side // 2] = rng.integers(0, 255, (side, side // 2, 1))  # busy left half
    photo[80:110, 80:110] = 20  # a dark square on the flat right half: its outline is drawn
    out = np.full((side, side, 3), PAPER, np.uint8)
    dots = rng.random((side, side)) < 0.08  # the model's hatching, everywhere
    out[dots] = SUMI
    out[:3, :3] = SUMI
    # No washes (wash 0): the marks and lines alone.
    no_wash = InkFinish(wash=0.0)
    result = np.asarray(ink_finish(Image.fromarray(photo), Image.fromarray(out), no_wash), float)
    grey = result @ LUMA
    paper_grey = np.array(PAPER) @ LUMA
    # The flat right half away from the square is bare paper; the busy left half is marked.
    assert np.abs(grey[8:60, 72:120] - paper_grey).max() < 12
    assert (paper_grey - grey[8:120, 8:56]).mean() > 3 * (paper_grey - grey[8:60, 72:120]).mean()
    # The square's outline: darker than the paper on both its sides.
    assert grey[95, 76:84].min() < paper_grey - 40
    assert grey[95, 90:100].max() > paper_grey - 12  # its inside is paper: lines, not a fill


def test_ink_depth_and_neutral_set_the_inks_colour():
    side = 128
    photo = Image.new("RGB", (side, side), (120, 150, 90))  # flat: washes alone
    out = Image.fromarray(ink_output(side, [0.0, 0.2, 0.5, 0.8]))
    h, m = side // 2, 12

    def darkest(settings: InkFinish) -> np.ndarray:
        result = np.asarray(ink_finish(photo, out, settings), dtype=float)
        return result[h + m : side - m, h + m : side - m].reshape(-1, 3).mean(0)

    plain = darkest(InkFinish(wash=1.0, washes=1, paper_share=0.7))
    # The darkest quadrant reaches the output's own ink, tinted like the output's marks.
    own_ink = np.array(PAPER) * 0.2 + np.array(SUMI) * 0.8
    assert np.abs(plain - own_ink).max() < 6 and plain[0] - plain[2] > 10
    neutral = darkest(InkFinish(wash=1.0, washes=1, paper_share=0.7, ink_neutral=1.0))
    assert neutral.max() - neutral.min() < 2  # grey ink
    assert abs(neutral @ LUMA - plain @ LUMA) < 2  # as dark as before
    deep = darkest(InkFinish(wash=1.0, washes=1, paper_share=0.7, ink_depth=0.5))
    assert np.abs(deep - 0.5 * plain).max() < 3  # half way to black, same hue
    # The paper stays the output's own.
    result = np.asarray(ink_finish(photo, out, InkFinish(ink_depth=0.5, ink_neutral=1.0)), float)
    assert np.abs(result[m : h - m, m : h - m].reshape(-1, 3).mean(0) - PAPER).max() < 6


def test_ink_finish_is_deterministic_scales_and_refuses_bad_settings():
    photo = Image.fromarray(noisy(quadrants(64, PHOTO_COLOURS).astype(float), 10))
    out = Image.fromarray(ink_output(32, [0.0, 0.3, 0.6, 0.9]))
    first = apply_finish("ink", photo, out)
    assert first.size == (64, 64) and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(ink_finish(photo, out, InkFinish())))
    for settings, message in [
        ({"washes": 0}, "washes must be in"),
        ({"paper_share": 1.0}, r"paper_share must be in \(0, 1\), got 1.0"),
        ({"paper_share": 0.0}, r"paper_share must be in \(0, 1\), got 0.0"),
        ({"wash": 1.5}, "wash must be in"),
        ({"wash_edge": 0}, "wash_edge"),
        ({"bleed": -1}, "bleed must be in"),
        ({"wash_blur": 64}, r"wash_blur must be in \[0, 32\], got 64"),
        ({"ink_depth": 1.2}, "ink_depth must be in"),
        ({"ink_neutral": -0.1}, "ink_neutral must be in"),
    ]:
        with pytest.raises(ValueError, match=message):
            InkFinish(**settings)
