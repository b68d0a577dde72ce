"""Load test of the studio, on loopback only: concurrent stylize requests plus malformed uploads.

Starts ``culturegan studio`` as a subprocess on a free 127.0.0.1 port, warms it up, then sends
``--requests`` stylize requests of a ``--side`` px photo (scikit-image's astronaut) to a shipped
model all at once, with ``--malformed`` bad uploads (text, truncated PNG, a decompression-bomb
header, an empty file, an unknown model) shuffled among them: one warm-up round, then
``--rounds`` measured rounds. Reports errors, p50/p95 latency and throughput over the measured
rounds, the baseline of one request at a time measured in the same run, and the server's
resident memory at start, after the warm-up round ("before") and after each measured round.
Exits 1 if a good request failed, a bad one did not get a 4xx, or the memory after the last
round differs from "before" by more than ``--max-rss-growth``.

Usage::

    python benchmarks/studio_load.py --requests 50 --malformed 20 --model ukiyoe
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx
from PIL import Image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def photo_png(side: int) -> bytes:
    from culturegan.data.synthetic import photo_sources

    photo = photo_sources()["astronaut"].resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def malformed_requests(good: bytes, model: str) -> list[tuple[str, dict, bytes]]:
    """(name, form fields, file bytes) of requests the studio must refuse with a 4xx."""
    return [
        ("text", {"model": model}, b"this is not an image"),
        ("truncated", {"model": model}, good[:100]),
        ("bomb", {"model": model}, bomb_png()),
        ("empty", {"model": model}, b""),
        ("unknown model", {"model": "no_such_model"}, good),
    ]


async def one(client: httpx.AsyncClient, fields: dict, data: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    response = await client.post(
        "/api/stylize", data=fields, files={"file": ("photo.png", data, "image/png")}
    )
    return response.status_code, time.perf_counter() - start


async def run(args: argparse.Namespace, base: str, pid: int) -> dict:
    good = photo_png(args.side)
    fields = {"model": args.model}
    limits = httpx.Limits(max_connections=args.requests + args.malformed)
    bad = malformed_requests(good, args.model)
    tasks = [("good", fields, good)] * args.requests
    tasks += [bad[i % len(bad)] for i in range(args.malformed)]
    random.Random(0).shuffle(tasks)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        rss_start = rss_mb(pid)
        sequential = [(await one(client, fields, good))[1] for _ in range(5)]
        # Warm-up: one full round, so that thread pools, allocator arenas and buffers reach
        # the size this load needs; growth after that would be a leak.
        warm = await asyncio.gather(*(one(client, f, d) for _, f, d in tasks))
        warm_errors = sum(
            1
            for (kind, _, _), (s, _) in zip(tasks, warm, strict=True)
            if kind == "good" and s != 200
        )
        rss_before = rss_mb(pid)
        pairs, rss_rounds, wall = [], [], 0.0
        for _ in range(args.rounds):
            start = time.perf_counter()
            results = await asyncio.gather(*(one(client, f, d) for _, f, d in tasks))
            wall += time.perf_counter() - start
            rss_rounds.append(round(rss_mb(pid), 1))
            pairs += list(zip((kind for kind, _, _ in tasks), results, strict=True))
        rss_after = rss_rounds[-1]

    good_latency = [t for kind, (_, t) in pairs if kind == "good"]
    good_errors = sum(1 for kind, (s, _) in pairs if kind == "good" and s != 200)
    bad_statuses = [s for kind, (s, _) in pairs if kind != "good"]
    quantiles = statistics.quantiles(good_latency, n=20)
    return {
        "model": args.model,
        "side": args.side,
        "workers": args.workers,
        "requests": args.requests,
        "rounds": args.rounds,
        "warmup_errors": warm_errors,
        "errors": good_errors,
        "malformed": args.malformed,
        "malformed_4xx_per_round": sum(1 for s in bad_statuses if 400 <= s < 500) // args.rounds,
        "malformed_statuses": sorted(set(bad_statuses)),
        "p50_s": round(statistics.median(good_latency), 3),
        "p95_s": round(quantiles[18], 3),
        "wall_s": round(wall, 3),
        "throughput_per_s": round(args.requests * args.rounds / wall, 2),
        "sequential_p50_s": round(statistics.median(sequential), 3),
        "speedup_vs_sequential": round(
            statistics.median(sequential) * args.requests * args.rounds / wall, 2
        ),
        "rss_at_start_mb": round(rss_start, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_each_round_mb": rss_rounds,
        "rss_after_mb": round(rss_after, 1),
        "rss_growth": round(rss_after / rss_before - 1, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--malformed", type=int, default=20)
    parser.add_argument("--model", default="ukiyoe", help="a shipped model")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured rounds (the last is reported)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-rss-growth", type=float, default=0.10)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as empty_runs:
        command = [
            sys.executable, "-m", "culturegan", "studio", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(args.workers), "--runs", empty_runs,
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the studio exited: {server.stdout.read().decode()}")
                try:
                    if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the studio did not answer within 60 s")
                time.sleep(0.2)
            figures = asyncio.run(run(args, base, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        figures["errors"] == 0
        and figures["warmup_errors"] == 0
        and figures["malformed_4xx_per_round"] == args.malformed
        and abs(figures["rss_growth"]) <= args.max_rss_growth
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
