"""Few-shot training parts: the projected discriminator, DiffAugment / ADA, the perceptual
content and collection-style losses, and exact resume with all of them on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import flat_state
from culturegan.augment import DiffAugment
from culturegan.checkpoint import load_training_state
from culturegan.config import load_config, set_field
from culturegan.data.palette import art_palette
from culturegan.losses import (
    GREY_WEIGHTS,
    AdversarialLoss,
    colour_transfer,
    content_loss,
    feature_stats,
    flat_loss,
    guide_loss,
    hue_transfer,
    outline_loss,
    palette_loss,
    patch_swd_loss,
    photo_outlines,
    photo_regions,
    region_interior,
    region_means,
    sliced_wasserstein,
    structure_loss,
    style_stats_loss,
    style_swd_loss,
)
from culturegan.models import build_discriminator, build_generator
from culturegan.models.generators import generator_from_config
from culturegan.models.pretrained import frozen_lite0, lite0_maps
from culturegan.training import train
from culturegan.training.loop import CHECKPOINT_NAME


def images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def trunk_digest() -> str:
    digest = hashlib.sha256()
    for value in frozen_lite0().state_dict().values():
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------ projected discriminator


@pytest.mark.parametrize(("size", "sides"), [(64, [4, 4, 4, 2]), (128, [4, 4, 4, 4])])
def test_projected_discriminator_gives_one_logit_map_per_scale(size, sides):
    d = build_discriminator("projected_lite0", ndf=8, train_size=size)
    mixed = d.features(images(2, size, 0))
    # Lite0 blocks 2, 4, 10, 14: strides 4, 8, 16, 32; mixed to ndf * 2**i channels.
    assert [tuple(f.shape) for f in mixed] == [
        (2, 8 * 2**i, size // (4 * 2**i), size // (4 * 2**i)) for i in range(4)
    ]
    logits = d(images(2, size, 1))
    assert [tuple(t.shape) for t in logits] == [(2, 1, s, s) for s in sides]


def test_projected_discriminator_keeps_its_feature_network_frozen_and_out_of_the_state():
    before = trunk_digest()
    d = build_discriminator("projected_lite0", ndf=8, train_size=64)
    state = d.state_dict()
    assert not [k for k in state if "_blocks" in k or "_conv_stem" in k]
    assert {f"ccm{i}" for i in range(4)} <= state.keys()  # the fixed mixing travels with it
    trained = {name for name, _ in d.named_parameters()}
    assert trained and all(name.startswith("heads.") for name in trained)
    assert d.config["feature_net_sha256"].startswith("57934424")

    x = images(2, 64, 2).requires_grad_(True)
    opt = torch.optim.Adam(d.parameters(), lr=0.1)
    loss = AdversarialLoss("hinge").discriminator(d(x), d(images(2, 64, 3)))
    loss.backward()
    opt.step()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the generator's images get gradient
    assert all(p.grad is None for p in frozen_lite0().parameters())  # the trunk gets none
    assert trunk_digest() == before  # and the optimiser step did not touch it


def test_projected_mixing_comes_from_its_seed_and_domains_pick_their_channel():
    a = build_discriminator("projected_lite0", ndf=8, train_size=64, mix_seed=3)
    b = build_discriminator("projected_lite0", ndf=8, train_size=64, mix_seed=3)
    c = build_discriminator("projected_lite0", ndf=8, train_size=64, mix_seed=4)
    assert torch.equal(a.ccm0, b.ccm0) and not torch.equal(a.ccm0, c.ccm0)
    multi = build_discriminator("projected_lite0", ndf=8, train_size=64, num_domains=3)
    multi.eval()  # in training mode each forward takes a spectral-norm power-iteration step
    x = images(2, 64, 5)
    every = multi(x)
    picked = multi(x, torch.tensor([2, 0]))
    for full, one in zip(every, picked, strict=True):
        assert torch.equal(one[0, 0], full[0, 2]) and torch.equal(one[1, 0], full[1, 0])
    with pytest.raises(ValueError, match="projected_lite0"):
        build_discriminator("patchgan", ndf=8, num_domains=3)


def test_adversarial_loss_of_several_scales_is_the_mean_over_scales():
    adv = AdversarialLoss("lsgan")
    small, large = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 8, 8)
    # Per scale: (1 - 0.5)^2 = 0.25 and (1 - 0)^2 = 1; the mean, not weighted by size.
    assert adv.generator([small, large]).item() == pytest.approx(0.625)
    expected = 0.5 * (adv.discriminator(small, large) + adv.discriminator(large, small))
    assert adv.discriminator([small, large], [large, small]).item() == pytest.approx(expected)


# ------------------------------------------------------------------ DiffAugment


def test_diffaugment_applies_the_same_transform_to_real_and_fake_and_is_differentiable():
    real = images(4, 32, 6)
    fake = real.clone().requires_grad_(True)
    one = DiffAugment("color,translation,cutout", seed=11)
    two = DiffAugment("color,translation,cutout", seed=11)
    out_real, out_fake = one(real), two(fake)
    assert torch.equal(out_real, out_fake.detach())  # same stream, same transformation
    assert not torch.allclose(out_real, real)
    out_fake.sum().backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    # Each call draws anew; the state (with p) round-trips for exact resume.
    state = one.state_dict()
    again = one(real)
    assert not torch.equal(again, out_real)
    one.load_state_dict(state)
    assert torch.equal(one(real), again)


def test_each_diffaugment_operation_does_what_it_says():
    x = images(8, 32, 7)
    shifted = DiffAugment("translation", seed=1)(x)
    assert shifted.shape == x.shape
    # A shift moves content and fills with zeros (grey in [-1, 1]); no new values appear.
    assert set(shifted.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
    cut = DiffAugment("cutout", seed=1)(x)
    holes = (cut == -1) & (x != -1)
    # A square of half the side: a quarter of the area, fewer where it falls off the edge.
    share = holes.float().mean(dim=(1, 2, 3))
    assert (share > 0.05).all() and (share <= 0.25 + 1e-6).all()
    flat = torch.zeros(4, 3, 16, 16)  # mid grey: only brightness can move it
    coloured = DiffAugment("color", seed=1)(flat)
    per_image = coloured.mean(dim=(1, 2, 3))
    # brightness +-0.5; saturation and contrast keep the mean of a flat image
    assert per_image.abs().max() <= 0.5 + 1e-6 and per_image.std() > 0
    assert torch.equal(DiffAugment("color,cutout", p=0.0, seed=1)(x), x)
    assert torch.equal(DiffAugment("", seed=1)(x), x)
    with pytest.raises(ValueError, match="rotate"):
        DiffAugment("color,rotate")


def test_ada_raises_p_while_the_discriminator_is_sure_and_lowers_it_otherwise():
    ada = DiffAugment("color", p=0.5, seed=0, ada_target=0.6, ada_interval=2, ada_kimg=0.01)
    for _ in range(2):
        ada.observe([torch.ones(5, 1, 2, 2)])  # every real image judged real: r_t = 1
    assert ada.p == 1.0  # 10 images over 0.01 kimg: a full step up, clipped at 1
    for _ in range(2):
        ada.observe(-torch.ones(5, 1, 2, 2))  # r_t = -1 < 0.6
    assert ada.p == pytest.approx(0.0)
    fixed = DiffAugment("color", p=0.3, seed=0)
    fixed.observe(torch.ones(5, 1))
    assert fixed.p == 0.3


# ------------------------------------------------------------------ perceptual terms


def test_content_and_style_losses_on_known_cases():
    x = images(2, 64, 8)
    maps = lite0_maps(x, (7, 10))
    assert content_loss(maps, maps).item() == pytest.approx(0.0, abs=1e-6)
    other = lite0_maps(x.flip(0), (7, 10))
    assert content_loss(maps, other).item() > 0.1
    # Unit-length features: the distance of two positions is at most 4 (opposite vectors).
    assert content_loss(maps, other).item() <= 4.0

    # Statistics: a constant map has its value as mean and ~0 deviation.
    constant = torch.full((1, 2, 4, 4), 3.0)
    assert torch.allclose(feature_stats(constant), torch.tensor([[3.0, 3.0, 1e-4, 1e-4]]))
    # The style target is the batch's mean statistics: an output with exactly those has 0 loss.
    a, b = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0)
    middle = torch.ones(1, 1, 2, 2)
    assert style_stats_loss([middle], [torch.cat([a, b])]).item() == pytest.approx(0.0, abs=1e-6)
    # mean off by 1, deviation equal (both ~0): squared error 1 over 2 statistics
    assert style_stats_loss([a], [torch.cat([middle, middle])]).item() == pytest.approx(0.5)


def test_perceptual_size_shows_lite0_the_images_enlarged_without_blur(tiny_cfg):
    from culturegan.training.base import PerceptualTerms

    taps = tuple(tiny_cfg.loss.style_taps)

    x = images(2, 64, 9)
    set_field(tiny_cfg, "loss.perceptual_size", 128)
    enlarged = PerceptualTerms(tiny_cfg)._maps(x, taps)
    by_hand = lite0_maps(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), taps)
    for a, b in zip(enlarged, by_hand, strict=True):
        assert a.shape == b.shape and torch.equal(a, b)
    # Images already as large as the setting, and the default 0, are read as they are.
    big = images(1, 128, 10)
    assert torch.equal(PerceptualTerms(tiny_cfg)._maps(big, (0,))[0], lite0_maps(big, (0,))[0])
    set_field(tiny_cfg, "loss.perceptual_size", 0)
    assert PerceptualTerms(tiny_cfg)._maps(x, (0,))[0].shape == lite0_maps(x, (0,))[0].shape


def test_style_terms_read_the_lite0_blocks_of_loss_style_taps(tiny_cfg):
    from culturegan.training.base import PerceptualTerms

    x = images(2, 64, 11)
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    set_field(tiny_cfg, "loss.style_taps", [2, 0])
    terms = PerceptualTerms(tiny_cfg)
    assert terms.fake_taps() == {0, 2}
    read = terms.features(x, x, x.flip(0))
    assert [m.shape for m in read.style] == [m.shape for m in lite0_maps(x, (0, 2))]
    value, logs = terms(x, x, x.flip(0))
    assert "loss/style_stats" in logs and value.item() > 0


def test_gaussian_blur_keeps_means_and_flat_images_and_smooths_noise():
    from culturegan.losses import gaussian_blur

    flat = torch.full((1, 3, 20, 24), 0.25)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)
    x = images(2, 32, 13)
    assert gaussian_blur(x, 0.0) is x  # sigma 0: no blur at all
    soft = gaussian_blur(x, 1.0)
    assert soft.shape == x.shape
    # Reflection keeps each channel's mean close (only the borders reweight it), while the
    # pixel-to-pixel differences (the fine texture) shrink.
    assert (soft.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().max() < 0.02
    fine = (x[..., 1:] - x[..., :-1]).abs().mean()
    assert (soft[..., 1:] - soft[..., :-1]).abs().mean() < 0.6 * fine
    # One bright pixel spreads as a Gaussian: the centre keeps 1 / (2 pi sigma^2) of it.
    dot = torch.zeros(1, 1, 21, 21)
    dot[0, 0, 10, 10] = 1.0
    assert gaussian_blur(dot, 1.0)[0, 0, 10, 10].item() == pytest.approx(0.159, abs=0.002)


def test_style_blur_shows_the_style_terms_the_art_blurred(tiny_cfg):
    from culturegan.losses import gaussian_blur
    from culturegan.training.base import PerceptualTerms

    x, art = images(2, 64, 14), images(2, 64, 15)
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    sharp = PerceptualTerms(tiny_cfg).features(x, x, art).style
    set_field(tiny_cfg, "loss.style_blur", 1.5)
    terms = PerceptualTerms(tiny_cfg)
    soft = terms.features(x, x, art)
    by_hand = lite0_maps(gaussian_blur(art, 1.5), terms.style_taps)
    for a, b, c in zip(soft.style, by_hand, sharp, strict=True):
        assert torch.equal(a, b) and not torch.equal(a, c)
    # The outputs themselves are read as they are: only the target is blurred.
    assert all(
        torch.equal(soft.fake[t], m)
        for t, m in zip(terms.style_taps, lite0_maps(x, terms.style_taps), strict=True)
    )
    with pytest.raises(ValueError, match=r"loss.style_blur must be a Gaussian sigma in \[0, 8\]"):
        load_config(None, {"loss.style_blur": -1.0}).validate()


def test_focus_weights_follow_the_photos_drawing_and_weigh_the_statistics():
    from culturegan.losses import feature_stats, focus_weights

    # A photo dark on the left, bright on the right: one vertical edge, flat on both sides.
    photo = torch.full((1, 3, 32, 32), -1.0)
    photo[..., 16:] = 1.0
    w = focus_weights(photo, 1.0)
    assert w.shape == (1, 1, 32, 32)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-4)
    assert w[..., :, 2].max().item() < 1e-3 and w[..., :, 29].max().item() < 1e-3  # flat
    assert w[..., :, 15:17].min().item() > 4.0  # the edge carries the weight
    assert torch.allclose(focus_weights(photo, 0.0), torch.ones(1, 1, 32, 32))
    half = focus_weights(photo, 0.5)
    assert torch.allclose(half, 0.5 + 0.5 * w)
    # Weighted statistics: equal weights change nothing, 0/1 weights read only the ones.
    feat = images(2, 8, 21)
    assert torch.allclose(feature_stats(feat, torch.full((2, 1, 8, 8), 3.0)), feature_stats(feat),
                          atol=1e-6)  # fmt: skip
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :, :4] = 1.0
    assert torch.allclose(feature_stats(feat, mask), feature_stats(feat[..., :4]), atol=1e-6)


def test_nearest_style_target_asks_each_output_for_its_nearest_artwork_not_the_average(tiny_cfg):
    from culturegan.losses import style_stats_loss
    from culturegan.training.base import PerceptualTerms

    dark, light = torch.zeros(1, 2, 4, 4), torch.full((1, 2, 4, 4), 2.0)
    grey = torch.ones(1, 2, 4, 4)
    art = [torch.cat([light, grey, dark])]
    # A dark and a light output each have an artwork with their own statistics: nothing to pay.
    # Against the average (every channel's mean 1) each pays its mean off by 1 in half the
    # statistics (deviations all ~0).
    outputs = [torch.cat([dark, light])]
    assert style_stats_loss(outputs, art, target="nearest").item() == pytest.approx(0, abs=1e-6)
    assert style_stats_loss(outputs, art).item() == pytest.approx(0.5)
    # Slightly off the dark artwork: the loss and its gradient are that artwork's alone, and
    # nearest is chosen over every layer together (a second layer where "grey" is nearer
    # does not outvote a first layer where "dark" is much nearer).
    near_dark = torch.full((1, 2, 4, 4), 0.1, requires_grad=True)
    style_stats_loss([near_dark], art, target="nearest").backward()
    alone = near_dark.detach().clone().requires_grad_()
    style_stats_loss([alone], [dark]).backward()
    assert torch.allclose(near_dark.grad, alone.grad)
    layer2_out = torch.full((1, 1, 2, 2), 1.0)
    layer2_art = torch.cat([torch.full((1, 1, 2, 2), v) for v in (5.0, 1.0, 1.2)])
    two = style_stats_loss([near_dark, layer2_out], [art[0], layer2_art], target="nearest")
    # grey in layer 1: (1 - 0.1)^2 / 2 = 0.405, layer 2: 0; dark: 0.005 and (0.2^2) / 2 = 0.02
    assert two.item() == pytest.approx((0.005 + 0.02) / 2, rel=1e-4)
    with pytest.raises(ValueError, match="one target per output"):
        style_stats_loss(outputs, art, paired=True, target="nearest")
    # Through the training terms: each output is itself among the art (in another order), so
    # nothing is owed to its nearest artwork, and the average of two unlike images is owed.
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    x = images(2, 64, 26)
    by_mean = PerceptualTerms(tiny_cfg)(x, x, x.flip(0))[1]["loss/style_stats"]
    set_field(tiny_cfg, "loss.style_target", "nearest")
    by_nearest = PerceptualTerms(tiny_cfg)(x, x, x.flip(0))[1]["loss/style_stats"]
    assert by_nearest == pytest.approx(0, abs=1e-6) and by_mean > 0.01
    # One model for several cultures draws a batch of mixed cultures: refused there.
    with pytest.raises(ValueError, match="style_target 'nearest' applies to the cut and cyclegan"):
        load_config("multidomain_tiny", {"loss.style_target": "nearest"}).validate()


def test_a_style_bank_lets_each_output_find_its_nearest_artwork_in_earlier_batches(
    tiny_cfg, monkeypatch
):
    from culturegan.losses import feature_stats, style_stats_loss
    from culturegan.training.base import PerceptualTerms

    dark, light = torch.zeros(1, 2, 4, 4), torch.full((1, 2, 4, 4), 2.0)
    # A dark output with only light art in its batch owes the distance to it; with a dark
    # artwork seen before, nothing.
    assert style_stats_loss([dark], [light], target="nearest").item() == pytest.approx(2.0)
    banked = style_stats_loss([dark], [light], target="nearest", bank=[feature_stats(dark)])
    assert banked.item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="for the 'nearest' or 'mixed' target"):
        style_stats_loss([dark], [light], bank=[feature_stats(dark)])
    # Through the training terms: the bank holds the last style_bank artworks, oldest dropped.
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    set_field(tiny_cfg, "loss.style_target", "nearest")
    set_field(tiny_cfg, "loss.style_bank", 3)
    terms = PerceptualTerms(tiny_cfg)
    x, y = images(2, 64, 26), images(2, 64, 27)
    first = terms(x, x, y)[1]["loss/style_stats"]  # outputs x against art y: owes the distance
    assert first > 0.01 and [k.shape[0] for k in terms.bank] == [2] * len(terms.style_taps)
    second = terms(y, y, x)[1]["loss/style_stats"]  # outputs y find art y in the bank
    assert second == pytest.approx(0, abs=1e-6)
    assert [k.shape[0] for k in terms.bank] == [3] * len(terms.style_taps)  # y's last, x's two
    again = terms(x, x, y)[1]["loss/style_stats"]  # outputs x find art x in the bank
    assert again == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="style_bank applies to the cut recipe"):
        tiny_cfg.validate()  # cyclegan: its two directions' art would share one bank
    for settings, message in [
        ({"loss.style_bank": -1}, "style_bank must be 0-4096"),
        ({"loss.style_bank": 3, "loss.style_target": "mean"}, "holds candidates for loss.style_"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_config("cut_tiny", {"loss.style_target": "nearest", **settings}).validate()
    banked = {"loss.style_target": "nearest", "loss.style_bank": 3, "loss.lambda_style_stats": 1.0}
    load_config("cut_tiny", banked).validate()
    with pytest.raises(ValueError, match="loss.lambda_style_stats is 0"):
        load_config("cut_tiny", {**banked, "loss.lambda_style_stats": 0.0}).validate()
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun each process would bank its own art
    with pytest.raises(ValueError, match="style_bank runs on one process"):
        PerceptualTerms(tiny_cfg)


def test_the_matched_target_averages_the_artworks_laid_out_like_the_photo(tiny_cfg):
    from culturegan.losses import feature_stats, grey_layout, matched_mix, style_stats_loss
    from culturegan.training.base import PerceptualTerms

    # Layouts: where a picture's light and dark lie, on a 4 x 4 grid.
    night = torch.full((1, 3, 32, 32), -0.8)
    day = torch.full((1, 3, 32, 32), 0.8)
    dusk = torch.cat([day[..., :16, :], night[..., 16:, :]], dim=2)  # light sky, dark ground
    layout = grey_layout(dusk)
    assert layout.shape == (1, 16)
    assert torch.allclose(layout[0, :8], torch.full((8,), 0.9)) and torch.allclose(
        layout[0, 8:], torch.full((8,), 0.1))  # fmt: skip
    art = torch.cat([day, night, dusk, day])
    mix = matched_mix(grey_layout(torch.cat([night, dusk])), grey_layout(art), 2)
    # the night photo: night and dusk (dusk's dark half is nearer than day); the dusk photo:
    # dusk, then night and day tie at the same distance: either, never both
    assert mix[0].tolist() == [0, 0.5, 0.5, 0]
    assert mix[1, 2] == 0.5 and mix[1].sum() == pytest.approx(1)
    # The mixed target: each output against its own mix of the artworks' statistics.
    a, b = torch.zeros(1, 2, 4, 4), torch.full((1, 2, 4, 4), 2.0)
    mix = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    value = style_stats_loss([torch.cat([a, a])], [torch.cat([a, b])], target="mixed", mix=mix)
    assert value.item() == pytest.approx((0 + 0.5) / 2)  # the second owes its mean off by 1
    banked = style_stats_loss([a], [b], target="mixed", bank=[feature_stats(a)],
                              mix=torch.tensor([[1.0, 0.0]]))  # fmt: skip
    assert banked.item() == pytest.approx(0, abs=1e-6)  # the bank's artwork comes first
    with pytest.raises(ValueError, match="takes a mix"):
        style_stats_loss([a], [b], target="mixed")
    with pytest.raises(ValueError, match=r"mix must be \(outputs, artworks\) = \(1, 1\)"):
        style_stats_loss([a], [b], target="mixed", mix=torch.ones(1, 2) / 2)
    # Through the training terms: a dark photo is held to the dark art of earlier batches.
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    set_field(tiny_cfg, "loss.style_target", "matched")
    set_field(tiny_cfg, "loss.style_bank", 4)
    terms = PerceptualTerms(tiny_cfg)
    dark_art = torch.cat([night, night]) + 0.05 * images(2, 32, 30)
    light_art = torch.cat([day, day]) + 0.05 * images(2, 32, 31)
    terms(light_art, light_art, dark_art)  # the bank now holds the dark art
    assert terms.bank_layout.shape == (2, 16) and len(terms.bank) == len(terms.style_taps)
    dark_output = dark_art.flip(0)
    owed = terms(dark_output, dark_output, light_art)[1]["loss/style_stats"]
    set_field(tiny_cfg, "loss.style_target", "mean")
    set_field(tiny_cfg, "loss.style_bank", 0)
    against_batch = PerceptualTerms(tiny_cfg)(dark_output, dark_output, light_art)[1]
    assert owed < against_batch["loss/style_stats"] / 10
    # The bank's checkpoint: loaded back as it was, the newest kept under a smaller bank, and
    # refused with its shapes named when it does not fit the run's style taps.
    state = terms.bank_state()
    set_field(tiny_cfg, "loss.style_target", "matched")
    assert state["layout"].shape == (4, 16)  # two batches of two artworks
    for size, rows in [(4, 4), (3, 3), (1, 1), (0, 0)]:
        set_field(tiny_cfg, "loss.style_bank", size)
        resumed = PerceptualTerms(tiny_cfg)
        resumed.load_bank_state(state, torch.device("cpu"))
        assert sum(t.shape[0] for t in resumed.bank) == rows * len(resumed.style_taps)
        if rows:
            assert torch.equal(resumed.bank_layout, state["layout"][-rows:])
            assert torch.equal(resumed.bank[0], state["0"][-rows:])
    set_field(tiny_cfg, "loss.style_bank", 4)
    for broken in [
        {key: t for key, t in state.items() if key != "0"},  # a tap short
        {**state, "layout": state["layout"][:1]},  # fewer layouts than statistics
        {key: t for key, t in state.items() if key != "layout"},
    ]:
        with pytest.raises(ValueError, match=r"style bank does not fit this run .* holds \{"):
            PerceptualTerms(tiny_cfg).load_bank_state(broken, torch.device("cpu"))
    for settings, message in [
        ({"loss.style_bank": 0}, "'matched' chooses among the artworks of loss.style_bank"),
        ({"loss.style_bank": 4, "train.recipe": "cyclegan"}, "in the cut recipe"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_config("cut_tiny", {"loss.style_target": "matched", **settings}).validate()


def test_style_focus_asks_the_arts_spread_of_the_drawing_not_of_the_flat_areas(tiny_cfg):
    from culturegan.losses import style_stats_loss
    from culturegan.training.base import PerceptualTerms

    maps = [images(1, 16, 22).requires_grad_()]
    art = [images(2, 16, 23) * 3]
    focus = torch.zeros(1, 1, 32, 32)
    focus[..., :16, :] = 1.0  # the top half of the photo has drawing, the bottom is flat
    style_stats_loss(maps, art, focus=focus).backward()
    grad = maps[0].grad.abs().sum(dim=1)[0]
    assert grad[8:].max().item() == 0.0 and grad[:8].min().item() > 0.0
    # Through the training terms: the focus comes from the source photo and changes the value.
    x, art_images = images(2, 64, 24), images(2, 64, 25)
    photo = x.clone()
    photo[..., 32:] = photo[..., 32:].mean()  # a flat bottom half
    set_field(tiny_cfg, "loss.lambda_style_stats", 1.0)
    plain = PerceptualTerms(tiny_cfg)(x, photo, art_images)[1]["loss/style_stats"]
    set_field(tiny_cfg, "loss.style_focus", 1.0)
    focused = PerceptualTerms(tiny_cfg)(x, photo, art_images)[1]["loss/style_stats"]
    assert focused != pytest.approx(plain, rel=1e-3)
    with pytest.raises(ValueError, match=r"loss.style_focus must be in \[0, 1\]"):
        load_config(None, {"loss.style_focus": 1.5}).validate()


def test_sliced_wasserstein_on_known_distributions():
    # 1-D clouds (one direction): the distance is the mean squared gap of matching quantiles.
    direction = torch.ones(1, 1)
    ramp = torch.linspace(0, 1, 100).view(1, 1, 100)
    assert sliced_wasserstein(ramp, ramp[0].flip(1), direction).item() == pytest.approx(
        0, abs=1e-12
    )
    shifted = sliced_wasserstein(ramp + 0.5, ramp[0], direction).item()
    assert shifted == pytest.approx(0.25, rel=1e-5)  # every quantile 0.5 apart
    # Reference of another size: read at the output's quantiles, so a 4x denser copy is ~0.
    dense = torch.linspace(0, 1, 400).view(1, 400)
    assert sliced_wasserstein(ramp, dense, direction).item() < 1e-4
    # Same mean and spread, different shape (two flat levels vs a ramp): the moments agree,
    # the distributions do not.
    levels = torch.cat([torch.zeros(50), torch.ones(50)]).view(1, 1, 100)
    levels = (levels - levels.mean()) / levels.std() * ramp.std() + ramp.mean()
    assert style_stats_loss([levels.view(1, 1, 10, 10)], [ramp.view(1, 1, 10, 10)]).item() < 1e-6
    assert sliced_wasserstein(levels, ramp[0], direction).item() > 0.005


def test_palette_and_feature_swd_losses_pull_toward_the_art_and_repeat_with_their_seed():
    art = torch.zeros(2, 3, 16, 16)
    art[:, 2] = 0.8  # blue paper
    blue_out = art[:1].clone().requires_grad_(True)
    red_out = torch.zeros(1, 3, 16, 16)
    red_out[:, 0] = 0.8
    assert palette_loss(blue_out, art, seed=1).item() == pytest.approx(0.0, abs=1e-12)
    assert palette_loss(red_out, art, seed=1).item() > 0.1
    # The seed picks the directions: the same seed (a resumed step) the same value, another
    # seed another estimate of the same distance.
    assert palette_loss(red_out, art, seed=3).item() == palette_loss(red_out, art, seed=3).item()
    assert palette_loss(red_out, art, seed=3).item() != palette_loss(red_out, art, seed=4).item()
    # Gradient descent on the palette loss moves a red picture toward the art's blue.
    x = red_out.clone().requires_grad_(True)
    for _ in range(50):
        (grad,) = torch.autograd.grad(palette_loss(x, art, seed=0), x)
        x = (x - 20 * grad).detach().requires_grad_(True)
    assert x[:, 2].mean() > 0.4 and x[:, 0].mean() < 0.4
    maps = lite0_maps(images(1, 64, 3), (0, 2))
    ref = lite0_maps(images(3, 64, 4), (0, 2))
    assert style_swd_loss(maps, ref, seed=5).item() == style_swd_loss(maps, ref, seed=5).item()
    assert style_swd_loss(maps, ref, seed=5).item() != style_swd_loss(maps, ref, seed=6).item()
    assert style_swd_loss(maps, ref, seed=2**62 * 3).item() > 0  # huge seeds are reduced
    assert style_swd_loss(maps, ref, seed=5).item() > style_swd_loss(ref, ref, seed=5).item()


def test_patch_loss_tells_flat_colour_areas_from_texture_of_the_same_colours():
    gen = torch.Generator().manual_seed(0)
    # "Art": flat halves of two colours (a print). "Noise": the same two colours, salt and
    # pepper, so the palette (1x1 patches) is identical and only 5x5 patches differ.
    flat = torch.zeros(1, 3, 32, 32)
    flat[:, 0, :, :16], flat[:, 2, :, 16:] = 0.9, 0.9
    mask = torch.rand(1, 1, 32, 32, generator=gen) < 0.5
    noise = torch.where(mask, flat[:, :, :, :1], flat[:, :, :, -1:])
    assert palette_loss(noise, flat, seed=0).item() < 0.01
    assert patch_swd_loss(noise, flat, seed=0).item() > 10 * patch_swd_loss(flat, flat, seed=0)
    assert patch_swd_loss(flat, flat, seed=0).item() < 1e-3
    x = noise.clone().requires_grad_(True)
    patch_swd_loss(x, flat, seed=1).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_structure_loss_keeps_the_photos_edges_and_leaves_its_colours_free():
    gen = torch.Generator().manual_seed(0)
    photo = torch.rand(2, 3, 48, 48, generator=gen) * 2 - 1
    photo = torch.nn.functional.avg_pool2d(photo, 3, 1, 1)  # some local structure
    assert structure_loss(photo, photo).item() < 1e-5
    # The same drawing in other colours (an affine change of every channel) keeps most of the
    # structure; noise of the same spread, or the photo moved by a few pixels, does not.
    recoloured = 0.6 * photo.flip(1) + 0.2
    noise = torch.rand(2, 3, 48, 48, generator=gen) * 2 - 1
    shifted = photo.roll(shifts=4, dims=-1)
    kept = structure_loss(recoloured, photo).item()
    assert kept < 0.5 * structure_loss(noise, photo).item()
    assert kept < 0.5 * structure_loss(shifted, photo).item()
    x = noise.clone().requires_grad_(True)
    structure_loss(x, photo).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="smaller than the window"):
        structure_loss(photo[..., :8, :8], photo[..., :8, :8])


def test_structure_loss_guards_the_border_as_much_as_the_middle():
    # Over SSIM's valid part alone, a black band down the left edge cost 2% of the same band in
    # the middle, and trained generators painted one there.
    gen = torch.Generator().manual_seed(0)
    photo = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1, 3, 1, 1)

    def band(column: int) -> torch.Tensor:
        out = photo.clone()
        out[..., column : column + 2] = -1
        return out

    for edge in (0, 62):
        assert structure_loss(band(edge), photo) > 0.5 * structure_loss(band(31), photo)
    top = photo.clone()
    top[..., :2, :] = -1
    assert structure_loss(top, photo) > 0.5 * structure_loss(band(31), photo)


def two_tone_photo(size: int = 48) -> torch.Tensor:
    """(2, 3, size, size): left half dark blue, right half pale yellow; the second image
    split the other way (top / bottom), with a little noise so that no region is perfectly
    flat."""
    photo = torch.empty(2, 3, size, size)
    half = size // 2
    blue, yellow = torch.tensor([-0.8, -0.6, 0.4]), torch.tensor([0.8, 0.7, -0.2])
    photo[0, :, :, :half], photo[0, :, :, half:] = blue.view(3, 1, 1), yellow.view(3, 1, 1)
    photo[1, :, :half, :], photo[1, :, half:, :] = blue.view(3, 1, 1), yellow.view(3, 1, 1)
    gen = torch.Generator().manual_seed(0)
    return photo + 0.02 * torch.randn(photo.shape, generator=gen)


def test_region_means_paint_each_region_with_its_mean_colour():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    labels = torch.zeros(2, 4, 4, dtype=torch.int64)
    labels[0, :, 2:] = 1  # image 0: left / right halves; image 1: one region
    means = region_means(x, labels)
    assert torch.allclose(means[0, :, :, :2], x[0, :, :, :2].mean((1, 2), keepdim=True).expand(
        3, 4, 2))  # fmt: skip
    assert torch.allclose(means[0, :, :, 2:], x[0, :, :, 2:].mean((1, 2), keepdim=True).expand(
        3, 4, 2))  # fmt: skip
    assert torch.allclose(means[1], x[1].mean((1, 2), keepdim=True).expand(3, 4, 4))
    # Weighted: the mean of region 1 of image 0 over its last column only.
    weight = torch.zeros(2, 4, 4)
    weight[0, :, 3] = 1
    weighted = region_means(x, labels, weight)
    assert torch.allclose(weighted[0, :, :, 2:], x[0, :, :, 3:].mean((1, 2), keepdim=True).expand(
        3, 4, 2))  # fmt: skip
    assert torch.equal(weighted[1], x[1])  # no pixel weighs: the region keeps its own pixels
    # The interior leaves out the column on each side of the boundary, nothing else.
    inside = region_interior(labels)
    assert inside[0, 0].tolist() == [1, 0, 0, 1] and bool(inside[1].all())
    labels8 = torch.zeros(1, 8, 8, dtype=torch.int64)
    labels8[0, :, 4:] = 1
    assert region_interior(labels8)[0, 0].tolist() == [1, 1, 1, 0, 0, 1, 1, 1]


def test_flat_loss_asks_for_flat_colour_inside_the_photos_regions():
    photo = two_tone_photo()
    labels = photo_regions(photo, segments=4)
    # The colour edge separates regions: no region spans both halves.
    left, right = labels[0, :, :20].unique(), labels[0, :, 28:].unique()
    top, bottom = labels[1, :20].unique(), labels[1, 28:].unique()
    assert not set(left.tolist()) & set(right.tolist())
    assert not set(top.tolist()) & set(bottom.tolist())
    # Any two flat colours on the photo's halves cost (almost) nothing, whatever the colours
    # and however dark a line along the boundary; noise, or flat halves split elsewhere, cost.
    painted = torch.empty_like(photo)
    painted[0, :, :, :24], painted[0, :, :, 24:] = 0.3, -0.5
    painted[1, :, :24], painted[1, :, 24:] = -0.9, 0.1
    outlined = painted.clone()
    outlined[0, :, :, 23:25] = -1
    elsewhere = painted.roll(12, dims=-1)
    elsewhere[1] = painted[1].roll(12, dims=-2)
    noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    # "Nothing": a float32 region mean of ~500 values is off by up to ~500 ulp (3e-5).
    assert flat_loss(painted, photo, segments=4).item() < 1e-4
    assert flat_loss(outlined, photo, segments=4).item() < 1e-4
    assert flat_loss(elsewhere, photo, segments=4).item() > 0.2
    assert flat_loss(noise, photo, segments=4).item() > 0.3
    x = noise.clone().requires_grad_(True)
    flat_loss(x, photo, segments=4).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_photo_outlines_trace_the_contours_of_the_photo_and_nothing_else():
    photo = torch.full((2, 3, 48, 48), -0.6)
    photo[0, :, 12:36, 12:36] = 0.6  # a light square: its border is the only contour
    photo[1] += torch.linspace(0, 0.4, 48).view(1, 1, 48)  # a gentle sky gradient: none
    lines = photo_outlines(photo, share=0.05)
    assert lines.shape == (2, 1, 48, 48) and lines.dtype == torch.bool
    ys, xs = lines[0, 0].nonzero().unbind(1)
    near = ((ys - 11.5).abs() <= 1) | ((ys - 35.5).abs() <= 1)
    near |= ((xs - 11.5).abs() <= 1) | ((xs - 35.5).abs() <= 1)
    assert len(ys) > 40 and bool(near.all())  # on the square's edges, one pixel either side
    assert not lines[1].any()  # weaker than the floor everywhere
    # A larger share keeps more of the ridges, never a thick band: at most two pixels across
    # each edge (a step puts the ridge between two pixels of equal magnitude).
    wide = photo_outlines(photo, share=0.5)
    across = wide[0, 0, 24].nonzero().flatten().tolist()
    assert 2 <= len(across) <= 4 and all(x in (11, 12, 35, 36) for x in across), across


def square_and_its_outlines() -> tuple[torch.Tensor, torch.Tensor]:
    """A light square on a dark photo, and its outlines as a (1, 3, H, W) mask."""
    photo = torch.full((1, 3, 48, 48), -0.6)
    photo[0, :, 12:36, 12:36] = 0.6
    return photo, photo_outlines(photo, share=0.05).expand(-1, 3, -1, -1)


def test_outline_loss_asks_for_lines_as_dark_as_the_art_on_the_contours_only():
    photo, lines = square_and_its_outlines()
    art = torch.full((2, 3, 32, 32), 0.2)
    art[:, :, :4] = -0.5  # the art's darkest eighth: grey 0.25, its 5 % quantile
    level = 0.25 * 2 - 1
    light = torch.full_like(photo, 0.8)
    drawn = torch.where(lines, torch.full_like(photo, level - 0.05), light)
    # Zero up to the rounding of the grey weights' sum (grey art: its ink has no hue).
    assert outline_loss(drawn, photo, art, share=0.05).item() < 1e-6
    # The excess over the art's level on the line pixels, whatever happens off them.
    half_drawn = torch.where(lines, torch.full_like(photo, level + 0.2), -light)
    excess = (level + 0.2 + 1) / 2 - 0.25
    assert outline_loss(half_drawn, photo, art, share=0.05).item() == pytest.approx(
        excess, rel=1e-4
    )
    # Darker art asks for darker lines.
    assert outline_loss(drawn, photo, art - 0.3, share=0.05).item() > 0.05
    x = light.clone().requires_grad_(True)
    outline_loss(x, photo, art, share=0.05).backward()
    assert bool((x.grad.abs().sum(1, keepdim=True) > 0).eq(lines[:, :1]).all())


def test_outline_loss_asks_for_the_hue_of_the_arts_darkest_ink():
    photo, lines = square_and_its_outlines()
    ink = torch.tensor([0.1, 0.15, 0.5])  # a dark indigo in [0, 1]: grey 0.1749
    art = torch.full((2, 3, 32, 32), 0.2)
    art[:, :, :4] = (ink * 2 - 1).view(1, 3, 1, 1)  # the darkest eighth of the art
    luma = torch.tensor(GREY_WEIGHTS)
    level = float((ink * luma).sum())
    light = torch.full_like(photo, 0.8)

    def lines_in(rgb01):
        return torch.where(lines, (torch.tensor(rgb01) * 2 - 1).view(1, 3, 1, 1), light)

    assert outline_loss(lines_in(ink.tolist()), photo, art, share=0.05).item() < 1e-6
    # As dark, but neutral grey: the mean absolute difference of the hues.
    hue = (ink - level).abs().mean().item()
    assert outline_loss(lines_in([level] * 3), photo, art, share=0.05).item() == pytest.approx(
        hue, rel=1e-4
    )
    # Crimson lines, darker than the level (no excess), are further from indigo than grey is.
    crimson = [0.40, 0.05, 0.10]
    assert level > float((torch.tensor(crimson) * luma).sum())
    assert outline_loss(lines_in(crimson), photo, art, share=0.05).item() > hue + 0.05


def test_colour_transfer_gives_the_photo_the_arts_colours_in_the_photos_order():
    # Photo: a grey ramp, dark on the left, bright on the right. Art: half dark blue, half
    # cream, in no particular place.
    ramp = torch.linspace(-0.8, 0.8, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).clone()
    blue, cream = torch.tensor([-0.8, -0.6, 0.2]), torch.tensor([0.9, 0.8, 0.5])
    mask = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) < 0.5
    art = torch.where(mask, blue.view(1, 3, 1, 1), cream.view(1, 3, 1, 1))
    out = colour_transfer(ramp, art, seed=1)
    assert torch.equal(out, colour_transfer(ramp, art, seed=1))  # seeded: resumable
    # The dark half took the blue, the bright half the cream (the middle columns, where the
    # art's two halves meet by rank, are left out; elsewhere the match is exact up to rounding).
    left, right = out[0, :, :, :14].mean((1, 2)), out[0, :, :, 18:].mean((1, 2))
    assert (left - blue).abs().max() < 0.05 and (right - cream).abs().max() < 0.05
    # The guide term: the guide itself costs nothing, any texture that averages out within
    # the pool costs nothing, the colours swapped over cost. At pool 8 the guide is made at
    # half resolution.
    half = colour_transfer(F.avg_pool2d(ramp, 2), art[..., ::2, ::2], seed=5)
    guide = F.interpolate(half, scale_factor=2, mode="nearest")
    checker = (torch.arange(32).view(1, 32) + torch.arange(32).view(32, 1)) % 2 * 0.4 - 0.2
    assert guide_loss(guide, ramp, art, seed=5, pool=8).item() < 1e-6
    assert guide_loss(guide + checker, ramp, art, seed=5, pool=8).item() < 1e-6
    assert guide_loss(guide.flip(-1), ramp, art, seed=5, pool=8).item() > 0.5
    x = torch.zeros(1, 3, 32, 32, requires_grad=True)
    guide_loss(x, ramp, art, seed=5, pool=8).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # Any pool: the guide is made at 1/work resolution, work the largest divisor of the pool
    # up to a quarter of it, and read over the same blocks as the output; the run's random
    # state is not touched.
    state = torch.get_rng_state()
    for pool, work in ((9, 1), (16, 4), (32, 8)):
        small = F.avg_pool2d(ramp, work) if work > 1 else ramp
        made = colour_transfer(small, art[..., ::work, ::work], seed=5)
        own = F.interpolate(made, scale_factor=work, mode="nearest") if work > 1 else made
        assert guide_loss(own, ramp, art, seed=5, pool=pool).item() < 1e-6
    assert torch.equal(state, torch.get_rng_state())
    # Paired (multi-domain reference images): item i against art i alone.
    from culturegan.training.base import PerceptualTerms

    cfg = load_config(None, {"loss.lambda_guide": 1.0})
    photos, arts = torch.cat([ramp, ramp.flip(-1)]), torch.cat([art, -art])
    outs = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    _, logs = PerceptualTerms(cfg, paired=True)(outs, photos, arts, step=3)
    seed = PerceptualTerms(cfg).seed * 1_000_003 + 3
    each = [guide_loss(outs[i : i + 1], photos[i : i + 1], arts[i : i + 1], seed=seed, pool=8)
            for i in range(2)]  # fmt: skip
    assert logs["loss/guide"] == pytest.approx(sum(e.item() for e in each) / 2, rel=1e-5)


def _hue_and_chroma(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 3) in [-1, 1] -> the BT.601 hue angle and chroma of hue_transfer's space."""
    x = (rgb + 1) / 2
    y = x @ torch.tensor([0.299, 0.587, 0.114])
    cb, cr = (x[..., 2] - y) * 0.564, (x[..., 0] - y) * 0.713
    return torch.atan2(cr, cb), torch.hypot(cb, cr)


def test_hue_transfer_gives_a_blue_sky_the_arts_blue_where_rank_transfer_gives_it_paper():
    # Photo: a bright blue sky over darker green foliage and a dark grey road. Art: mostly
    # cream paper, with some Prussian blue, some green and a little vermilion, scattered.
    rgb = lambda *v: torch.tensor(v) * 2 - 1  # noqa: E731
    sky, leaf, road = rgb(0.45, 0.65, 0.95), rgb(0.20, 0.55, 0.20), rgb(0.20, 0.20, 0.21)
    photo = torch.empty(1, 3, 32, 32)
    photo[..., :14, :], photo[..., 14:26, :], photo[..., 26:, :] = (
        sky.view(3, 1, 1), leaf.view(3, 1, 1), road.view(3, 1, 1))  # fmt: skip
    paper, blue = rgb(0.93, 0.88, 0.75), rgb(0.10, 0.25, 0.55)
    green, red = rgb(0.30, 0.50, 0.28), rgb(0.85, 0.30, 0.15)
    draw = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    art = torch.where(draw < 0.55, paper.view(3, 1, 1), torch.where(
        draw < 0.8, blue.view(3, 1, 1), torch.where(
            draw < 0.95, green.view(3, 1, 1), red.view(3, 1, 1))))  # fmt: skip
    out = hue_transfer(photo, art)
    assert torch.equal(out, hue_transfer(photo, art))  # no seed: the same guide every step
    assert out.shape == photo.shape and out.min() >= -1 and out.max() <= 1
    px = out[0].permute(1, 2, 0)  # (H, W, 3)
    hue, chroma = _hue_and_chroma(px)
    art_hue = {k: _hue_and_chroma(v)[0] for k, v in {"blue": blue, "green": green}.items()}
    # The sky takes the prints' blue hue, the foliage their green: constant areas stay constant.
    assert (hue[:14] - art_hue["blue"]).abs().max() < 0.02
    assert (hue[14:26] - art_hue["green"]).abs().max() < 0.02
    # Light and dark kept: the luma is matched by rank, so no road pixel is brighter than a
    # foliage pixel, nor a foliage pixel than a sky pixel (ties at the art's levels allowed),
    # and on average the three areas are far apart (sky: the paper's level 0.88; foliage:
    # the prints' blue, green, vermilion and some paper, about 0.53; road: the blue's 0.24).
    # This art has no greys: the grey road takes its least coloured tenth, the paper's tint.
    luma = ((px + 1) / 2) @ torch.tensor([0.299, 0.587, 0.114])
    sky_y, leaf_y, road_y = luma[:14], luma[14:26], luma[26:]
    assert sky_y.min() >= leaf_y.max() - 1e-4 and leaf_y.min() >= road_y.max() - 1e-4
    assert sky_y.mean() > leaf_y.mean() + 0.2 > road_y.mean() + 0.4
    paper_hue, paper_chroma = _hue_and_chroma(paper)
    assert (hue[26:] - paper_hue).abs().max() < 0.02
    assert chroma[26:].max() < paper_chroma + 1e-3
    # The sky, at the paper's brightness, holds as much of the prints' blue as fits in RGB
    # there: pale, but blue (its hue above), not paper.
    assert (px[:14, :, 2] - px[:14, :, 0]).min() > 0.1
    # Rank transfer gives the same bright sky the art's brightest colour, its paper: redder
    # than it is blue, where the hue transfer's sky is bluer than it is red.
    ranked = colour_transfer(photo, art, seed=0)[0, :, :14].mean((1, 2))
    assert ranked[0] > ranked[2] and (px[:14, :, 2] > px[:14, :, 0]).all()
    # Art with hardly any colour (ink on paper): every colour of the photo becomes a grey.
    ink = torch.where(draw < 0.7, rgb(0.90, 0.89, 0.86).view(3, 1, 1), rgb(0.15, 0.15, 0.15).view(
        3, 1, 1))  # fmt: skip
    assert _hue_and_chroma(hue_transfer(photo, ink)[0].permute(1, 2, 0))[1].max() < 0.03
    # The guide term in hue mode reads this guide (made at half resolution at pool 8); an
    # unknown mode is refused.
    half = hue_transfer(F.avg_pool2d(photo, 2), art[..., ::2, ::2])
    own = F.interpolate(half, scale_factor=2, mode="nearest")
    assert guide_loss(own, photo, art, seed=3, pool=8, mode="hue").item() < 1e-6
    assert guide_loss(own, photo, art, seed=3, pool=8, mode="rank").item() > 0.1
    with pytest.raises(ValueError, match="guide mode must be 'rank' or 'hue'"):
        guide_loss(own, photo, art, seed=3, pool=8, mode="hsv")


def test_palette_head_draws_only_mixtures_of_its_colours_and_rebuilds_from_config():
    g = build_generator("mobile_unet_3blocks", ngf=8, palette=4)
    x = images(2, 32, 5)
    y = g(x)
    assert y.shape == x.shape
    colors = torch.tanh(g.model[-1].colors).detach()  # (4, 3)
    # Each pixel is a convex combination of the 4 colours: inside their per-channel range.
    low, high = colors.min(0).values.view(1, 3, 1, 1), colors.max(0).values.view(1, 3, 1, 1)
    assert bool(((y >= low - 1e-6) & (y <= high + 1e-6)).all())
    again = generator_from_config(g.config)
    again.load_state_dict(g.state_dict())
    assert torch.equal(again(x), y)
    with pytest.raises(TypeError):
        build_generator("resnet_6blocks", ngf=8, palette=4)  # only the mobile ones have a head


@pytest.mark.parametrize("window", [1, 5])
def test_hard_palette_head_blends_in_training_and_paints_inks_out_of_it(window):
    torch.manual_seed(0)
    g = build_generator("mobile_unet_3blocks", ngf=8, palette=4, palette_hard=window)
    soft = build_generator("mobile_unet_3blocks", ngf=8, palette=4)
    soft.load_state_dict(g.state_dict())
    head = g.model[-1]
    seen: list[torch.Tensor] = []
    head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    x = images(2, 32, 5)
    assert torch.equal(g(x), soft(x))  # training: the same blend, so the same gradient
    g.eval()
    with torch.no_grad():
        y = g(x)
        blended = soft(x)
    colors = torch.tanh(head.colors).detach()  # (4, 3)
    # Each pixel is the colour with the largest softmax weight summed over its window
    # (edges repeated), computed here by hand.
    half = window // 2
    weights = F.pad(seen[-1].softmax(dim=1), (half,) * 4, mode="replicate")
    votes = sum(weights[..., i : i + 32, j : j + 32] for i in range(window) for j in range(window))
    expected = colors[votes.argmax(dim=1)].permute(0, 3, 1, 2)
    # Summed in another order, a near tie (votes within float rounding) may go either way.
    top = votes.topk(2, dim=1).values
    clear = (top[:, 0] - top[:, 1] > 1e-5 * window**2).unsqueeze(1).expand_as(y)
    assert float(clear.float().mean()) > 0.95
    assert torch.equal(y[clear], expected[clear])
    assert len(torch.unique(y.permute(0, 2, 3, 1).reshape(-1, 3), dim=0)) > 1
    assert float((blended - y).abs().max()) > 0.05  # where the soft head blends
    # A lone pixel of another ink: kept by a one-pixel window, outvoted by a wider one.
    logits = torch.zeros(1, 4, 8, 8)
    logits[:, 0] = 5.0
    logits[0, 1, 3, 4] = 10.0
    lone = (head(logits)[0, :, 3, 4] == colors[1]).all()
    assert bool(lone) == (window == 1)
    again = generator_from_config(g.config).eval()
    again.load_state_dict(g.state_dict())
    with torch.no_grad():
        assert again.config["palette_hard"] == window and torch.equal(again(x), y)
    with pytest.raises(ValueError, match="palette_hard needs a palette"):
        build_generator("mobile_unet_3blocks", ngf=8, palette_hard=window)
    for bad in (2, 17, -1, True):
        with pytest.raises(ValueError, match="odd window of 1-15 px"):
            build_generator("mobile_unet_3blocks", ngf=8, palette=4, palette_hard=bad)


def test_an_ink_model_stays_in_its_inks_over_averaged_passes_and_tiles():
    from culturegan.data.images import tensor_to_pil
    from culturegan.inference import Stylizer

    torch.manual_seed(0)
    g = build_generator("mobile_unet_3blocks", ngf=8, palette=4, palette_hard=5).eval()
    g.model[-1].set_colors(torch.tensor([[0.9, 0.8, 0.6], [-0.8, -0.6, -0.2],
                                         [0.7, -0.6, -0.7], [-0.9, -0.9, -0.9]]))  # fmt: skip
    config = {"kind": "two_domain", "domains": ["photo", "art"],
              "directions": {"photo->art": "g"}, "size_multiple": 8}  # fmt: skip
    stylizer = Stylizer.from_modules({"g": g}, config)
    ink_row = tensor_to_pil(torch.tanh(g.model[-1].colors).detach().T[:, None])  # 4 x 1 px
    inks = {tuple(c) for c in np.asarray(ink_row)[0]}
    assert len(inks) == 4
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (80, 96, 3), np.uint8))

    def colours(image: Image.Image) -> set[tuple[int, ...]]:
        return {tuple(c) for c in np.asarray(image).reshape(-1, 3)}

    def run(**options) -> np.ndarray:
        out = stylizer([photo], **options).images[0]
        assert colours(out) <= inks, options  # every pixel one of the inks
        return np.asarray(out)

    class Painted(torch.nn.Module):  # the same network, its passes averaged as pictures
        def __init__(self) -> None:
            super().__init__()
            self.g = g

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            return self.g(batch)

    as_pictures = Stylizer.from_modules({"g": Painted()}, config)
    once = run(tile=0)
    assert np.array_equal(once, np.asarray(as_pictures([photo], tile=0).images[0]))
    for options in ({"shifts": 8, "tile": 0}, {"tile": 48}, {"tile": 48, "shifts": 4}):
        blended = as_pictures([photo], **options).images[0]
        assert len(colours(blended) - inks) > 10, options  # averaged as pictures: blends
        averaged = run(**options)
        same = (averaged == once).all(axis=-1).mean()  # the votes move only near-ties
        assert 0.6 < same < 1.0, (options, same)
    run(tileable=True, shifts=4)


CREAM, INDIGO, VERMILION = (238, 225, 194), (30, 48, 96), (214, 66, 42)


def write_inks(folder: Path) -> list[Path]:
    """Three 40 x 48 prints of flat inks: cream on 60% of the pixels, indigo 30%, vermilion
    10% (bands of 24, 12 and 4 rows in each), plus one corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(3):
        arr = np.zeros((40, 48, 3), np.uint8)
        arr[:24], arr[24:36], arr[36:] = CREAM, INDIGO, VERMILION
        paths.append(folder / f"print{i}.png")
        Image.fromarray(np.roll(arr, 7 * i, axis=0)).save(paths[-1])
    paths.append(folder / "broken.png")
    paths[-1].write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return paths


def as_rgb255(colours: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(round(v) for v in row) for row in ((colours + 1) * 127.5).tolist()]


def test_art_palette_finds_the_inks_most_used_first_and_skips_a_broken_file(tmp_path, caplog):
    files = write_inks(tmp_path / "art")
    with caplog.at_level("WARNING", logger="culturegan.data"):
        colours = art_palette(files, 3)
    assert "broken.png" in caplog.text
    assert as_rgb255(colours) == [CREAM, INDIGO, VERMILION]
    # Asked for more colours than the prints hold: each ink once, none invented.
    assert as_rgb255(art_palette(files[:3], 6)) == [CREAM, INDIGO, VERMILION]
    with pytest.raises(ValueError, match="no readable image"):
        art_palette(files[3:], 3)


def test_palette_head_starts_at_given_colours_repeating_them_when_fewer():
    g = build_generator("mobile_unet_3blocks", ngf=8, palette=5)
    head = g.model[-1]
    head.set_colors(torch.tensor([[0.5, -0.5, 0.0], [-1.0, 1.0, 0.2]]))
    expected = torch.tensor([[0.5, -0.5, 0.0], [-0.97, 0.97, 0.2]] * 3)[:5]  # kept inside +-0.97
    assert torch.allclose(torch.tanh(head.colors), expected, atol=1e-6)
    with pytest.raises(ValueError, match="colours"):
        head.set_colors(torch.zeros(2, 4))


@pytest.mark.parametrize("start", ["art", "spread"])
def test_training_starts_the_palette_at_the_target_arts_colours(tiny_cfg, start):
    write_inks(Path(tiny_cfg.data.root) / "inks")
    for key, value in {"data.domains": "photo,inks", "model.generator": "mobile_unet_3blocks",
                       "model.palette": 3, "model.palette_init": start,
                       "train.steps": 1}.items():  # fmt: skip
        set_field(tiny_cfg, key, value)
    run = train(tiny_cfg, progress=False)
    state = flat_state(load_training_state(run.run_dir / CHECKPOINT_NAME)["recipe"])
    heads = [torch.tanh(v) for k, v in state.items() if k.endswith("colors")]
    assert len(heads) == 2  # the generator and its EMA copy
    if start == "art":  # the art folder's inks, most used first
        expected = torch.tensor([CREAM, INDIGO, VERMILION], dtype=torch.float32) / 127.5 - 1
    else:
        expected = build_generator("mobile_unet_3blocks", ngf=4, palette=3).model[-1].colors
        expected = torch.tanh(expected.detach())
    for colours in heads:  # one Adam step moves a colour's pre-image by about 5e-4
        assert torch.allclose(colours, expected, atol=0.005)
    set_field(tiny_cfg, "model.palette_init", "kmeans")
    with pytest.raises(ValueError, match="palette_init must be one of art, spread"):
        train(tiny_cfg, progress=False)


# ------------------------------------------------------------------ whole recipes


FEWSHOT = {
    "model.discriminator": "projected_lite0",
    "model.ndf": 4,
    "loss.gan_mode": "hinge",
    "loss.diffaugment": "color,translation,cutout",
    "loss.ada_target": 0.6,
    "loss.lambda_content": 1.0,
    "loss.lambda_style_stats": 1.0,
    "loss.lambda_style_swd": 1.0,
    "loss.lambda_palette": 1.0,
    "loss.lambda_structure": 1.0,
    "loss.lambda_flat": 1.0,
    "loss.flat_segments": 8,
    "loss.lambda_guide": 1.0,
    "loss.guide_pool": 12,
    "loss.lambda_outline": 1.0,
    "loss.style_taps": [0, 2, 4],
}


@pytest.mark.parametrize("recipe", ["cyclegan", "cut", "cut nearest", "cut matched"])
def test_resume_is_exact_with_projected_d_diffaugment_and_perceptual_terms(tiny_cfg, recipe):
    recipe, *target = recipe.split()
    banked = bool(target)
    if banked:  # the bank is in the checkpoint: step 3 chooses among the same artworks
        set_field(tiny_cfg, "loss.style_target", target[0])
        set_field(tiny_cfg, "loss.style_bank", 6)  # more than a batch: art from before the kill
    set_field(tiny_cfg, "train.recipe", recipe)
    set_field(tiny_cfg, "train.steps", 4)
    set_field(tiny_cfg, "data.load_size", 72)
    set_field(tiny_cfg, "data.crop_size", 64)
    if recipe == "cut":
        set_field(tiny_cfg, "model.generator", "mobile_resnet_3blocks")
        set_field(tiny_cfg, "model.ngf", 4)
        set_field(tiny_cfg, "loss.lambda_nce", 0.0)
    for key, value in FEWSHOT.items():
        set_field(tiny_cfg, key, value)
    before = trunk_digest()
    straight = train(tiny_cfg, progress=False)
    interrupted = train(tiny_cfg, until_step=2, progress=False)
    resumed = train(resume_dir=interrupted.run_dir, progress=False)
    a = flat_state(load_training_state(straight.run_dir / CHECKPOINT_NAME))
    b = flat_state(load_training_state(resumed.run_dir / CHECKPOINT_NAME))
    assert a.keys() == b.keys()
    assert not [k for k in a if "_blocks" in k]  # the frozen Lite0 is not in the checkpoint
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    assert trunk_digest() == before
    bank = [k for k in a if "style_bank." in k]
    assert len(bank) == (4 if banked else 0)  # per style tap (0, 2, 4), and the grey layouts
    if banked:  # the last 6 artworks' statistics (channel means and deviations) and layouts
        assert all(a[k].shape[0] == 6 for k in bank)
        assert [a[k].shape for k in bank if k.endswith(".layout")] == [(6, 16)]
    logged = (straight.run_dir / "log.jsonl").read_text()
    terms = ("loss/content", "loss/style_stats", "loss/style_swd", "loss/palette", "loss/structure",
             "loss/flat", "loss/guide", "loss/outline")  # fmt: skip
    for term in terms:
        assert term in logged


@pytest.mark.parametrize("recipe", ["cyclegan", "cut"])
def test_domain_weights_give_the_direction_aimed_at_a_domain_its_own_terms(tiny_cfg, recipe):
    """photo -> art takes art's weights (outlines, no palette); art -> photo the shared ones;
    a '?' name the data does not have is left out."""
    settings = {
        "train.recipe": recipe,
        "train.steps": 2,
        "loss.lambda_palette": 1.0,
        "loss.domain_weights": ["art:outline=2", "art:palette=0", "sketch?:outline=5"],
    }
    if recipe == "cut":
        settings |= {"model.generator": "mobile_resnet_3blocks", "loss.lambda_nce": 0.0}
    for key, value in settings.items():
        set_field(tiny_cfg, key, value)
    run = train(tiny_cfg, progress=False)
    logged = set().union(*(json.loads(line) for line in
                           (run.run_dir / "log.jsonl").read_text().splitlines()))  # fmt: skip
    if recipe == "cyclegan":
        assert {"loss/outline_ab", "loss/palette_ba"} <= logged
        assert not {"loss/outline_ba", "loss/palette_ab"} & logged
    else:
        assert "loss/outline" in logged and "loss/palette" not in logged
    set_field(tiny_cfg, "loss.domain_weights", ["sketch:outline=5"])
    with pytest.raises(ValueError, match="sketch"):
        train(tiny_cfg, progress=False)


def test_a_hard_palette_trains_as_a_soft_one_and_ships_inks(tiny_cfg):
    for key, value in {"train.recipe": "cut", "model.generator": "mobile_unet_3blocks",
                       "model.ngf": 4, "model.palette": 3, "loss.lambda_nce": 0.0,
                       "loss.lambda_content": 1.0, "loss.lambda_palette": 1.0,
                       "train.steps": 3, "data.load_size": 72,
                       "data.crop_size": 64}.items():  # fmt: skip
        set_field(tiny_cfg, key, value)

    def weights(run) -> dict[str, torch.Tensor]:
        return flat_state(load_training_state(run.run_dir / CHECKPOINT_NAME)["recipe"])

    soft = train(tiny_cfg, progress=False)
    set_field(tiny_cfg, "model.palette_hard", 5)
    hard = train(tiny_cfg, progress=False)
    assert weights(hard).keys() == weights(soft).keys()
    assert all(torch.equal(v, weights(soft)[k]) for k, v in weights(hard).items())
    config = json.loads((hard.run_dir / "model" / "config.json").read_text())
    assert config["networks"]["g_ab"]["palette_hard"] == 5
    from culturegan.inference import Stylizer

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    inks = np.asarray(Stylizer.from_pretrained(hard.run_dir / "model")([photo]).images[0])
    blends = np.asarray(Stylizer.from_pretrained(soft.run_dir / "model")([photo]).images[0])
    assert len(np.unique(inks.reshape(-1, 3), axis=0)) <= 3  # the model folder paints its inks
    assert len(np.unique(blends.reshape(-1, 3), axis=0)) > 3
    set_field(tiny_cfg, "model.palette_hard", 4)
    with pytest.raises(ValueError, match="palette_hard must be 0 .blend. or an odd window"):
        train(tiny_cfg, progress=False)
    set_field(tiny_cfg, "model.palette_hard", 5)
    set_field(tiny_cfg, "model.palette", 0)
    with pytest.raises(ValueError, match="palette_hard needs model.palette > 0"):
        train(tiny_cfg, progress=False)


def test_cut_holds_the_discriminator_back_until_gan_start(tiny_cfg):
    for key, value in {**FEWSHOT, "train.recipe": "cut", "model.generator": "mobile_unet_3blocks",
                       "model.ngf": 4, "model.palette": 6, "loss.lambda_nce": 0.0,
                       "loss.lambda_gan": 0.5, "loss.gan_start": 2, "loss.gan_ramp": 2,
                       "train.steps": 4, "train.log_every": 1, "data.load_size": 72,
                       "data.crop_size": 64}.items():  # fmt: skip
        set_field(tiny_cfg, key, value)
    run = train(tiny_cfg, progress=False)
    rows = [json.loads(line) for line in (run.run_dir / "log.jsonl").read_text().splitlines()]
    d_loss = {r["step"]: r["loss/d_b"] for r in rows if "loss/d_b" in r}
    assert sorted(d_loss) == [1, 2, 3, 4]
    # Steps before gan_start train no discriminator (its loss is not computed: 0); after, it is.
    assert [d_loss[1], d_loss[2]] == [0.0, 0.0]
    assert d_loss[3] != 0.0 and d_loss[4] != 0.0


def test_bad_few_shot_settings_are_refused_before_training(tiny_cfg):
    for key, value, message in [
        ("loss.lambda_content", -1.0, "loss.lambda_content=-1.0"),
        ("loss.lambda_style_stats", float("nan"), "loss.lambda_style_stats=nan"),
        ("loss.diffaugment_p", 1.5, "diffaugment_p must be in"),
        ("loss.perceptual_size", 16, "perceptual_size must be 0"),
        ("loss.flat_segments", 1, "flat_segments must be 2-10000"),
        ("loss.lambda_flat", -0.5, "loss.lambda_flat=-0.5"),
        ("loss.guide_pool", 0, "guide_pool must be 1-64"),
        ("loss.guide_pool", 65, "guide_pool must be 1-64"),
        ("loss.guide_mode", "hsv", "guide_mode must be 'rank' or 'hue'"),
        ("loss.lambda_guide", -1.0, "loss.lambda_guide=-1.0"),
        ("loss.lambda_outline", -1.0, "loss.lambda_outline=-1.0"),
        ("loss.outline_share", 0.0, "outline_share must be above 0"),
        ("loss.outline_share", 0.6, "outline_share must be above 0"),
        ("loss.style_taps", [4, 16], "style_taps must be distinct Lite0 blocks 0-15"),
        ("loss.style_target", "median", "style_target must be 'mean', 'nearest' or 'matched'"),
    ]:
        set_field(tiny_cfg, key, value)
        with pytest.raises(ValueError, match=message):
            train(tiny_cfg, progress=False)
        set_field(tiny_cfg, key, load_config().to_dict()["loss"][key.split(".")[1]])
    set_field(tiny_cfg, "loss.diffaugment", "color,blur")
    with pytest.raises(ValueError, match="unknown DiffAugment operation"):
        train(tiny_cfg, progress=False)
    runs = Path(tiny_cfg.train.runs_dir)
    assert not runs.exists() or not any(runs.iterdir())  # refused before any run folder
