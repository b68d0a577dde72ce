"""One training configuration for a fixed number of steps, scored like quality_cultures.py.

For quick research on one direction: same split, same judge and same scores (judge hit rate,
mean target probability, verdicts, grey SSIM, kd_lite0 on the 64 test photos) as
``quality_cultures.py``, whose ``--work`` folder it reuses (run that once first); steps instead
of minutes, so that other work on the machine changes the time, not the result. Appends one
JSON line per run to ``WORK/steps.jsonl`` and writes a picture strip of the first test photos.

    python benchmarks/quality_steps.py A_stats --target ukiyoe --steps 600 \\
        --set loss.lambda_gan=0 loss.lambda_content=1 loss.lambda_style_stats=1

A multi-domain preset trains one model on the photos and every ``--target`` (comma-separated)
and scores each direction (one JSON line per target):

    python benchmarks/quality_steps.py M1 --preset multidomain_structure \\
        --target ukiyoe,chinese_ink,impressionism_monet --steps 1000

``--score-at 400,800`` also scores the run where it stands at those steps (one line each, then
the final one): the run stops there with a checkpoint, its EMA generator is exported and judged,
and it resumes. Resume is exact, so each line is what a run of that many steps would give.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_cultures as qc  # noqa: E402

from culturegan.config import load_config  # noqa: E402
from culturegan.data.images import load_image, pil_to_tensor  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.metrics.judge import Judge  # noqa: E402
from culturegan.training import export_run, train  # noqa: E402


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="label of this run")
    parser.add_argument("--preset", default="fewshot_cpu")
    parser.add_argument("--target", default="ukiyoe", help="culture(s), comma-separated")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qc_main"))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--score-at", default="", help="earlier steps to score too, e.g. 400,800")
    args = parser.parse_args(argv)
    stops = sorted({int(s) for s in args.score_at.split(",") if s})
    if any(s <= 0 or s >= args.steps for s in stops):
        parser.error(f"--score-at {args.score_at}: each step must lie between 0 and --steps")
    judge_dir = args.work / "judge"
    if not (judge_dir / "config.json").is_file():
        raise SystemExit(f"no judge in '{judge_dir}': run quality_cultures.py --work first")
    targets = args.target.split(",")
    unknown = [t for t in targets if t not in qc.CULTURES]
    if unknown:
        parser.error(f"unknown culture(s) {unknown}; choose from {', '.join(qc.CULTURES)}")
    overrides = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    split = qc.split_dataset(qc.DEFAULT_DATA, qc.SPLIT_SEED)
    data_root = qc.link_training_root(split, args.work / "data")
    out = args.work / "steps" / "+".join(targets) / args.name
    cfg = load_config(
        args.preset,
        {
            "data.root": str(data_root),
            "data.domains": [qc.PHOTO, *targets],
            "data.split_ratios": [1.0, 0.0, 0.0],
            "data.load_size": args.size + args.size // 8,
            "data.crop_size": args.size,
            "optim.decay_steps": 0,
            "train.steps": args.steps,
            "train.runs_dir": str(out / "runs"),
            "train.log_every": 50,
            "train.sample_every": 10**9,
            "train.checkpoint_every": 10**9,
            "train.eval_every": 0,
            **overrides,
        },
    )
    photos = split[qc.PHOTO]["test"]
    pils = [load_image(p) for p in photos]
    inputs = [pil_to_tensor(p) for p in pils]
    judge = Judge.load(judge_dir)

    def score(name: str, stylizer: Stylizer, steps: int, per_step: float) -> dict:
        """Judge one generator on the test photos for every target: a JSON line each, printed and
        appended to WORK/steps.jsonl; returns the picture strip's columns."""
        strip = {"input": pils[:6]}
        for target in targets:
            images = stylizer(pils, source=qc.PHOTO, target=target).images  # multi-domain: seed 0
            row = qc.score_images(
                judge,
                [pil_to_tensor(i) for i in images],
                target,
                split[target]["judge"],
                inputs,
                args.work / "stats",
            )
            row = {"name": name, "target": target, "preset": args.preset, "set": overrides,
                   "steps": steps, "seconds_per_step": per_step, **row}  # fmt: skip
            print(json.dumps(row), flush=True)
            with (args.work / "steps.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            strip[target] = images[:6]
        return strip

    seconds, run_dir = 0.0, None
    for stop in [*stops, args.steps]:
        t0 = time.perf_counter()
        if run_dir is None:
            result = train(cfg, until_step=stop, progress=False)
        else:
            result = train(resume_dir=run_dir, until_step=stop, progress=False)
        seconds += time.perf_counter() - t0
        run_dir = result.run_dir
        model = run_dir / "model"
        if stop < args.steps:
            model = export_run(run_dir, out / f"model_{stop}")
        name = args.name if stop == args.steps else f"{args.name}@{stop}"
        per_step = seconds / max(result.step, 1)
        strip = score(name, Stylizer.from_pretrained(model), result.step, per_step)
        strip_name = "strip.png" if stop == args.steps else f"strip_{stop}.png"
        qc.picture_grid(strip, 6).save(out / strip_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
