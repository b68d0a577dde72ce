"""How steady is one culture of ``culturegan demo`` across training seeds? (not a test)

The demo trains one small model per synthetic culture and its page shows the share of 32
held-out photos that its own judge assigns to each culture; the target is 0.8. One run is one
seed on one machine's float rounding, and woodblock, the fragile culture, has read 0.31-0.94
across seeds (docs/quality.md, sessions 23-24, 29). This script trains one culture as the demo
does (``demo.demo_job_config``: the preset, the culture's settings and steps; two runs side by
side in one-thread processes on 2 cores, as in the demo), at several seeds and for one or more
settings in the same run, and scores every model with the demo's judge on the demo's held-out
photos:

    python benchmarks/demo_seeds.py --culture woodblock --seeds 0-7 \\
        --setting demo= --setting 'palette12=model.palette=12' --out /tmp/seeds.json

A setting is ``LABEL=KEY=VALUE[,KEY=VALUE...]`` on top of the demo's own config (``demo=`` is
the demo unchanged; ``train.steps`` may be one of the keys). It prints per setting the hit rate
at each seed, their mean and lowest, the mean target probability, and the mean grey-level SSIM
to the photo (how much of the photo is kept). The seeds are ``train.seed``; the data and the
judge are the demo's (dataset seed 0), fitted once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from culturegan.apply import stylize_paths
from culturegan.data.images import load_image, pil_to_tensor, scan_images
from culturegan.data.synthetic import ART_STYLES, build_demo_dataset
from culturegan.demo import (
    CULTURE_STEPS,
    DEMO_HELDOUT,
    DEMO_STEPS,
    demo_job_config,
    fit_demo_judge,
)
from culturegan.metrics.content import ssim
from culturegan.metrics.judge import judge_scores
from culturegan.training.side_by_side import train_many

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import cpu_info, matmul_peak  # noqa: E402

OWN_KEYS = ("train.seed", "train.runs_dir", "train.name")  # the script sets these per run


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(s for s in range(int(lo), int(hi or lo) + 1) if s not in seeds)
    return seeds


def parse_setting(text: str) -> tuple[str, dict[str, object]]:
    label, sep, rest = text.partition("=")
    if not sep or not label:
        raise SystemExit(f"--setting '{text}': expected LABEL=KEY=VALUE[,KEY=VALUE...] or LABEL=")
    extra: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--setting '{text}': '{item}' is not KEY=VALUE")
        if key in OWN_KEYS:
            raise SystemExit(f"--setting '{text}': {key} is set by the script (--seeds)")
        extra[key] = yaml.safe_load(value)
    return label, extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--culture", default="woodblock", choices=ART_STYLES)
    ap.add_argument("--seeds", default="0-7", help="train.seed values: 0-7 or 0,2,5")
    ap.add_argument("--setting", action="append", default=[], help="LABEL=KEY=VALUE,...")
    ap.add_argument("--work", type=Path, default=Path("/tmp/culturegan-demo-seeds"))
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("--cores", type=int, default=2, help="runs side by side (one thread each)")
    args = ap.parse_args(argv)
    settings = [parse_setting(s) for s in args.setting or ["demo="]]
    labels = [label for label, _ in settings]
    if len(set(labels)) < len(labels):
        raise SystemExit(f"--setting labels must differ: {', '.join(labels)}")
    seeds = parse_seeds(args.seeds)
    size = 64
    data_root = args.work / "data"
    built = data_root / ".complete"  # written last: a half-built dataset is built again
    if not built.is_file():
        shutil.rmtree(data_root, ignore_errors=True)
        build_demo_dataset(
            data_root, size=size, styles=ART_STYLES, seed=0, heldout_photos=DEMO_HELDOUT
        )
        built.write_text("the demo's dataset (seed 0), complete\n")
    photos = scan_images(data_root / "_heldout_photos", check="none").files
    inputs = torch.stack([pil_to_tensor(load_image(p)) for p in photos])
    t0 = time.perf_counter()
    judge = fit_demo_judge(list(ART_STYLES), size=size)
    print(f"judge: {judge.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)
    machine = {  # measured once, before the runs
        "culture": args.culture,
        "seeds": seeds,
        "heldout_photos": len(photos),
        "torch": torch.__version__,
        "matmul_peak_gflops": matmul_peak(torch.get_num_threads(), 1024, 10),
        "cpu": cpu_info(),
    }
    demo_steps = CULTURE_STEPS["fewshot"].get(args.culture, DEMO_STEPS["fewshot"])
    rows: list[dict] = []
    for label, extra in settings:
        extra = dict(extra)
        steps = int(extra.pop("train.steps", demo_steps))  # sets the demo's cadence too
        cfgs = {}
        for seed in seeds:
            runs_dir = args.work / "runs" / label / f"seed{seed}"
            shutil.rmtree(runs_dir, ignore_errors=True)
            cfgs[f"seed{seed}"] = demo_job_config(
                "fewshot",
                args.culture,
                ["photo", args.culture],
                data_root,
                runs_dir,
                size,
                steps,
                extra={"train.seed": seed, **extra},
            )
        t0 = time.perf_counter()
        results = train_many(cfgs, cores=args.cores, progress=False)
        seconds = time.perf_counter() - t0
        stopped = [name for name in cfgs if name not in results or not results[name].finished]
        if stopped:  # interrupted: the settings done so far are in --out
            print(f"{label}: stopped before the end ({', '.join(stopped)})", file=sys.stderr)
            return 130
        per_seed = []
        for name, result in results.items():
            out_dir = args.work / "stylized" / label / name
            shutil.rmtree(out_dir, ignore_errors=True)
            summary = stylize_paths(
                [data_root / "_heldout_photos"],
                model_dir=result.run_dir / "model",
                out_dir=out_dir,
                source="photo",
                target=args.culture,
                progress=False,
            )
            by_stem = {p.stem: p for p in summary.written}
            outputs = torch.stack([pil_to_tensor(load_image(by_stem[p.stem])) for p in photos])
            scores = judge_scores(judge, outputs, args.culture)  # the files, read once
            grey_ssim = float(ssim(inputs, outputs, grey=True).mean())
            per_seed.append(
                {
                    "seed": int(name.removeprefix("seed")),
                    "hit_rate": scores["hit_rate"],
                    "mean_p": scores["mean_target_prob"],
                    "ssim": grey_ssim,
                    "model": str(result.run_dir / "model"),
                }
            )
        hits = np.array([r["hit_rate"] for r in per_seed])
        row = {
            "setting": label,
            "overrides": extra,
            "steps": steps,
            "train_seconds": seconds,
            "seeds": per_seed,
            "mean_hit_rate": float(hits.mean()),
            "min_hit_rate": float(hits.min()),
            "seeds_at_0.8": int((hits >= 0.8 - 1e-9).sum()),
            "mean_p": float(np.mean([r["mean_p"] for r in per_seed])),
            "mean_ssim": float(np.mean([r["ssim"] for r in per_seed])),
        }
        rows.append(row)
        print(
            f"{label}: hit rate "
            + " / ".join(f"{r['hit_rate']:.2f}" for r in per_seed)
            + f" (seeds {args.seeds}); mean {row['mean_hit_rate']:.2f}, lowest"
            f" {row['min_hit_rate']:.2f}, {row['seeds_at_0.8']}/{len(per_seed)} at 0.8;"
            f" mean p {row['mean_p']:.2f}; SSIM {row['mean_ssim']:.3f};"
            f" training {seconds:.0f} s",
            flush=True,
        )
        if args.out:  # after every setting, so an interruption keeps what is done
            write_figures(args.out, {**machine, "rows": rows})
    return 0


def write_figures(out: Path, figures: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(figures, indent=1))
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
