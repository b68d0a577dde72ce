"""Export a generator to ONNX and run it with onnxruntime.

``export_onnx(model_dir, out)`` writes one direction of a pretrained folder as a self-contained
``.onnx`` file: input ``image`` (B, 3, H, W) in [-1, 1], output ``stylized`` of the same shape,
with batch, height and width all dynamic (H and W multiples of the network's size multiple).
The file's metadata carries the direction, the domains and the size multiple, so
``OnnxStylizer(path)`` needs nothing else. Export uses the ``torch.export``-based exporter; the
graph is then checked against PyTorch with onnxruntime at two sizes other than the one traced,
which catches a dimension frozen during export (reflection padding and pixel shuffles are the
usual suspects).

Needs the ``onnx`` extra: ``pip install 'culturegan[onnx]'`` (onnx, onnxscript, onnxruntime).

Usage::

    export_onnx("runs/003-cyclegan/model", "ukiyoe.onnx", direction="photo->ukiyoe")
    result = OnnxStylizer("ukiyoe.onnx")(["photo.jpg"])
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from culturegan.fileio import atomic_write
from culturegan.inference import Request, Stylizer

INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
DEFAULT_OPSET = 18
PARITY_TOLERANCE = 1e-3  # max |onnxruntime - PyTorch| on outputs in [-1, 1]
# A palette model painting inks (model.palette_hard) picks one colour per pixel: where two tie
# to within the runtimes' rounding, the two may pick differently. At most this share of pixels.
INK_FLIP_SHARE = 0.01


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"ONNX export and inference need '{module}': pip install 'culturegan[onnx]'"
        ) from None


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's warnings about optional packages (torchvision) and its own
    deprecations; errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export_generator(
    net: nn.Module,
    out: str | Path,
    *,
    size_multiple: int,
    metadata: dict[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
) -> Path:
    """Write ``net`` as ONNX with dynamic batch, height and width; return the path.

    With ``check`` the file is run with onnxruntime at two sizes other than the traced one and
    compared with ``net``; a difference over 1e-3 raises ``RuntimeError``.
    """
    onnx = _require("onnx")
    _require("onnxscript")  # the torch.export-based exporter translates through it
    out = Path(out)
    net = net.eval()
    m = size_multiple
    # Trace at batch 2 and unequal sides: torch.export specialises dimensions of size 1 and
    # may tie equal ones together.
    example = torch.zeros(2, 3, 8 * m, 12 * m)
    dims = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    # The exporter prints progress lines and warns about optional packages; keep them out of
    # the user's terminal unless it fails.
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=(dims,),
                opset_version=opset,
                verbose=False,
            )
    except Exception as exc:
        raise RuntimeError(
            f"ONNX export of {type(net).__name__} failed: {type(exc).__name__}: {exc}\n"
            f"{chatter.getvalue()}"
        ) from exc
    model = program.model_proto
    for key, value in {"culturegan.size_multiple": str(m), **(metadata or {})}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    atomic_write(out, lambda tmp: onnx.save_model(model, str(tmp)))
    if check:
        inks = bool(getattr(net, "config", {}).get("palette_hard"))
        check_parity(net, out, sizes=[(1, 4 * m, 6 * m), (3, 10 * m, 7 * m)], inks=inks)
    return out


def check_parity(
    net: nn.Module,
    onnx_path: str | Path,
    *,
    sizes: Sequence[tuple[int, int, int]],
    inks: bool = False,
) -> float:
    """Max |onnxruntime - PyTorch| over random inputs of (batch, height, width) ``sizes``.

    ``inks`` (a model that paints one palette colour per pixel): the max over the pixels where
    both pick the same colour; up to INK_FLIP_SHARE of the pixels may pick another one."""
    session = _session(onnx_path, threads=None)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, h, w in sizes:
        x = torch.rand(batch, 3, h, w, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = net(x).numpy()
        try:
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        except Exception as exc:
            raise RuntimeError(
                f"'{onnx_path}' does not run at size {batch}x3x{h}x{w}: {exc}"
            ) from exc
        if got.shape != expected.shape:
            raise RuntimeError(
                f"'{onnx_path}' gives shape {got.shape} for input {tuple(x.shape)}, "
                f"PyTorch {expected.shape}"
            )
        per_pixel = np.abs(got - expected).max(axis=1)  # (B, H, W)
        flipped = ~(per_pixel <= PARITY_TOLERANCE)  # NaN counts as a difference
        if inks and not flipped.mean() <= INK_FLIP_SHARE:
            raise RuntimeError(
                f"'{onnx_path}' paints another ink than PyTorch at {flipped.mean():.1%} "
                f"of the pixels at {tuple(x.shape)} (tolerance {INK_FLIP_SHARE:.0%})"
            )
        if not inks and flipped.any():
            raise RuntimeError(
                f"'{onnx_path}' differs from PyTorch by {per_pixel.max():.2e} at "
                f"{tuple(x.shape)} (tolerance {PARITY_TOLERANCE})"
            )
        worst = max(worst, float(per_pixel[~flipped].max(initial=0.0)))
    return worst


def export_onnx(
    model_dir: str | Path,
    out: str | Path,
    *,
    direction: str | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
) -> Path:
    """Export one direction (default: the model's first) of a pretrained folder to ``out``."""
    stylizer = Stylizer.from_pretrained(model_dir)
    source = target = None
    if direction is not None:
        source, sep, target = direction.partition("->")
        if not sep or not source or not target:
            raise ValueError(f"--direction takes SOURCE->TARGET, got '{direction}'")
    chosen = stylizer.resolve_direction(source, target)
    net = stylizer.networks[stylizer.directions[chosen]]
    metadata = {
        "culturegan.direction": chosen,
        "culturegan.domains": json.dumps(stylizer.domains),
        "culturegan.network": json.dumps(getattr(net, "config", {})),
        "culturegan.normalization": json.dumps(stylizer.config.get("normalization", {})),
        "culturegan.edge_margin": str(stylizer.edge_margin),
    }
    return export_generator(
        net,
        out,
        size_multiple=stylizer.size_multiple,
        metadata=metadata,
        opset=opset,
        check=check,
    )


def _session(path: str | Path, threads: int | None) -> Any:
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxStylizer(Stylizer):
    """Applies an exported ``.onnx`` generator with onnxruntime, like the PyTorch stylizers
    (same reading, batching, padding and tiling, so the two give the same pictures).

    One direction, no style options. Tiles of large images are normalised each with their own
    statistics (the graph's instance norms cannot be shared), so very large images may show
    the tile grid more than with PyTorch; ``tileable`` textures need the PyTorch model.
    ``threads`` sets onnxruntime's intra-op threads (default: its own choice, one per core).
    """

    kind = "onnx"
    options = frozenset()

    def __init__(self, onnx_path: str | Path, *, threads: int | None = None) -> None:
        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model '{path}' does not exist")
        session = _session(path, threads)
        meta = session.get_modelmeta().custom_metadata_map
        if "culturegan.size_multiple" not in meta:
            raise ValueError(f"'{path}' was not exported by culturegan (no size multiple)")
        direction = meta.get("culturegan.direction", "") or "source->target"
        margin = meta.get("culturegan.edge_margin")  # older exports: None, the default
        source, _, target = direction.partition("->")
        super().__init__(
            domains=[source, target],
            directions={direction: "onnx"},
            size_multiple=int(meta["culturegan.size_multiple"]),
            edge_margin=int(margin) if margin is not None else None,
            device="cpu",
        )
        self.session = session
        self.direction = direction

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1], sides multiples of ``size_multiple`` -> same shape."""
        x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0])

    def _stylize(self, pils: list, request: Request) -> list:
        return self._run(pils, lambda batch, _: self.run(batch), request)


# ----------------------------------------------------------------------------- command line


# Its arguments are defined in culturegan.commands, which imports no torch (`--help`).
def cmd_export_onnx(args: argparse.Namespace) -> int:
    try:
        out = export_onnx(
            args.model_dir,
            args.out,
            direction=args.direction,
            opset=args.opset,
            check=not args.no_check,
        )
    except (ImportError, RuntimeError) as exc:
        print(f"culturegan export-onnx: error: {exc}", file=sys.stderr)
        return 2
    checked = "" if args.no_check else " (checked against PyTorch with onnxruntime)"
    print(f"onnx model: {out}{checked}")
    return 0
