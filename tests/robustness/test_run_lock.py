"""One training process per run folder: a second is refused naming the first's PID; a lock left
by a killed process is taken over (issue #14, item 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from culturegan.cli import main
from culturegan.config import set_field
from culturegan.fileio import FolderLockedError, folder_lock
from culturegan.training import train

HOLD = """
import sys, time
from culturegan.fileio import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def hold_lock_nowait(folder):
    return subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip


def hold_lock(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_on_a_run_folder_is_refused_naming_the_holder(tiny_cfg, capsys):
    set_field(tiny_cfg, "train.steps", 2)
    run = train(tiny_cfg, until_step=1, progress=False).run_dir
    log_before = (run / "log.jsonl").read_text()
    holder = hold_lock(run)
    try:
        with pytest.raises(FolderLockedError, match=f"in use by process {holder.pid}"):
            train(resume_dir=run, progress=False)
        assert main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert f"in use by process {holder.pid}" in capsys.readouterr().err
        assert (run / "log.jsonl").read_text() == log_before  # nothing written meanwhile
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder was killed without cleaning up: the kernel released its lock.
    assert (run / ".lock").read_text().startswith(f"{holder.pid} on ")
    resumed = train(resume_dir=run, progress=False)
    assert resumed.finished and resumed.step == 2
    with folder_lock(run):  # released at the end of training
        pass


def test_two_processes_starting_together_get_the_lock_one_at_a_time(tmp_path):
    procs = [hold_lock_nowait(tmp_path) for _ in range(2)]
    try:
        outcomes = sorted(p.stdout.readline().strip() or "refused" for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert outcomes == ["locked", "refused"]


def test_the_lock_is_released_on_errors(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), folder_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().startswith(f"{os.getpid()} on ")
        raise RuntimeError("boom")
    with folder_lock(tmp_path):  # free again
        pass
