"""What a style objective asks of a photo, without a generator: photos optimised pixel by pixel.

A trained model's colours are the sum of what its losses ask and what its generator can draw.
This script takes the generator out. It optimises the pixels of held-out test photos (the split
of ``quality_cultures.py``) against the perceptual terms of training as a preset sets them
(``training.base.PerceptualTerms``: for ``fewshot_structure_long`` the style statistics against a
batch of training art drawn afresh each step, the content term, the grey-level structure term
and the RGB palette term). Each variant overrides the preset's settings; the pictures and the colour
figures of ``colour_stats.py`` say what the objective alone paints (after Gatys et al., CVPR
2016, who read a style representation by optimising an image against it).

    python benchmarks/style_probe.py --target ukiyoe --variant 'all=' \\
        --variant 'block 0=loss.style_taps=0' --variant 'blocks 2,4,7=loss.style_taps=2,4,7' \\
        --grid /tmp/probe.png --out /tmp/probe.json

A variant is ``LABEL=KEY=VALUE;KEY=VALUE`` over the preset (``--preset``, default the shipped
ukiyo-e model's settings: ``fewshot_structure_long`` with ``loss.style_blur 1``), each value read
as the command line reads it (``loss.style_taps=2,4,7``); ``LABEL=`` alone is the preset as it
is. Pixels are ``tanh`` of the optimised values, so they stay in
[-1, 1]; Adam at ``--lr``, ``--steps`` steps, seeded. About 1 s a step for 8 photos at 128 px on
a 2-core AVX2 CPU with a matmul peak near 100 GFLOP/s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import colour_stats as cs  # noqa: E402
import quality_cultures as qc  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from culturegan.config import RunConfig, load_config  # noqa: E402
from culturegan.data.images import load_image, pil_to_tensor  # noqa: E402
from culturegan.training.base import PerceptualTerms  # noqa: E402

DEFAULT_BASE = {"loss.style_blur": 1.0}  # the shipped ukiyo-e model's settings over the preset


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """'LABEL=KEY=VALUE;KEY=VALUE' -> (label, overrides as text, typed by load_config)."""
    label, sep, rest = spec.partition("=")
    if not sep or not label:
        raise ValueError(f"--variant takes LABEL=KEY=VALUE;..., got '{spec}'")
    overrides: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"variant '{label}': '{item}' is not KEY=VALUE")
        overrides[key] = value
    return label, overrides


def square(path: Path, size: int) -> torch.Tensor:
    """An image's centre square at ``size`` px, (3, size, size) in [-1, 1]."""
    image = load_image(path)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return pil_to_tensor(image)


def optimise(
    photos: torch.Tensor,  # (N, 3, S, S) in [-1, 1]
    art: torch.Tensor,  # (M, 3, S, S) training art in [-1, 1]
    cfg: RunConfig,
    *,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The photos' pixels after ``steps`` of Adam on the preset's perceptual terms, and those
    terms' unweighted values at the last step."""
    terms = PerceptualTerms(cfg)
    gen = torch.Generator().manual_seed(seed)
    param = torch.atanh(photos.clamp(-0.999, 0.999)).clone().requires_grad_(True)
    optimiser = torch.optim.Adam([param], lr=lr)
    logs: dict[str, float] = {}
    for step in range(steps):
        style = art[torch.randperm(len(art), generator=gen)[:batch]]
        total, logs = terms(torch.tanh(param), photos, style, step=step)
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
    return torch.tanh(param).detach(), {k: round(v, 5) for k, v in logs.items()}


def to_pil(image: torch.Tensor) -> Image.Image:
    array = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def pixels(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N*H*W, 3) in [0, 1]."""
    return ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).reshape(-1, 3).numpy()


def grid(rows: dict[str, torch.Tensor], size: int) -> Image.Image:
    """One row per variant (the photos first), its label above it."""
    label_h = 14
    width = size * len(next(iter(rows.values())))
    sheet = Image.new("RGB", (width, (size + label_h) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows.items()):
        top = r * (size + label_h)
        draw.text((2, top + 1), label, fill="black")
        for c, image in enumerate(images):
            sheet.paste(to_pil(image), (c * size, top + label_h))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, choices=qc.CULTURES)
    parser.add_argument("--preset", default="fewshot_structure_long")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=K=V;K=V",
                        help="settings over the preset and style_blur 1; repeat")  # fmt: skip
    parser.add_argument("--data", type=Path, default=qc.DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--photos", type=int, default=8, help="test photos optimised")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--batch", type=int, default=6, help="training art drawn per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, help="PNG: the photos, then a row per variant")
    parser.add_argument("--out", type=Path, help="results JSON")
    args = parser.parse_args(argv)
    try:
        variants = dict(parse_variant(spec) for spec in args.variant or ["preset="])
    except ValueError as err:
        parser.error(str(err))
    if not args.data.is_dir():
        parser.error(f"no cultures-dev folder at '{args.data}' (--data or CULTURES_DEV)")

    torch.manual_seed(args.seed)
    split = qc.split_dataset(args.data, qc.SPLIT_SEED)
    photos = torch.stack([square(p, args.size) for p in split[qc.PHOTO]["test"][: args.photos]])
    art = torch.stack([square(p, args.size) for p in split[args.target]["train"]])
    judging = torch.stack([square(p, args.size) for p in split[args.target]["judge"]])

    stats = {
        f"judging art of {args.target}": cs.colour_stats(pixels(judging)),
        "test photos": cs.colour_stats(pixels(photos)),
    }
    rows = {"test photos": photos}
    report: dict[str, Any] = {"target": args.target, "preset": args.preset, "variants": {}}
    for label, overrides in variants.items():
        settings = {"data.crop_size": args.size, "train.seed": args.seed, **DEFAULT_BASE}
        try:
            cfg = load_config(args.preset, {**settings, **overrides}).validate()
        except ValueError as err:
            parser.error(f"variant '{label}': {err}")
        images, terms = optimise(photos, art, cfg, steps=args.steps, lr=args.lr,
                                 batch=args.batch, seed=args.seed)  # fmt: skip
        rows[label] = images
        stats[label] = cs.colour_stats(pixels(images))
        report["variants"][label] = {"overrides": overrides, "last_losses": terms}
        print(f"[probe] {label}: {terms}", flush=True)
    art_hues = stats[f"judging art of {args.target}"]["hue_shares"]
    for row in stats.values():
        row["hue_tv_to_art"] = round(cs.total_variation(row["hue_shares"], art_hues), 4)

    print(f"{args.target}: {len(photos)} test photos at {args.size} px, {args.steps} steps")
    print("| images | luma q10 / q50 / q90 | chroma q50 / q90 | hue TV to the art | "
          "violet to red | commonest hues |")  # fmt: skip
    print("|---|---|---|---:|---:|---|")
    for name, row in stats.items():
        shares = row["hue_shares"]
        purple = sum(shares[k] for k in cs.NAMES[:4])
        commonest = sorted(shares.items(), key=lambda kv: -kv[1])[:4]
        top = ", ".join(f"{k} {v:.0%}" for k, v in commonest)
        luma = " / ".join(f"{v:.2f}" for v in row["luma_q10_q50_q90"])
        chroma = " / ".join(f"{v:.3f}" for v in row["chroma_q50_q90"])
        print(f"| {name} | {luma} | {chroma} | {row['hue_tv_to_art']:.3f} | {purple:.0%} | {top} |")
    report.update({"photos": len(photos), "size": args.size, "steps": args.steps, "lr": args.lr,
                   "batch": args.batch, "seed": args.seed, "colours": stats})  # fmt: skip
    if args.grid:
        grid(rows, args.size).save(args.grid)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
