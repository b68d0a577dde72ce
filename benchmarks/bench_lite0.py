"""The frozen Lite0's reads in a training step: channels-last against contiguous memory.

Every perceptual term (content, style statistics) and the projected discriminator read images
through the frozen ImageNet EfficientNet-Lite0 (``culturegan.models.pretrained``): once with
gradients (the generated images, forward and backward) and twice without (the photos and the
art). This times that step's share in both memory formats on the same trunk, in the same
process, alternating the two so that a machine's drift hits both, and prints the ratio.

Usage::

    python benchmarks/bench_lite0.py [--threads 2] [--batch 4] [--sizes 64,128] [--repeats 12]

Not a test: a figure to read with the machine's measured matmul peak printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import cpu_info, matmul_peak  # noqa: E402

TAPS = (0, 2, 4, 7, 10)  # the style and content blocks of the training losses


def step_seconds(trunk, images, *, channels_last: bool, repeats: int) -> float:
    """Median seconds of one differentiable read plus two constant reads of ``images``."""
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    trunk.to(memory_format=fmt)
    x = images.contiguous(memory_format=fmt)
    times = []
    for _ in range(repeats + 2):
        t0 = time.perf_counter()
        xi = x.clone().requires_grad_(True)
        sum(m.square().mean() for m in trunk.maps(xi, TAPS)).backward()
        with torch.no_grad():
            trunk.maps(x, TAPS)
            trunk.maps(x, TAPS)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def largest_gap(trunk, images) -> float:
    """The two formats' outputs of every block read, apart by at most this share of the
    output's largest magnitude (float rounding: other kernels, another summation order)."""
    import torch

    out = {}
    with torch.no_grad():
        for fmt in (torch.contiguous_format, torch.channels_last):
            trunk.to(memory_format=fmt)
            out[fmt] = trunk.maps(images.contiguous(memory_format=fmt), TAPS)
    trunk.to(memory_format=torch.channels_last)
    pairs = zip(out[torch.contiguous_format], out[torch.channels_last], strict=True)
    return max(((a - b).abs().max() / a.abs().max()).item() for a, b in pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args(argv)

    import torch

    from culturegan.models.pretrained import frozen_lite0

    torch.set_num_threads(args.threads)
    peak = matmul_peak(args.threads, 1024, 20)
    info = cpu_info()
    print(f"{info['cpu']}, {args.threads} threads, {info['cpu_capability']}, "
          f"fp32 matmul peak {peak:.0f} GFLOP/s, torch {info['torch']}")  # fmt: skip
    trunk = frozen_lite0()
    gen = torch.Generator().manual_seed(0)
    gaps = []
    print("| side | batch | contiguous s | channels-last s | channels-last / contiguous |")
    print("|---:|---:|---:|---:|---:|")
    for side in (int(s) for s in args.sizes.split(",")):
        images = torch.rand(args.batch, 3, side, side, generator=gen) * 2 - 1
        runs = {False: [], True: []}
        for _ in range(2):  # alternate: A B A B
            for fmt in (False, True):
                runs[fmt].append(
                    step_seconds(trunk, images, channels_last=fmt, repeats=args.repeats)
                )
        plain, last = min(runs[False]), min(runs[True])
        print(f"| {side} | {args.batch} | {plain:.4f} | {last:.4f} | {last / plain:.2f} |")
        gaps.append(largest_gap(trunk, images))
    print(f"largest relative difference of a block's output between the formats: {max(gaps):.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
