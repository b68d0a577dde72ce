"""One training process per run folder: a second is refused naming the first's PID; a lock left
by a killed process is taken over (issue #14, item 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
    # The holder was killed without cleaning up: its lock is stale and taken over.
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    resumed = train(resume_dir=run, progress=False)
    assert resumed.finished and resumed.step == 2
    assert not (run / ".lock").exists()  # released at the end


def test_the_lock_is_released_on_errors_and_a_garbage_lock_is_stale(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), folder_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        raise RuntimeError("boom")
    assert not (tmp_path / ".lock").exists()
    # A lock file holding garbage (a torn write) counts as stale.
    (tmp_path / ".lock").write_text("not a pid")
    t0 = time.perf_counter()
    with folder_lock(tmp_path):
        pass
    assert time.perf_counter() - t0 < 1
