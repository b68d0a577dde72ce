"""benchmarks/colour_stats.py: the colour figures of art, photos and models' outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_script, save_tiny_model

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "colour_stats.py"


@pytest.fixture(scope="module")
def script():
    return load_script(SCRIPT, "colour_stats")


def test_colour_figures_of_known_pixels(script):
    # A quarter pure blue, a quarter pure red, half mid grey.
    pixels = np.array([[0, 0, 1]] * 25 + [[1, 0, 0]] * 25 + [[0.5, 0.5, 0.5]] * 50, np.float32)
    stats = script.colour_stats(pixels)
    shares = stats["hue_shares"]
    # BT.601: blue's hue angle is 350.8 degrees (the last sector), red's 108.7 (the fourth).
    assert shares["blue"] == 0.25 and shares["red"] == 0.25 and shares["grey"] == 0.5
    assert sum(shares.values()) == pytest.approx(1.0)
    # Luma: blue 0.114, red 0.299, grey 0.5; the median falls between red and grey.
    assert stats["luma_q10_q50_q90"] == pytest.approx([0.114, 0.3995, 0.5], abs=1e-3)
    # Chroma (the length of (Cb, Cr)): grey 0, pure blue 0.506, pure red 0.528; the median
    # falls between grey and blue.
    assert stats["chroma_q50_q90"] == pytest.approx([0.2531, 0.5275], abs=1e-3)
    assert script.total_variation(shares, shares) == 0.0
    greys = script.colour_stats(np.full((10, 3), 0.5, np.float32))["hue_shares"]
    assert script.total_variation(shares, greys) == pytest.approx(0.5)


def test_the_script_compares_art_photos_and_a_model(script, tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "cultures"
    for domain in ("photo", *script.qc.CULTURES):
        (data / domain).mkdir(parents=True)
        tint = {"photo": (0.3, 0.5, 0.9), "ukiyoe": (0.95, 0.9, 0.75)}.get(domain, (0.5,) * 3)
        for i in range(12):
            noise = rng.uniform(-0.05, 0.05, (24, 32, 3))
            pixels = np.clip(np.array(tint) + noise, 0, 1) * 255
            Image.fromarray(pixels.astype(np.uint8)).save(data / domain / f"{i}.png")
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "colours.json"
    assert script.main(["--data", str(data), "--target", "ukiyoe", "--side", "32",
                        "--model", f"tiny={model}", "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == ["judging art of ukiyoe", "test photos", "tiny"]
    # The art is cream (orange-yellow hues), the photos blue: far apart; the art is 0 from itself.
    assert rows["judging art of ukiyoe"]["hue_tv_to_art"] == 0.0
    assert rows["test photos"]["hue_tv_to_art"] > 0.9
    assert 0 <= rows["tiny"]["hue_tv_to_art"] <= 1
    printed = capsys.readouterr().out
    assert "| tiny |" in printed and "hue TV to the art" in printed
    with pytest.raises(SystemExit):
        script.main(["--data", str(data), "--target", "ukiyoe", "--model", "no-equals-sign"])
