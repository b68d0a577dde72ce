"""AVIF and HEIC through the one loader: files made here, read back, compared pixel by pixel.

Both codecs are lossy. The test picture is a smooth colour gradient, which a quality-90 coder
keeps to about one grey level (4:2:0 chroma, YCbCr rounding); the tolerance, an RMS error of 2%
of the range (5 levels), is five times that and still far below what a wrong orientation, a
swapped channel or a wrong frame gives (tens of levels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from culturegan.data import images
from culturegan.data.images import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    avif_available,
    heif_available,
    load_image,
    scan_images,
)

RMS_TOLERANCE = 0.02 * 255

needs_avif = pytest.mark.skipif(
    not avif_available(), reason="this Pillow was built without AVIF (libavif)"
)
needs_heif = pytest.mark.skipif(
    not heif_available(), reason="pillow-heif is not installed (the [heif] extra)"
)


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """(H, W, 3) uint8: red grows to the right, green downwards, blue along the diagonal."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).clip(0, 255).astype(np.uint8)


def rms_error(path: Path, expected: np.ndarray) -> float:
    got = np.asarray(load_image(path), dtype=np.float64)
    assert got.shape == expected.shape
    return float(np.sqrt(np.mean((got - expected) ** 2)))


def test_avif_and_heic_are_image_extensions():
    assert {".avif", ".heic", ".heif"} <= IMAGE_EXTENSIONS


@needs_avif
def test_avif_round_trip(tmp_path):
    expected = gradient()
    Image.fromarray(expected).save(tmp_path / "g.avif", quality=90)
    assert rms_error(tmp_path / "g.avif", expected) < RMS_TOLERANCE
    # the tolerance separates: the same picture upside down is far outside it
    assert rms_error(tmp_path / "g.avif", expected[::-1]) > 5 * RMS_TOLERANCE


@needs_heif
@pytest.mark.parametrize("suffix", [".heic", ".heif"])
def test_heic_round_trip(tmp_path, suffix):
    expected = gradient()
    Image.fromarray(expected).save(tmp_path / f"g{suffix}", format="HEIF", quality=90)
    assert rms_error(tmp_path / f"g{suffix}", expected) < RMS_TOLERANCE


@needs_heif
def test_heic_with_alpha_keeps_it_on_request(tmp_path):
    rgba = np.dstack([gradient(), np.full((48, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0  # left half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.heic", format="HEIF", quality=90)
    over_white = np.asarray(load_image(tmp_path / "a.heic"), dtype=np.float64)
    assert np.abs(over_white[:, :24] - 255).mean() < RMS_TOLERANCE  # paper shows through
    kept = load_image(tmp_path / "a.heic", keep_alpha=True)
    assert kept.mode == "RGBA" and np.asarray(kept)[:, 40:, 3].min() > 250


@needs_avif
@needs_heif
def test_folder_scans_list_avif_and_heic(tmp_path):
    picture = Image.fromarray(gradient())
    picture.save(tmp_path / "a.avif", quality=90)
    picture.save(tmp_path / "b.HEIC", format="HEIF", quality=90)
    picture.save(tmp_path / "c.png")
    scan = scan_images(tmp_path, check="full")
    assert [p.name for p in scan.files] == ["a.avif", "b.HEIC", "c.png"]
    assert not scan.skipped


def test_a_heic_without_its_codec_says_what_to_install(tmp_path, monkeypatch):
    # Bytes no opener recognises, as a HEIC is to a Pillow without pillow-heif.
    monkeypatch.setattr(images, "heif_available", lambda: False)
    path = tmp_path / "phone.heic"
    path.write_bytes(b"not a picture at all" * 4)
    with pytest.raises(ImageLoadError, match=r"pillow-heif: pip install 'culturegan\[heif\]'"):
        load_image(path)
    scan = scan_images(tmp_path, check="header")
    assert scan.files == [] and "culturegan[heif]" in scan.skipped[0][1]
