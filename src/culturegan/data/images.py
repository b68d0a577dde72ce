"""The one loader for every image file culturegan reads, and the tensor conversion pair.

:func:`load_image` opens a file, refuses it with an :class:`ImageLoadError` naming the file and
the problem when it cannot be used, and otherwise returns a fully decoded RGB image: EXIF
orientation applied, first frame only (GIF, multi-page TIFF). Every Pillow mode becomes RGB as
follows (:func:`to_rgb`, also used for images that arrive in memory):

==================  ==================================================================
mode                becomes
==================  ==================================================================
RGB                 unchanged
1                   black / white
L                   the grey value in all three channels
P                   through RGBA (palette transparency honoured), then as RGBA
PA, LA, RGBA, ...   any alpha: composited over white paper
CMYK                Pillow's CMYK -> RGB conversion
I;16, I;16B/L, I    16-bit range scaled to 8 bit (value * 255 / 65535, clipped), then grey
F                   values in [0, 1] times 255; otherwise min-max stretched to [0, 255]
YCbCr, LAB, HSV     Pillow's ``convert("RGB")``
==================  ==================================================================

AVIF (a Pillow built with libavif) and HEIC/HEIF (pillow-heif, the ``[heif]`` extra) are read
like any other format; without their codec such a file is refused with what to install.

Before anything is decoded, the size in the file header is checked against ``max_pixels``
(a decompression-bomb guard like Pillow's). Pillow's own warning for large images is silenced
locally, so that our limit and our message are the ones that apply; Pillow still refuses
images above twice ``PIL.Image.MAX_IMAGE_PIXELS`` whatever ``max_pixels`` says.

Usage::

    img = load_image("photo.jpg")                      # PIL RGB image
    scan = scan_images("data/photo"); print(scan.summary())
"""

from __future__ import annotations

import functools
import logging
import os
import re
import struct
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError, features

log = logging.getLogger("culturegan.data")

# HEIC/HEIF decode through pillow-heif (the [heif] extra), AVIF through Pillow itself when it was
# built with libavif. Folder scans list them either way: a file that cannot be decoded here is
# refused with a message that says what to install, not passed over in silence.
HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".avif", *HEIF_EXTENSIONS}
)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS
SKIPPED_SHOWN = 10  # skipped files a log names one by one; the rest are counted

# What Pillow raises while decoding broken data (beyond OSError, which covers truncation).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageLoadError(ValueError):
    """An image file that cannot be used; ``path`` is the file, ``reason`` says why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, reason)  # both in args, so the error survives pickling
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot load image '{self.path}': {self.reason}"


@functools.cache
def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read: registers pillow-heif's opener with Pillow once per
    process (worker processes included), when pillow-heif is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def _missing_codec(path: Path) -> str | None:
    """Why a file Pillow did not recognise may be fine after all: its codec is not installed."""
    suffix = path.suffix.lower()
    if suffix in HEIF_EXTENSIONS and not heif_available():
        return "HEIC/HEIF needs pillow-heif: pip install 'culturegan[heif]'"
    if suffix == ".avif" and not avif_available():
        return "this Pillow was built without AVIF support: pip install -U pillow"
    return None


def avif_available() -> bool:
    """Whether this Pillow reads AVIF (built with libavif; older versions know no such module)."""
    try:
        return features.check_module("avif")
    except ValueError:  # "Unknown module": a Pillow from before AVIF support
        return False


def _open_checked(path: Path, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily (header only) and apply the pixel limit; the caller closes it."""
    heif_available()  # by content, so a HEIC photo saved as .jpg opens too
    if not path.exists():
        # A dangling symlink also lands here: exists() follows links.
        raise ImageLoadError(path, "file not found")
    if path.is_dir():
        raise ImageLoadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageLoadError(path, "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as exc:
        # Pillow's hard limit fired before we could see the size; keep its pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1))} pixels" if found else "too many pixels"
        raise ImageLoadError(
            path,
            f"too many pixels ({count}, limit {max_pixels}; Pillow's own limit "
            f"PIL.Image.MAX_IMAGE_PIXELS also applies)",
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(path, _missing_codec(path) or "not a recognised image format") from exc
    except PermissionError as exc:
        raise ImageLoadError(path, "permission denied") from exc
    except FileNotFoundError as exc:
        raise ImageLoadError(path, "file not found") from exc
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(path, f"image data is truncated or corrupt (header: {exc})") from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageLoadError(
            path,
            f"too many pixels ({width} x {height} = {width * height}, limit {max_pixels}; "
            "raise max_pixels to allow it)",
        )
    return img


def load_image(
    path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS, keep_alpha: bool = False
) -> Image.Image:
    """Load ``path`` as a fully decoded RGB image (see the module docstring for the rules);
    with ``keep_alpha``, an image with transparency comes back as RGBA instead (straight,
    not premultiplied, as PNG stores it; see :func:`split_alpha`).

    Raises :class:`ImageLoadError` for missing, empty, unrecognised, truncated, corrupt or
    oversized files; the file is closed in every case.
    """
    path = Path(path)
    with _open_checked(path, max_pixels) as img:
        try:
            img.load()  # the first frame: Image.open leaves multi-frame files on frame 0
        except _DECODE_ERRORS as exc:
            raise ImageLoadError(path, f"image data is truncated or corrupt ({exc})") from exc
        try:
            # Always a new image, so it outlives the file closing at the end of the block.
            upright = ImageOps.exif_transpose(img)
        except _DECODE_ERRORS + (KeyError, TypeError) as exc:
            log.warning("ignoring unreadable EXIF orientation of '%s' (%s)", path, exc)
            upright = img.copy()
        if keep_alpha and has_alpha(upright):
            return upright.convert("RGBA")
        try:
            return to_rgb(upright)
        except ValueError as exc:
            raise ImageLoadError(path, str(exc)) from exc


def has_alpha(img: Image.Image) -> bool:
    """Whether ``img`` carries transparency (an alpha band or a transparent palette entry)."""
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB, alpha as mode L) of an image with transparency, (RGB, None) otherwise.

    The colour of a partly transparent pixel is its straight colour (what it shows where it is
    opaque); fully transparent pixels hold no colour, so they are filled from their opaque
    neighbours (a pull-push fill over coarser and coarser averages). A network then sees a
    sprite's own colours around its edges, not white paper or black, and no halo appears when
    the alpha is put back.
    """
    if not has_alpha(img):
        return (img if img.mode == "RGB" else to_rgb(img)), None
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)  # (H, W, 4)
    alpha = rgba[..., 3]
    known = (alpha > 0).astype(np.float32)
    if not known.any():  # nothing opaque: no colour to extend
        return Image.new("RGB", img.size, "white"), Image.fromarray(alpha.astype(np.uint8))
    filled = _pull_push(rgba[..., :3], known)
    rgb = np.where(known[..., None] > 0, rgba[..., :3], filled)
    return (
        Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8)),
        Image.fromarray(alpha.astype(np.uint8)),
    )


def _pull_push(colour: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours defined where ``known`` is 1 -> defined everywhere: halve until every
    cell has a known pixel (pull), then fill each level's gaps from the coarser level (push)."""
    if known.all() or min(known.shape) <= 1:
        total = known.sum()
        mean = (colour * known[..., None]).sum((0, 1)) / max(total, 1.0)
        return np.where(known[..., None] > 0, colour, mean)
    h, w = known.shape
    ph, pw = h + h % 2, w + w % 2
    c = np.zeros((ph, pw, 3), np.float32)
    k = np.zeros((ph, pw), np.float32)
    c[:h, :w], k[:h, :w] = colour * known[..., None], known
    k2 = k.reshape(ph // 2, 2, pw // 2, 2).sum((1, 3))
    c2 = c.reshape(ph // 2, 2, pw // 2, 2, 3).sum((1, 3)) / np.maximum(k2, 1e-8)[..., None]
    coarse = _pull_push(c2, (k2 > 0).astype(np.float32))
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
    return np.where(known[..., None] > 0, colour, up)


def merge_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """``rgb`` with ``alpha`` put back exactly (RGBA), or ``rgb`` itself without one."""
    if alpha is None:
        return rgb
    if alpha.size != rgb.size:
        raise ValueError(f"alpha of size {alpha.size} does not fit an image of {rgb.size}")
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


def iter_image_batches(
    paths: Sequence[str | os.PathLike],
    batch_size: int,
    *,
    skipped: list[tuple[Path, str]],  # unreadable files are appended here: (path, reason)
    keep_alpha: bool = False,  # see load_image
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[list[Path], list[Image.Image]]]:
    """The one "read a batch, name and skip the unreadable" loop: (paths, images) in order,
    up to ``batch_size`` readable files each; batches with nothing readable are not yielded."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, len(paths), batch_size):
        files: list[Path] = []
        images: list[Image.Image] = []
        for item in paths[start : start + batch_size]:
            try:
                images.append(load_image(item, max_pixels=max_pixels, keep_alpha=keep_alpha))
                files.append(Path(item))
            except ImageLoadError as exc:
                skipped.append((Path(item), exc.reason))
        if images:
            yield files, images


def to_rgb(img: Image.Image) -> Image.Image:
    """A new RGB image from ``img`` in any Pillow mode, by the table in the module docstring."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    if mode in ("P", "PA", "LA", "RGBA", "RGBa"):
        return _over_white(img.convert("RGBA"))
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(img).astype(np.float64)  # I;16B etc. come out in native order
        grey = np.clip(np.rint(values * 255.0 / 65535.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        return Image.fromarray(_float_to_uint8(np.asarray(img))).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"unsupported pixel mode ({mode})") from exc


def _over_white(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image over white paper: c * a + 255 * (1 - a)."""
    arr = np.asarray(rgba).astype(np.float32)  # (H, W, 4)
    alpha = arr[..., 3:] / 255.0
    rgb = arr[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Mode F: [0, 1] data is scaled by 255, anything else stretched min-max (constant -> 0)."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif high > low:
        scaled = (values - low) * 255.0 / (high - low)
    else:
        scaled = np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


@dataclass
class ScanResult:
    """Image files found under ``folder`` and the ones that were skipped, with reasons."""

    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: int = 0  # files without an image extension (not counted as problems)
    folder: Path | None = None

    def summary(self) -> str:
        """One line, e.g. "found 120 images in 'DIR'; skipped 3 (2 not a recognised ...)"."""
        where = f" in '{self.folder}'" if self.folder is not None else ""
        text = f"found {len(self.files)} images{where}"
        if self.skipped:
            # Group by the reason's fixed leading phrase; details sit in parentheses.
            kinds = Counter(reason.split(" (")[0] for _, reason in self.skipped)
            parts = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
            text += f"; skipped {len(self.skipped)} ({parts})"
        if self.ignored:
            text += f"; ignored {self.ignored} files without an image extension"
        return text

    def report(self, limit: int | None = None) -> str:
        """The summary, then one line per skipped file with its reason (the first ``limit``)."""
        return "\n".join([self.summary(), *skipped_lines(self.skipped, limit)])


def skipped_lines(skipped: Sequence[tuple[Path, str]], limit: int | None = None) -> list[str]:
    """One line per skipped file with its reason; past ``limit`` files, "... and K more"."""
    shown = skipped if limit is None else skipped[:limit]
    lines = [f"  skipped '{path}': {reason}" for path, reason in shown]
    if len(skipped) > len(shown):
        lines.append(f"  ... and {len(skipped) - len(shown)} more")
    return lines


def scan_images(
    folder: str | os.PathLike,
    *,
    recursive: bool = True,  # descend into subfolders (hidden ones are always skipped)
    check: Literal["header", "full", "none"] = "header",  # how hard to look at each file
    max_pixels: int = DEFAULT_MAX_PIXELS,  # larger images are skipped
) -> ScanResult:
    """List the image files under ``folder``, sorted by relative path, skipping bad ones.

    ``check="header"`` opens each file to read its format and size (no decoding) and applies
    the pixel limit; ``"full"`` decodes each with :func:`load_image`; ``"none"`` only lists.
    Hidden files and folders (name starting with ".") are left out; files with other
    extensions are counted in ``ignored``; a subfolder that cannot be listed is in ``skipped``.
    """
    if check not in ("header", "full", "none"):
        raise ValueError(f"check must be 'header', 'full' or 'none', not {check!r}")
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder '{folder}' does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"'{folder}' is a file, not a folder of images")

    candidates: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    ignored = 0

    def unreadable(exc: OSError) -> None:  # os.walk would skip a folder it cannot list silently
        skipped.append((Path(exc.filename), f"folder cannot be read ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        if recursive:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        else:
            dirnames[:] = []
        for name in filenames:
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                candidates.append(Path(dirpath) / name)
            else:
                ignored += 1
    candidates.sort(key=lambda p: p.relative_to(folder).as_posix())

    files: list[Path] = []
    for path in candidates:
        try:
            if check == "header":
                _open_checked(path, max_pixels).close()
            elif check == "full":
                load_image(path, max_pixels=max_pixels)
        except ImageLoadError as exc:
            skipped.append((path, exc.reason))
            continue
        files.append(path)
    return ScanResult(files=files, skipped=skipped, ignored=ignored, folder=folder)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A (3, H, W) float32 tensor in [-1, 1]; non-RGB images go through :func:`to_rgb`."""
    if img.mode != "RGB":
        img = to_rgb(img)
    arr = np.asarray(img, dtype=np.float32)  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """An RGB image from a (3, H, W) tensor in [-1, 1] (values outside are clamped)."""
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(tensor.shape)}")
    t = tensor.detach().to("cpu", torch.float32).clamp(-1.0, 1.0)
    arr = ((t + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)
    return Image.fromarray(np.ascontiguousarray(arr))
