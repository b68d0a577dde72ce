"""``stylize`` and ``export`` killed with SIGKILL in the middle of writing a file leave nothing
partial under a final name, and running the command again completes (issue #14, item 3).

Each command runs as its own process, with ``atomic_write`` wrapped (in that process only) so
that its k-th write stops part-way through the temporary file and waits: the test then kills
it. k and the part written are drawn at random (seeded, shown on failure).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

from PIL import Image

from conftest import save_tiny_model
from culturegan import fileio
from culturegan.cli import main
from culturegan.inference import Stylizer

from .conftest import digest, write_photos

PAUSING = """
import importlib, os, sys, time
import culturegan.fileio as fileio
from culturegan.cli import main

modules, pause_at, fraction = sys.argv[1].split(","), int(sys.argv[2]), float(sys.argv[3])
real, calls = fileio.atomic_write, [0]

def pausing_write(path, write):
    calls[0] += 1
    if calls[0] != pause_at:
        return real(path, write)

    def part_then_wait(tmp):
        write(tmp)
        os.truncate(tmp, int(tmp.stat().st_size * fraction))  # what a kill mid-write leaves
        print("paused", flush=True)
        time.sleep(120)

    return real(path, part_then_wait)

for name in modules:
    setattr(importlib.import_module(name), "atomic_write", pausing_write)
sys.exit(main(sys.argv[4:]))
"""


def start_paused(modules: str, pause_at: int, fraction: float, args: list[str]):
    proc = subprocess.Popen([sys.executable, "-c", PAUSING, modules, str(pause_at),
                             str(fraction), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    watchdog = threading.Timer(120, proc.kill)  # never hang the suite
    watchdog.daemon = True
    watchdog.start()
    return proc


def kill_when_paused(proc) -> None:
    for line in proc.stdout:
        if line.strip() == "paused":
            break
    else:
        raise AssertionError(f"never paused: {proc.wait()} {proc.stderr.read()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def visible(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_sigkill_mid_write_leaves_no_partial_file_under_the_final_name(trained_run, tmp_path):
    rng = random.Random(13)  # stylize: 2nd image at 29%, export: the weights at 65%
    photos = write_photos(tmp_path / "photos", n=3)
    model = save_tiny_model(tmp_path / "model")
    stylized = tmp_path / "stylized"
    exported = tmp_path / "exported"
    assert main(["export", str(trained_run), "--out", str(exported)]) == 0
    old_export = digest(exported)
    k_stylize, part_stylize = rng.randint(1, 3), rng.random()
    k_export, part_export = rng.randint(1, 2), rng.random()
    where = f"stylize write {k_stylize} at {part_stylize:.2f}, export write {k_export} at " \
            f"{part_export:.2f}"  # fmt: skip
    # Both at once: each pays for importing torch, the two cores share the wait.
    procs = [
        start_paused(
            "culturegan.apply",
            k_stylize,
            part_stylize,
            [
                "stylize",
                str(photos),
                "--model",
                str(model),
                "--out",
                str(stylized),
                "--batch-size",
                "1",
            ],
        ),  # fmt: skip
        start_paused(
            "culturegan.checkpoint,culturegan.fileio",
            k_export,
            part_export,
            ["export", str(trained_run), "--out", str(exported)],
        ),  # fmt: skip
    ]
    for proc in procs:
        kill_when_paused(proc)

    # stylize: the files before the k-th are whole, the k-th is only a hidden temporary file.
    done = visible(stylized)
    assert [p.name for p in done] == [f"p{i}.png" for i in range(k_stylize - 1)], where
    for path in done:
        Image.open(path).load()
    assert len(list(stylized.glob(f".p{k_stylize - 1}.png.*.tmp"))) == 1, where
    # export: the folder holds the previous export's files, byte for byte.
    assert {k: v for k, v in digest(exported).items() if not k.startswith(".")} == old_export

    # Running again completes; the leftover temporary files are hidden and never read back,
    # and a later process's first write into the folder removes them once they are a minute
    # old (the commands run again in this process, which has written into 'exported' before).
    fileio._swept.clear()
    leftovers = [*stylized.glob(".*.tmp"), *exported.glob(".*.tmp")]
    assert leftovers, where
    for leftover in leftovers:
        os.utime(leftover, (time.time() - 120, time.time() - 120))
    photos_before = digest(photos)
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(stylized)]) == 0
    assert [p.name for p in visible(stylized)] == ["p0.png", "p1.png", "p2.png"], where
    assert not list(stylized.glob(".*.tmp")), where
    for path in visible(stylized):
        assert Image.open(path).size == (32, 24)
    assert digest(photos) == photos_before
    assert main(["export", str(trained_run), "--out", str(exported)]) == 0
    assert not list(exported.glob(".*.tmp")), where
    Stylizer.from_pretrained(exported)
