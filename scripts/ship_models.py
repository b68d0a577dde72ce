"""Copy benchmarked models into the package's model zoo, each with its model card.

The shipped models are trained and judged by ``benchmarks/quality_cultures.py`` (same split,
same judge, same budget as the quality table): this script takes one candidate's models from a
results file (or, by default, per culture the best candidate that keeps the photo readable),
checks that each loads and that the weights are safetensors, and writes
``src/culturegan/zoo/<culture>/`` with ``config.json``, ``model.safetensors`` and a ``README.md``
card whose YAML front matter holds the figures (``culturegan models`` prints them). The images
never ship. The two commands (docs/quality.md records the figures)::

    python benchmarks/quality_cultures.py --minutes 4 \\
        --candidates cyclegan_fast,fewshot_cpu,fewshot_nogan \\
        --directions ukiyoe,chinese_ink,impressionism_monet,postimpressionism_cezanne \\
        --work runs/ship --out benchmarks/results/quality_cultures_4min.json
    python scripts/ship_models.py benchmarks/results/quality_cultures_4min.json
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from culturegan.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from culturegan.finish import check_finish
from culturegan.inference import Stylizer, shift_offsets
from culturegan.zoo import CARD_NAME, ZOO_DIR, read_card

LIMIT_BYTES = 15_000_000  # all shipped models together (issue #10)
PRETTY = {
    "ukiyoe": "Japanese woodblock prints (ukiyo-e)",
    "chinese_ink": "Chinese shan shui ink landscapes",
    "impressionism_monet": "Impressionism (Claude Monet)",
    "postimpressionism_cezanne": "Post-Impressionism (Paul Cezanne)",
}


def licence_notes(data: Path, domains: list[str]) -> dict[str, list[str]]:
    """domain -> its distinct licence notes in cultures-dev's MANIFEST.csv."""
    manifest = data / "MANIFEST.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"'{manifest}' not found: the cards need the data's licence notes")
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    notes: dict[str, Counter] = {d: Counter() for d in domains}
    sources: dict[str, Counter] = {d: Counter() for d in domains}
    for row in rows:
        if row["domain"] in notes:
            notes[row["domain"]][row["licence_note"]] += 1
            sources[row["domain"]][f"{row['source_repo']}: {Path(row['source_path']).parent}"] += 1
    return {d: [*notes[d], *(f"source: {s}" for s in sources[d])] for d in domains}


def card_text(meta: dict[str, Any], notes: dict[str, list[str]], limits: str) -> str:
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100).strip()
    target = meta["target"]
    lines = [
        "---",
        front,
        "---",
        "",
        f"# {meta['name']}: photo -> {PRETTY.get(target, target)}",
        "",
        f"A culturegan {meta['recipe']} model (generator `{meta['generator']}`, "
        f"{meta['size_mb']:.1f} MB) that turns photos into {PRETTY.get(target, target)}. "
        f"It ships inside the package: `culturegan stylize photo.jpg --style {meta['name']} "
        f'--out out/` or `Stylizer.from_pretrained("{meta["name"]}")`.',
        "",
        "## How it was trained",
        "",
        f"- Recipe: preset `{meta['preset']}` with {json.dumps(meta['overrides'])}; "
        f"{meta['steps']} steps at {meta['crop_size']} px crops, batch {meta['batch_size']}, "
        f"seed {meta['seed']}, {meta['train_minutes']:g} minutes on {meta['machine']}.",
        f"- Command: `{meta['command']}`, then `python scripts/ship_models.py ...`.",
        f"- Data: the training part of cultures-dev ({meta['training_images']}), split by "
        "a stable hash of the file name; the judging art and the test photos were never seen.",
        "",
        "Training data sources and licence notes (the images are not shipped):",
        "",
    ]
    for domain, items in notes.items():
        lines += [f"- `{domain}`: " + "; ".join(items)]
    lines += [
        "",
        "## How it was judged",
        "",
        f"On {meta['test_photos']} held-out test photos, stylized at their native size: an "
        "independent judge (logistic regression on ImageNet EfficientNet-Lite1 features, fitted "
        "on the judging art of four cultures, judging photos and generated artifacts; no "
        "training loss or discriminator looks through Lite1) assigns "
        f"**{meta['judge_hit_rate']:.0%}** of the outputs to `{target}` (mean probability "
        f"{meta['mean_target_prob']:.2f}; its verdicts: {meta['judge_verdicts']}). Grey-level "
        f"SSIM to the input photo {meta['ssim_grey']:.2f}; kd_lite0 to the judging art "
        f"{meta['kd_lite0']:.3f} (unstylized photos: {meta['kd_lite0_photos']:.3f})."
        + (
            f" Lattice fixed to the generator's pixel grid (grid_peak, about 1-2 for photos and "
            f"paintings): {meta['grid_peak']:.1f}."
            if "grid_peak" in meta
            else ""
        ),
        "",
        f"Candidate `{meta['candidate']}`, chosen by {meta['chosen_by']}.",
        "",
        *(
            [
                f"Recommended finish: `--finish {meta['finish']}` (not learned; "
                "docs/applications.md, section 0): the demo shows the model with and without it.",
                "",
            ]
            if meta.get("finish")
            else []
        ),  # fmt: skip
        *(
            [
                f"Recommended passes: `--shifts {meta['shifts']}` (the model run on the photo "
                "moved within its pixel grid, averaged: its lattice cancels; as many times the "
                "time; docs/quality.md, session 29).",
                "",
            ]
            if meta.get("shifts", 1) > 1
            else []
        ),  # fmt: skip
        "## Known limits",
        "",
        limits,
        "",
    ]
    return "\n".join(lines)


LIMITS = (
    "Trained for minutes on a CPU from a few hundred (Cezanne: 41) artworks. It moves a photo's "
    "palette, tone and texture toward the culture; it does not redraw the scene the way an "
    "artist of the tradition would (no figures, cartouches or composition), and it does not "
    "reach the quality targets of issue #9 (see docs/quality.md for the figures and pictures). "
    "Art of a culture is not one style: the model imitates the average of its training "
    "collection. Use it to explore, not as a statement about the tradition."
)


MIN_SSIM = 0.30  # "best": the photo must stay readable (the content floor)


def pick(block: dict[str, Any], candidate: str) -> dict[str, Any]:
    """The row of ``candidate``, or for "best" the candidate with the highest judge hit rate
    among those keeping grey-level SSIM >= MIN_SSIM (ties: higher mean target probability)."""
    rows = [r for r in block["rows"] if not r["reference"]]
    if candidate != "best":
        named = [r for r in rows if r["candidate"] == candidate]
        if not named:
            known = ", ".join(r["candidate"] for r in rows)
            raise SystemExit(f"no candidate '{candidate}' for {block['target']} (known: {known})")
        return named[0]
    kept = [r for r in rows if r["ssim_grey"] >= MIN_SSIM]
    if not kept:
        raise SystemExit(f"no candidate keeps SSIM >= {MIN_SSIM} for {block['target']}")
    return max(kept, key=lambda r: (r["hit_rate"], r["mean_target_prob"]))


def ship(
    results: dict[str, Any],
    candidate: str,
    out: Path,
    data: Path,
    why: str = "",
    finish: str | None = None,  # the finish the card recommends (culturegan.finish)
    shifts: int = 1,  # the passes the card recommends (Stylizer shifts)
) -> list[Path]:
    check_finish(finish)
    shift_offsets(shifts, 8)  # one of SHIFT_PASSES, or a clear error
    staged: list[tuple[Path, Path]] = []
    try:
        return _ship(results, candidate, out, data, why, finish, shifts, staged)
    finally:  # a refusal (a broken model, the size limit) leaves no hidden folder in the zoo
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)


def _ship(
    results: dict[str, Any],
    candidate: str,
    out: Path,
    data: Path,
    why: str,
    finish: str | None,
    shifts: int,
    staged: list[tuple[Path, Path]],  # (hidden folder, its final name), filled as they are made
) -> list[Path]:
    written: list[Path] = []
    machine = results["machine"]
    for direction, block in results["directions"].items():
        target = block["target"]
        row = pick(block, candidate)
        model = results["models"][direction][row["candidate"]]
        floor = next(r for r in block["rows"] if r["reference"] and "unchanged" in r["candidate"])
        src = Path(model["model"])
        Stylizer.from_pretrained(src)  # loads, or raises naming the folder
        folder = out / target
        tmp = out / f".{target}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)  # hidden until every model is staged and the size checked
        staged.append((tmp, folder))
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            shutil.copyfile(src / name, tmp / name)
            (tmp / name).chmod(0o644)  # package data: readable by everyone
        cfg = model["config"]
        size = sum((tmp / n).stat().st_size for n in (CONFIG_NAME, WEIGHTS_NAME))
        counts = {d: len(results["split"]["files"][d]["train"]) for d in model["domains"]}
        meta = {
            "name": target,
            "target": target,
            "domains": model["domains"],
            "library_name": "culturegan",
            "tags": ["culturegan", "style-transfer", "gan", target],
            "recipe": cfg["train"]["recipe"],
            "candidate": row["candidate"],
            "chosen_by": (
                f"the highest judge hit rate among {len(block['rows']) - 2} candidates with "
                "SSIM >= 0.30, on the same test photos (so its figures are the best of several: "
                "optimistic)"
            )
            if candidate == "best"
            else f"name on the command line ({why})"
            if why
            else "name on the command line",
            "preset": model["preset"],
            "overrides": model["overrides"],
            "generator": cfg["model"]["generator"],
            "crop_size": cfg["data"]["crop_size"],
            "batch_size": model["batch_size"],
            "seed": model["seed"],
            "steps": model["steps"],
            "train_minutes": model["minutes"],
            "machine": f"{machine['cpu']}, {results['threads']} threads, fp32 matmul peak "
            f"{machine['matmul_peak_gflops']:.0f} GFLOP/s",
            "command": results["command"],
            "training_images": ", ".join(f"{d} {n}" for d, n in counts.items()),
            "test_photos": block["num_test_photos"],
            "judge": results["judge"]["summary"],
            "judge_hit_rate": round(row["hit_rate"], 4),
            "mean_target_prob": round(row["mean_target_prob"], 4),
            "judge_verdicts": row["verdicts"],
            "ssim_grey": round(row["ssim_grey"], 4),
            "kd_lite0": round(row["kd_lite0"], 5),
            "kd_lite0_photos": round(floor["kd_lite0"], 5),
            "size_mb": round(size / 1e6, 3),
        }
        if row.get("grid_peak") is not None:  # results from session 29 on
            meta["grid_peak"] = round(row["grid_peak"], 1)
        if finish:
            meta["finish"] = finish
        if shifts > 1:
            meta["shifts"] = shifts
        text = card_text(meta, licence_notes(data, model["domains"]), LIMITS)
        (tmp / CARD_NAME).write_text(text, encoding="utf-8")
        read_card(tmp / CARD_NAME)  # parsable, or raise before anything is replaced
        print(f"[ship] {target}: {row['candidate']}, {size / 1e6:.2f} MB, hit "
              f"{row['hit_rate']:.2f}, SSIM {row['ssim_grey']:.2f}", flush=True)  # fmt: skip
    # The whole zoo after the change (models of other cultures stay) must fit the limit.
    replaced = {folder.name for _, folder in staged}
    kept = [f for f in out.iterdir() if f.is_dir() and not f.name.startswith(".")
            and f.name not in replaced]  # fmt: skip
    total = sum(p.stat().st_size for f in [t for t, _ in staged] + kept for p in f.iterdir())
    if total > LIMIT_BYTES:
        raise SystemExit(
            f"the zoo would take {total / 1e6:.1f} MB, over the {LIMIT_BYTES / 1e6:g} MB limit"
        )
    for tmp, folder in staged:
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        written.append(folder)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="quality_cultures.py results JSON")
    parser.add_argument(
        "--candidate", default="best", help="the candidate whose models ship (default: per "
        "culture, the best judge hit rate with SSIM >= 0.30)"
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ZOO_DIR, help="zoo folder (default: package)")
    parser.add_argument("--data", type=Path, help="cultures-dev (default: the results' data)")
    parser.add_argument("--why", default="", help="why this candidate (goes into the cards)")
    parser.add_argument("--finish", help="the finish the cards recommend (e.g. print)")
    parser.add_argument("--shifts", type=int, default=1, help="the passes the cards recommend")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    data = args.data or Path(results["split"]["data"])
    ship(results, args.candidate, args.out, data, args.why, args.finish, args.shifts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
