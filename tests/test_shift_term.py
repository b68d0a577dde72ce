"""The shift term (loss.lambda_shift) and the grid-pattern metric (metrics.content.grid_peaks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import assert_resumes_exactly
from culturegan.config import load_config
from culturegan.data.images import pil_to_tensor
from culturegan.losses import shift_equivariance_loss
from culturegan.metrics.content import grid_peaks
from culturegan.training.cut import CUTRecipe
from culturegan.training.cyclegan import CycleGANRecipe

CPU = torch.device("cpu")


def grid_pattern(side: int, period: int = 8) -> torch.Tensor:
    """1 at one pixel of every period x period cell, 0 elsewhere: (1, 1, side, side)."""
    pattern = torch.zeros(1, 1, side, side)
    pattern[..., ::period, ::period] = 1
    return pattern


def painted(pattern: torch.Tensor):
    """A 'generator' that adds a pattern fixed to its own pixel grid, whatever the input."""
    return lambda x: x + pattern[..., : x.shape[-2], : x.shape[-1]]


# ----------------------------------------------------------------------------- the loss


def test_a_convolution_moves_with_the_photo_and_costs_nothing():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    rng = torch.Generator().manual_seed(0)
    for _ in range(5):  # several offsets
        # The crop's output and the output's crop sum the same nine products away from the
        # borders; only the order of a float sum may differ (27 terms of size ~1).
        loss = shift_equivariance_loss(conv, x, conv(x), multiple=8, rng=rng)
        assert loss.item() < 27 * torch.finfo(torch.float32).eps


def test_a_pattern_fixed_to_the_grid_costs_what_it_differs_by():
    pattern = grid_pattern(64)
    g = painted(pattern)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    rng = torch.Generator().manual_seed(1)
    for _ in range(10):
        # The compared window is 40 x 40 px (64 - 8 - 2 * 8): 25 cells, each with its dot in the
        # crop's output and, moved off the grid, another in the output's crop: 50 of 1600 pixels.
        loss = shift_equivariance_loss(g, x, g(x), multiple=8, rng=rng)
        assert loss.item() == pytest.approx(50 / 1600, rel=1e-6)


def test_the_offsets_are_never_a_whole_grid_and_come_from_the_given_stream():
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    x = torch.stack([rows, cols, rows]).unsqueeze(0)  # each pixel holds its own position
    crops = []

    def record(crop):
        crops.append(crop)
        return crop

    seen = []
    for seed in range(40):
        shift_equivariance_loss(record, x, x, multiple=8, rng=torch.Generator().manual_seed(seed))
        crop = crops[-1]
        assert crop.shape[-2:] == (56, 56)
        dy, dx = int(crop[0, 0, 0, 0]), int(crop[0, 1, 0, 0])
        assert 0 <= dy < 8 and 0 <= dx < 8 and (dy, dx) != (0, 0)
        seen.append((dy, dx))
    assert len(set(seen)) > 20  # many offsets, on both axes
    again = []
    for seed in range(40):  # the same stream, the same offsets
        shift_equivariance_loss(record, x, x, multiple=8, rng=torch.Generator().manual_seed(seed))
        again.append((int(crops[-1][0, 0, 0, 0]), int(crops[-1][0, 1, 0, 0])))
    assert again == seen


def test_the_gradient_reaches_the_generator_and_only_the_first_items_are_used():
    torch.manual_seed(0)
    bias = torch.nn.Parameter(torch.zeros(1, 1, 64, 64))  # a learnable fixed-grid pattern
    calls = []

    def g(x):
        calls.append(x.shape[0])
        return x + bias[..., : x.shape[-2], : x.shape[-1]]

    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        bias += grid_pattern(64)
    rng = torch.Generator().manual_seed(2)
    loss = shift_equivariance_loss(g, x, g(x), multiple=8, rng=rng, items=2)
    loss.backward()
    assert calls == [4, 2]
    assert bias.grad is not None and bias.grad.abs().sum() > 0


def test_images_too_small_for_the_grid_are_refused():
    x = torch.zeros(1, 3, 24, 64)
    with pytest.raises(ValueError, match="at least 32 px"):
        shift_equivariance_loss(lambda t: t, x, x, multiple=8, rng=torch.Generator())


# ----------------------------------------------------------------------------- the metric


def test_grid_peaks_read_about_one_for_noise_and_photos_and_high_for_a_lattice():
    from culturegan.data.synthetic import photo_sources

    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 128, 128, generator=gen) * 2 - 1
    # White noise: the power at the harmonics is like the power around them (each an
    # exponential variable; sums of 63 against sums of 63 x 8).
    assert ((grid_peaks(noise) > 0.7) & (grid_peaks(noise) < 1.4)).all()
    photos = [pil_to_tensor(p.resize((128, 128))) for p in photo_sources().values()]
    assert (grid_peaks(photos) < 2.5).all()
    # The same photos with a diagonal lattice of +-10 grey levels (of 255) every 8 px.
    lattice = []
    for p in photos:
        rows, cols = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
        lattice.append((p + torch.cos(2 * math.pi * (rows + cols) / 8) * (20 / 255)).clamp(-1, 1))
    assert (grid_peaks(lattice) > 3 * grid_peaks(photos)).all()


def test_grid_peaks_refuse_images_smaller_than_two_periods():
    with pytest.raises(ValueError, match="two periods a side"):
        grid_peaks([torch.zeros(3, 15, 64)])
    assert grid_peaks([]).shape == (0,)


# ----------------------------------------------------------------------------- the recipes


def test_the_setting_is_checked():
    with pytest.raises(ValueError, match="loss.lambda_shift=-1"):
        load_config("fewshot_structure", {"loss.lambda_shift": -1}).validate()
    with pytest.raises(ValueError, match="lambda_shift applies to the cut, cyclegan and multi"):
        load_config("pix2pix_tiny", {"loss.lambda_shift": 1}).validate()
    load_config("cyclegan_tiny", {"loss.lambda_shift": 1}).validate()
    load_config("multidomain_cpu", {"loss.lambda_shift": 1}).validate()


def test_cut_logs_the_term_and_resumes_exactly_with_it(tiny_cfg):
    tiny_cfg.train.recipe = "cut"
    tiny_cfg.model.generator = "mobile_resnet_3blocks"  # draws from 1/8 resolution
    tiny_cfg.loss.lambda_shift = 5.0
    tiny_cfg.loss.flip_equivariance = True
    torch.manual_seed(0)
    recipe = CUTRecipe(tiny_cfg, device=CPU, domains=("photo", "art"))
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for k in "ab"}
    losses = recipe.train_step(batch, 0)
    assert np.isfinite(losses["loss/shift"]) and losses["loss/shift"] > 0
    tiny_cfg.train.steps = 4
    assert_resumes_exactly(tiny_cfg, ("g_ab", "d_b"))


def test_cyclegan_trains_both_generators_with_the_term_and_resumes_exactly(tiny_cfg):
    tiny_cfg.loss.lambda_shift = 5.0
    torch.manual_seed(0)
    recipe = CycleGANRecipe(tiny_cfg, device=CPU, domains=("photo", "art"))
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for k in "ab"}
    losses = recipe.train_step(batch, 0)
    assert losses["loss/shift_ab"] > 0 and losses["loss/shift_ba"] > 0
    state = recipe.state_dict()["shift_rng"]
    fresh = torch.Generator().manual_seed(tiny_cfg.train.seed * 2 + 7).get_state()
    assert not torch.equal(state, fresh)  # it drew its offsets from its own stream
    tiny_cfg.train.steps = 4
    assert_resumes_exactly(tiny_cfg, ("g_ab", "g_ba", "d_a", "d_b"))


def test_multidomain_draws_each_item_in_its_own_style_with_the_term_and_resumes_exactly(
    tmp_path,
):
    from culturegan.data.synthetic import build_demo_dataset
    from culturegan.training.multidomain import MultiDomainRecipe
    from test_multidomain import tiny_multidomain_cfg

    root = tmp_path / "data"
    build_demo_dataset(root, size=32, photos=8, art_per_style=8, heldout_photos=1)
    cfg = tiny_multidomain_cfg(root, tmp_path / "runs", 4)
    cfg.loss.lambda_shift = 5.0
    cfg.validate()
    torch.manual_seed(0)
    domains = ("impasto", "ink_wash", "photo", "woodblock")
    recipe = MultiDomainRecipe(cfg, device=CPU, domains=domains)
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1 for k in ("x", "x_ref", "x_ref2")}
    batch.update(y=torch.tensor([2, 2, 2, 2]), y_trg=torch.tensor([0, 3, 1, 3]))
    calls = []
    generate = recipe._generate

    def recorded(x, s, y, generator=None):
        calls.append((tuple(x.shape), len(s), y.tolist()))
        return generate(x, s, y, generator)

    recipe._generate = recorded
    losses = recipe.train_step(batch, 0)
    # the shift pass: the first two items' crops (32 px less the generator's grid), in their
    # own styles and target domains
    side = 32 - recipe.generator.size_multiple
    assert ((2, 3, side, side), 2, [0, 3]) in calls
    assert np.isfinite(losses["loss/shift"]) and losses["loss/shift"] > 0
    state = recipe.state_dict()["shift_rng"]
    fresh = torch.Generator().manual_seed(cfg.train.seed * 2 + 7).get_state()
    assert not torch.equal(state, fresh)  # it drew its offsets from its own stream
    assert_resumes_exactly(cfg, ("generator", "mapping", "style_encoder", "discriminator"))
