"""The image loader: every error path on real malformed files, every mode conversion with a
known pixel value, EXIF orientation, folder scans, and the tensor conversion pair."""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from culturegan.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageLoadError,
    ScanResult,
    load_image,
    pil_to_tensor,
    scan_images,
    tensor_to_pil,
    to_rgb,
)


def noise_image(w: int = 48, h: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def encoded(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def expect_error(path: Path, *phrases: str, **kwargs) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(path, **kwargs)
    err = info.value
    assert err.path == path
    assert str(err).startswith(f"cannot load image '{path}': ")
    for phrase in phrases:
        assert phrase in err.reason
    return err


# ---------------------------------------------------------------------------- error paths


def test_valid_png_and_jpeg_load_as_rgb(tmp_path):
    img = noise_image()
    (tmp_path / "a.png").write_bytes(encoded(img, "PNG"))
    (tmp_path / "a.jpg").write_bytes(encoded(img, "JPEG", quality=95))
    loaded = load_image(tmp_path / "a.png")
    assert loaded.mode == "RGB" and loaded.size == (48, 32)
    assert np.array_equal(np.asarray(loaded), np.asarray(img))
    assert load_image(str(tmp_path / "a.jpg")).size == (48, 32)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    data = encoded(noise_image(64, 64), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    expect_error(path, "truncated or corrupt")


def test_corrupt_bytes_inside_png(tmp_path):
    data = bytearray(encoded(noise_image(64, 64), "PNG"))
    data[100:120] = b"\x00" * 20
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    expect_error(path, "truncated or corrupt")


def test_garbage_bytes_named_png(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    expect_error(path, "not a recognised image format")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    expect_error(path, "not a recognised image format")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    expect_error(path, "file is empty")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.png", "file not found")


def test_directory(tmp_path):
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    expect_error(folder, "directory")


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(encoded(noise_image(50, 40), "PNG"))
    expect_error(path, "50 x 40", "2000", "limit 1999", max_pixels=1999)
    assert load_image(path, max_pixels=2000).size == (50, 40)


def test_pixel_limit_wins_over_pillow_warning_and_error(tmp_path):
    # 100 Mpx: above our default limit, and above the size at which Pillow warns.
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(10_000, 10_000))
    # 210 Mpx: above the size at which Pillow itself refuses to open.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30_000, 7_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Pillow warning escaping would fail the test
        expect_error(big, "too many pixels", "10000 x 10000", str(DEFAULT_MAX_PIXELS))
        expect_error(bomb, "too many pixels", "210000000")
        # Allowed by our limit: the header check passes without a warning (no pixel data).
        scan = scan_images(tmp_path, max_pixels=200_000_000)
    assert scan.files == [big] and [p for p, _ in scan.skipped] == [bomb]
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS  # global setting untouched


def test_error_pickles_and_is_a_value_error(tmp_path):
    err = ImageLoadError(tmp_path / "x.png", "file is empty")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.reason == "file is empty"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_file_handle_left_open(tmp_path):
    good, cut, gif = tmp_path / "good.png", tmp_path / "cut.jpg", tmp_path / "anim.gif"
    good.write_bytes(encoded(noise_image(), "PNG"))
    cut.write_bytes(encoded(noise_image(), "JPEG")[:300])
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        load_image(good)
        load_image(gif)
        with pytest.raises(ImageLoadError):
            load_image(cut)
        with pytest.raises(ImageLoadError):
            load_image(good, max_pixels=10)
        scan_images(tmp_path, check="full")
    assert len(os.listdir("/proc/self/fd")) == before


# ---------------------------------------------------------------------------- modes


def one_pixel(mode: str, value) -> Image.Image:
    img = Image.new(mode, (3, 2))
    img.putpixel((0, 0), value)
    return img


def palette_image() -> Image.Image:
    img = Image.new("P", (3, 2), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return img


def float_image(values) -> Image.Image:
    return Image.fromarray(np.array(values, np.float32).reshape(2, 2), "F")


# (name, image, file format or None for in-memory only, expected RGB of pixel (0, 0))
MODE_CASES = [
    ("1", one_pixel("1", 1), "PNG", (255, 255, 255)),
    ("L", one_pixel("L", 77), "PNG", (77, 77, 77)),
    ("P", palette_image(), "PNG", (10, 200, 30)),
    ("LA alpha 0", one_pixel("LA", (0, 0)), "PNG", (255, 255, 255)),
    ("LA opaque", one_pixel("LA", (40, 255)), "PNG", (40, 40, 40)),
    ("RGBA half red", one_pixel("RGBA", (255, 0, 0, 128)), "PNG", (255, 127, 127)),
    ("CMYK", one_pixel("CMYK", (0, 255, 255, 0)), "TIFF", (255, 0, 0)),
    ("I;16 max", one_pixel("I;16", 65535), "PNG", (255, 255, 255)),
    ("I;16 half", one_pixel("I;16", 32768), "PNG", (128, 128, 128)),
    ("I;16B", one_pixel("I;16B", 32768), None, (128, 128, 128)),
    ("I", one_pixel("I", 65535), None, (255, 255, 255)),
    ("F in [0, 1]", float_image([0.5, 0.0, 1.0, 0.2]), "TIFF", (128, 128, 128)),
    ("F min-max", float_image([1.0, -1.0, 3.0, 0.0]), "TIFF", (128, 128, 128)),
    ("YCbCr", one_pixel("YCbCr", (128, 128, 128)), None, (128, 128, 128)),
    ("HSV", one_pixel("HSV", (0, 0, 200)), None, (200, 200, 200)),
]


@pytest.mark.parametrize(
    ("image", "fmt", "expected"), [c[1:] for c in MODE_CASES], ids=[c[0] for c in MODE_CASES]
)
def test_mode_conversion(tmp_path, image, fmt, expected):
    converted = to_rgb(image)
    assert converted.mode == "RGB" and converted.size == image.size
    assert np.allclose(converted.getpixel((0, 0)), expected, atol=1)
    if fmt is not None:  # the same through a real file
        path = tmp_path / f"img.{fmt.lower()}"
        image.save(path, fmt)
        loaded = load_image(path)
        assert loaded.mode == "RGB"
        assert np.allclose(loaded.getpixel((0, 0)), expected, atol=1)


def test_palette_transparency_goes_over_white(tmp_path):
    img = palette_image()
    img.info["transparency"] = 1
    path = tmp_path / "p.png"
    img.save(path, transparency=1)
    assert load_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_multi_frame_gif_gives_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    with Image.open(path) as check:
        assert check.n_frames == 2
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.getpixel((8, 8)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(6, "top_right"), (8, "bottom_left")],  # 6: rotate 90 clockwise to view; 8: anticlockwise
)
def test_exif_orientation(tmp_path, orientation, corner):
    arr = np.full((20, 40, 3), 255, np.uint8)  # stored 40 wide x 20 high
    arr[:6, :6] = (255, 0, 0)  # marked top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    loaded = np.asarray(load_image(path)).astype(int)
    assert loaded.shape == (40, 20, 3)  # shown 20 wide x 40 high
    y, x = {"top_right": (2, 17), "bottom_left": (37, 2)}[corner]
    assert loaded[y, x, 0] > 200 and loaded[y, x, 1] < 60  # red moved there
    assert loaded[2, 2, 1] > 200  # and the stored top-left is white now


# ---------------------------------------------------------------------------- scan_images


def make_scan_folder(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    img = noise_image(16, 16)
    img.save(root / "b.png")
    img.save(root / "a.JPG")
    img.save(root / "sub" / "c.png")
    img.save(root / ".hidden.png")
    img.save(root / ".hidden_dir" / "d.png")
    (root / "notes.txt").write_text("not an image")
    (root / "empty.png").touch()
    (root / "garbage.png").write_bytes(b"\x01\x02" * 100)
    (root / "text.jpg").write_text("hello")
    (root / "cut.png").write_bytes(encoded(noise_image(64, 64), "PNG")[:500])


def test_scan_images_header_check(tmp_path):
    make_scan_folder(tmp_path)
    scan = scan_images(tmp_path)
    assert isinstance(scan, ScanResult)
    # The truncated PNG has a valid header: only a full decode finds it.
    assert [p.relative_to(tmp_path).as_posix() for p in scan.files] == [
        "a.JPG",
        "b.png",
        "cut.png",
        "sub/c.png",
    ]
    reasons = {p.name: r for p, r in scan.skipped}
    assert reasons == {
        "empty.png": "file is empty",
        "garbage.png": "not a recognised image format",
        "text.jpg": "not a recognised image format",
    }
    assert scan.ignored == 1
    summary = scan.summary()
    assert summary.startswith(f"found 4 images in '{tmp_path}'; skipped 3 (")
    assert "2 not a recognised image format" in summary and "1 file is empty" in summary
    assert "ignored 1 files without an image extension" in summary
    report = scan.report()
    assert report.splitlines()[0] == summary
    assert len(report.splitlines()) == 4 and "garbage.png': not a recognised" in report


def test_scan_images_full_and_none_and_flat(tmp_path):
    make_scan_folder(tmp_path)
    full = scan_images(tmp_path, check="full")
    assert [p.name for p in full.files] == ["a.JPG", "b.png", "c.png"]
    assert dict((p.name, r) for p, r in full.skipped)["cut.png"].startswith(
        "image data is truncated or corrupt"
    )
    assert "skipped 4 (" in full.summary()
    listed = scan_images(tmp_path, check="none")
    assert len(listed.files) == 7 and not listed.skipped
    flat = scan_images(tmp_path, recursive=False, check="none")
    assert "c.png" not in [p.name for p in flat.files] and len(flat.files) == 6


def test_scan_images_pixel_limit_and_bad_arguments(tmp_path):
    noise_image(16, 16).save(tmp_path / "small.png")
    noise_image(40, 40).save(tmp_path / "large.png")
    scan = scan_images(tmp_path, max_pixels=1000)
    assert [p.name for p in scan.files] == ["small.png"]
    assert "40 x 40" in scan.skipped[0][1] and "1 too many pixels" in scan.summary()
    with pytest.raises(FileNotFoundError, match="nope"):
        scan_images(tmp_path / "nope")
    with pytest.raises(NotADirectoryError, match="small.png"):
        scan_images(tmp_path / "small.png")
    with pytest.raises(ValueError, match="check"):
        scan_images(tmp_path, check="deep")


def test_image_extensions():
    classic = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
    assert classic | {".avif", ".heic", ".heif"} == set(IMAGE_EXTENSIONS)  # test_image_formats


# ---------------------------------------------------------------------------- tensors


def test_tensor_round_trip_is_exact():
    img = noise_image(24, 16)
    t = pil_to_tensor(img)
    assert t.shape == (3, 16, 24) and t.dtype == torch.float32
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    assert np.array_equal(np.asarray(tensor_to_pil(t)), np.asarray(img))


def test_tensor_known_values_and_clamp():
    t = pil_to_tensor(Image.new("RGB", (2, 2), (0, 255, 128)))
    assert torch.allclose(t[:, 0, 0], torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]), atol=1e-6)
    out = tensor_to_pil(torch.tensor([-3.0, 0.0, 5.0]).view(3, 1, 1).expand(3, 2, 2))
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (0, 128, 255)
    assert pil_to_tensor(Image.new("L", (2, 2), 255)).eq(1.0).all()  # non-RGB converted
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        tensor_to_pil(torch.zeros(1, 3, 4, 4))
