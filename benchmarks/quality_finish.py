"""Models' pictures with and without a finish (``print``, ``ink``, ``paint``), scored like
quality_cultures.py.

The same split, judge and scores (judge hit rate, mean target probability, verdicts, grey SSIM
to the photo, kd_lite0 to the judging art) as ``quality_cultures.py``, whose ``--work`` folder
it reuses (run that once first). Each model stylizes the photos once; the finish redraws those
same outputs, so the rows of a model differ by the finish alone. A third row per model is a
control: the outputs under a Gaussian blur as wide as the finish's own widest (its settings'
``smoothing``: the print's ``detail_sigma``, the ink's ``wash_blur``, the blur the paint's broad
strokes take their colour from; scaled like the finish), which shows how much of a change in the
judge's figures comes from smoothing the model's texture away rather than from the finish's
areas, washes, lines and strokes. Ratios are against the unfinished row of the same run.

    python benchmarks/quality_finish.py --work /tmp/qc_b --target ukiyoe \\
        --model shipped=ukiyoe --model mine=runs/000-cut/model \\
        --out benchmarks/results/quality_finish_ukiyoe.json --grid docs/quality/finish.jpg
    python benchmarks/quality_finish.py --work /tmp/qc_b --target chinese_ink --finish ink \\
        --model shipped=chinese_ink

``--shifts 8`` has every model stylize with 8 passes over the photo moved within its generator's
pixel grid, averaged (``Stylizer(..., shifts=8)``): every row then shows the models without the
lattice fixed to that grid.

``--photos train`` scores the first 64 training photos instead of the test photos: the finish's
settings were chosen there (``--set line_sigma=1.5 detail=1.0`` for another setting), so that
the test photos stay unseen by the choice as well as by the models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import quality_cultures as qc  # noqa: E402
import torch  # noqa: E402
from colour_stats import colour_stats, total_variation  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from culturegan.data.images import load_image, pil_to_tensor  # noqa: E402
from culturegan.fileio import write_json  # noqa: E402
from culturegan.finish import FINISHES, REFERENCE_SIDE, parse_finish  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.metrics.judge import Judge, judge_scores  # noqa: E402

TRAIN_PHOTOS = 64  # training photos scored with --photos train
COLOUR_SIDE = 128  # px: colour figures as colour_stats.py takes them


def finish_settings(finish: str, settings: list[str]):
    """``--set key=value ...`` as the finish's settings (culturegan.finish.parse_finish)."""
    try:
        return parse_finish(f"{finish}:{','.join(settings)}")[1]
    except ValueError as err:
        raise SystemExit(f"--set: {err}") from None


def colour_columns(row: dict) -> str:
    luma = "/".join(f"{v:.2f}" for v in row["luma_q10_q50_q90"])
    return (
        f"{luma:>14s} {row['chroma_q50_q90'][1]:7.3f} {row['hue_shares']['grey']:5.2f} "
        f"{row['hue_tv_to_art']:5.2f}"
    )


def colours(images: list, art: dict | None = None) -> dict:
    """colour_stats.py's figures at its 128 px side; with ``art`` (the judging art's own),
    the hue TV against it."""
    small = []
    for image in images:
        image = image.convert("RGB")
        image.thumbnail((COLOUR_SIDE, COLOUR_SIDE))
        small.append(np.asarray(image, np.float32).reshape(-1, 3) / 255)
    stats = colour_stats(np.concatenate(small))
    if art is not None:
        stats["hue_tv_to_art"] = round(total_variation(stats["hue_shares"], art["hue_shares"]), 4)
    return stats


def second_columns(row: dict) -> str:
    """The second judge's hit rate and mean target probability, if there is one."""
    if "second_judge" not in row:
        return ""
    second = row["second_judge"]
    return f"   {second['hit_rate']:4.2f} / {second['mean_target_prob']:4.2f}"


def blurred(image: Image.Image, sigma: float) -> Image.Image:
    """The control: ``image`` under a Gaussian blur of ``sigma`` px at a 256 px side (scaled)."""
    sigma = sigma * min(image.size) / REFERENCE_SIDE
    rgb = ndi.gaussian_filter(np.asarray(image.convert("RGB"), dtype=np.float32), (sigma, sigma, 0))
    return Image.fromarray(np.round(rgb).clip(0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="quality_cultures.py's folder")
    parser.add_argument("--target", required=True, choices=qc.CULTURES)
    parser.add_argument(
        "--model", action="append", required=True, help="LABEL=MODEL (folder or shipped name)"
    )
    parser.add_argument("--finish", choices=sorted(FINISHES), default="print")
    parser.add_argument("--photos", choices=("test", "train"), default="test")
    parser.add_argument(
        "--shifts", type=int, default=1, help="the models' passes moved within their grid, averaged"
    )
    parser.add_argument("--set", nargs="*", default=[],
                        help="finish settings, key=value (the print's ink colour as "
                        "ink=28/26/30)")  # fmt: skip
    parser.add_argument(
        "--second-judge",
        choices=("lite2",),
        help="a second judge's hit and p in every row "
        "(fitted on the first judge's images, in WORK/judge-<name>; pip install '.[judge2]')",
    )
    parser.add_argument("--out", type=Path, help="results JSON")
    parser.add_argument("--grid", type=Path, help="picture: photos x (model, model + finish)")
    parser.add_argument("--grid-rows", type=int, default=6)
    parser.add_argument("--grid-cell", type=int, default=qc.CELL, help="px per picture")
    parser.add_argument("--grid-blur", action="store_true", help="the control in the grid too")
    args = parser.parse_args(argv)
    judge_dir = args.work / "judge"
    if not (judge_dir / "config.json").is_file():
        raise SystemExit(f"no judge in '{judge_dir}': run quality_cultures.py --work first")
    settings = finish_settings(args.finish, args.set)
    models = dict(m.split("=", 1) for m in args.model)

    split = qc.split_dataset(qc.DEFAULT_DATA, qc.SPLIT_SEED)
    photos = split[qc.PHOTO][args.photos]
    photos = photos[:TRAIN_PHOTOS] if args.photos == "train" else photos
    pils = [load_image(p) for p in photos]
    inputs = [pil_to_tensor(p) for p in pils]
    judge = Judge.load(judge_dir)
    reference, cache = split[args.target]["judge"], args.work / "stats"
    second = None
    if args.second_judge:  # the same images as the first judge's: the most of a class it took
        most = max(len(files) for files in judge.config["training_files"].values())
        second = qc.get_judge(split, args.work, most, backbone=args.second_judge)

    art = colours([load_image(p) for p in reference])
    art["hue_tv_to_art"] = 0.0

    def score(images: list) -> dict:
        tensors = [pil_to_tensor(i) for i in images]
        row = qc.score_images(judge, tensors, args.target, reference, inputs, cache)
        row.pop("verdict_each")
        if second is not None:
            again = judge_scores(second, tensors, args.target)
            row["second_judge"] = {"backbone": args.second_judge, "hit_rate": again["hit_rate"],
                                   "mean_target_prob": again["mean_target_prob"]}  # fmt: skip
        return {**row, **colours(images, art)}

    rows = [{"model": "photos unchanged (floor)", "finish": None, **score(pils)}]
    columns = {"input": pils}
    for label, model in models.items():
        stylizer = Stylizer.from_pretrained(model)
        outputs = stylizer(pils, source=qc.PHOTO, target=args.target, shifts=args.shifts)
        t0 = time.perf_counter()
        finished = [settings.draw(p, o) for p, o in zip(pils, outputs.images, strict=True)]
        seconds = (time.perf_counter() - t0) / len(pils)
        plain = {"model": label, "path": model, "finish": None, **score(outputs.images)}
        done = {"model": label, "path": model, "finish": args.finish, **score(finished)}
        done["finish_seconds_per_image"] = seconds
        soft = [blurred(o, settings.smoothing) for o in outputs.images]
        control = {"model": label, "path": model, "finish": "blur", **score(soft)}
        for row in (done, control):
            for key in ("hit_rate", "ssim_grey", "kd_lite0"):
                row[f"{key}_ratio"] = row[key] / plain[key] if plain[key] else None
        for row in (plain, done, control):
            rows.append(row)
            print(json.dumps(row), flush=True)
        columns[label] = outputs.images
        columns[f"{label} + {args.finish}"] = finished
        if args.grid_blur:
            columns[f"{label} blurred"] = soft
    results = {
        "target": args.target,
        "finish": args.finish,
        "photos": args.photos,
        "num_photos": len(pils),
        "finish_settings": asdict(settings),
        "shifts": args.shifts,
        "machine": qc.machine_facts(threads=torch.get_num_threads()),
        "command": "python benchmarks/quality_finish.py " + " ".join(argv or sys.argv[1:]),
        "judging_art_colours": art,
        "rows": rows,
    }
    if args.out:
        write_json(args.out, results)
    if args.grid:
        grid = qc.picture_grid(columns, args.grid_rows, args.grid_cell)
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.grid, quality=90)
    print(
        f"{'model':28s} {'finish':7s} {'hit':>5s} {'p':>5s} {'ssim':>6s} {'kd':>6s} "
        f"{'grid':>5s} {'luma q10/50/90':>14s} {'chr q90':>7s} {'grey':>5s} {'hueTV':>5s}"
        + (f" {args.second_judge + ' hit/p':>12s}" if second else "")
        + "  verdicts"
    )
    print(
        f"{'judging art':28s} {'-':7s} {'':5s} {'':5s} {'':6s} {'':6s} {'':5s} "
        + colour_columns(art)
    )
    for row in rows:
        called = sorted(row["verdicts"].items(), key=lambda kv: -kv[1])
        verdicts = ", ".join(f"{name} {n}" for name, n in called if n)  # what the judge said
        print(
            f"{row['model'][:28]:28s} {row['finish'] or '-':7s} {row['hit_rate']:5.2f} "
            f"{row['mean_target_prob']:5.2f} {row['ssim_grey']:6.3f} {row['kd_lite0']:6.3f} "
            f"{row['grid_peak']:5.1f} {colour_columns(row)}{second_columns(row)}  {verdicts}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
