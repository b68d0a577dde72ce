"""Quality at equal budget: the reference CycleGAN against the CPU-practical one.

Both train on the same data (photos and the synthetic ``woodblock`` culture of the demo, at
``--size`` px) for the same wall-clock budget on this machine (``train.max_minutes``), then the
exported EMA generators are measured on the held-out test photos with the metrics of
``culturegan.metrics``: ``kd_lite0`` / ``fd_lite0`` to the real woodblock test images (lower is
better), the style accuracy of a lite0 classifier trained on the same data (higher is better)
and SSIM to the input photo (content preservation, higher is better).

The command that fills the "Quality at equal budget" section of docs/benchmarks.md::

    python benchmarks/quality_budget.py --minutes 8 --out benchmarks/results/quality.json \\
        --docs docs/benchmarks.md

A check that the script works (about a minute)::

    python benchmarks/quality_budget.py --minutes 0.1 --size 32 --out /tmp/quality.json
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from culturegan.config import load_config
from culturegan.data.splits import load_splits
from culturegan.data.synthetic import build_demo_dataset
from culturegan.inference import Stylizer
from culturegan.metrics import evaluate_model
from culturegan.metrics.classifier import train_classifier
from culturegan.training import train

STYLE = "woodblock"
MODELS = {  # label -> (preset, overrides)
    "reference (resnet_9blocks ngf 64)": (
        "cyclegan",
        {"model.generator": "resnet_9blocks", "model.ngf": 64, "model.ndf": 64},
    ),
    "fast (mobile_resnet_6blocks ngf 32)": ("cyclegan_mobile", {}),
}
MARK_BEGIN = "<!-- quality:begin -->"
MARK_END = "<!-- quality:end -->"


def run(minutes: float, size: int, work: Path, threads: int) -> dict:
    torch.set_num_threads(threads)
    data = work / "data"
    build_demo_dataset(data, size=size, styles=(STYLE,), photos=96, art_per_style=96, seed=0)
    t0 = time.perf_counter()
    classifier = work / "classifier"
    report = train_classifier(data, classifier, epochs=30, progress=False)
    splits = load_splits(data)
    rows = []
    for label, (preset, overrides) in MODELS.items():
        cfg = load_config(
            preset,
            {
                **overrides,
                "data.root": str(data),
                "data.domains": ["photo", STYLE],
                "data.load_size": size + size // 8,
                "data.crop_size": size,
                "optim.decay_steps": 0,  # constant lr: the budget, not a schedule, ends the run
                "train.steps": 10**9,
                "train.max_minutes": minutes,
                "train.batch_size": 1,
                "train.runs_dir": str(work / "runs"),
                "train.log_every": 25,
                "train.sample_every": 10**9,
                "train.checkpoint_every": 10**9,
            },
        )
        result = train(cfg, progress=False)
        stylizer = Stylizer.from_pretrained(result.run_dir / "model")
        evaluation = evaluate_model(
            stylizer,
            splits,
            split="test",
            backbones=("lite0",),
            max_images=None,
            classifier=classifier,
        )
        metrics = evaluation["pairs"][f"photo->{STYLE}"]["metrics"]
        rows.append(
            {
                "model": label,
                "generator": cfg.model.generator,
                "steps": result.step,
                "seconds_per_step": 60 * minutes / max(result.step, 1),
                **{k: metrics.get(k) for k in ("kd_lite0", "fd_lite0", "style_acc", "ssim")},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "minutes_per_model": minutes,
        "image_size": size,
        "threads": threads,
        "classifier_heldout_accuracy": report.accuracy,
        "seconds_total": time.perf_counter() - t0,
        "rows": rows,
    }


def markdown(results: dict) -> str:
    lines = [
        f"`{results['command']}`: {results['minutes_per_model']} minutes of training per model "
        f"on this machine ({results['threads']} threads), {results['image_size']} px, photo -> "
        f"{STYLE} (synthetic), measured on the held-out test photos. Style classifier held-out "
        f"accuracy {results['classifier_heldout_accuracy']:.2f}.",
        "",
        "| model | steps in budget | s / step | kd_lite0 (lower) | fd_lite0 (lower) "
        "| style_acc (higher) | SSIM to input (higher) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:

        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)

        lines.append(
            f"| {r['model']} | {r['steps']} | {r['seconds_per_step']:.3f} | "
            f"{fmt(r['kd_lite0'], '.3f')} | {fmt(r['fd_lite0'], '.1f')} | "
            f"{fmt(r['style_acc'], '.2f')} | {fmt(r['ssim'], '.3f')} |"
        )
    return "\n".join(lines)


def update_docs(path: Path, text: str) -> None:
    doc = path.read_text() if path.exists() else ""
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    if MARK_BEGIN in doc:
        doc = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), block, doc, flags=re.S)
    else:
        doc += f"\n## Quality at equal budget\n\n{block}\n"
    path.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per model")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/quality.json")
    parser.add_argument("--docs", help="markdown file to update (docs/benchmarks.md)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="culturegan-quality-") as tmp:
        results = run(args.minutes, args.size, Path(tmp), args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    if args.docs:
        update_docs(Path(args.docs), markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
