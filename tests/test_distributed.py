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


# The CLI with every tensor in float64: the networks through the default dtype, the images as
# they leave the dataset. (torch.distributed.run starts this file in each process.)
FLOAT64_CLI = """
import sys
import torch
import culturegan.data.datasets as datasets
torch.set_default_dtype(torch.float64)
to_tensor = datasets.pil_to_tensor
datasets.pil_to_tensor = lambda img: to_tensor(img).double()
from culturegan.cli import main
sys.exit(main(sys.argv[1:]))
"""
EPS64 = torch.finfo(torch.float64).eps  # 2.2e-16


@pytest.fixture
def float64(monkeypatch):
    """This process trains in float64 too (as FLOAT64_CLI does)."""
    import culturegan.data.datasets as datasets

    to_tensor = datasets.pil_to_tensor
    monkeypatch.setattr(datasets, "pil_to_tensor", lambda img: to_tensor(img).double())
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tiny_cfg, tmp_path, float64):
    """Both runs in float64, so that the bound below comes from the arithmetic, not a CPU.

    The two runs sum gradients in different orders (one batched backward against an all-reduce
    of two halves). In float32 that rounding (2**-24 of a sum) is the same size as the
    gradients of some parameters, and Adam, which divides each gradient by its own running
    magnitude, turns it into lr-sized steps: the runs then drift apart by an amount that
    depends on the CPU's vector width (AVX2 and AVX-512 sum in different orders). In float64
    the rounding is 2**-53 of a sum of N = batch x 3 x 32 x 32 terms, and only gradients that
    are exactly zero in exact arithmetic (conv biases before an instance norm, which the
    outputs do not depend on) are as small as that. So the runs may differ by the worst-case
    rounding of one such sum, N * eps64, grown through the three steps: we allow 1000 times
    that (2.7e-9; measured: 2e-14 of how far training moved the outputs), while gradients not
    averaged between the processes (each training on its half) move the outputs at the scale
    of training itself. (A uniform scale error, every gradient halved, is invisible here: Adam
    divides it out.)
    """
    from culturegan.config import set_field

    for key, value in OVERRIDES.items():
        set_field(tiny_cfg, key, value)
    single = train(tiny_cfg, progress=False)

    runs = tmp_path / "ddp_runs"
    script = tmp_path / "float64_cli.py"
    script.write_text(FLOAT64_CLI)
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(script), "train", "--config", "cyclegan_tiny", "--no-progress",
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

    n_terms = int(OVERRIDES["train.batch_size"]) * 3 * 32 * 32
    tolerance = 1e3 * n_terms * EPS64  # 2.7e-9
    for one, two in zip(records(single.run_dir), records(run_dir), strict=True):
        assert one["step"] == two["step"]
        for key in ("loss/g", "loss/d_a", "loss/d_b", "loss/cycle_a"):
            assert two[key] == pytest.approx(one[key], rel=tolerance), (one["step"], key)
    # Compare what the networks compute, against how far training moved them.
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
        assert one.dtype == two.dtype == torch.float64
        moved = (one - start).abs().max().item()
        assert moved > 1e-3  # training changed what the network computes
        assert (one - two).abs().max().item() <= tolerance * moved
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
