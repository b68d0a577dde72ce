"""Data-parallel training: 2 processes on the CPU (gloo) match one process with the same batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from culturegan.checkpoint import load_training_state
from culturegan.training import train
from culturegan.training.loop import CHECKPOINT_NAME

OVERRIDES = {
    "data.load_size": "36",
    "data.crop_size": "32",
    "model.ngf": "4",
    "model.ndf": "4",
    "loss.pool_size": "0",  # the pool draws per process; off, the two runs are the same maths
    "train.batch_size": "4",
    "train.steps": "3",
    "train.log_every": "1",
    "train.sample_every": "3",
    "train.checkpoint_every": "3",
    "train.num_samples": "1",
}


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tiny_cfg, tmp_path):
    from culturegan.config import set_field

    for key, value in OVERRIDES.items():
        set_field(tiny_cfg, key, value)
    single = train(tiny_cfg, progress=False)

    runs = tmp_path / "ddp_runs"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "culturegan", "train", "--config", "cyclegan_tiny", "--no-progress",
            "--data.root", tiny_cfg.data.root, "--data.domains", "photo,art",
            "--train.runs_dir", str(runs)]  # fmt: skip
    for key, value in OVERRIDES.items():
        args += [f"--{key}", value]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(runs.iterdir())  # rank 0 alone made the run folder
    check = json.loads((run_dir / "ddp_check.json").read_text())
    assert check["world_size"] == 2 and check["in_sync"], check

    for one, two in zip(records(single.run_dir), records(run_dir), strict=True):
        assert one["step"] == two["step"]
        for key in ("loss/g", "loss/d_a", "loss/d_b", "loss/cycle_a"):
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), (one["step"], key)
    # Compare what the networks compute. The two runs sum gradients in different orders
    # (one batched backward against an all-reduce of two halves), and Adam divides every
    # gradient by its own running magnitude: a parameter whose true gradient is ~0 (a conv
    # bias right before an instance norm) turns that rounding noise into full lr-sized steps
    # in either direction. So the runs cannot agree to float32 rounding; how far apart they may
    # drift is measured against how far training moved the outputs from initialisation: the
    # same maths leaves them a small fraction of that apart (at most 0.32% on an AVX2 machine,
    # where an absolute 1e-4 failed), a wrong gradient average (halved, doubled, one rank's
    # alone) changes the lr-normalised steps of every parameter and so the outputs wholesale.
    from culturegan.training.cyclegan import CycleGANRecipe

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def outputs_of(folder=None):
        torch.manual_seed(tiny_cfg.train.seed)  # the loop's initialisation
        recipe = CycleGANRecipe(tiny_cfg, device=torch.device("cpu"), domains=("photo", "art"))
        if folder is not None:
            recipe.load_state_dict(load_training_state(folder / CHECKPOINT_NAME)["recipe"])
        with torch.no_grad():
            return [net(x) for net in recipe.networks().values()]

    initial, one_process, two_processes = (
        outputs_of(),
        outputs_of(single.run_dir),
        outputs_of(run_dir),
    )
    for start, one, two in zip(initial, one_process, two_processes, strict=True):
        moved = (one - start).abs().max().item()
        assert moved > 1e-3  # training changed what the network computes
        assert (one - two).abs().max().item() <= 0.05 * moved
    assert (run_dir / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_multidomain_with_priors_under_two_processes(tmp_path):
    """Processes whose batch slices hold different target domains log different prior losses
    and leave some networks without gradients; training must neither hang nor diverge."""
    from culturegan.data.synthetic import build_demo_dataset

    root = tmp_path / "data"
    build_demo_dataset(root, size=32, photos=8, art_per_style=8, heldout_photos=1)
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "culturegan", "train", "--config", "multidomain_tiny", "--no-progress",
            "--data.root", str(root), "--data.load_size", "36", "--data.crop_size", "32",
            "--model.ngf", "8", "--model.ndf", "8", "--model.max_channels", "32",
            "--model.mapping_hidden", "32", "--model.d_down", "3", "--train.batch_size", "2",
            "--train.steps", "6", "--train.log_every", "1", "--train.sample_every", "6",
            "--train.checkpoint_every", "6", "--train.num_samples", "1",
            "--loss.ink_domains", "ink_wash", "--loss.edge_domains", "woodblock",
            "--train.runs_dir", str(runs)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(runs.iterdir())
    assert json.loads((run_dir / "ddp_check.json").read_text())["in_sync"]
    logged = records(run_dir)
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5, 6]
    assert all(v == v for r in logged for v in r.values())  # no NaN from missing keys
