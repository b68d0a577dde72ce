"""How the models' colours compare with the art's: lightness, saturation and hues, in numbers.

The judge and kd_lite0 (``quality_cultures.py``) say how far an output is from the art; this
script says where the colours differ. For the judging art of a culture, the test photos and
each model's outputs of those photos (the split of ``quality_cultures.py``), it prints and
saves:

* luma quantiles (10th, 50th and 90th percentile; BT.601, 0-1),
* chroma quantiles (50th and 90th; the distance from grey in BT.601 Cb/Cr, 0-0.5: the art's
  most saturated tenth against the outputs' tells whether a model's inks are as strong),
* the share of pixels in each of twelve 30-degree hue sectors (pixels with chroma of at least
  0.03; the rest are grey), and the total variation distance between that histogram (grey as a
  thirteenth bin) and the judging art's: 0 is the art's own mix of colours, 1 none in common.

    python benchmarks/colour_stats.py --target ukiyoe \\
        --model shipped=ukiyoe --model mine=runs/000-cut/model --out colours.json

Images are read with their longer side at ``--side`` pixels (128); models stylize the photos at
that size, one pass; ``--finish ink`` adds a row per model with those outputs redrawn by the
finish (its default settings, or those of a spec such as ``ink:paper_share=0.5``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_cultures as qc  # noqa: E402
import torch  # noqa: E402

from culturegan.commands import FINISH_SETTINGS_HELP, finish_argument  # noqa: E402
from culturegan.finish import apply_finish  # noqa: E402
from culturegan.losses import NEUTRAL_CHROMA, luma_chroma_hue  # noqa: E402

SECTORS = 12
# The sectors from 0 degrees (BT.601 hue angle: pure blue 351, magenta 52, red 109, yellow 171,
# green 232, cyan 289).
NAMES = ("violet", "magenta", "rose", "red", "orange", "yellow", "yellow-green", "green",
         "green-cyan", "cyan", "sky blue", "blue")  # fmt: skip


def colour_stats(pixels: np.ndarray) -> dict[str, object]:
    """(N, 3) RGB in [0, 1] -> luma / chroma quantiles and the hue histogram (grey last)."""
    rgb = torch.from_numpy(pixels.T.astype(np.float64))  # (3, N)
    y, chroma, hue = (v.numpy() for v in luma_chroma_hue(rgb))
    hue = np.degrees(hue) % 360
    coloured = chroma >= NEUTRAL_CHROMA
    counts = np.histogram(hue[coloured], bins=SECTORS, range=(0, 360))[0]
    shares = np.append(counts, (~coloured).sum()) / len(pixels)
    return {
        "luma_q10_q50_q90": np.quantile(y, [0.1, 0.5, 0.9]).round(4).tolist(),
        "chroma_q50_q90": np.quantile(chroma, [0.5, 0.9]).round(4).tolist(),
        "hue_shares": dict(zip([*NAMES, "grey"], shares.round(4).tolist(), strict=True)),
    }


def total_variation(a: dict[str, float], b: dict[str, float]) -> float:
    return 0.5 * sum(abs(a[k] - b[k]) for k in a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, choices=qc.CULTURES)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a model folder or a shipped model's name; repeat")  # fmt: skip
    parser.add_argument("--data", type=Path, default=qc.DEFAULT_DATA)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--finish", type=finish_argument,
                        help="also each model's outputs with this finish (a row each)"
                        + FINISH_SETTINGS_HELP)  # fmt: skip
    parser.add_argument("--out", type=Path, help="results JSON")
    args = parser.parse_args(argv)
    models = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--model takes NAME=PATH, got '{spec}'")
        models[name] = path

    from PIL import Image

    from culturegan.data.images import load_image
    from culturegan.inference import Stylizer

    split = qc.split_dataset(args.data, qc.SPLIT_SEED)

    def small(path: Path) -> Image.Image:
        image = load_image(path)
        image.thumbnail((args.side, args.side))
        return image

    def pixels(images: list[Image.Image]) -> np.ndarray:
        return np.concatenate(
            [np.asarray(im.convert("RGB"), np.float32).reshape(-1, 3) / 255 for im in images]
        )

    photos = [small(p) for p in split[qc.PHOTO]["test"]]
    rows = {
        f"judging art of {args.target}": colour_stats(
            pixels([small(p) for p in split[args.target]["judge"]])
        ),
        "test photos": colour_stats(pixels(photos)),
    }
    for name, path in models.items():
        stylizer = Stylizer.from_pretrained(path)
        outputs = stylizer(photos).images
        rows[name] = colour_stats(pixels(outputs))
        if args.finish:
            finished = [
                apply_finish(args.finish, p, o) for p, o in zip(photos, outputs, strict=True)
            ]
            rows[f"{name} + {args.finish}"] = colour_stats(pixels(finished))
    art = rows[f"judging art of {args.target}"]["hue_shares"]
    for row in rows.values():
        row["hue_tv_to_art"] = round(total_variation(row["hue_shares"], art), 4)

    print(f"{args.target}: {len(photos)} test photos at {args.side} px")
    print("| images | luma q10 / q50 / q90 | chroma q50 / q90 | hue TV to the art | "
          "commonest hues |")  # fmt: skip
    print("|---|---|---|---:|---|")
    for name, row in rows.items():
        top = sorted(row["hue_shares"].items(), key=lambda kv: -kv[1])[:4]
        hues = ", ".join(f"{k} {v:.0%}" for k, v in top)
        luma = " / ".join(f"{v:.2f}" for v in row["luma_q10_q50_q90"])
        chroma = " / ".join(f"{v:.3f}" for v in row["chroma_q50_q90"])
        print(f"| {name} | {luma} | {chroma} | {row['hue_tv_to_art']:.3f} | {hues} |")
    if args.out:
        report = {"target": args.target, "side": args.side, "finish": args.finish,
                  "models": models, "rows": rows}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
