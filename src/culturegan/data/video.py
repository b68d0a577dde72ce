"""Reading videos frame by frame: video files and GIFs through PyAV, folders of frames through
the project's image loader.

:func:`open_video` checks the input and returns a :class:`VideoSource`: its :class:`VideoInfo`
(frame rate, size, display rotation, audio stream) and :meth:`VideoSource.items`, an iterator
that yields decoded frames as (H, W, 3) uint8 RGB arrays in the order they are shown, together
with the compressed audio packets of the file (so that a writer can copy the audio without
decoding it). Nothing but the current frame is held in memory.

Frames come out as stored in the file: a phone video shot upright is usually stored sideways
with a display rotation of 90 or -90 degrees in its metadata (``VideoInfo.rotation``,
counter-clockwise as FFmpeg's display matrix); :func:`upright` and :func:`stored` turn a frame
from one orientation to the other.

Anything that cannot be read raises :class:`VideoLoadError` (a ``ValueError``) naming the file;
a missing PyAV or OpenCV raises ``ImportError`` naming the ``video`` extra.

Usage::

    video = open_video("clip.mp4")
    print(video.info.fps, video.info.size, video.info.rotation)
    for frame in video.frames():
        frame.image  # (H, W, 3) uint8
    with video.read() as reading:  # frames and audio packets, for a writer that copies sound
        reading.audio, reading.items
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from culturegan.data.images import ImageLoadError, load_image, scan_images

DEFAULT_FOLDER_FPS = Fraction(25)  # frames folders carry no timing; --fps overrides


class VideoLoadError(ValueError):
    """A video, GIF or frames folder that cannot be used; ``path`` names it, ``reason`` says
    why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot read video '{self.path}': {self.reason}"


def require(module: Literal["av", "cv2"]) -> Any:
    """Import PyAV or OpenCV, or say which extra provides them."""
    package, extra = {"av": ("av (PyAV)", "[video]"), "cv2": ("opencv-python-headless", "")}[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"video needs {package}, which is not installed: pip install 'culturegan{extra}'"
        ) from None


@dataclass(frozen=True)
class AudioInfo:
    codec: str  # e.g. "aac"
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    kind: Literal["video", "gif", "frames"]
    width: int  # stored frame size, before the display rotation
    height: int
    fps: Fraction  # average frame rate
    frames: int | None  # frame count when the container says (a frames folder always does)
    rotation: int  # display rotation, degrees counter-clockwise (0 when none)
    audio: AudioInfo | None  # the first audio stream, copied to the output

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass
class Reading:
    items: Iterator[Any]  # Frame objects and audio packets (``av.Packet``) in file order
    audio: Any  # the input's audio stream (``av.AudioStream``) or None


@dataclass
class Frame:
    index: int  # 0, 1, 2, ... in display order
    image: np.ndarray  # (H, W, 3) uint8 RGB, stored orientation, at the requested size
    pts: int  # presentation time in ``time_base`` units
    time_base: Fraction


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as a player shows it (quarter turns; other angles are left as stored)."""
    return (
        np.ascontiguousarray(np.rot90(image, k=(rotation // 90) % 4))
        if rotation % 90 == 0
        else image
    )


def stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`upright`."""
    return (
        np.ascontiguousarray(np.rot90(image, k=-(rotation // 90) % 4))
        if rotation % 90 == 0
        else image
    )


def scaled_size(width: int, height: int, shorter_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side at ``shorter_side`` (None: unchanged), aspect kept."""
    if shorter_side is None:
        return width, height
    if shorter_side < 2:
        raise ValueError(f"--size must be at least 2 pixels, got {shorter_side}")
    scale = shorter_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rgb(frame: Any) -> np.ndarray:
    """A decoded frame as RGB; transparency (GIFs) composited over white, as the image loader
    does for stills."""
    if not any(c.is_alpha for c in frame.format.components):
        return frame.to_ndarray(format="rgb24")
    rgba = frame.to_ndarray(format="rgba").astype(np.float32)  # (H, W, 4)
    alpha = rgba[..., 3:] / 255.0
    return np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    cv2 = require("cv2")
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


class VideoSource:
    """A checked input. :meth:`read` opens the file for each pass and closes it at the end,
    so nothing stays open between passes."""

    def __init__(self, info: VideoInfo, files: list[Path] | None = None) -> None:
        self.info = info
        self._files = files or []

    @contextlib.contextmanager
    def read(self, *, size: tuple[int, int] | None = None) -> Iterator[Reading]:
        """Open the input for one pass: frames resized to ``size`` = (width, height) when
        given and, for files with sound, the audio stream's packets, in file order."""
        if self.info.kind == "frames":
            yield Reading(self._folder_frames(size), audio=None)
            return
        av = require("av")
        try:
            container = av.open(str(self.info.path))
        except av.FFmpegError as exc:
            raise VideoLoadError(self.info.path, f"not a readable video or GIF ({exc})") from exc
        with container:
            audio = container.streams.audio[0] if self.info.audio else None
            yield Reading(self._demux(av, container, size, audio), audio=audio)

    def frames(self, *, size: tuple[int, int] | None = None) -> Iterator[Frame]:
        """The frames alone."""
        with self.read(size=size) as reading:
            for item in reading.items:
                if isinstance(item, Frame):
                    yield item

    def _folder_frames(self, size: tuple[int, int] | None) -> Iterator[Frame]:
        time_base = 1 / self.info.fps
        for index, path in enumerate(self._files):
            try:
                image = np.asarray(load_image(path))
            except ImageLoadError as exc:
                raise VideoLoadError(self.info.path, f"frame {index} ({exc})") from exc
            if (image.shape[1], image.shape[0]) != self.info.size:
                raise VideoLoadError(
                    self.info.path,
                    f"frame '{path.name}' is {image.shape[1]} x {image.shape[0]}, the first frame "
                    f"{self.info.width} x {self.info.height}; all frames must have one size",
                )
            yield Frame(index, _resize(image, size or self.info.size), index, time_base)

    def _demux(
        self, av: Any, container: Any, size: tuple[int, int] | None, audio: Any
    ) -> Iterator[Frame | Any]:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video] + ([audio] if audio is not None else [])
        index, last_pts = 0, None
        fallback_base = 1 / self.info.fps
        try:
            for packet in container.demux(streams):
                if packet.stream is not video:
                    if packet.size and packet.dts is not None:  # skip the demuxer's flush packet
                        yield packet
                    continue
                for frame in packet.decode():
                    image = _rgb(frame)  # (H, W, 3) uint8
                    if frame.pts is None or frame.time_base is None:
                        pts, base = index, fallback_base  # raw streams without timestamps
                    else:
                        pts, base = int(frame.pts), Fraction(frame.time_base)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # keep timestamps strictly increasing for the muxer
                    last_pts = pts
                    yield Frame(index, _resize(image, size or self.info.size), pts, base)
                    index += 1
        except av.FFmpegError as exc:
            raise VideoLoadError(
                self.info.path, f"the data is corrupt after frame {index} ({exc})"
            ) from exc
        if index == 0:
            raise VideoLoadError(self.info.path, "no frame could be decoded")


def open_video(path: str | os.PathLike, *, fps: Fraction | float | None = None) -> VideoSource:
    """Open a video file, a GIF or a folder of frames (sorted by name; ``fps`` default 25).

    ``fps`` only applies to frames folders: files carry their own timing.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input '{path}' does not exist")
    if path.is_dir():
        return _open_folder(path, fps)
    if fps is not None:
        raise ValueError(f"--fps applies to a folder of frames; '{path}' has its own frame rate")
    return _open_file(path)


def _open_folder(path: Path, fps: Fraction | float | None) -> VideoSource:
    rate = Fraction(fps).limit_denominator(1001) if fps is not None else DEFAULT_FOLDER_FPS
    if rate <= 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    files = scan_images(path, check="none").files
    if not files:
        raise VideoLoadError(path, "the folder holds no image files")
    try:
        first = load_image(files[0])
    except ImageLoadError as exc:
        raise VideoLoadError(path, f"frame 0 ({exc})") from exc
    info = VideoInfo(path, "frames", first.width, first.height, rate, len(files), 0, None)
    return VideoSource(info, files=files)


def _open_file(path: Path) -> VideoSource:
    av = require("av")
    if path.stat().st_size == 0:
        raise VideoLoadError(path, "file is empty")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoLoadError(path, f"not a readable video or GIF ({exc})") from exc
    with container:
        if not container.streams.video:
            raise VideoLoadError(path, "the file has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        # The display rotation travels with the decoded frames: decode the first one.
        try:
            first = next(container.decode(video), None)
        except av.FFmpegError as exc:
            raise VideoLoadError(path, f"the first frame cannot be decoded ({exc})") from exc
        if first is None:
            raise VideoLoadError(path, "the video stream holds no frame")
        rate = video.average_rate or video.guessed_rate or video.base_rate
        if not rate or rate <= 0:
            raise VideoLoadError(path, "the video stream has no frame rate")
        audio = None
        if container.streams.audio:
            ctx = container.streams.audio[0].codec_context
            audio = AudioInfo(ctx.name, int(ctx.sample_rate or 0), int(ctx.layout.nb_channels))
        kind = "gif" if container.format.name == "gif" else "video"
        info = VideoInfo(
            path=path,
            kind=kind,
            width=first.width,
            height=first.height,
            fps=Fraction(rate),
            frames=int(video.frames) or None,
            rotation=int(round(first.rotation or 0)),
            audio=audio,
        )
    return VideoSource(info)
