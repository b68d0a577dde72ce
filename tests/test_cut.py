"""Recipe ``cut``: PatchNCE against closed forms, encoder features, steps, exact round trips."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import flat_state
from culturegan.checkpoint import save_pretrained
from culturegan.config import LossConfig, load_config
from culturegan.inference import Stylizer
from culturegan.losses import patch_nce_loss
from culturegan.models import build_generator
from culturegan.models.features import (
    PatchProjector,
    encoder_features,
    nce_layers_of,
    parse_layers,
)
from culturegan.training.cut import CUTRecipe

PRESETS = Path(__file__).parents[1] / "src" / "culturegan" / "configs"
CUT_FIELDS = {
    "lambda_nce",
    "nce_idt",
    "nce_layers",
    "num_patches",
    "nce_temperature",
    "flip_equivariance",
}
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- PatchNCE


def test_patch_nce_on_orthogonal_patches_matches_the_closed_form():
    # q = k = N orthonormal vectors: each positive scores 1, every negative 0, so each row is
    # -log(e^(1/T) / (e^(1/T) + (N - 1))) = log(1 + (N - 1) e^(-1/T)).
    n = 5
    q = torch.eye(n)
    for t in (0.07, 0.5, 1.0):
        expected = math.log(1 + (n - 1) * math.exp(-1 / t))
        loss = patch_nce_loss(q, q.clone(), batch_size=1, temperature=t)
        # float32 cross-entropy: ~1e-7 absolute (at T = 0.07 the loss itself is 2.5e-6)
        assert loss.item() == pytest.approx(expected, rel=1e-5, abs=2e-7)


def test_patch_nce_on_a_hand_made_pair_of_patches():
    # Two 2-D patches; key 0 is rotated by angle a from query 0, key 1 equals query 1.
    a, t = 0.6, 0.5
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[math.cos(a), math.sin(a)], [0.0, 1.0]])
    # Row 0: logits (q0.k0, q0.k1) / T = (cos a, 0) / T, positive first.
    row0 = -math.log(math.exp(math.cos(a) / t) / (math.exp(math.cos(a) / t) + 1.0))
    # Row 1: logits (q1.k0, q1.k1) / T = (sin a, 1) / T, positive second.
    row1 = -math.log(math.exp(1 / t) / (math.exp(math.sin(a) / t) + math.exp(1 / t)))
    loss = patch_nce_loss(q, k, batch_size=1, temperature=t)
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_patch_nce_negatives_stay_within_an_image_and_keys_get_no_gradient():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2 * 6, 8), dim=1).requires_grad_(True)
    k = torch.nn.functional.normalize(torch.randn(2 * 6, 8), dim=1).requires_grad_(True)
    both = patch_nce_loss(q, k, batch_size=2)
    first = patch_nce_loss(q[:6], k[:6], batch_size=1)
    second = patch_nce_loss(q[6:], k[6:], batch_size=1)
    assert both.item() == pytest.approx((first.item() + second.item()) / 2, rel=1e-6)
    both.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None
    with pytest.raises(ValueError, match="B = 5"):
        patch_nce_loss(q, k, batch_size=5)


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize(
    "name,layers",
    [("resnet_9blocks", (0, 4, 7, 10, 14)), ("resnet_2blocks", (0, 4, 7, 10, 11))],
)
def test_resnet_nce_layers_mirror_cut(name, layers):
    g = build_generator(name, ngf=4)
    assert nce_layers_of(g) == layers
    assert parse_layers("", g) == layers
    assert parse_layers("7, 4", g) == (4, 7)
    with pytest.raises(ValueError, match="out of range"):
        parse_layers("0,99", g)


@pytest.mark.parametrize("name", ["resnet_2blocks", "mobile_resnet_3blocks"])
def test_encoder_features_are_the_forward_pass_intermediates(name):
    torch.manual_seed(0)
    g = build_generator(name, ngf=4).eval()
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    n = len(g.model)
    with torch.no_grad():
        (last,) = encoder_features(g, x, [n - 1])
        assert torch.equal(last, g(x))  # all layers, in order
        # An instance norm followed by an in-place ReLU (layer 2 of the ResNet, 3 of the mobile
        # network): its feature is copied first, so it keeps its negative values.
        i = next(k for k in range(n - 1) if getattr(g.model[k + 1], "inplace", False))
        feat, after_relu = encoder_features(g, x, [i, i + 1])
        expected = x
        for layer in g.model[: i + 1]:
            expected = layer(expected)
        assert torch.equal(feat, expected) and (feat < 0).any()
        assert torch.equal(after_relu, expected.clamp(min=0))
    layers = nce_layers_of(g)
    assert len(encoder_features(g, x, layers)) == len(layers)


def test_patch_projector_gives_unit_vectors_at_the_chosen_positions():
    torch.manual_seed(0)
    heads = PatchProjector([3, 5], dim=16)
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 5, 2, 3)]
    ids = [torch.tensor([0, 5, 15]), torch.tensor([1, 4])]
    out = heads(feats, ids)
    assert [o.shape for o in out] == [(6, 16), (4, 16)]
    assert torch.allclose(out[0].norm(dim=1), torch.ones(6), atol=1e-5)
    # Row 1 of layer 0 is image 0, position 5 = (y 1, x 1).
    direct = torch.nn.functional.normalize(heads.mlps[0](feats[0][0, :, 1, 1]), dim=0)
    assert torch.allclose(out[0][1], direct, atol=1e-6)


# ----------------------------------------------------------------------------- the recipe


@pytest.fixture
def cut_cfg(tiny_cfg):
    tiny_cfg.train.recipe = "cut"
    tiny_cfg.model.generator = "mobile_resnet_3blocks"
    tiny_cfg.model.ngf = 4
    return tiny_cfg


def set_cut(cfg, **values):
    # Until config.py has the CUT fields the recipe reads them as attributes with defaults.
    for key, value in values.items():
        setattr(cfg.loss, key, value)
    return cfg


def batches(n: int, seed: int = 0, side: int = 32):
    gen = torch.Generator().manual_seed(seed)
    return [
        {k: torch.rand(2, 3, side, side, generator=gen) * 2 - 1 for k in "ab"} for _ in range(n)
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {"nce_idt": True, "lambda_nce": 1.0},  # CUT
        {"nce_idt": False, "lambda_nce": 10.0, "flip_equivariance": True},  # FastCUT
    ],
)
@pytest.mark.parametrize("generator", ["mobile_resnet_3blocks", "resnet_2blocks"])
def test_a_few_cut_steps_change_g_f_and_d_with_finite_losses(cut_cfg, settings, generator):
    cut_cfg.model.generator = generator
    set_cut(cut_cfg, num_patches=16, **settings)
    torch.manual_seed(0)
    recipe = CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))
    before = {k: v.clone() for k, v in flat_state(recipe.state_dict()).items()}
    for step, batch in enumerate(batches(3)):
        losses = recipe.train_step(batch, step)
        assert all(np.isfinite(v) for v in losses.values())
        assert ("loss/nce_idt" in losses) == settings["nce_idt"]
        assert {"loss/g", "loss/g_gan", "loss/nce", "loss/d_b"} <= set(losses)
    after = flat_state(recipe.state_dict())
    for net in ("g_ab.", "d_b.", "f."):
        keys = [k for k in before if k.startswith(net)]
        assert keys and any(not torch.equal(before[k], after[k]) for k in keys), net
    assert recipe.learning_rates()["lr/f"] == cut_cfg.optim.lr


def test_state_dict_round_trip_restores_the_run_exactly(cut_cfg):
    set_cut(cut_cfg, num_patches=16, flip_equivariance=True)
    data = batches(4, seed=3)
    torch.manual_seed(0)
    first = CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))
    for step in range(2):
        first.train_step(data[step], step)
    # Through bytes, as a checkpoint goes (and loadable with weights_only, as checkpoints are).
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.manual_seed(123)  # a different initialisation, overwritten by the state
    second = CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))
    second.load_state_dict(state)
    a, b = flat_state(first.state_dict()), flat_state(second.state_dict())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # Both continue identically: same patches, same flips, same updates.
    for step in (2, 3):
        assert first.train_step(data[step], step) == second.train_step(data[step], step)
    a, b = flat_state(first.state_dict()), flat_state(second.state_dict())
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_has_one_direction_and_loads_in_the_stylizer(cut_cfg, tmp_path):
    set_cut(cut_cfg, num_patches=16)
    torch.manual_seed(0)
    recipe = CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))
    recipe.train_step(batches(1)[0], 0)
    config = recipe.export_config()
    assert config["directions"] == {"photo->art": "g_ab"} and list(config["networks"]) == ["g_ab"]
    stylizer = Stylizer.from_pretrained(save_pretrained(tmp_path, recipe.export_modules(), config))
    x = batches(1, seed=5)[0]["a"]
    with torch.no_grad():
        assert torch.equal(stylizer.networks["g_ab"](x), recipe.ema["g_ab"].module(x))
    with pytest.raises(ValueError, match="no direction art->photo"):
        stylizer.resolve_direction("art", "photo")
    grid = recipe.sample_grid({"photo": x, "art": batches(1, seed=6)[0]["b"]})
    assert grid.shape == (3, 4 * 34 + 2, 2 * 34 + 2)  # rows A, G(A), B, G(B); 2 columns


def test_bad_settings_are_reported(cut_cfg):
    set_cut(cut_cfg, nce_temperature=0.0)
    with pytest.raises(ValueError, match="nce_temperature > 0"):
        CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))
    set_cut(cut_cfg, nce_temperature=0.07, nce_layers="1,x")
    with pytest.raises(ValueError, match="integers"):
        CUTRecipe(cut_cfg, device=CPU, domains=("photo", "art"))


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "preset,lambda_nce,nce_idt,flip",
    [("cut", 1.0, True, False), ("fastcut", 10.0, False, True), ("cut_tiny", 1.0, True, False)],
)
def test_presets_carry_the_paper_settings(preset, lambda_nce, nce_idt, flip):
    values = yaml.safe_load((PRESETS / f"{preset}.yaml").read_text())
    loss = values["loss"]
    assert values["train"]["recipe"] == "cut"
    assert (loss["lambda_nce"], loss["nce_idt"], loss["flip_equivariance"]) == (
        lambda_nce,
        nce_idt,
        flip,
    )
    assert loss["nce_temperature"] == 0.07
    # Exactly the fields the recipe reads (and that config.py needs), plus CycleGAN's.
    assert set(loss) - set(vars(LossConfig())) <= CUT_FIELDS
    assert set(vars(LossConfig())) >= CUT_FIELDS
    cfg = load_config(preset)
    assert cfg.loss.lambda_nce == lambda_nce and cfg.loss.nce_idt == nce_idt


def test_the_long_structure_preset_differs_from_the_short_one_in_batch_and_steps_only():
    short = yaml.safe_load((PRESETS / "fewshot_structure.yaml").read_text())
    long = yaml.safe_load((PRESETS / "fewshot_structure_long.yaml").read_text())
    assert (long["train"].pop("batch_size"), short["train"].pop("batch_size")) == (6, 1)
    assert long["train"].pop("steps") > short["train"].pop("steps")
    assert long == short
    load_config("fewshot_structure_long").validate()


def test_the_training_loop_runs_resumes_exactly_and_exports(cut_cfg):
    from culturegan.checkpoint import load_training_state
    from culturegan.training import loop

    assert loop.RECIPES["cut"] is CUTRecipe
    straight = loop.train(cut_cfg, progress=False)
    assert straight.finished
    stylizer = Stylizer.from_pretrained(straight.run_dir / "model")
    assert stylizer.directions == {"photo->art": "g_ab"}
    interrupted = loop.train(cut_cfg, until_step=3, progress=False)
    resumed = loop.train(resume_dir=interrupted.run_dir, progress=False)
    a = flat_state(load_training_state(straight.run_dir / loop.CHECKPOINT_NAME)["recipe"])
    b = flat_state(load_training_state(resumed.run_dir / loop.CHECKPOINT_NAME)["recipe"])
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
