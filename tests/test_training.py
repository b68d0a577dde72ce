"""Training: a few steps learn, runs are observable, resume is exact, checkpoints are atomic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import flat_state
from culturegan.checkpoint import (
    CheckpointError,
    load_training_state,
    save_training_state,
)
from culturegan.cli import main
from culturegan.training import train
from culturegan.training.loop import CHECKPOINT_NAME


def test_a_few_steps_change_g_and_d_and_write_the_run_folder(tiny_cfg):
    torch.manual_seed(tiny_cfg.train.seed)
    from culturegan.training.cyclegan import CycleGANRecipe

    initial = flat_state(
        CycleGANRecipe(tiny_cfg, device=torch.device("cpu"), domains=("photo", "art")).state_dict()
    )
    result = train(tiny_cfg, progress=False)
    assert result.finished and result.step == 6 and result.stop_signal is None
    run = result.run_dir
    assert run.parent == Path(tiny_cfg.train.runs_dir) and run.name.startswith("000-")
    final = flat_state(load_training_state(run / CHECKPOINT_NAME)["recipe"])
    for net in ("g_ab", "g_ba", "d_a", "d_b"):
        key = f"{net}.model.1.weight" if net.startswith("g") else f"{net}.model.0.weight"
        assert not torch.equal(initial[key], final[key]), f"{net} did not change"

    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for r in records:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in r.items() if k.startswith("loss/"))
    assert records[-1]["lr/g"] < records[0]["lr/g"]  # the linear decay is running
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 6
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "samples_000003.png",
        "samples_000006.png",
    ]
    assert (run / "model" / "model.safetensors").is_file()
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["domains"] == ["photo", "art"] and config["format_version"] == 1


def test_resume_is_exact(tiny_cfg):
    straight = train(tiny_cfg, progress=False)
    interrupted = train(tiny_cfg, until_step=3, progress=False)
    assert interrupted.step == 3 and not interrupted.finished
    assert not (interrupted.run_dir / "model").exists()
    resumed = train(resume_dir=interrupted.run_dir, progress=False)
    assert resumed.run_dir == interrupted.run_dir and resumed.finished
    a = flat_state(load_training_state(straight.run_dir / CHECKPOINT_NAME))
    b = flat_state(load_training_state(resumed.run_dir / CHECKPOINT_NAME))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    # The log of the resumed run reads as one run.
    steps = [json.loads(line)["step"] for line in (resumed.run_dir / "log.jsonl").open()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tiny_cfg, tmp_path):
    runs = tmp_path / "sig_runs"
    args = [
        sys.executable, "-m", "culturegan", "train", "--config", "cyclegan_tiny",
        "--no-progress",
        "--data.root", tiny_cfg.data.root, "--data.domains", "photo,art",
        "--data.load_size", "36", "--data.crop_size", "32", "--model.ngf", "4",
        "--model.ndf", "4", "--train.batch_size", "1", "--train.steps", "100000",
        "--train.log_every", "1", "--train.checkpoint_every", "100000",
        "--train.sample_every", "100000", "--train.runs_dir", str(runs),
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    log = None
    while time.time() < deadline:
        logs = list(runs.glob("*/log.jsonl"))
        if logs and logs[0].read_text().count("\n") >= 2:
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None, proc.communicate(timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Resume with: culturegan train --resume" in out
    run_dir = log.parent
    stopped_at = load_training_state(run_dir / CHECKPOINT_NAME)["step"]
    assert stopped_at >= 2
    # Resume with fewer total steps than planned: it continues from the checkpoint and ends.
    assert main(["train", "--resume", str(run_dir), "--train.steps", str(stopped_at + 2),
                 "--no-progress"]) == 0  # fmt: skip
    assert load_training_state(run_dir / CHECKPOINT_NAME)["step"] == stopped_at + 2
    assert (run_dir / "model" / "config.json").is_file()


def test_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "last.pt"
    save_training_state(path, {"step": 1, "w": torch.ones(3)})

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")  # save_training_state hands torch an open file
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_training_state(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_training_state(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp files left


KILL_LOOP = """
import sys, torch
from culturegan.checkpoint import save_training_state
path, i = sys.argv[1], 0
while True:
    i += 1
    save_training_state(path, {"step": i, "w": torch.full((200_000,), float(i))})
    print(i, flush=True)
"""


def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_LOOP, str(path)], stdout=subprocess.PIPE, text=True
        )
        proc.stdout.readline()  # at least one complete save
        time.sleep(0.05 + 0.07 * attempt)  # kill at different points of a save
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = load_training_state(path)
        assert state["w"][0].item() == state["step"] and state["w"][-1].item() == state["step"]


def test_torn_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="last.pt"):
        load_training_state(bad)
    with pytest.raises(CheckpointError, match="no training state"):
        load_training_state(tmp_path / "missing.pt")


def test_dry_run_prints_the_config_and_creates_nothing(tiny_data, tmp_path, capsys):
    runs = tmp_path / "dry"
    code = main(["train", "--config", "cyclegan_tiny", "--dry-run", "--data.root", str(tiny_data),
                 "--train.runs_dir", str(runs)])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["root"] == str(tiny_data) and printed["model"]["ngf"] == 16
    assert not runs.exists()


def test_two_domain_recipe_on_three_domains_asks_which(tiny_cfg, tmp_path, capsys):
    from conftest import write_domain

    write_domain(Path(tiny_cfg.data.root) / "ink", 4, "art", seed=3)
    code = main(["train", "--config", "cyclegan_tiny", "--data.root", tiny_cfg.data.root,
                 "--train.runs_dir", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    assert "--data.domains SOURCE,TARGET" in capsys.readouterr().err


def test_evaluation_during_training_records_the_best_step(tiny_cfg):
    from culturegan.config import set_field

    set_field(tiny_cfg, "train.eval_every", 3)
    set_field(tiny_cfg, "train.eval_split", "train")  # the tiny set has too few val images
    set_field(tiny_cfg, "train.eval_max_images", 4)
    result = train(tiny_cfg, progress=False)
    run = result.run_dir
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [3, 6]
    assert all(v == v for v in evals[-1]["metrics"].values())  # no NaN
    best = json.loads((run / "eval_best.json").read_text())
    assert best["step"] in (3, 6) and best["metric"] == evals[0]["primary"]
    assert (run / "model_best" / "model.safetensors").is_file()
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(k.startswith("eval/fd_lite0") for r in logged for k in r)


def test_a_time_budget_ends_the_run_and_exports_the_model(tiny_cfg):
    from culturegan.config import set_field

    set_field(tiny_cfg, "train.steps", 100000)
    set_field(tiny_cfg, "train.max_minutes", 0.02)  # about a second
    t0 = time.perf_counter()
    result = train(tiny_cfg, progress=False)
    assert time.perf_counter() - t0 < 60
    assert result.finished and 0 < result.step < 100000
    assert load_training_state(result.run_dir / CHECKPOINT_NAME)["step"] == result.step
    assert (result.run_dir / "model" / "model.safetensors").is_file()


def test_bad_numbers_and_unsafe_resume_overrides_are_refused(tiny_cfg, capsys):
    from culturegan.config import set_field

    set_field(tiny_cfg, "train.checkpoint_every", 0)
    with pytest.raises(ValueError, match="train.checkpoint_every=0"):
        train(tiny_cfg, progress=False)
    set_field(tiny_cfg, "train.checkpoint_every", 2)
    set_field(tiny_cfg, "data.crop_size", 30)  # the ResNet generator needs multiples of 4
    with pytest.raises(ValueError, match="multiple of 4"):
        train(tiny_cfg, progress=False)
    set_field(tiny_cfg, "data.crop_size", 32)
    run = train(tiny_cfg, until_step=2, progress=False).run_dir
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--model.ngf", "8", "--no-progress"]) == 2
    assert "cannot change on --resume" in capsys.readouterr().err
    assert (run / "config.json").read_text() == before


FRESH_PROCESS_RUN = """
import hashlib, json, sys
from safetensors.torch import load_file
from culturegan.config import load_config
from culturegan.training import train
overrides = json.loads(sys.argv[1])
result = train(load_config("fewshot_structure_long", overrides), progress=False)
weights = load_file(result.run_dir / "model" / "model.safetensors")
digest = hashlib.sha256()
for name in sorted(weights):
    digest.update(name.encode() + weights[name].numpy().tobytes())
print(digest.hexdigest())
"""


def test_the_same_run_in_fresh_processes_ends_with_the_same_weights(tiny_data, tmp_path):
    """A run is a function of its config, whichever process trains it. Without
    training.loop.warm_up_kernels, half of the processes started on an AVX-512 Xeon (2 threads)
    rounded the generator's first output differently, and the runs parted from the first step."""
    overrides = {
        "data.root": str(tiny_data), "data.domains": ["photo", "art"], "data.load_size": 72,
        "data.crop_size": 64, "train.steps": 2, "train.batch_size": 2,
        "train.runs_dir": str(tmp_path / "runs"), "train.log_every": 1,
        "train.sample_every": 100, "train.checkpoint_every": 100,
    }  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    digests = [
        subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS_RUN, json.dumps(overrides)],
            capture_output=True, text=True, env=env, check=True, timeout=300,
        ).stdout.split()[-1]
        for _ in range(4)
    ]  # fmt: skip
    assert len(set(digests)) == 1, digests
