"""Old-photo restoration: ``culturegan restore`` and the classical baseline it is measured against.

Two ways to restore a scanned old photo:

* a trained model (recipe ``pix2pix`` on photos degraded by :mod:`culturegan.data.degrade`,
  e.g. ``culturegan train --config pix2pix_restore``): an ordinary two-domain model
  with the direction ``degraded->restored``, applied through ``culturegan.apply.stylize_paths``
  (folders, unreadable files named and skipped, atomic writes, outputs never replacing inputs,
  tiling of large images);
* ``--classical``: no learning, three textbook steps (:func:`classical_restore`):

  1. **grain and noise**: non-local means (OpenCV's ``fastNlMeansDenoisingColored``) with a
     filter strength ``denoise`` times the noise level that Donoho's wavelet estimator reads
     off the image (:func:`estimate_noise`);
  2. **scratches and dust**: thin pale and dark defects are found as outliers of the
     morphological white and black top-hat of the grey image (a structuring element wider
     than a scratch, narrower than most objects; threshold ``defect_k`` robust deviations
     above the median response, at least 20 levels), grown by one pixel and filled by
     OpenCV's Telea inpainting;
  3. **fading and colour cast**: each channel stretched so that its ``clip`` and
     ``100 - clip`` percentiles reach black and white (auto-levels): this restores contrast
     and removes a uniform cast such as sepia or yellowing (it cannot bring back the colours
     that a sepia toning removed).

Usage::

    culturegan restore scans/ --model runs/004-pix2pix/model --out restored/
    culturegan restore scans/ --classical --out restored_classical/
    clean = classical_restore(Image.open("old.jpg"))
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from culturegan.apply import StylizeSummary, stylize_paths
from culturegan.inference import Request, Stylizer

RESTORED = "restored"  # the target domain of restoration models
# Marks fainter than this (8-bit levels above their surroundings) are left to the denoiser: on
# a smooth photo the robust spread of the top-hat is near 0, and edges would pass as defects.
MIN_DEFECT_LEVELS = 20.0

# The baseline's settings: the best of benchmarks/restore.py's grid search on 24 degraded
# *training* photos of cultures-dev (benchmarks/results/restore.json records the search).
DEFAULT_CLASSICAL = {"defect_k": 10.0, "denoise": 1.5, "clip": 0.0}


# ----------------------------------------------------------------------------- classical


def defect_mask(rgb: np.ndarray, *, defect_k: float, size: int = 7) -> np.ndarray:
    """(H, W) uint8 mask (255 = defect) of thin pale or dark marks in an (H, W, 3) uint8 image."""
    import cv2  # here, not at module level: every culturegan command imports this module

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = np.zeros(grey.shape, np.uint8)
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):  # pale marks, then dark marks
        response = cv2.morphologyEx(grey, op, kernel).astype(np.float32)
        median = float(np.median(response))
        spread = 1.4826 * float(np.median(np.abs(response - median)))  # robust std
        threshold = median + max(defect_k * spread, MIN_DEFECT_LEVELS)
        mask |= ((response > threshold) * 255).astype(np.uint8)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8))


def estimate_noise(rgb: np.ndarray) -> float:
    """Noise standard deviation in 8-bit levels, averaged over the channels: Donoho's robust
    wavelet estimator, median(|HH|) / 0.6745 on the finest diagonal Haar coefficients (what
    scikit-image's ``estimate_sigma`` does with a Daubechies wavelet and PyWavelets)."""
    x = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2].astype(np.float32)
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2  # (H/2, W/2, 3)
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1)) / 0.6745))


def auto_levels(rgb: np.ndarray, *, clip: float) -> np.ndarray:
    """Stretch each channel so its ``clip`` / ``100 - clip`` percentiles become 0 / 255."""
    out = np.empty_like(rgb)
    for c in range(3):
        low, high = np.percentile(rgb[..., c], (clip, 100.0 - clip))
        scale = 255.0 / max(float(high - low), 1.0)
        out[..., c] = np.clip((rgb[..., c].astype(np.float32) - low) * scale, 0, 255).round()
    return out


def classical_restore(
    image: Image.Image | np.ndarray,
    *,
    defect_k: float = DEFAULT_CLASSICAL["defect_k"],  # defect threshold, robust deviations
    denoise: float = DEFAULT_CLASSICAL["denoise"],  # NL-means strength / estimated noise
    clip: float = DEFAULT_CLASSICAL["clip"],  # auto-levels percentile clipped at each end
) -> Image.Image | np.ndarray:
    """Denoise, inpaint scratches and dust, auto-level: see the module docstring. Takes and
    returns an RGB PIL image or an (H, W, 3) uint8 array."""
    import cv2

    rgb = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else image
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"classical_restore takes RGB uint8 images, got {rgb.shape} {rgb.dtype}")
    if not (defect_k > 0 and denoise >= 0 and 0 <= clip < 50):
        raise ValueError(f"need defect_k > 0, denoise >= 0, 0 <= clip < 50; got "
                         f"{defect_k}, {denoise}, {clip}")  # fmt: skip
    out = np.ascontiguousarray(rgb)
    # Denoise first: grain raises the top-hat's spread, and so the defect threshold, until
    # scratches pass as grain; non-local means keeps a scratch (its patches resemble each other
    # along the line) while it removes the grain.
    strength = denoise * estimate_noise(out)
    if strength > 0.5:
        out = cv2.fastNlMeansDenoisingColored(out, None, strength, strength, 5, 15)
    mask = defect_mask(out, defect_k=defect_k)
    if mask.any():
        out = cv2.inpaint(out, mask, 3, cv2.INPAINT_TELEA)
    out = auto_levels(out, clip=clip)
    return Image.fromarray(out) if isinstance(image, Image.Image) else out


class ClassicalRestorer(Stylizer):
    """:func:`classical_restore` behind the one Stylizer call, so that folders, skipped files
    and atomic outputs are handled as for a model (:func:`culturegan.apply.stylize_paths`)."""

    kind = "classical"

    def __init__(self, **settings: float) -> None:
        super().__init__(domains=["degraded", RESTORED], directions={f"degraded->{RESTORED}": ""})
        self.settings = settings

    def _stylize(self, pils: list[Image.Image], request: Request) -> list[Image.Image]:
        return [classical_restore(image, **self.settings) for image in pils]


def classical_paths(
    inputs: Sequence[str | Path],
    *,
    out_dir: str | Path,
    progress: bool = True,
    **settings: float,  # classical_restore's defect_k, denoise, clip
) -> StylizeSummary:
    """Restore files and folders into ``out_dir`` as PNG with :func:`classical_restore`."""
    summary = stylize_paths(
        inputs, model_dir=ClassicalRestorer(**settings), out_dir=out_dir, batch_size=1,
        progress=progress, keep_alpha=False, verb="restored",
    )  # fmt: skip
    return dataclasses.replace(summary, direction="classical")


def model_paths(
    inputs: Sequence[str | Path],
    *,
    model: str | Path,
    out_dir: str | Path,
    batch_size: int = 4,
    device: str = "cpu",
    tile: int | None = None,
    progress: bool = True,
) -> StylizeSummary:
    """Restore files and folders with a restoration model (target domain ``restored``)."""
    return stylize_paths(
        inputs, model_dir=model, out_dir=out_dir, target=RESTORED, batch_size=batch_size,
        device=device, tile=tile, progress=progress, verb="restored",
    )  # fmt: skip


# ----------------------------------------------------------------------------- command


# Its arguments are defined in culturegan.commands, which imports no torch (`--help`).
def cmd_restore(args: argparse.Namespace) -> int:
    if args.classical == bool(args.model):
        raise ValueError("say how to restore: --model M (a pix2pix model) or --classical")
    if args.classical:
        summary = classical_paths(args.inputs, out_dir=args.out)
    else:
        summary = model_paths(
            args.inputs,
            model=args.model,
            out_dir=args.out,
            batch_size=args.batch_size,
            device=args.device,
            tile=args.tile,
        )
    print(summary.report())
    return 0 if summary.written else 1
