"""Video stylization: flicker with and without the temporal stage, and frames per second.

The clip is made here: a slow pan and zoom over scikit-image's ``astronaut`` photo with a
textured disc (a crop of ``coffee``) crossing it, so there are disocclusions, plus a sine-wave
audio track; encoded as H.264 (crf 18) at 24 fps. One pass of ``stylize_video`` with a shipped
model at the default ``--temporal`` (0.4) records, frame by frame, the per-frame stylized
result and the blends for the other weights (the library's ``temporal_blend`` on the same
flow), and measures for each weight:

* flicker: the warping error (mean |output_t - warp(output_{t-1})| over reliable pixels, in
  [0, 1]) with the DIS flow the stage itself uses, and, as an independent check, with
  Farneback flow and its own reliability mask;
* SSIM (grey, scikit-image defaults) of each output frame to the per-frame result, averaged.

Then frames/s of the whole pipeline (decode, stylize, flow, blend, encode) at 480p and 720p,
per frame (``--temporal 0``) and with the stage, through PyTorch and through onnxruntime (the
same model exported with ``culturegan export-onnx``) when the ``onnx`` extra is installed.

The command behind docs/applications.md (about 5 minutes on 2 cores)::

    python benchmarks/bench_video.py --threads 2 --docs docs/applications.md

A check that the script works (seconds)::

    python benchmarks/bench_video.py --quick --out /tmp/video.json
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import cpu_info, fill_section  # noqa: E402

from culturegan.fileio import write_json  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.temporal import FlickerMeter, temporal_blend  # noqa: E402
from culturegan.video import stylize_video  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- bench_video:begin -->", "<!-- bench_video:end -->"
WEIGHTS = (0.0, 0.2, 0.4, 0.6, 0.8)  # temporal weights compared (0 = per frame)
PIPELINE_WEIGHT = 0.4  # the default, which the pipeline itself runs; the others alongside


def make_clip(
    path: Path,
    *,
    width: int,
    height: int,
    seconds: float,
    fps: int = 24,
    audio: bool = True,
    photo_name: str = "astronaut",
) -> Path:
    """Pan + zoom over a scikit-image photo (``astronaut`` by default) with a textured disc
    moving across; H.264 + AAC."""
    import av
    import cv2
    from skimage import data

    photo = cv2.resize(getattr(data, photo_name)()[..., :3], (512, 512))
    disc_source = data.astronaut() if photo_name == "coffee" else data.coffee()
    disc_texture = cv2.resize(disc_source[50:350, 150:450], (160, 160))
    n = round(seconds * fps)
    yy, xx = np.mgrid[0:160, 0:160]
    disc = ((yy - 80) ** 2 + (xx - 80) ** 2 <= 78**2)[..., None]
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "fast"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    sound = None
    if audio:
        sound = container.add_stream("aac", rate=44100)
    for i in range(n):
        t = i / max(n - 1, 1)
        # Source window: starts covering 70% of the photo's width, zooms in 15%, pans right.
        scale = (0.7 - 0.1 * t) * 512 / width  # source pixels per output pixel
        x0 = 20 + 90 * t
        y0 = 60 + 30 * np.sin(np.pi * t)
        matrix = np.float32([[scale, 0, x0], [0, scale, y0]])
        frame = cv2.warpAffine(
            photo, matrix, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
        side = round(160 * height / 480)
        sprite = cv2.resize(disc_texture, (side, side))
        mask = cv2.resize(disc.astype(np.uint8), (side, side))[..., None].astype(bool)
        cx = round((0.1 + 0.7 * t) * width)
        cy = round(height * (0.3 + 0.3 * t))
        region = frame[cy : cy + side, cx : cx + side]
        region[:] = np.where(
            mask[: region.shape[0], : region.shape[1]],
            sprite[: region.shape[0], : region.shape[1]],
            region,
        )
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts = i
        container.mux(stream.encode(video_frame))
    if sound is not None:
        rate, total, start = 44100, round(seconds * 44100), 0
        while start < total:
            count = min(1024, total - start)
            tone = 0.2 * np.sin(2 * np.pi * 440 * (start + np.arange(count)) / rate)
            samples = tone.astype(np.float32)[None]  # (channels, samples)
            audio_frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            audio_frame.sample_rate, audio_frame.pts = rate, start
            container.mux(sound.encode(audio_frame))
            start += count
        container.mux(sound.encode(None))
    container.mux(stream.encode(None))
    container.close()
    return path


class Recorder:
    """Observer of one pipeline pass: flicker of every weight (two flows) and SSIM to the
    per-frame result."""

    def __init__(self, weights: tuple[float, ...]) -> None:
        self.weights = weights
        self.dis = FlickerMeter(flow=None)  # the pipeline's own flow and mask
        self.farneback = FlickerMeter(flow="farneback")
        self.previous: dict[float, np.ndarray] = {}
        self.ssim: dict[float, list[float]] = {w: [] for w in weights}

    def __call__(self, frame, per_frame, output, step) -> None:
        from skimage.metrics import structural_similarity

        outputs = {}
        for w in self.weights:
            if w == PIPELINE_WEIGHT:
                out = output
            elif w == 0 or step is None:
                out = per_frame.astype(np.float32)
            else:
                out = temporal_blend(per_frame, self.previous[w], step, w)
            self.previous[w] = out
            outputs[str(w)] = out
        self.dis.update(frame, outputs, step=step if step is not None else None)
        self.farneback.update(frame, outputs)
        grey_ref = _grey(per_frame)
        for w in self.weights:
            grey_out = _grey(np.clip(np.rint(outputs[str(w)]), 0, 255).astype(np.uint8))
            self.ssim[w].append(structural_similarity(grey_ref, grey_out, data_range=255))


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def flicker_table(
    clip: Path, stylizer: Any, work: Path, finish: str | None = None
) -> dict[str, Any]:
    recorder = Recorder(WEIGHTS)
    summary = stylize_video(
        clip, work / "flicker.mp4", stylizer=stylizer, temporal=PIPELINE_WEIGHT,
        finish=finish, progress=False, observer=recorder,
    )  # fmt: skip
    dis, farneback = recorder.dis.result(), recorder.farneback.result()
    rows = []
    for w in WEIGHTS:
        rows.append(
            {
                "temporal": w,
                "flicker_dis": dis[str(w)],
                "flicker_farneback": farneback[str(w)],
                "ssim_to_per_frame": float(np.mean(recorder.ssim[w])),
            }
        )
    base = rows[0]
    for row in rows:
        row["flicker_reduction_dis"] = 1 - row["flicker_dis"] / base["flicker_dis"]
        row["flicker_reduction_farneback"] = (
            1 - row["flicker_farneback"] / base["flicker_farneback"]
        )
        row["ssim_loss"] = 1 - row["ssim_to_per_frame"]
    return {
        "frames": summary.frames,
        "size": list(summary.size),
        "reliable_dis": recorder.dis.reliable / max(recorder.dis.pairs, 1),
        "reliable_farneback": recorder.farneback.reliable / max(recorder.farneback.pairs, 1),
        "rows": rows,
    }


def speed(clip: Path, stylizer: Any, work: Path, temporal: float) -> dict[str, Any]:
    stylize_video(clip, work / "warm.mp4", stylizer=stylizer, temporal=temporal, progress=False)
    summary = stylize_video(
        clip, work / "speed.mp4", stylizer=stylizer, temporal=temporal, progress=False
    )
    return {"frames": summary.frames, "seconds": summary.seconds, "fps": summary.frames_per_second}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ukiyoe", help="shipped model (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="flicker clip length")
    parser.add_argument("--speed-seconds", type=float, default=1.0, help="speed clips' length")
    parser.add_argument("--quick", action="store_true", help="tiny clips (a smoke test)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime path")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video.json"))
    parser.add_argument("--docs", type=Path, help="markdown file whose figures to rewrite")
    parser.add_argument(
        "--photo", default="astronaut", help="scikit-image photo the clip pans over"
    )
    parser.add_argument("--no-speed", action="store_true", help="flicker table only")
    parser.add_argument(
        "--finish", help="also the flicker with this finish on every frame (print, ink, paint)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = {"480p": (854, 480), "720p": (1280, 720)}
    if args.quick:
        sizes = {"96p": (128, 96), "144p": (192, 144)}
        args.seconds, args.speed_seconds = 0.5, 0.25
    report: dict[str, Any] = {
        "command": "python benchmarks/bench_video.py " + shlex.join(argv or sys.argv[1:]),
        "machine": cpu_info(),
        "threads": args.threads,
        "model": args.model,
        "quick": args.quick,
    }
    stylizers = {"pytorch": Stylizer.from_pretrained(args.model)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_onnx and importlib.util.find_spec("onnxruntime"):
            from culturegan.onnx_export import OnnxStylizer, export_onnx

            onnx_path = export_onnx(args.model, work / "model.onnx")
            stylizers["onnxruntime"] = OnnxStylizer(onnx_path, threads=args.threads)
        first = next(iter(sizes))
        clip = make_clip(work / "clip.mp4", width=sizes[first][0], height=sizes[first][1],
                         seconds=args.seconds, photo_name=args.photo)  # fmt: skip
        t0 = time.perf_counter()
        report["flicker"] = flicker_table(clip, stylizers["pytorch"], work)
        report["flicker"]["clip"] = (
            f"{sizes[first][0]} x {sizes[first][1]}, {args.seconds} s over `{args.photo}`"
        )
        print(f"flicker pass: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.finish:  # the same clip, each frame finished before the temporal stage
            report["flicker_finish"] = flicker_table(
                clip, stylizers["pytorch"], work, finish=args.finish
            )
            report["flicker_finish"].update(clip=report["flicker"]["clip"], finish=args.finish)
        report["speed"] = []
        for label, (w, h) in {} if args.no_speed else sizes.items():
            clip = make_clip(work / f"speed_{label}.mp4", width=w, height=h,
                             seconds=args.speed_seconds)  # fmt: skip
            for path, stylizer in stylizers.items():
                for temporal in (0.0, PIPELINE_WEIGHT):
                    row = {"size": label, "path": path, "temporal": temporal}
                    row.update(speed(clip, stylizer, work, temporal))
                    report["speed"].append(row)
                    print(row, file=sys.stderr)
    write_json(args.out, report)
    text = markdown(report)
    print(text)
    if args.docs:
        fill_section(args.docs, MARK_BEGIN, MARK_END, text, heading="Figures", title="Video")
    return 0


def _change(reduction: float) -> str:
    return "0%" if abs(reduction) < 0.005 else f"{-reduction:+.0%}"


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    flicker = report["flicker"]
    lines = [
        f"Measured with `{report['command']}` on {machine['cpu']} ({machine['logical_cpus']} "
        f"logical CPUs, torch {machine['torch']}, {machine['cpu_capability']}), "
        f"{report['threads']} threads, shipped model `{report['model']}`.",
        "",
        f"Flicker on the generated clip ({flicker['clip']}, {flicker['frames']} frames; "
        f"reliable pixels: {flicker['reliable_dis']:.0%} by DIS, "
        f"{flicker['reliable_farneback']:.0%} by Farneback):",
        "",
        "| --temporal | flicker (DIS flow) | vs per frame | flicker (Farneback) | vs per frame "
        "| SSIM to per-frame | SSIM loss |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in flicker["rows"]:
        lines.append(
            f"| {r['temporal']:g} | {r['flicker_dis']:.4f} | {_change(r['flicker_reduction_dis'])} "
            f"| {r['flicker_farneback']:.4f} | {_change(r['flicker_reduction_farneback'])} "
            f"| {r['ssim_to_per_frame']:.3f} | {r['ssim_loss']:.3f} |"
        )
    finished = report.get("flicker_finish")
    if finished:
        lines += [
            "",
            f"The same clip with `--finish {finished['finish']}` on every frame (before the "
            "temporal stage; 'vs unfinished' compares with the table above at the same "
            "--temporal):",
            "",
            "| --temporal | flicker (DIS flow) | vs per frame | vs unfinished "
            "| flicker (Farneback) | vs unfinished |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r, plain in zip(finished["rows"], flicker["rows"], strict=True):
            lines.append(
                f"| {r['temporal']:g} | {r['flicker_dis']:.4f} "
                f"| {_change(r['flicker_reduction_dis'])} "
                f"| {r['flicker_dis'] / plain['flicker_dis']:.2f} x "
                f"| {r['flicker_farneback']:.4f} "
                f"| {r['flicker_farneback'] / plain['flicker_farneback']:.2f} x |"
            )
    lines += [
        "",
        "Frames per second of the whole pipeline (decode, stylize, flow, blend, encode):",
        "",
        "| size | path | --temporal | frames | seconds | frames/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in report["speed"]:
        lines.append(
            f"| {r['size']} | {r['path']} | {r['temporal']:g} | {r['frames']} "
            f"| {r['seconds']:.1f} | {r['fps']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
