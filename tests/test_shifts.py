"""Averaged passes over a picture moved within the generator's grid (``Stylizer(shifts=)``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from culturegan.cli import main
from culturegan.data.images import pil_to_tensor
from culturegan.inference import SHIFT_PASSES, Stylizer, shift_average, shift_offsets
from culturegan.metrics.content import grid_peaks


class LatticeNet(torch.nn.Module):
    """Half the input plus a lattice fixed to its own pixel grid: the period-8 diagonal and
    the period-4 rows of the shipped models' spectra (docs/quality.md, session 29)."""

    def __init__(self, amplitude: float = 0.2) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.scale = torch.nn.Parameter(torch.tensor(0.5))  # a module with a parameter

    def lattice(self, h: int, w: int) -> torch.Tensor:
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        diagonal = torch.cos(2 * math.pi * (rows + cols) / 8)
        bands = torch.cos(2 * math.pi * rows / 4)
        return self.amplitude * (diagonal + bands) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.lattice(*x.shape[-2:])


def lattice_stylizer() -> Stylizer:
    config = {"kind": "two_domain", "domains": ["photo", "art"],
              "directions": {"photo->art": "g"}, "size_multiple": 8}  # fmt: skip
    return Stylizer.from_modules({"g": LatticeNet()}, config)


def photo(size=(96, 80), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((size[1], size[0]))
    smooth = 128 + 60 * np.sin(rows / 9.0)[..., None] * np.cos(cols / 13.0)[..., None]
    noise = rng.normal(0, 20, (size[1], size[0], 3))
    return Image.fromarray((smooth + noise).clip(0, 255).astype(np.uint8))


def clean_output(image: Image.Image) -> np.ndarray:
    """What LatticeNet draws without its lattice: half the picture (in [-1, 1])."""
    x = pil_to_tensor(image).numpy()
    return np.round((0.5 * x + 1) * 127.5).clip(0, 255).transpose(1, 2, 0)


def test_the_offsets_of_each_number_of_passes():
    assert shift_offsets(1, 8) == [(0, 0)]
    assert shift_offsets(4, 8) == [(0, 0), (0, 4), (4, 0), (4, 4)]
    assert shift_offsets(8, 8) == [*shift_offsets(4, 8), (2, 2), (2, 6), (6, 2), (6, 6)]
    assert sorted(shift_offsets(16, 8)) == [(a, b) for a in (0, 2, 4, 6) for b in (0, 2, 4, 6)]
    assert shift_offsets(4, 4) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert shift_offsets(4, 2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for passes in SHIFT_PASSES:
        assert len(set(shift_offsets(passes, 8))) == passes
    for bad in (0, 2, 3, 32, "8"):
        with pytest.raises(ValueError, match="shifts must be one of 1, 4, 8, 16"):
            shift_offsets(bad, 8)


def test_a_shift_average_of_a_shift_equivariant_function_is_the_function():
    x = torch.rand(2, 3, 21, 30)
    blur = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    once = blur(x)
    averaged = shift_average(x, blur, shift_offsets(8, 8))
    # Away from the top and left rows, which the mirrored pixels change, the same sums.
    assert torch.allclose(averaged[..., 7:, 7:], once[..., 7:, 7:], atol=1e-6)
    torus = lambda t: torch.nn.functional.avg_pool2d(  # noqa: E731
        torch.nn.functional.pad(t, (1, 1, 1, 1), mode="circular"), 3, stride=1
    )
    assert torch.allclose(shift_average(x, torus, shift_offsets(16, 8), wrap=True), torus(x),
                          atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="at least one offset"):
        shift_average(x, blur, [])


def test_eight_passes_cancel_a_lattice_fixed_to_the_grid():
    stylizer, image = lattice_stylizer(), photo()
    once = stylizer([image]).images[0]
    eight = stylizer([image], shifts=8).images[0]
    assert once.size == eight.size == image.size
    expected = clean_output(image)
    # Once, the lattice is there; in eight passes it cancels to the rounding of the mean.
    assert np.abs(np.asarray(once, np.float64) - expected).max() > 20
    assert np.abs(np.asarray(eight, np.float64) - expected).max() <= 1
    peaks_once, peaks_eight = grid_peaks([pil_to_tensor(once), pil_to_tensor(eight)])
    assert peaks_once > 10 * peaks_eight
    # Four passes leave the period-4 rows (their phase moves by whole turns).
    four = np.asarray(stylizer([image], shifts=4).images[0], np.float64)
    assert np.abs(four - expected).max() > 10


def test_passes_in_tiles_and_on_a_torus():
    stylizer = lattice_stylizer()
    big = photo((160, 136), seed=1)
    tiled = stylizer([big], shifts=8, tile=64).images[0]
    assert tiled.size == big.size
    assert np.abs(np.asarray(tiled, np.float64) - clean_output(big)).max() <= 2
    texture = photo((64, 64), seed=2)
    seamless = stylizer([texture], shifts=8, tileable=True).images[0]
    assert np.abs(np.asarray(seamless, np.float64) - clean_output(texture)).max() <= 1


def test_the_cli_takes_passes_and_refuses_other_numbers(tmp_path, capsys):
    image = tmp_path / "in.png"
    photo().save(image)
    with pytest.raises(SystemExit):
        main(["stylize", str(image), "--style", "ukiyoe", "--out", str(tmp_path / "o"),
              "--shifts", "3"])  # fmt: skip
    assert "invalid choice: 3" in capsys.readouterr().err
    assert main(["stylize", str(image), "--style", "ukiyoe", "--out", str(tmp_path / "o"),
                 "--shifts", "8"]) == 0  # fmt: skip
    written = Image.open(tmp_path / "o" / "in.png")
    expected = Stylizer.from_pretrained("ukiyoe")([image], shifts=8).images[0]
    assert np.array_equal(np.asarray(written), np.asarray(expected))
