"""Where the studio's inputs come from: the models it offers, the sample photos, and uploads.

* :class:`ModelRegistry` lists the shipped models (``culturegan.zoo.list_shipped``), the model
  folders given with ``--models`` and the ``model/`` folders of training runs under a runs folder.
  Users pick a model by its id; a path typed by a user never reaches the file system. Each model
  opens once, through ``Stylizer.from_pretrained``, the first time it is needed.
* :func:`sample_photos`: scikit-image's colour photos (the demo's), scaled down.
* :func:`decode_upload`: an uploaded file's bytes -> a checked RGB image: the type is sniffed from
  the content, the bytes go to a temporary file with a name of our own, and the project's one
  loader (``culturegan.data.images.load_image``, with its decompression-bomb guard) decodes it.

Usage::

    registry = ModelRegistry(model_dirs=[Path("my_models")], runs_dir=Path("runs"))
    stylizer = registry.stylizer("ukiyoe")
"""

from __future__ import annotations

import functools
import io
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from culturegan.checkpoint import CONFIG_NAME, CheckpointError
from culturegan.data.images import ImageLoadError, load_image
from culturegan.inference import Stylizer

SAMPLE_SIDE = 384  # sample photos are scaled to this longer side

# Formats the studio accepts, by the bytes they start with (the file name is never trusted).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# ISO base media files (bytes 4-8 "ftyp") by their major brand: AVIF, and HEIC/HEIF as phones
# save them. "mif1"/"msf1" name the generic image format, HEVC-coded in practice.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
# The temporary file's suffix: a codec that is not installed is then named in the error.
_SUFFIXES = {"AVIF": ".avif", "HEIF": ".heic"}


class UploadError(ValueError):
    """An upload the studio refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ModelOpenError(RuntimeError):
    """A listed model folder that cannot be opened (corrupt or incomplete)."""


@dataclass(frozen=True)
class ModelEntry:
    id: str  # what the page and the API send: "ukiyoe", "models/name", "runs/003-cut"
    path: Path
    origin: str  # "shipped" | "folder" | "run"
    target: str | None  # the shipped model's culture; None: the model's first direction
    task: str = "style transfer"  # shipped models: what their card says (e.g. "restoration")
    finish: str | None = None  # shipped models: the finish their card recommends
    shifts: int = 1  # shipped models: the passes their card recommends (Stylizer shifts)


class ModelRegistry:
    """The models the studio offers, each opened once on first use (thread-safe)."""

    def __init__(
        self,
        *,
        model_dirs: list[Path] | None = None,
        runs_dir: Path | None = None,
        shipped: bool = True,
    ) -> None:
        entries: dict[str, ModelEntry] = {}

        def add(
            base_id: str,
            path: Path,
            origin: str,
            target: str | None = None,
            task: str = "style transfer",
            finish: str | None = None,
            shifts: int = 1,
        ) -> None:
            entry_id, n = base_id, 2
            while entry_id in entries:
                entry_id, n = f"{base_id}-{n}", n + 1
            entries[entry_id] = ModelEntry(entry_id, path, origin, target, task, finish, shifts)

        if shipped:
            from culturegan.zoo import list_shipped

            for model in list_shipped():
                add(model.name, model.path, "shipped", model.target, model.task, model.finish,
                    model.shifts)  # fmt: skip
        for folder in model_dirs or []:
            folder = Path(folder).expanduser()
            if (folder / CONFIG_NAME).is_file():
                add(f"models/{folder.name}", folder, "folder")
            elif folder.is_dir():
                found = sorted(p for p in folder.iterdir() if (p / CONFIG_NAME).is_file())
                if not found:
                    raise FileNotFoundError(
                        f"--models '{folder}' is neither a model folder ({CONFIG_NAME}) nor a "
                        "folder of model folders"
                    )
                for sub in found:
                    add(f"models/{sub.name}", sub, "folder")
            else:
                raise FileNotFoundError(f"--models '{folder}' does not exist")
        if runs_dir is not None and runs_dir.is_dir():
            for run in sorted(runs_dir.iterdir()):
                if (run / "model" / CONFIG_NAME).is_file():
                    add(f"runs/{run.name}", run / "model", "run")
        self.entries = entries
        self._stylizers: dict[str, Stylizer] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> ModelEntry:
        if model_id not in self.entries:
            known = ", ".join(self.entries) or "none"
            raise KeyError(f"unknown model '{model_id}' (this studio offers: {known})")
        return self.entries[model_id]

    def stylizer(self, model_id: str) -> Stylizer:
        """The model's stylizer, opened on first use (a lock keeps it to one opening). A
        folder that does not open raises :class:`ModelOpenError`, naming the model by its id."""
        entry = self.get(model_id)
        with self._lock:
            if model_id not in self._stylizers:
                try:
                    self._stylizers[model_id] = Stylizer.from_pretrained(entry.path)
                except (CheckpointError, ValueError, OSError) as exc:
                    message = str(exc).replace(str(entry.path), "its folder")
                    raise ModelOpenError(f"model '{model_id}' does not open: {message}") from None
            return self._stylizers[model_id]

    def describe(self, model_id: str) -> dict:
        """What the page needs to show a model's controls (``options`` decides which); a
        folder that does not open is listed with its ``error`` instead."""
        entry = self.get(model_id)
        try:
            stylizer = self.stylizer(model_id)
        except ModelOpenError as exc:
            return {"id": entry.id, "origin": entry.origin, "error": str(exc)}
        targets = list(dict.fromkeys(d.split("->")[1] for d in stylizer.directions))
        default = entry.target or stylizer.resolve_direction().split("->")[1]
        return {
            "id": entry.id,
            "origin": entry.origin,
            "task": entry.task,
            "kind": stylizer.kind,
            "domains": list(stylizer.domains),
            "targets": targets,
            "default_target": default,
            "options": sorted(stylizer.options),
            "finish": entry.finish,  # the page preselects it
            "shifts": entry.shifts,  # likewise
        }


@functools.cache
def _samples() -> dict[str, bytes]:
    from culturegan.data.synthetic import photo_sources

    out = {}
    for name, photo in photo_sources().items():
        photo.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.LANCZOS)
        out[name] = png_bytes(photo)
    return out


def sample_names() -> list[str]:
    from culturegan.data.synthetic import PHOTO_NAMES

    return list(PHOTO_NAMES)


def sample_png(name: str) -> bytes:
    """The packaged sample photo ``name`` as PNG bytes (KeyError names the known ones)."""
    if name not in sample_names():
        raise KeyError(f"unknown sample photo '{name}' (known: {', '.join(sample_names())})")
    return _samples()[name]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sniff_format(data: bytes) -> str | None:
    """The image format ``data`` starts with, or None when it is none the studio accepts."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return "AVIF" if brand in _AVIF_BRANDS else "HEIF" if brand in _HEIF_BRANDS else None
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)


def decode_upload(data: bytes, *, what: str, tmp_dir: Path, max_pixels: int) -> Image.Image:
    """Decode an upload through the project's loader; ``what`` names it in messages (a form
    field and index, never the user's file name). The temporary file is always removed."""
    if not data:
        raise UploadError(f"{what} is empty")
    kind = sniff_format(data)
    if kind is None:
        raise UploadError(
            f"{what} is not an image the studio reads (PNG, JPEG, GIF, BMP, TIFF, WebP, AVIF "
            "or HEIC, recognised by its content, not its name)",
            status=415,
        )
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=_SUFFIXES.get(kind, ".img"), dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        image = load_image(name, max_pixels=max_pixels)
    except ImageLoadError as exc:
        # The reason only: the temporary path means nothing to the user.
        status = 413 if "too many pixels" in exc.reason else 400
        reason = exc.reason.replace(name, "the upload")  # Pillow's messages may name the file
        raise UploadError(f"{what} ({kind}): {reason}", status=status) from None
    finally:
        Path(name).unlink(missing_ok=True)
    return image


def safe_label(text: str) -> str:
    """``text`` reduced to letters, digits, '-' and '_' (for download names)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:60] or "image"


def sniff_video(data: bytes) -> str | None:
    """The container ``data`` starts with (MP4/QuickTime, Matroska/WebM, AVI, GIF), or None."""
    if data[4:8] == b"ftyp":
        return "MP4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "AVI"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def video_upload(data: bytes, *, tmp_dir: Path, max_frames: int):
    """Keep an uploaded clip in a temporary file of our naming and check that PyAV reads it;
    returns (path, ``VideoInfo``). The caller removes the file when its job ends."""
    from culturegan.data.video import VideoLoadError, open_video

    if not data:
        raise UploadError("the video is empty")
    kind = sniff_video(data)
    if kind is None:
        raise UploadError(
            "not a video the studio reads (MP4/MOV, MKV/WebM, AVI or GIF, recognised by its "
            "content)",
            status=415,
        )
    fd, name = tempfile.mkstemp(prefix="video-", suffix=".clip", dir=tmp_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        info = open_video(path).info
        if info.frames is not None and info.frames > max_frames:
            raise UploadError(f"the video has {info.frames} frames (limit {max_frames})", 413)
    except VideoLoadError as exc:
        path.unlink(missing_ok=True)
        reason = exc.reason.replace(str(path), "the upload")  # PyAV's messages name the file
        raise UploadError(f"the video ({kind}): {reason}") from None
    except (UploadError, ImportError):
        path.unlink(missing_ok=True)
        raise
    return path, info
