"""Old-photo restoration: a pix2pix model against the classical baseline, on held-out photos.

Data: the real photos of cultures-dev (research use only; never copied into the repository).
Each photo goes to training (80%) or test (20%) by a stable hash of its file name
(``culturegan.data.splits.hash_split``); the training part is linked (symlinks) into
``--work/data/photo`` and the test photos are never seen in training. Three seed streams of
``culturegan.data.degrade.derive_seed`` keep the degradations apart: 0 makes the training pairs
(keyed by run seed, step, index), 3 the pairs on which the classical baseline's settings are
chosen (training photos), 2 the held-out test degradations (keyed by benchmark seed, photo
index); the script checks that no test seed occurs among the training seeds.

1. **Classical baseline** (``culturegan.restore.classical_restore``: scratch and dust
   inpainting, non-local means, auto-levels): its three settings are chosen by grid search on
   ``--tune-photos`` degraded *training* photos (best mean PSNR), then fixed.
2. **Model**: preset ``pix2pix_restore`` trained for ``--minutes`` of wall-clock time at a
   constant learning rate (``train.max_minutes``), or for ``--steps`` steps with the preset's
   schedule (linear decay over the second half): a budget that does not depend on what else
   runs on the machine. The EMA generator is exported.
3. **Scores** on every test photo at its native size (shorter side 256 px), degraded with its
   held-out seed: PSNR (RGB, 8 bit) and SSIM (RGB, Gaussian window) to the clean photo, for the
   degraded input, the classical baseline and the model; means over photos, and means over the
   photos where each degradation stage was drawn. The JSON keeps every photo's degradation
   record.

The command behind docs/applications.md (the grid goes to docs/applications/restore-grid.jpg)::

    flock /tmp/culturegan-cpu.lock env OMP_NUM_THREADS=1 python benchmarks/restore.py \\
        --steps 1600 --work runs/restore_bench --out benchmarks/results/restore.json \\
        --grid docs/applications/restore-grid.jpg

A check that the script works (a minute)::

    OMP_NUM_THREADS=1 python benchmarks/restore.py --minutes 0.1 --test-photos 4 \\
        --tune-photos 2 --work /tmp/rb --out /tmp/rb.json --grid /tmp/rb.jpg
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from culturegan.config import load_config
from culturegan.data.degrade import STAGES, degrade, derive_seed
from culturegan.data.images import load_image, pil_to_tensor, scan_images
from culturegan.data.splits import hash_split
from culturegan.fileio import atomic_write, write_json
from culturegan.grid import column_grid
from culturegan.inference import Stylizer
from culturegan.metrics.content import ssim
from culturegan.restore import RESTORED, classical_restore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_cultures import link_training_root  # noqa: E402  (one folder of links per domain)

from culturegan.training import train
from culturegan.training.pix2pix import PAIR_STREAM

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(
    os.environ.get("CULTURES_DEV", REPO.parent / "shared" / "datasets" / "cultures-dev")
)
PHOTO = "photo"
SPLIT_SEED = 0
SPLIT = {"train": 0.8, "test": 0.2}
TEST_STREAM, TUNE_STREAM = 2, 3  # derive_seed streams (0, 1: training pairs, sample grids)
CLASSICAL_GRID = {"defect_k": [4.0, 6.0, 10.0], "denoise": [0.0, 0.7, 1.5], "clip": [0.0, 0.5, 2.0]}
CELL = 192  # grid cell side in pixels
METHODS = ("degraded", "classical", "model")


def split_photos(root: Path) -> dict[str, list[Path]]:
    scan = scan_images(root / PHOTO, check="header")
    if scan.skipped:
        print(scan.report(), file=sys.stderr)
    parts: dict[str, list[Path]] = {"train": [], "test": []}
    for path in scan.files:
        slot = hash_split(SPLIT_SEED, PHOTO, path.name, [SPLIT["train"], 0.0, SPLIT["test"]])
        parts["train" if slot == "train" else "test"].append(path)
    return parts


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (RGB, peak 255)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    ta = pil_to_tensor(Image.fromarray(a)).unsqueeze(0)
    tb = pil_to_tensor(Image.fromarray(b)).unsqueeze(0)
    return float(ssim(ta, tb)[0])


def tune_classical(photos: list[Path], seed: int, cache: Path) -> dict[str, Any]:
    """The classical settings with the best mean PSNR on degraded training photos (reused from
    ``cache`` when it was made from the same photos, seed and grid)."""
    key = {"photos": [p.name for p in photos], "seed": seed, "grid": CLASSICAL_GRID}
    if cache.is_file():
        done = json.loads(cache.read_text())
        if done.get("key") == key:
            print(f"[tune] reusing {cache}", flush=True)
            return done["result"]
    pairs = []
    for i, path in enumerate(photos):
        clean = np.asarray(load_image(path))
        pairs.append((clean, degrade(clean, derive_seed(TUNE_STREAM, seed, i))[0]))
    rows = []
    for values in itertools.product(*CLASSICAL_GRID.values()):
        settings = dict(zip(CLASSICAL_GRID, values, strict=True))
        score = np.mean([psnr(c, classical_restore(d, **settings)) for c, d in pairs])
        rows.append({**settings, "psnr": float(score)})
        print(f"[tune] {settings}: {score:.2f} dB", flush=True)
    best = max(rows, key=lambda r: r["psnr"])
    result = {
        "photos": len(pairs),
        "grid": CLASSICAL_GRID,
        "rows": rows,
        "best": {k: best[k] for k in CLASSICAL_GRID},
        "best_psnr": best["psnr"],
    }
    write_json(cache, {"key": key, "result": result})
    return result


def train_model(args: argparse.Namespace, data_root: Path) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "data.root": str(data_root),
        "data.domains": [PHOTO],
        "data.split_ratios": [1.0, 0.0, 0.0],  # the folder holds only training photos
        "train.seed": args.seed,
        "train.runs_dir": str(args.work / "runs"),
        "train.sample_every": 10**9,
        "train.checkpoint_every": 10**9,
    }
    if args.steps:  # a step budget: the preset's learning-rate schedule runs to its end
        overrides["train.steps"] = args.steps
        budget = f"{args.steps} steps"
    else:  # a time budget: constant lr, the clock ends the run
        overrides |= {"optim.decay_steps": 0, "train.steps": 10**9,
                      "train.max_minutes": args.minutes}  # fmt: skip
        budget = f"{args.minutes:g} min"
    cfg = load_config(args.preset, overrides)
    print(f"[train] {args.preset} for {budget}", flush=True)
    t0 = time.perf_counter()
    result = train(cfg, progress=False)
    if not result.finished:
        raise RuntimeError(f"training stopped early ({result.run_dir}); run again")
    return {
        "preset": args.preset,
        "overrides": {k: v for k, v in overrides.items() if not k.startswith("data.root")},
        "model": str(result.run_dir / "model"),
        "steps": result.step,
        "batch_size": cfg.train.batch_size,
        "crop_size": cfg.data.crop_size,
        "seconds": time.perf_counter() - t0,
        "config": cfg.to_dict(),
    }


def training_seeds(seed: int, steps: int, batch: int) -> set[int]:
    return {derive_seed(PAIR_STREAM, seed, s, j) for s in range(steps) for j in range(batch)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in METHODS:
        p = np.array([r[method]["psnr"] for r in rows])
        s = np.array([r[method]["ssim"] for r in rows])
        out[method] = {"psnr": float(p.mean()), "psnr_std": float(p.std()),
                       "ssim": float(s.mean()), "ssim_std": float(s.std())}  # fmt: skip
    gain = np.array([r["model"]["psnr"] - r["classical"]["psnr"] for r in rows])
    out["model_minus_classical_psnr"] = float(gain.mean())
    out["model_better_share"] = float((gain > 0).mean())
    out["by_stage"] = {}
    for stage in STAGES:
        hit = [r for r in rows if r["record"].get(stage)]
        if hit:
            out["by_stage"][stage] = {
                "photos": len(hit),
                **{m: float(np.mean([r[m]["psnr"] for r in hit])) for m in METHODS},
            }
    return out


def picture_grid(columns: dict[str, list[Image.Image]], rows: int) -> Image.Image:
    """Rows of photos; columns clean / degraded / classical / model, labelled."""
    return column_grid([(label, images[:rows]) for label, images in columns.items()], cell=CELL)


def machine_facts(threads: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speed import cpu_info, matmul_peak  # one helper for the machine, shared

    return {**cpu_info(), "matmul_peak_gflops": matmul_peak(threads, 1024, 5)}


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[Image.Image]]]:
    t_start = time.perf_counter()
    parts = split_photos(args.data)
    test = parts["test"][: args.test_photos or None]
    data_root = link_training_root({PHOTO: {"train": parts["train"]}}, args.work / "data")
    tuning = tune_classical(
        parts["train"][: args.tune_photos], args.seed, args.work / "classical_tuning.json"
    )
    settings = tuning["best"]
    print(f"[tune] chosen {settings} ({tuning['best_psnr']:.2f} dB)", flush=True)
    model = train_model(args, data_root)
    test_seeds = [derive_seed(TEST_STREAM, args.seed, i) for i in range(len(test))]
    seen = training_seeds(args.seed, model["steps"], model["batch_size"])
    if seen & set(test_seeds):
        raise RuntimeError("a held-out degradation seed was used in training")
    stylizer = Stylizer.from_pretrained(model["model"])
    rows = []
    pictures: dict[str, list[Image.Image]] = {"clean": [], **{m: [] for m in METHODS}}
    seconds = {"classical": 0.0, "model": 0.0}
    for path, seed in zip(test, test_seeds, strict=True):
        clean = np.asarray(load_image(path))
        old, record = degrade(clean, seed)
        t0 = time.perf_counter()
        classical = classical_restore(old, **settings)
        t1 = time.perf_counter()
        restored = np.asarray(stylizer(Image.fromarray(old), target=RESTORED).images[0])
        t2 = time.perf_counter()
        seconds["classical"] += t1 - t0
        seconds["model"] += t2 - t1
        row: dict[str, Any] = {"photo": path.name, "size": list(clean.shape[1::-1])}
        for method, image in zip(METHODS, (old, classical, restored), strict=True):
            row[method] = {"psnr": psnr(image, clean), "ssim": ssim_rgb(image, clean)}
        row["record"] = record
        rows.append(row)
        if len(pictures["clean"]) < args.grid_photos:
            for name, image in zip(("clean", *METHODS), (clean, old, classical, restored),
                                   strict=True):  # fmt: skip
                pictures[name].append(Image.fromarray(image))
        scores = (f"{m} {row[m]['psnr']:.2f} dB / {row[m]['ssim']:.3f}" for m in METHODS)
        print(f"[test] {path.name}: " + ", ".join(scores), flush=True)
    summary = summarise(rows)
    results = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine_facts(torch.get_num_threads()),
        "threads": torch.get_num_threads(),
        "data": {
            "root": str(args.data),
            "split": f"hash_split(seed {SPLIT_SEED}, '{PHOTO}', file name, {SPLIT})",
            "train_photos": len(parts["train"]),
            "test_photos": len(test),
        },
        "seeds": {
            "benchmark": args.seed,
            "streams": {
                "training pairs": PAIR_STREAM,
                "test": TEST_STREAM,
                "classical tuning": TUNE_STREAM,
            },
            "training_seeds_checked": len(seen),
        },
        "classical": {
            "settings": settings,
            "tuning": tuning,
            "seconds_per_image": seconds["classical"] / len(rows),
        },
        "model": {**model, "seconds_per_image": seconds["model"] / len(rows)},
        "summary": summary,
        "goal": {
            "model_minus_classical_psnr_db": 2.0,
            "met": summary["model_minus_classical_psnr"] >= 2.0,
        },
        "photos": rows,
        "seconds_total": time.perf_counter() - t_start,
    }
    return results, pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget")
    parser.add_argument(
        "--steps", type=int, default=0, help="a step budget instead of --minutes (0: minutes)"
    )
    parser.add_argument("--preset", default="pix2pix_restore", help="training preset")
    parser.add_argument("--seed", type=int, default=0, help="training and test seed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="cultures-dev folder")
    parser.add_argument("--work", type=Path, required=True, help="runs and training links")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/restore.json"))
    parser.add_argument("--grid", type=Path, help="JPEG picture grid to write")
    parser.add_argument("--grid-photos", type=int, default=4, help="rows of the grid")
    parser.add_argument("--test-photos", type=int, default=0, help="test photos (0 = all)")
    parser.add_argument("--tune-photos", type=int, default=24, help="photos to tune classical")
    args = parser.parse_args(argv)
    if not (args.data / PHOTO).is_dir():
        parser.error(f"--data '{args.data}' has no {PHOTO}/ folder (set --data or $CULTURES_DEV)")
    for name in ("out", "grid", "work"):
        path = getattr(args, name)
        if path is not None and path.resolve().is_relative_to(args.data.resolve()):
            parser.error(f"--{name} must not be inside the dataset folder")
    args.work = args.work.resolve()
    results, pictures = run(args)
    if args.grid:
        grid = picture_grid(pictures, len(pictures["clean"]))
        atomic_write(args.grid, lambda tmp: grid.save(tmp, format="JPEG", quality=85))
        results["grid"] = str(args.grid)
        print(f"[grid] {args.grid} ({args.grid.stat().st_size / 1e3:.0f} KB)", flush=True)
    write_json(args.out, results)
    print(json.dumps({k: results[k] for k in ("summary", "goal")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
