"""Shared fixtures: tiny datasets and configs made on the fly (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from culturegan.config import RunConfig, load_config

# Two threads match the CI machine; OMP_NUM_THREADS (e.g. 1 while other jobs share the cores)
# wins when set, since oversubscribed OpenMP threads slow torch down many times over.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


def write_domain(folder: Path, n: int, kind: str, seed: int, size=(40, 48)) -> list[Path]:
    """``n`` small PNGs: smooth colour noise ("photo") or flat blocks with outlines ("art")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    w, h = size
    for i in range(n):
        if kind == "photo":
            small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        else:
            arr = np.full((h, w, 3), 235, np.uint8)
            for _ in range(3):
                y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
                arr[y : y + 12, x : x + 12] = rng.integers(0, 256, 3)
                arr[y, x : x + 12] = 0
            img = Image.fromarray(arr)
        path = folder / f"{kind}_{i:03d}.png"
        img.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """One folder per domain: photo/ and art/, 10 images each."""
    root = tmp_path / "data"
    write_domain(root / "photo", 10, "photo", seed=1)
    write_domain(root / "art", 10, "art", seed=2)
    return root


@pytest.fixture
def tiny_cfg(tiny_data, tmp_path) -> RunConfig:
    """A CycleGAN small enough for a step in ~50 ms."""
    return load_config(
        "cyclegan_tiny",
        {
            "data.root": str(tiny_data),
            "data.domains": "photo,art",
            "data.load_size": 36,
            "data.crop_size": 32,
            "model.ngf": 4,
            "model.ndf": 4,
            "train.steps": 6,
            "train.batch_size": 2,
            "train.runs_dir": str(tmp_path / "runs"),
            "train.log_every": 1,
            "train.sample_every": 3,
            "train.checkpoint_every": 2,
            "train.num_samples": 2,
            "loss.pool_size": 4,
        },
    )


def flat_state(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, under dotted keys (to compare two states)."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(flat_state(value, f"{prefix}{key}."))
        elif isinstance(value, torch.Tensor):
            out[f"{prefix}{key}"] = value
    return out


def assert_resumes_exactly(cfg: RunConfig, networks: tuple[str, ...]):
    """Train ``cfg`` straight through, and again killed after half its steps and resumed:
    every tensor of ``networks`` in the two final checkpoints is equal. Returns the straight
    run's result."""
    from culturegan.checkpoint import load_training_state
    from culturegan.training import train
    from culturegan.training.loop import CHECKPOINT_NAME

    straight = train(cfg, progress=False)
    first = train(cfg, until_step=cfg.train.steps // 2, progress=False)
    resumed = train(resume_dir=first.run_dir, progress=False)
    a = load_training_state(straight.run_dir / CHECKPOINT_NAME)["recipe"]
    b = load_training_state(resumed.run_dir / CHECKPOINT_NAME)["recipe"]
    for net in networks:
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k}"
    return straight


def load_script(path: Path, name: str):
    """A script of the repository (benchmarks/, scripts/) imported as a module by its path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_tiny_model(out: Path, net: torch.nn.Module | None = None) -> Path:
    """A two-domain model folder (photo -> art) around ``net``, by default an untrained
    mobile_resnet_3blocks with ngf 4."""
    from culturegan.checkpoint import pretrained_config, save_pretrained
    from culturegan.models import build_generator

    net = net if net is not None else build_generator("mobile_resnet_3blocks", ngf=4)
    config = pretrained_config(
        kind="two_domain",
        recipe="cut",
        domains=["photo", "art"],
        networks={"g_ab": net},
        directions={"photo->art": "g_ab"},
        size_multiple=net.size_multiple,
    )
    return save_pretrained(out, {"g_ab": net}, config)


def save_tiny_multidomain_model(out: Path, domains=("photo", "ukiyoe", "ink")) -> Path:
    """An untrained multi-domain model folder (StarGAN v2 style networks, a few channels)."""
    from culturegan.checkpoint import pretrained_config, save_pretrained
    from culturegan.models.multidomain import MappingNetwork, StyleEncoder, StyleGenerator

    torch.manual_seed(0)
    n = len(domains)
    nets = {
        "generator": StyleGenerator(ngf=8, style_dim=8, n_down=2, n_bottleneck=1, max_channels=16),
        "mapping": MappingNetwork(num_domains=n, latent_dim=4, style_dim=8, hidden=16, n_shared=1),
        "style_encoder": StyleEncoder(num_domains=n, style_dim=8, ndf=8, n_down=2, max_channels=16),
    }
    config = pretrained_config(
        kind="multi_domain",
        recipe="multidomain",
        domains=list(domains),
        networks=nets,
        directions={f"{a}->{b}": "generator" for a in domains for b in domains if a != b},
        size_multiple=nets["generator"].size_multiple,
        latent_dim=4,
        style_dim=8,
        train_crop_size=32,
    )
    return save_pretrained(out, nets, config)
