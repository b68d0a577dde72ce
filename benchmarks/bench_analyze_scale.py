"""``culturegan analyze`` at scale: images/s and peak memory at 1k and 10k generated images.

Synthetic cultures (ink wash, woodblock, impasto from :mod:`culturegan.data.synthetic`, in
equal shares) are generated once into ``--data`` (the 1k set is hard links to the first
images of the largest set). Each case then runs ``analyze_cultures`` end to end (descriptors,
lite0 embeddings, statistics with reduced resampling, report) in a fresh process with a cold
cache, and records:

- images/s of the per-image phase (hashing, descriptors, embeddings, streaming to disk: the
  ``throughput`` section of ``summary.json``) and the whole run's seconds;
- peak RSS of the analysing process during the per-image phase and over the whole run
  (sampled every 0.1 s with psutil), and the peak of that process plus its workers (local
  pool processes, or the Dask LocalCluster's worker processes);
- the ratio of each to the 1k local baseline measured in the same run.

The per-image phase should keep its memory flat as the collection grows (what grows is a few
text fields per image and the statistics, which need every row); images/s should stay flat.
One case reruns the 1k study on its warm cache: what a killed run, restarted, pays for the
images it had already done; the last repeats the 1k baseline, to show the run-to-run noise.

Usage::

    python benchmarks/bench_analyze_scale.py --sizes 1000,10000 --docs docs/culture.md \\
        --out benchmarks/results/analyze_scale.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import cpu_info, fill_section  # noqa: E402

STYLES = ("ink_wash", "woodblock", "impasto")
MARK_BEGIN, MARK_END = "<!-- bench_analyze_scale:begin -->", "<!-- bench_analyze_scale:end -->"

CHILD = r"""
import json, sys, threading, time
import psutil
from culturegan.culture import analysis
from culturegan.culture.compare import CompareSettings

root, out, executor, workers, cache, px, embeddings = sys.argv[1:8]
me = psutil.Process()
peaks = {"stream": 0, "main": 0, "total": 0}
phase = {"streaming": True}

def sample():
    while True:
        main = me.memory_info().rss
        total = main
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        peaks["main"] = max(peaks["main"], main)
        peaks["total"] = max(peaks["total"], total)
        if phase["streaming"]:
            peaks["stream"] = max(peaks["stream"], main)
        time.sleep(0.1)

threading.Thread(target=sample, daemon=True).start()
real = analysis.stream_study
def marked(*args, **kwargs):  # the end of the per-image phase
    try:
        return real(*args, **kwargs)
    finally:
        phase["streaming"] = False
analysis.stream_study = marked
settings = CompareSettings(n_boot=200, n_perm=200, n_perm_distance=50)
t0 = time.perf_counter()
result = analysis.analyze_cultures(
    root, out, size=int(px), executor=executor, workers=int(workers), cache_dir=cache,
    embeddings=embeddings == "1", settings=settings, thumbnails_per_culture=8, progress=False,
)
seconds = time.perf_counter() - t0
time.sleep(0.2)
print(json.dumps({"throughput": result.throughput, "seconds": seconds,
                  **{f"peak_{k}_mb": v / 2**20 for k, v in peaks.items()}}))
"""


def _make(task: tuple[str, int, int, str]) -> None:
    from culturegan.data.synthetic import make_art_image

    style, seed, px, path = task
    make_art_image(style, seed, px).save(path)


def generate(data: Path, n: int, px: int) -> Path:
    """``data/n<N>/<style>/<i>.png``, N images in equal shares; made once, then reused."""
    root = data / f"n{n}_px{px}"
    tasks = []
    for i in range(n):
        style = STYLES[i % len(STYLES)]
        path = root / style / f"{i:06d}.png"
        if not path.exists():
            tasks.append((style, i, px, str(path)))
    for style in STYLES:
        (root / style).mkdir(parents=True, exist_ok=True)
    if tasks:
        print(f"generating {len(tasks)} images into {root}", flush=True)
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(_make, tasks, chunksize=64)
    return root


def subset(full: Path, data: Path, n: int, px: int) -> Path:
    """The first ``n`` images of ``full`` as hard links (same files, same hashes)."""
    root = data / f"n{n}_px{px}"
    for i in range(n):
        style = STYLES[i % len(STYLES)]
        target = root / style / f"{i:06d}.png"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(full / style / f"{i:06d}.png", target)
    return root


def _short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def run_case(
    root: Path,
    out: Path,
    *,
    executor: str,
    workers: int,
    cache: Path,
    px: int,
    embeddings: bool,
    timeout: float,
) -> dict:
    args = [str(root), str(out), executor, str(workers), str(cache), str(px), str(int(embeddings))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=timeout,
        env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(report: dict) -> str:
    cases = report["cases"]
    base = next(c for c in cases if c["label"] == "1k local")
    lines = [
        f"Machine: {report['machine']['cpu']}, {report['machine']['logical_cpus']} logical "
        f"CPUs, Python {report['machine']['python']}, torch {report['machine']['torch']}; "
        f"images {report['px']} px, embeddings {'lite0' if report['embeddings'] else 'off'}. "
        f"Command: `{report['command']}`",
        "",
        "| case | images | executor | images/s | vs 1k local | whole run s | peak RSS per-image "
        "phase MB | vs 1k local | peak RSS whole run MB | with workers MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        if "error" in c:
            lines.append(f"| {c['label']} | {c['n']} | error: {c['error']} ||||||||")
            continue
        t = c["throughput"]
        lines.append(
            f"| {c['label']} | {t['images']} | {t['executor']} | {t['images_per_second']:.1f} | "
            f"{t['images_per_second'] / base['throughput']['images_per_second']:.2f}x | "
            f"{c['seconds']:.0f} | {c['peak_stream_mb']:.0f} | "
            f"{c['peak_stream_mb'] / base['peak_stream_mb']:.2f}x | {c['peak_main_mb']:.0f} | "
            f"{c['peak_total_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="collection sizes (first: 1k)")
    parser.add_argument("--px", type=int, default=64, help="side of the generated images")
    parser.add_argument("--data", default="/tmp/culturegan-bench-scale", help="image folder")
    parser.add_argument("--workers", type=int, default=2, help="local processes, Dask workers")
    parser.add_argument("--no-embeddings", action="store_true", help="descriptors only")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--out", default="benchmarks/results/analyze_scale.json")
    parser.add_argument("--docs", help="markdown file whose marked section to fill")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes[0] != 1000:
        raise ValueError("the first size is the 1k baseline: --sizes 1000,...")
    data = Path(args.data)
    full = generate(data, max(sizes), args.px)
    roots = {n: (full if n == max(sizes) else subset(full, data, n, args.px)) for n in sizes}
    embeddings = not args.no_embeddings
    work = data / "runs"
    plan = [(f"{_short(n)} local", n, "local") for n in sizes]
    plan.insert(1, ("1k dask", 1000, "dask"))
    plan.append(("1k local again", 1000, "local"))  # the baseline's noise on a shared machine
    cases = []
    for label, n, executor in plan:
        out = work / label.replace(" ", "_")
        subprocess.run(["rm", "-rf", str(out)], check=True)
        print(f"{label}: {n} images on {executor}", flush=True)
        case = run_case(roots[n], out, executor=executor, workers=args.workers,
                        cache=out / "cache", px=args.px, embeddings=embeddings,
                        timeout=args.timeout)  # fmt: skip
        cases.append({"label": label, "n": n, **case})
        print(json.dumps(cases[-1]), flush=True)
        if len(cases) == 1:  # the same study again on its warm cache (a resumed run)
            again = run_case(roots[n], work / "1k_again", executor="local",
                             workers=args.workers, cache=out / "cache", px=args.px,
                             embeddings=embeddings, timeout=args.timeout)  # fmt: skip
            cases.append({"label": "1k local, cached", "n": n, **again})
            print(json.dumps(cases[-1]), flush=True)
    report = {
        "machine": {**cpu_info(), "platform": platform.platform()},
        "px": args.px,
        "embeddings": embeddings,
        "command": "flock /tmp/culturegan-cpu.lock env OMP_NUM_THREADS=2 .venv/bin/python "
        "benchmarks/bench_analyze_scale.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "cases": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    text = table(report)
    print(text)
    if args.docs:
        fill_section(Path(args.docs), MARK_BEGIN, MARK_END, text, heading="Scale", title="Culture")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
