"""The ``paint`` finish: the model's colours laid as brush strokes along the photo's contours,
each stroke one colour, stopping at the photo's edges."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from culturegan.finish import PaintFinish, apply_finish, paint_finish
from culturegan.finish.paint import stroke_directions


def stripes(side: int, period: int, vertical: bool) -> Image.Image:
    """A photo of grey stripes ``period`` px wide (horizontal unless ``vertical``)."""
    band = (np.arange(side) // (period // 2)) % 2 * 120 + 60
    grey = np.broadcast_to(band[None, :] if vertical else band[:, None], (side, side))
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8))


def lattice(side: int, seed: int = 0) -> Image.Image:
    """A model's output: random colours in cells of 1/64 of the side, the fine lattice the
    finish replaces."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(40, 216, (64, 64, 3)).astype(np.uint8)
    return Image.fromarray(cells.repeat(side // 64, 0).repeat(side // 64, 1))


def steps(image: Image.Image) -> tuple[float, float]:
    """Mean colour change from one pixel to the next (along x, along y)."""
    rgb = np.asarray(image, dtype=float)
    return np.abs(np.diff(rgb, axis=1)).mean(), np.abs(np.diff(rgb, axis=0)).mean()


def test_the_directions_run_along_the_photos_stripes():
    for vertical, expected in ((False, 0.0), (True, np.pi / 2)):
        grey = np.asarray(stripes(64, 16, vertical), dtype=np.float32)[..., 0] / 255
        angle = stroke_directions(grey, 4.0)[8:-8, 8:-8]
        # A direction is an axis: compare modulo pi.
        off = np.abs((angle - expected + np.pi / 2) % np.pi - np.pi / 2)
        assert off.max() < 0.05


@pytest.mark.parametrize("vertical", [False, True])
def test_strokes_follow_the_photos_contours_in_the_outputs_colours(vertical):
    side = 256
    photo, out = stripes(side, 32, vertical), lattice(side)
    painted = paint_finish(photo, out)
    along_x, along_y = steps(painted)
    # Strokes along the stripes: the colour changes little along them and more across them
    # (measured: about half as much).
    along, across = (along_y, along_x) if vertical else (along_x, along_y)
    assert along < 0.65 * across
    # The strokes' colours are the output's: the picture's mean colour holds.
    mean_out = np.asarray(out, dtype=float).reshape(-1, 3).mean(0)
    mean_painted = np.asarray(painted, dtype=float).reshape(-1, 3).mean(0)
    assert np.abs(mean_painted - mean_out).max() < 6


def test_jitter_keeps_the_outputs_own_variation_as_broken_colour():
    side = 256
    photo, out = Image.new("RGB", (side, side), (128, 128, 128)), lattice(side, seed=1)
    spread = {}
    for jitter in (0.0, 1.0):
        broad_only = PaintFinish(jitter=jitter, detail=1.0)  # no detail: the broad brush alone
        spread[jitter] = np.asarray(paint_finish(photo, out, broad_only), float).std(axis=(0, 1))
    # Without jitter every stroke takes the blurred output's colour: nearly one colour (std
    # about 7 of 255); with it each stroke keeps the colour under its start (about 33).
    assert (spread[0.0] < 0.4 * spread[1.0]).all()


def test_the_fine_brush_paints_where_the_output_has_detail():
    side = 256
    rng = np.random.default_rng(4)
    out = np.zeros((side, side, 3), np.uint8)
    ramp = np.linspace(80, 200, side // 2)[None, :, None]  # a smooth ramp on the left
    out[:, : side // 2] = (ramp * np.array([1.0, 0.8, 0.6])).astype(np.uint8)
    cells = rng.integers(30, 226, (side // 4, side // 8, 3)).astype(np.uint8)
    out[:, side // 2 :] = cells.repeat(4, 0).repeat(4, 1)  # detail on the right
    photo = Image.new("RGB", (side, side), (128, 128, 128))
    fine = np.asarray(paint_finish(photo, Image.fromarray(out)), float)
    broad = np.asarray(paint_finish(photo, Image.fromarray(out), PaintFinish(detail=1.0)), float)
    # The smooth half is the broad brush's alone (the fine brush leaves it), 16 px from the seam.
    left = slice(0, side // 2 - 16)
    assert np.array_equal(fine[:, left], broad[:, left])
    # On the detailed half the fine brush keeps more of the output's detail.
    right = np.s_[:, side // 2 + 16 :]

    def error(painted: np.ndarray) -> float:
        return float(np.abs(painted[right] - out[right]).mean())

    assert error(fine) < 0.85 * error(broad)


def test_strokes_stop_at_the_photos_edges():
    side = 256
    photo = np.full((side, side, 3), 30, np.uint8)
    photo[:, side // 2 :] = 220  # a dark left half and a light right half
    out = np.zeros((side, side, 3), np.uint8)
    out[:, : side // 2] = (200, 40, 40)  # the model painted the left red, the right blue
    out[:, side // 2 :] = (40, 40, 200)
    photo_image, out_image = Image.fromarray(photo), Image.fromarray(out)

    def red_across(settings: PaintFinish) -> float:
        """Share of the right half's first 6 columns painted closer to red than to blue."""
        rgb = np.asarray(paint_finish(photo_image, out_image, settings), dtype=float)
        band = rgb[:, side // 2 : side // 2 + 6]
        return float((band[..., 0] > band[..., 2]).mean())

    # Strokes in every direction (spread 3 radians) would cross the edge; they stop at it.
    assert red_across(PaintFinish(spread=3.0)) == 0.0
    assert red_across(PaintFinish(spread=3.0, edge=1.0)) > 0.05


def test_the_strokes_scale_with_the_picture():
    def run_length(side: int) -> float:
        painted = paint_finish(stripes(side, side // 4, False), lattice(side, seed=2))
        along_x, _ = steps(painted)
        return 1.0 / along_x  # longer strokes change colour less often along them

    small, large = run_length(128), run_length(256)
    assert 1.6 < large / small < 2.7  # twice the picture, strokes about twice as long (2.1)


def test_the_paint_finish_is_seeded_takes_the_photos_size_and_refuses_bad_settings():
    photo, out = stripes(128, 16, True), lattice(64)
    first = apply_finish("paint", photo, out)
    assert first.size == (128, 128) and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(paint_finish(photo, out)))
    other = paint_finish(photo, out, PaintFinish(seed=1))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    for settings, message in [
        ({"width": 0}, r"width must be in \(0, 16\], got 0"),
        ({"width": 20, "length": 10}, r"width must be in \(0, 10\], got 20"),
        ({"fine": 0}, r"fine must be in \(0, 1\]"),
        ({"jitter": 1.5}, "jitter must be in"),
        ({"edge": 0}, "edge must be in"),
        ({"flow_sigma": 100}, "flow_sigma must be in"),
        ({"spread": -1}, "spread must be in"),
    ]:
        with pytest.raises(ValueError, match=message):
            PaintFinish(**settings)
