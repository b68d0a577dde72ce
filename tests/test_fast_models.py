"""The CPU-practical generators: shapes, cost, rebuilding from config, training, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from culturegan.checkpoint import save_pretrained
from culturegan.config import load_config
from culturegan.data.images import pil_to_tensor, tensor_to_pil
from culturegan.inference import Stylizer
from culturegan.models import build_generator, list_generators
from culturegan.models.fast import MobileResnetGenerator, MobileUNetGenerator
from culturegan.models.generators import ResnetGenerator, generator_from_config
from culturegan.training.cyclegan import CycleGANRecipe

MOBILE = [
    "mobile_resnet_3blocks",
    "mobile_resnet_6blocks",
    "mobile_resnet_9blocks",
    "mobile_unet_3blocks",
    "mobile_unet_6blocks",
]


def flops_at(name: str, ngf: int, side: int) -> int:
    with torch.device("meta"):  # counted without computing anything
        net = build_generator(name, ngf=ngf)
        with FlopCounterMode(display=False) as counter:
            net(torch.empty(1, 3, side, side))
    return counter.get_total_flops()


def test_the_family_is_registered():
    assert set(MOBILE) <= set(list_generators())


@pytest.mark.parametrize("name", MOBILE)
@pytest.mark.parametrize("hw", [(24, 40), (56, 72), (16, 16)])
def test_odd_multiples_of_the_size_multiple_keep_their_shape(name, hw):
    torch.manual_seed(0)
    g = build_generator(name, ngf=8).eval()
    assert g.size_multiple == 8
    assert all(side // 8 % 2 == 1 for side in hw if side > 16)  # odd multiples of 8
    x = torch.rand(2, 3, *hw) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1 and torch.isfinite(y).all()


def test_images_of_a_batch_are_independent():
    # Instance norm, no batch statistics: a batch gives what its images give one by one (up to
    # the rounding of convolution kernels chosen per batch size).
    torch.manual_seed(0)
    g = build_generator("mobile_resnet_6blocks", ngf=8).eval()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        together = g(x)
        alone = torch.cat([g(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-4)


def test_much_cheaper_than_the_reference():
    ref = build_generator("resnet_9blocks", ngf=64)
    fast = build_generator("mobile_resnet_6blocks", ngf=32)
    n_ref = sum(p.numel() for p in ref.parameters())
    n_fast = sum(p.numel() for p in fast.parameters())
    assert n_ref > 11_000_000 and n_fast < n_ref / 15
    f_ref, f_fast = flops_at("resnet_9blocks", 64, 256), flops_at("mobile_resnet_6blocks", 32, 256)
    assert 95e9 < f_ref < 105e9  # ~99 GFLOP per 256 px image, as measured in issue 6
    assert f_fast < f_ref / 50
    assert flops_at("mobile_resnet_9blocks", 32, 256) < f_ref / 40


@pytest.mark.parametrize("name", MOBILE)
def test_generator_from_config_rebuilds_it(name):
    torch.manual_seed(1)
    g = build_generator(name, ngf=8, expansion=3).eval()
    assert g.config["name"] == name and g.config["expansion"] == 3
    rebuilt = generator_from_config(dict(g.config)).eval()
    assert isinstance(rebuilt, MobileResnetGenerator) and rebuilt.config == g.config
    rebuilt.load_state_dict(g.state_dict())
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(rebuilt(x), g(x))


@pytest.mark.parametrize("name", MOBILE)
def test_reflect_padding_is_kept_in_the_config_and_old_configs_read_as_zeros(name):
    torch.manual_seed(2)
    g = build_generator(name, ngf=8, pad_mode="reflect").eval()
    assert g.config["pad_mode"] == "reflect"
    old = dict(g.config)
    del old["pad_mode"]  # a model folder written before the option
    zeros, rebuilt = generator_from_config(old).eval(), generator_from_config(g.config).eval()
    zeros.load_state_dict(g.state_dict())
    rebuilt.load_state_dict(g.state_dict())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(rebuilt(x), g(x))
        # Same weights, other padding (its instance norms carry the border's change inward).
        assert (zeros(x) - g(x)).abs().mean() > 1e-2
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        build_generator(name, ngf=8, pad_mode="mirror")


@pytest.mark.parametrize("name", MOBILE)
@pytest.mark.parametrize("palette", [0, 4])
def test_icnr_draws_each_two_by_two_block_in_one_colour_at_the_start(name, palette):
    torch.manual_seed(3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = build_generator(name, ngf=8, palette=palette, icnr=True)(x)
        plain = build_generator(name, ngf=8, palette=palette)(x)
    # The four sub-pixels come from the same weights; only float summation order may differ.
    for i, j in ((0, 1), (1, 0), (1, 1)):
        torch.testing.assert_close(y[..., i::2, j::2], y[..., 0::2, 0::2], atol=1e-5, rtol=0)
    assert (plain[..., 0::2, 1::2] - plain[..., 0::2, 0::2]).abs().max() > 1e-3
    assert "icnr" not in build_generator(name, ngf=8, icnr=True).config  # initialisation only


def period_two_amplitude(y: torch.Tensor) -> float:
    """Largest amplitude of a checkerboard, column stripes or row stripes of period 2 in y."""
    i = torch.arange(y.shape[-2]).view(-1, 1)
    j = torch.arange(y.shape[-1]).view(1, -1)
    signs = [(-1.0) ** (i + j), ((-1.0) ** j).expand_as(i + j), ((-1.0) ** i).expand_as(i + j)]
    return max((y * s).mean(dim=(-2, -1)).abs().max().item() for s in signs)


@pytest.mark.parametrize("name", MOBILE)
@pytest.mark.parametrize("palette", [0, 4])
def test_output_tent_leaves_no_pattern_of_period_two(name, palette, tmp_path):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(4)
    g = build_generator(name, ngf=8, palette=palette, output_tent=True).eval()
    torch.manual_seed(4)
    plain = build_generator(name, ngf=8, palette=palette).eval()
    with torch.no_grad():
        y = g(x)
        assert period_two_amplitude(plain(x)) > 0.02  # random sub-pixel weights dither
        # Removed before the output's tanh / colour mix; what those add back is second order.
        assert period_two_amplitude(y) < 0.1 * period_two_amplitude(plain(x))
        rebuilt = generator_from_config(g.config).eval()
        rebuilt.load_state_dict(g.state_dict())
        assert g.config["output_tent"] is True and torch.equal(rebuilt(x), y)


def test_mobile_options_are_refused_for_other_generators():
    for options in (
        {"model.pad_mode": "reflect"},
        {"model.icnr": True},
        {"model.output_tent": True},
    ):
        cfg = load_config("cyclegan_tiny", options)
        with pytest.raises(ValueError, match="apply to the mobile_"):
            cfg.validate()
    with pytest.raises(ValueError, match="model.pad_mode must be one of"):
        load_config("cyclegan_fast", {"model.pad_mode": "mirror"}).validate()


def test_generator_from_config_keeps_the_resnet_path_and_rejects_bad_configs():
    # Any block count, also one without a registered name (as imported files can have).
    g = generator_from_config(
        {"name": "resnet_4blocks", "in_channels": 3, "out_channels": 3, "ngf": 8, "n_blocks": 4}
    )
    assert isinstance(g, ResnetGenerator) and g.config["n_blocks"] == 4
    with pytest.raises(ValueError, match="unknown name 'no_such_net'"):
        generator_from_config({"name": "no_such_net", "ngf": 8})
    with pytest.raises(ValueError, match="has 6 blocks, got 9"):
        generator_from_config({"name": "mobile_resnet_6blocks", "n_blocks": 9})
    with pytest.raises(ValueError, match="cannot rebuild"):
        generator_from_config({"name": "mobile_resnet_6blocks", "n_layers": 3})
    with pytest.raises(ValueError, match="need n_blocks >= 1"):
        build_generator("mobile_resnet_3blocks", ngf=0)


@pytest.fixture
def fast_cfg(tiny_cfg):
    tiny_cfg.model.generator = "mobile_resnet_3blocks"
    tiny_cfg.model.ngf = 4
    return tiny_cfg


def test_a_cyclegan_step_with_the_fast_generator_changes_the_weights(fast_cfg):
    torch.manual_seed(0)
    recipe = CycleGANRecipe(fast_cfg, device=torch.device("cpu"), domains=("photo", "art"))
    before = {k: v.clone() for k, v in recipe.g_ab.state_dict().items()}
    before_ba = {k: v.clone() for k, v in recipe.g_ba.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for k in "ab"}
    for step in range(2):
        losses = recipe.train_step(batch, step)
        assert all(np.isfinite(v) for v in losses.values())
    after, after_ba = recipe.g_ab.state_dict(), recipe.g_ba.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)  # every weight of G moved
    assert any(not torch.equal(before_ba[k], after_ba[k]) for k in before_ba)


def test_export_then_stylizer_gives_identical_outputs(fast_cfg, tmp_path):
    torch.manual_seed(0)
    recipe = CycleGANRecipe(fast_cfg, device=torch.device("cpu"), domains=("photo", "art"))
    gen = torch.Generator().manual_seed(0)
    recipe.train_step({k: torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for k in "ab"}, 0)
    folder = save_pretrained(tmp_path / "model", recipe.export_modules(), recipe.export_config())
    stylizer = Stylizer.from_pretrained(folder)
    assert stylizer.size_multiple == 8
    assert stylizer.config["networks"]["g_ab"]["name"] == "mobile_resnet_3blocks"
    stylizer.edge_margin = 0  # the network alone (the margin: tests/test_inference.py)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))  # multiples of 8
    x = pil_to_tensor(photo)[None]
    for target, name in (("art", "g_ab"), ("photo", "g_ba")):
        with torch.no_grad():
            expected = recipe.export_modules()[name](x)
            assert torch.equal(stylizer.networks[name](x), expected)
        out = stylizer(photo, target=target).images[0]
        assert np.array_equal(np.asarray(out), np.asarray(tensor_to_pil(expected[0])))
    # Sizes that are not multiples of 8 are padded and cropped back.
    odd = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    assert stylizer(odd).images[0].size == (53, 37)


def test_the_cyclegan_fast_preset_builds_the_fast_networks():
    cfg = load_config("cyclegan_fast")
    assert (cfg.model.generator, cfg.model.ngf, cfg.model.ndf) == ("mobile_unet_6blocks", 32, 32)
    assert cfg.data.crop_size % 8 == 0 and cfg.train.recipe == "cyclegan"
    recipe = CycleGANRecipe(cfg, device=torch.device("cpu"), domains=("photo", "art"))
    assert isinstance(recipe.g_ab, MobileUNetGenerator)
    assert recipe.g_ab.config["pad_mode"] == "reflect"
    assert recipe.export_config()["size_multiple"] == 8
    # The tuned losses (docs/quality.md, "Sessions 16 and 17") on the U-Net generator beside
    # cyclegan_mobile's discriminator; cyclegan_mobile's paper losses stay as the baseline.
    assert recipe.perceptual.enabled and cfg.loss.diffaugment and cfg.loss.lambda_identity == 0
    plain = load_config("cyclegan_mobile")
    assert plain.model.generator == "mobile_resnet_6blocks" and plain.data == cfg.data
    assert (plain.model.discriminator, plain.model.ndf) == (cfg.model.discriminator, cfg.model.ndf)
    assert (plain.loss.lambda_cycle, plain.loss.lambda_identity, plain.loss.lambda_gan) == (
        10.0,
        0.5,
        1.0,
    )
    assert not CycleGANRecipe(
        plain, device=torch.device("cpu"), domains=("a", "b")
    ).perceptual.enabled
