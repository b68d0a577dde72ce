"""Does the judge count dark outlines as the culture? A trained model's test outputs, scored as
they are and with the photo's contours painted on them in one dark colour.

No training: stylizes ``quality_cultures.py``'s test photos with a model folder, scores them
like that benchmark (same split, judge and scores), then paints :func:`photo_outlines` of each
photo (at the output's resolution, ``--shares`` of the pixels) in grey ``--level`` and scores
again. If the judge's hit rate rises, outlines are part of what it learnt of the culture from
its held-out art, and a loss that asks the generator for them (``loss.lambda_outline``) aims at
something the judge sees. One JSON line per variant.

    python benchmarks/outline_probe.py MODEL_DIR --target ukiyoe --work /tmp/qc_b
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_cultures as qc  # noqa: E402

from culturegan.data.images import load_image, pil_to_tensor  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.losses import photo_outlines  # noqa: E402
from culturegan.metrics.judge import Judge  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model folder (model.safetensors + config)")
    parser.add_argument("--target", default="ukiyoe", choices=qc.CULTURES)
    parser.add_argument("--work", type=Path, required=True, help="quality_cultures.py --work")
    parser.add_argument("--shares", default="0.03,0.05,0.08")
    parser.add_argument("--level", type=float, default=0.2, help="grey of the lines, 0-1")
    args = parser.parse_args(argv)
    judge_dir = args.work / "judge"
    if not (judge_dir / "config.json").is_file():
        raise SystemExit(f"no judge in '{judge_dir}': run quality_cultures.py --work first")
    split = qc.split_dataset(qc.DEFAULT_DATA, qc.SPLIT_SEED)
    pils = [load_image(p) for p in split[qc.PHOTO]["test"]]
    inputs = [pil_to_tensor(p) for p in pils]
    stylizer = Stylizer.from_pretrained(args.model)
    outputs = stylizer(pils, source=qc.PHOTO, target=args.target).images
    outputs = [pil_to_tensor(i) for i in outputs]
    judge = Judge.load(judge_dir)

    def report(label: str, images: list[torch.Tensor]) -> None:
        row = qc.score_images(judge, images, args.target, split[args.target]["judge"], inputs,
                              args.work / "stats")  # fmt: skip
        print(json.dumps({"variant": label, "model": str(args.model), **row}), flush=True)

    report("as is", outputs)
    ink = args.level * 2 - 1  # [0, 1] grey -> [-1, 1]
    for share in (float(s) for s in args.shares.split(",")):
        painted = []
        for photo, out in zip(inputs, outputs, strict=True):
            lines = photo_outlines(photo.unsqueeze(0), share=share)[0]
            painted.append(torch.where(lines.expand_as(out), torch.full_like(out, ink), out))
        report(f"outlines share {share} grey {args.level}", painted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
