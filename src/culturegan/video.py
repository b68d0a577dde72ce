"""Stylize a video frame by frame, with a temporal-consistency stage against flicker.

Each frame goes through the one :class:`culturegan.inference.Stylizer` call with one style code
for the whole video; :mod:`culturegan.temporal` blends in the previous output, warped by the
optical flow of the input frames, where the flow is reliable (``temporal=0`` gives the
per-frame result exactly) and measures flicker (the warping error). A finish is drawn on each
frame before that stage, one frame after another (:class:`culturegan.finish.FinishFrames`: the
print finish keeps its inks from frame to frame).

Decoding, stylizing and encoding are streamed (one frame, or one batch, in memory); the audio
stream is copied (or re-encoded to AAC when the container cannot hold it); the output is written
to a temporary file beside ``out`` and renamed at the end, so an interrupted run leaves no
half-written file under ``out``'s name. Needs the ``video`` extra (PyAV and OpenCV).

Usage::

    stylizer = Stylizer.from_pretrained("ukiyoe")
    summary = stylize_video("clip.mp4", "clip_ukiyoe.mp4", stylizer=stylizer, temporal=0.5)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from culturegan.data.video import Frame, open_video, require, scaled_size, stored, upright
from culturegan.fileio import atomic_write
from culturegan.finish import FinishFrames, check_finish_size
from culturegan.temporal import (
    DEFAULT_TEMPORAL,
    FlowStep,
    OpticalFlow,
    flow_step,
    temporal_blend,
)
from culturegan.zoo import card_notes, model_from_options

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Audio codecs each container holds as they are; others are re-encoded to AAC.
AUDIO_COPY = {
    "mp4": {"aac", "mp3", "mp2", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "mp2", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le"},
    "matroska": None,  # anything
}


# ----------------------------------------------------------------------------- writing


def container_format(out: Path) -> str:
    try:
        return CONTAINERS[out.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"--out '{out}': write a {', '.join(CONTAINERS)} file (the name's extension picks "
            "the container)"
        ) from None


class _Encoder:
    """The output container: one video stream (frames with the input's timestamps) and the
    input's audio, copied packet by packet or re-encoded to AAC."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        *,
        size: tuple[int, int],  # stored (width, height)
        fps: Fraction,
        rotation: int,
        audio: Any,  # the input's audio stream (av.AudioStream); None: no audio
        codec: str,
        crf: int,
    ) -> None:
        self.av = require("av")
        self.container = self.av.open(str(path), "w", format=fmt)
        rgb = codec == "libx264rgb"
        options = {"crf": str(crf), "preset": "fast"} if codec.startswith("libx264") else {}
        self.video = self.container.add_stream(codec, rate=fps, options=options)
        self.video.width, self.video.height = size
        self.video.pix_fmt = "rgb24" if rgb else "yuv420p"
        if codec == "mpeg4":
            self.video.codec_context.qscale = max(1, min(31, crf // 6))  # roughly crf's quality
        if rotation:
            self.video.set_display_rotation(rotation)
        self.time_base: Fraction | None = None
        self.audio_out, self.audio_mode = None, None
        if audio is not None:
            allowed = AUDIO_COPY[fmt]
            if allowed is None or audio.codec_context.name in allowed:
                self.audio_out = self.container.add_stream_from_template(audio)
                self.audio_mode = "copied"
            else:
                self.audio_out = self.container.add_stream(
                    "aac", rate=audio.codec_context.sample_rate or 48000
                )
                self.audio_mode = f"re-encoded {audio.codec_context.name} to aac"

    def write_frame(self, image: np.ndarray, pts: int, time_base: Fraction) -> None:
        if self.time_base is None:  # the input's timestamps, unchanged (variable rates too)
            self.time_base = time_base
            self.video.codec_context.time_base = time_base
        frame = self.av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.container.mux(self.video.encode(frame))

    def write_audio(self, packet: Any) -> None:
        if self.audio_out is None:
            return
        if self.audio_mode == "copied":
            packet.stream = self.audio_out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the AAC encoder numbers its own samples
            self.container.mux(self.audio_out.encode(frame))

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        self.container.mux(self.video.encode(None))
        if self.audio_out is not None and self.audio_mode != "copied":
            self.container.mux(self.audio_out.encode(None))
        self.container.close()

    def abort(self) -> None:
        """Release the file after a failure (its content is thrown away)."""
        with contextlib.suppress(Exception):
            self.container.close()


def default_codec() -> str:
    return "libx264" if "libx264" in require("av").codecs_available else "mpeg4"


# ----------------------------------------------------------------------------- pipeline


@dataclass
class VideoSummary:
    input: Path
    output: Path
    frames: int
    fps: Fraction  # the video's frame rate (kept from the input)
    size: tuple[int, int]  # output (width, height) as stored
    rotation: int  # display rotation kept from the input
    audio: str | None  # "copied", "re-encoded ... to aac" or None
    seconds: float  # wall time of the whole run
    temporal: float
    reliable: float | None = None  # mean fraction of pixels the flow is trusted on

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def report(self) -> str:
        w, h = self.size
        parts = [
            f"{self.output}: {self.frames} frames, {w} x {h} at {float(self.fps):.3g} fps",
            f"rotation {self.rotation}" if self.rotation else None,
            f"audio {self.audio}" if self.audio else "no audio",
            f"temporal {self.temporal:g}"
            + (
                f" (flow trusted on {self.reliable:.0%} of pixels)"
                if self.reliable is not None
                else ""
            ),
        ]
        line = ", ".join(p for p in parts if p)
        return f"{line}\n{self.seconds:.1f} s, {self.frames_per_second:.2f} frames/s"


Observer = Callable[[np.ndarray, np.ndarray, np.ndarray, FlowStep | None], None]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def stylize_video(
    video: str | Path,  # video file, GIF or folder of frames
    out: str | Path,  # .mp4 / .m4v / .mov / .mkv to write
    *,
    stylizer: Any,  # a Stylizer (anything with its call contract)
    source: str | None = None,  # the Stylizer's options; None = not given
    target: str | None = None,
    seed: int | None = None,
    reference: Any = None,
    mix: str | dict[str, float] | None = None,
    strength: float | None = None,
    shifts: int | None = None,  # passes moved within the generator's grid, averaged
    finish: str | None = None,  # a non-learned last stage per frame (culturegan.finish)
    temporal: float = DEFAULT_TEMPORAL,  # 0 = per frame .. 1 = keep the warped past
    flow: str = "dis",  # optical flow of the temporal stage: "dis" or "farneback"
    size: int | None = None,  # shorter side of the output in pixels; None = the input's
    fps: float | Fraction | None = None,  # frames folders only (default 25)
    batch_size: int = 1,  # frames per stylizer call
    codec: str | None = None,  # default libx264 (mpeg4 when missing); libx264rgb: exact RGB
    crf: int = 18,  # x264 quality (0 lossless .. 51)
    progress: bool = True,
    observer: Observer | None = None,  # called as (input, per_frame, output, step) per frame
) -> VideoSummary:
    """Stylize ``video`` into ``out`` with one style for every frame; see the module docstring."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    video, out = Path(video), Path(out)
    fmt = container_format(out)
    if _same_file(video, out):
        raise ValueError(f"--out '{out}' is the input; outputs never replace inputs")
    if out.is_dir():
        raise ValueError(f"--out '{out}' is a folder; give a video file name")
    if not 0.0 <= temporal <= 1.0:
        raise ValueError(f"temporal must be in [0, 1], got {temporal}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in [0, 51], got {crf}")
    given = {"source": source, "target": target, "seed": seed, "reference": reference,
             "mix": mix, "strength": strength, "shifts": shifts, "finish": finish}  # fmt: skip
    options = {k: v for k, v in given.items() if v is not None}
    request = stylizer.check_inputs(**options, batch_size=batch_size)  # refuse before any work
    if request.reference is not None:
        options["reference"] = request.reference  # read once, not once per frame
    # The finish is drawn here, frame after frame, so it can keep what it chose (the print's
    # inks) from one frame to the next: culturegan.finish.FinishFrames.
    finishing = FinishFrames(options.pop("finish")) if "finish" in options else None
    flow_fn = OpticalFlow(flow) if temporal > 0 or observer is not None else None
    codec = codec or default_codec()
    if codec not in require("av").codecs_available:
        raise ValueError(f"codec '{codec}' is not in this PyAV build")

    source_video = open_video(video, fps=fps)
    info = source_video.info
    width, height = scaled_size(info.width, info.height, size)
    even = codec != "libx264rgb"  # 4:2:0 chroma needs even sides
    if even and size is not None:  # resize straight to even sides (at most 1 px off aspect)
        width, height = max(2, width - width % 2), max(2, height - height % 2)
    crop = (width - width % 2, height - height % 2) if even else (width, height)
    if min(crop) < 2:
        raise ValueError(f"'{video}' frames are {width} x {height}: too small to encode")
    if finishing is not None:
        check_finish_size(finishing.spec, crop, str(video))

    state: dict[str, Any] = {"frames": 0, "reliable": []}

    def stylize_batch(batch: list[Frame], encoder: _Encoder) -> None:
        inputs = [upright(f.image[: crop[1], : crop[0]], info.rotation) for f in batch]
        result = stylizer([Image.fromarray(x) for x in inputs], **options, batch_size=batch_size)
        for frame, x, styled in zip(batch, inputs, result.images, strict=True):
            if finishing is not None:
                styled = finishing(Image.fromarray(x), styled)
            y = np.asarray(styled.convert("RGB"))  # (H, W, 3) uint8, upright
            step = None
            if flow_fn is not None and "input" in state:
                step = flow_step(flow_fn, state["input"], x)
            if temporal > 0 and step is not None:
                output = temporal_blend(y, state["output"], step, temporal)
                state["reliable"].append(step.fraction())
            else:
                output = y.astype(np.float32)
            if observer is not None:
                observer(x, y, output, step)
            state["input"], state["output"] = x, output  # float: no rounding drift
            image = np.clip(np.rint(output), 0, 255).astype(np.uint8)
            encoder.write_frame(stored(image, info.rotation), frame.pts, frame.time_base)
            state["frames"] += 1

    def write(tmp: Path) -> None:
        with source_video.read(size=(width, height)) as reading:
            encoder = _Encoder(tmp, fmt, size=crop, fps=info.fps, rotation=info.rotation,
                               audio=reading.audio, codec=codec, crf=crf)  # fmt: skip
            pending: list[Frame] = []
            bar = tqdm(total=info.frames, disable=not progress, unit="frame", desc="stylize-video")
            try:
                with bar:
                    for item in reading.items:
                        if not isinstance(item, Frame):
                            encoder.write_audio(item)
                            continue
                        pending.append(item)
                        if len(pending) == batch_size:
                            stylize_batch(pending, encoder)
                            bar.update(len(pending))
                            pending = []
                    if pending:
                        stylize_batch(pending, encoder)
                        bar.update(len(pending))
            except BaseException:
                encoder.abort()
                raise
            encoder.close()
            state["audio"] = encoder.audio_mode

    atomic_write(out, write)
    reliable = state["reliable"]
    return VideoSummary(
        input=video,
        output=out,
        frames=state["frames"],
        fps=info.fps,
        size=crop,
        rotation=info.rotation,
        audio=state.get("audio"),
        seconds=time.perf_counter() - start,
        temporal=temporal,
        reliable=float(np.mean(reliable)) if reliable else None,
    )


# ----------------------------------------------------------------------------- command line


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt for the duration, so the temporary file is removed as
    on Ctrl-C (a SIGKILL cannot be caught: it leaves only the hidden ``.OUT.*.tmp`` file)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Its arguments are defined in culturegan.commands, which imports no torch (`--help`).
def cmd_stylize_video(args: argparse.Namespace) -> int:
    from culturegan.inference import Stylizer

    try:
        require("av"), require("cv2")
        model, target = model_from_options(
            style=args.style, model=args.model, revision=args.revision, target=args.target
        )
        stylizer = Stylizer.from_pretrained(model, device=args.device)
        with _terminate_as_interrupt():
            summary = stylize_video(
                args.input,
                args.out,
                stylizer=stylizer,
                source=args.source,
                target=target,
                seed=args.seed,
                reference=args.reference,
                mix=args.mix,
                strength=args.strength,
                shifts=args.shifts,
                finish=args.finish,
                temporal=args.temporal,
                flow=args.flow,
                size=args.size,
                fps=args.fps,
                batch_size=args.batch_size,
                crf=args.crf,
                progress=not args.no_progress,
            )
    except ImportError as exc:
        print(f"culturegan stylize-video: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"culturegan stylize-video: interrupted; '{args.out}' was not written", file=sys.stderr
        )
        return 130
    print(summary.report())
    card_notes(args.style, finish=args.finish, shifts=args.shifts)
    return 0
