"""Two generator artifacts, measured: a band along an image edge and a 2 x 2 pixel pattern.

For each model folder, the photos (resized to ``--size``) are stylized by the model's first
direction and two figures are averaged over them, in [-1, 1] units:

* **edge band**, per edge: |mean of the 8 outermost pixel columns (rows) - mean of the next 8|.
  A generator that paints a band along an edge raises it far above the photos' own value.
* **2 x 2 phase spread**: the image split into its four sub-pixel grids (even/odd rows x even/odd
  columns); max - min of their means. A sub-pixel output layer that dithers (each of the four
  pixels it draws from one position with its own weights) raises it; photos are near 0.

The first row is the photos themselves (the floor). Not a test: a diagnostic for docs/quality.md
("Clean edges and no dither")::

    python benchmarks/edge_artifacts.py --photos ../shared/datasets/cultures-dev/photo \\
        runs/001-cut/model runs/002-cut/model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from culturegan.data.images import load_image, pil_to_tensor, scan_images
from culturegan.inference import Stylizer

BAND = 8  # pixels per band (the mobile generators' 1/8-resolution cell)


def edge_bands(y: torch.Tensor) -> dict[str, float]:
    """|outer band - next band| per edge of (B, C, H, W) images, averaged over the batch."""
    bands = {
        "left": (y[..., :BAND], y[..., BAND : 2 * BAND]),
        "right": (y[..., -BAND:], y[..., -2 * BAND : -BAND]),
        "top": (y[..., :BAND, :], y[..., BAND : 2 * BAND, :]),
        "bottom": (y[..., -BAND:, :], y[..., -2 * BAND : -BAND, :]),
    }
    return {
        edge: (outer.mean(dim=(1, 2, 3)) - inner.mean(dim=(1, 2, 3))).abs().mean().item()
        for edge, (outer, inner) in bands.items()
    }


def phase_spread(y: torch.Tensor) -> float:
    """Max - min of the means of the four 2 x 2 sub-pixel grids, averaged over the batch."""
    phases = torch.stack(
        [y[..., i::2, j::2].mean(dim=(1, 2, 3)) for i in (0, 1) for j in (0, 1)], dim=1
    )
    return (phases.max(dim=1).values - phases.min(dim=1).values).mean().item()


def figures(y: torch.Tensor) -> dict[str, float]:
    return {**edge_bands(y), "phase": phase_spread(y)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="model folders")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos")
    parser.add_argument("--count", type=int, default=40, help="photos used (sorted by name)")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    files = scan_images(args.photos, check="header").files[: args.count]
    if not files:
        raise SystemExit(f"no readable images in '{args.photos}'")
    photos = [load_image(p).resize((args.size, args.size)) for p in files]
    rows = [("photos (floor)", figures(torch.stack([pil_to_tensor(im) for im in photos])))]
    for model in args.models:
        outputs = Stylizer.from_pretrained(model)(photos).images  # its first direction
        rows.append((str(model), figures(torch.stack([pil_to_tensor(im) for im in outputs]))))
    print(f"{len(files)} photos at {args.size} px; [-1, 1] units")
    print("| images | left band | right band | top band | bottom band | 2x2 phase spread |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in rows:
        print(f"| {name} | {f['left']:.3f} | {f['right']:.3f} | {f['top']:.3f} | "
              f"{f['bottom']:.3f} | {f['phase']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
