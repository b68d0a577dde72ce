"""Speed of the shipped models on a large photo: seconds per 1024 x 1024 image, end to end.

For every model in ``culturegan/zoo`` it times ``Stylizer.from_pretrained(name)(photo)`` (PIL
in, PIL out: conversion, padding, the network, conversion back) in eager fp32, and the network
alone in eager fp32 and channels-last; then, as the baseline measured in the same run, the
reference CycleGAN generator (``resnet_9blocks`` ngf 64, the official zoo's architecture) on
the same input, and the onnxruntime path (``culturegan export-onnx``, PIL in, PIL out) when
the ``[onnx]`` extra is installed. Times are medians after a warm-up; the machine's fp32
matmul peak is measured in the same run. The line goes to docs/benchmarks.md with ``--docs``::

    python benchmarks/bench_shipped.py --threads 2 --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import cpu_info, fill_section, matmul_peak  # noqa: E402

from culturegan.fileio import atomic_write  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.models import build_generator  # noqa: E402
from culturegan.onnx_export import OnnxStylizer, export_onnx  # noqa: E402
from culturegan.zoo import list_shipped  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- bench_shipped:begin -->", "<!-- bench_shipped:end -->"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, oneDNN kernel choice)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024, help="photo side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shipped_speed.json"))
    parser.add_argument("--docs", type=Path, help="markdown file to update")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8))
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    rows = []
    with torch.inference_mode():
        reference = build_generator("resnet_9blocks", ngf=64).eval()
        ref_eager = median_seconds(lambda: reference(x), max(2, args.repeats // 2))
        reference = reference.to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        ref_cl = median_seconds(lambda: reference(x_cl), max(2, args.repeats // 2))
        ref_s = min(ref_eager, ref_cl)  # its faster path, as for the shipped models
        for model in list_shipped():
            stylizer = Stylizer.from_pretrained(model.name)
            net = next(iter(stylizer.networks.values()))
            end_to_end = median_seconds(lambda s=stylizer: s(photo), args.repeats)
            eager = median_seconds(lambda n=net: n(x), args.repeats)
            net_cl = net.to(memory_format=torch.channels_last)
            channels_last = median_seconds(lambda n=net_cl, v=x_cl: n(v), args.repeats)
            onnx_s = None
            if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
                path = export_onnx(model.name, Path(tempfile.mkdtemp()) / f"{model.name}.onnx")
                onnx = OnnxStylizer(path, threads=args.threads)
                onnx_s = median_seconds(lambda o=onnx: o(photo), args.repeats)
            rows.append({
                "model": model.name,
                "generator": model.card.get("generator"),
                "end_to_end_s": end_to_end,
                "network_eager_s": eager,
                "network_channels_last_s": channels_last,
                "onnxruntime_end_to_end_s": onnx_s,
                "speedup_vs_reference": ref_s / min(eager, channels_last),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {**cpu_info(), "matmul_peak_gflops": matmul_peak(args.threads, 1024, 5)},
        "threads": args.threads,
        "size": args.size,
        "reference_resnet_9blocks_ngf64_s": {"eager": ref_eager, "channels_last": ref_cl},
        "models": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(report, indent=2)))
    m = report["machine"]
    lines = [
        f"Command: `{report['command']}`; {m['cpu']} ({m['cpu_capability']}), {args.threads} "
        f"threads, fp32 matmul peak {m['matmul_peak_gflops']:.0f} GFLOP/s. One "
        f"{args.size} x {args.size} photo, batch 1, median of {args.repeats}.",
        "",
        "| shipped model | generator | PIL -> PIL, PyTorch (s) | PIL -> PIL, onnxruntime (s) "
        "| network eager (s) | network channels-last (s) | x faster than reference |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{r['model']}` | {r['generator']} | {r['end_to_end_s']:.2f} | "
        f"{_s(r['onnxruntime_end_to_end_s'])} | {r['network_eager_s']:.2f} | "
        f"{r['network_channels_last_s']:.2f} | "
        f"{r['speedup_vs_reference']:.1f} |"
        for r in rows
    ]
    lines.append(
        f"| reference CycleGAN | resnet_9blocks ngf 64 | | | {ref_eager:.2f} | {ref_cl:.2f} | 1.0 |"
    )
    text = "\n".join(lines)
    print(text)
    if args.docs:
        heading = "The shipped models on a 1024 px photo"
        fill_section(args.docs, MARK_BEGIN, MARK_END, text, heading=heading, title="Benchmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
