"""Huge images in bounded memory: peak RSS, time and seams of tiled stylization.

Each size runs in a fresh process (so peak RSS belongs to that run alone) on a photo from
scikit-image scaled to N x N with added grain, through a shipped model:

- peak RSS of the process while stylizing (the kernel's high-water mark, reset through
  ``/proc/self/clear_refs`` once the test photo is made), and the *working* memory: peak minus
  what the process held before stylizing (Python, torch, the model, the input image) minus
  the 8-bit output image. The
  input and output images themselves grow with the picture (3 bytes per pixel each); what the
  tiling bounds is the rest.
- the seam score (:func:`culturegan.tiling.seam_score`: gradient on the tile grid's lines over
  the gradient elsewhere) of the tiled output, and of the untiled output on the same lines
  where an untiled pass fits (it is ~1.0 by construction: no grid there).
- for a tileable texture, the wrap-around seam score with and without ``tileable``.

Usage::

    python benchmarks/bench_tiling.py --sizes 1024,4096,8192 --model ukiyoe \\
        --out benchmarks/results/tiling.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np
from PIL import Image
from skimage import data
import torch
from culturegan.inference import Stylizer
from culturegan.tiling import seam_score, DEFAULT_TILE

size, model, tile, seams = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
tile = None if tile == "auto" else int(tile)
torch.set_num_threads(2)
rng = np.random.default_rng(0)
base = Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC)
grain = rng.normal(0, 6, (size, size, 1)).astype(np.float32)
photo = Image.fromarray(np.clip(np.asarray(base, np.float32) + grain, 0, 255).astype(np.uint8))
del base, grain
stylizer = Stylizer.from_pretrained(model)
def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field))
before = status_kb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS:
    f.write("5")  # making the test photo above used more than stylizing may
t0 = time.perf_counter()
out = stylizer(photo, tile=tile).images[0]
seconds = time.perf_counter() - t0
peak = status_kb("VmHWM")
result = {"size": size, "tile": tile, "seconds": seconds, "peak_rss_mb": peak / 1024,
          "before_mb": before / 1024, "output_mb": size * size * 3 / 2**20}
result["working_mb"] = result["peak_rss_mb"] - result["before_mb"] - result["output_mb"]
if seams:
    result["seam_score"] = seam_score(out, tile or DEFAULT_TILE)
print(json.dumps(result))
"""


def run_child(size: int, model: str, tile: str, seams: bool) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(size), model, tile, "1" if seams else "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"size": size, "tile": tile, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def texture_seams(model: str) -> dict:
    import numpy as np
    from PIL import Image
    from skimage import data

    from culturegan.inference import Stylizer
    from culturegan.tiling import wrap_seam_score

    stylizer = Stylizer.from_pretrained(model)
    # A brick texture made periodic: the left half mirrored onto the right (wraps by design).
    bricks = np.asarray(Image.fromarray(data.brick()).convert("RGB").resize((256, 256)))
    periodic = np.concatenate([bricks[:, :128], bricks[:, :128][:, ::-1]], axis=1)
    periodic = np.concatenate([periodic[:128], periodic[:128][::-1]], axis=0)
    image = Image.fromarray(np.ascontiguousarray(periodic))
    plain = stylizer(image).images[0]
    wrapped = stylizer(image, tileable=True).images[0]
    return {
        "input": wrap_seam_score(image),
        "plain": wrap_seam_score(plain),
        "tileable": wrap_seam_score(wrapped),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1024,4096,8192")
    parser.add_argument("--untiled-sizes", default="1024,2048,4096", help="also run with tile 0")
    parser.add_argument("--model", default="ukiyoe")
    parser.add_argument("--out", default="benchmarks/results/tiling.json")
    parser.add_argument("--docs", type=Path, help="markdown file whose figures to rewrite")
    args = parser.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        rows.append(run_child(size, args.model, "512", True))
        print(json.dumps(rows[-1]), flush=True)
    for size in [int(s) for s in args.untiled_sizes.split(",") if s]:
        rows.append(run_child(size, args.model, "0", True))
        print(json.dumps(rows[-1]), flush=True)
    seams = texture_seams(args.model)
    print("wrap-around seam scores:", json.dumps(seams))
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, 2 cores",
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "runs": rows,
        "texture_wrap_seam": seams,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_speed import fill_section

        tiles, wrap = markdown(result)
        title = "Applications"
        fill_section(args.docs, "<!-- bench_tiling:begin -->", "<!-- bench_tiling:end -->",
                     tiles, heading="Large images", title=title)  # fmt: skip
        fill_section(args.docs, "<!-- bench_tiling_wrap:begin -->",
                     "<!-- bench_tiling_wrap:end -->", wrap, heading="Textures",
                     title=title)  # fmt: skip


def markdown(result: dict) -> tuple[str, str]:
    """The tiles table and the wrap-around line for the docs."""
    lines = [
        f"Measured with `{result['command']}` ({result['machine']}, {result['date']}), "
        f"shipped model `{result['model']}`, 2 threads; each row a fresh process:",
        "",
        "| input | tile | seconds | peak RSS (MB) | before (MB) | output image (MB) "
        "| working memory (MB) | seam score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        if "error" in r:
            lines.append(f"| {r['size']} px | {r['tile']} | failed: {r['error']} |||||")
            continue
        tile = "none" if not r["tile"] else str(r["tile"])
        seam = f"{r['seam_score']:.3f}" if "seam_score" in r else "-"
        lines.append(
            f"| {r['size']} x {r['size']} | {tile} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['before_mb']:.0f} | {r['output_mb']:.0f} | {r['working_mb']:.0f} | {seam} |"
        )
    w = result["texture_wrap_seam"]
    wrap = (
        f"On a 256 x 256 brick texture made periodic (scikit-image's `brick`, mirrored), "
        f"`{result['model']}`: wrap-around seam score of the input {w['input']:.2f}, of the "
        f"plain output {w['plain']:.2f}, of the `--tileable` output {w['tileable']:.2f} "
        f"(`{result['command']}`)."
    )
    return "\n".join(lines), wrap


if __name__ == "__main__":
    main()
