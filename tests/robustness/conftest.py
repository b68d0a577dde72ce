"""Fixtures of the robustness tests: a tiny trained run shared by a module, digests of folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_domain
from culturegan.config import load_config

TINY_RUN = {
    "data.domains": "photo,art",
    "data.load_size": 36,
    "data.crop_size": 32,
    "model.ngf": 4,
    "model.ndf": 4,
    "train.steps": 2,
    "train.batch_size": 2,
    "train.log_every": 1,
    "train.sample_every": 100,
    "train.checkpoint_every": 100,
    "train.num_samples": 1,
    "loss.pool_size": 0,
}


def tiny_config(root: Path, **overrides):
    """A two-step CycleGAN on 6 + 6 small images under ``root/data``, runs in ``root/runs``."""
    data = root / "data"
    if not data.exists():
        write_domain(data / "photo", 6, "photo", seed=1)
        write_domain(data / "art", 6, "art", seed=2)
    values = {**TINY_RUN, "data.root": str(data), "train.runs_dir": str(root / "runs")}
    return load_config("cyclegan_tiny", {**values, **overrides})


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished two-step run folder (checkpoint and model); copy it before changing it."""
    from culturegan.training import train

    return train(tiny_config(tmp_path_factory.mktemp("run")), progress=False).run_dir


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones too), by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_photos(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            folder / f"p{i}.png"
        )
    return folder
