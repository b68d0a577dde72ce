"""Arguments of the commands whose code imports torch, ONNX or OpenCV, without importing it.

``culturegan --help`` builds the whole parser; the modules that run ``export-onnx``, ``restore``
and ``stylize-video`` subclass :class:`culturegan.inference.Stylizer` and so import torch (about
two seconds). Their arguments are defined here instead, and each handler is imported from its
module only when its command runs. Defaults that the library also holds (the ONNX opset, the
temporal weight, the flow methods) are written out; tests/test_cli_imports.py keeps them equal.

Usage (in culturegan/cli.py)::

    COMMANDS.update(commands.register(sub))
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from fractions import Fraction
from typing import Any

Handler = Callable[[argparse.Namespace], int]

DEFAULT_OPSET = 18  # culturegan.onnx_export.DEFAULT_OPSET
DEFAULT_TEMPORAL = 0.4  # culturegan.temporal.DEFAULT_TEMPORAL
FLOW_METHODS = ("dis", "farneback")  # culturegan.temporal.FLOW_METHODS
SHIFT_PASSES = (1, 4, 8, 16)  # culturegan.inference.SHIFT_PASSES


def add_shifts_argument(parser: argparse.ArgumentParser) -> None:
    """``--shifts N``: the Stylizer's ``shifts`` (``stylize``, ``stylize-video``)."""
    parser.add_argument(
        "--shifts",
        type=int,
        choices=SHIFT_PASSES,
        default=1,
        help="run the model N times on the picture moved within its pixel grid and average: a "
        "lattice fixed to the grid cancels, the content stays (8 removes the shipped models' "
        "lattice; N times the time; default: %(default)s, once)",
    )


def finish_argument(text: str) -> str:
    """argparse type of ``--finish``: the spec as given, once :func:`parse_finish` accepts it."""
    from culturegan.finish import parse_finish

    try:
        parse_finish(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


FINISH_SETTINGS_HELP = (
    "; settings after a colon, e.g. print:merge=6,chroma=1.5 or ink:paper_share=0.5 "
    "(culturegan.finish lists them)"
)


def lazy_handler(module: str, name: str) -> Handler:
    """The handler ``module.name``, imported when its command runs, not when the parser is built."""

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    run.__qualname__ = run.__name__ = name
    return run


def _fraction(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"not a frame rate: '{text}' (e.g. 25 or 30000/1001)"
        ) from None
    return value


def add_export_onnx(subparsers: Any) -> dict[str, Handler]:
    """Add ``export-onnx`` (culturegan.onnx_export); returns {command: handler}."""
    p = subparsers.add_parser("export-onnx", help="export a model direction to ONNX")
    p.add_argument("model_dir", help="model folder, shipped model name or Hub id")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--direction", help="SOURCE->TARGET (default: the model's first direction)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="(default: %(default)s)")
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime comparison with PyTorch"
    )
    return {"export-onnx": lazy_handler("culturegan.onnx_export", "cmd_export_onnx")}


def add_restore(subparsers: Any) -> dict[str, Handler]:
    """Add ``restore`` (culturegan.restore); returns {command: handler}."""
    p = subparsers.add_parser("restore", help="restore old photos (a model or --classical)")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--model",
        help="restoration model (recipe pix2pix): folder, shipped name or Hub id org/name",
    )
    p.add_argument(
        "--classical",
        action="store_true",
        help="no model: non-local means, scratch and dust inpainting, auto-levels",
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tile", type=int, help="tile side in px (default: automatic; 0: never)")
    return {"restore": lazy_handler("culturegan.restore", "cmd_restore")}


def add_stylize_video(subparsers: Any) -> dict[str, Handler]:
    """Add ``stylize-video`` (culturegan.video); returns {command: handler}."""
    from culturegan.finish import FINISHES

    p = subparsers.add_parser(
        "stylize-video", help="stylize a video, GIF or folder of frames (needs the video extra)"
    )
    p.add_argument("input", help="video file, GIF or folder of frames (sorted by name)")
    p.add_argument("--out", required=True, help="video to write: .mp4, .m4v, .mov or .mkv")
    p.add_argument("--style", help="a shipped culture model (see `culturegan models`)")
    p.add_argument("--model", help="model folder, shipped model name, Hub id or .onnx file")
    p.add_argument("--revision", help="Hub models: branch, tag or commit")
    p.add_argument("--source", help="source domain (default: the model's choice)")
    p.add_argument("--target", help="target domain")
    p.add_argument(
        "--temporal", type=float, default=DEFAULT_TEMPORAL,
        help="weight of the warped previous frame where the flow is reliable: 0 = per frame "
        "(flicker) .. 1 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--flow", default="dis", choices=FLOW_METHODS, help="optical flow method")
    p.add_argument("--size", type=int, help="shorter side of the output in pixels (480, 720)")
    p.add_argument("--fps", type=_fraction, help="frame rate of a frames folder (default 25)")
    p.add_argument("--crf", type=int, default=18, help="x264 quality, 0 = lossless (default 18)")
    p.add_argument("--batch-size", type=int, default=1, help="frames per network call")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--finish",
        type=finish_argument,
        metavar="{" + ",".join(sorted(FINISHES)) + "}[:KEY=VALUE,...]",
        help="redraw each stylized frame in a medium's terms before the temporal stage "
        "(print, ink or paint; see `culturegan stylize --help`)" + FINISH_SETTINGS_HELP,
    )
    add_shifts_argument(p)
    multi = p.add_argument_group("multi-domain models: one style code for the whole video")
    multi.add_argument("--seed", type=int, help="noise seed of the style code")
    multi.add_argument("--reference", help="take the style from this image")
    multi.add_argument("--strength", type=float, help="0 = own style .. 1 = target")
    multi.add_argument("--mix", help="blend domains, e.g. ukiyoe:0.5,chinese_ink:0.5")
    return {"stylize-video": lazy_handler("culturegan.video", "cmd_stylize_video")}


def register(subparsers: Any) -> dict[str, Handler]:
    """Add ``export-onnx``, ``restore`` and ``stylize-video``; returns {command: handler}."""
    return {
        **add_export_onnx(subparsers),
        **add_restore(subparsers),
        **add_stylize_video(subparsers),
    }
