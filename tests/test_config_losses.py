"""Config resolution and the loss functions against closed forms."""

from __future__ import annotations

import argparse

import pytest
import torch

from culturegan.config import (
    RunConfig,
    add_override_arguments,
    collect_overrides,
    list_presets,
    load_config,
)
from culturegan.losses import AdversarialLoss, ImagePool
from culturegan.training.base import linear_decay_schedule


def test_presets_load_and_overrides_win(tmp_path):
    assert {"cyclegan", "cyclegan_cpu", "cyclegan_tiny"} <= set(list_presets())
    cfg = load_config("cyclegan_tiny", {"train.steps": "42", "data.flip": "false"})
    assert cfg.train.steps == 42 and cfg.data.flip is False
    assert cfg.model.generator == "resnet_2blocks"  # from the preset
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg


def test_cli_override_flags_are_collected():
    parser = argparse.ArgumentParser()
    add_override_arguments(parser)
    args = parser.parse_args(["--train.steps", "7", "--data.domains", "photo,ink"])
    overrides = collect_overrides(args)
    assert overrides == {"train.steps": "7", "data.domains": "photo,ink"}
    cfg = load_config(None, overrides)
    assert cfg.data.domains == ["photo", "ink"]
    # A list of whole numbers stays one, from the command line's text or from YAML.
    assert load_config(None, {"loss.style_taps": "0, 2,4"}).loss.style_taps == [0, 2, 4]
    assert load_config(None, {"loss.style_taps": [7, 2.0]}).loss.style_taps == [7, 2]


@pytest.mark.parametrize(
    "override,message",
    [
        ({"train.stepz": 1}, "unknown field 'train.stepz'"),
        ({"nope.steps": 1}, "not of the form section.field"),
        ({"train.steps": "many"}, "not a valid int"),
        ({"train.steps": 1.5}, "not a valid int"),
        ({"model.palette_hard": True}, "model.palette_hard=True is not a valid int"),  # not 1
        ({"loss.lambda_gan": False}, "not a valid float"),
        ({"loss.style_taps": "0,x"}, "loss.style_taps='0,x' is not a valid list"),
        ({"loss.style_taps": [0, 2.5]}, "is not a valid list"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, override)


def test_bad_yaml_and_missing_preset(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(str(bad))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("training:\n  steps: 3\n")
    with pytest.raises(ValueError, match="unknown section 'training'"):
        load_config(str(unknown))
    with pytest.raises(FileNotFoundError, match="presets: "):
        load_config("no_such_preset")


def test_a_config_starts_from_its_base_and_overrides_it(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: cyclegan_tiny\ntrain:\n  steps: 7\n")
    cfg, tiny = load_config(str(mine)), load_config("cyclegan_tiny")
    assert cfg.train.steps == 7 and tiny.train.steps != 7
    assert cfg.model == tiny.model and cfg.data == tiny.data  # the rest from the base
    # A base beside the file, by its path; the shipped multidomain_cultures is built this way.
    (tmp_path / "child.yaml").write_text("base: mine.yaml\ndata:\n  flip: false\n")
    child = load_config(str(tmp_path / "child.yaml"))
    assert (child.train.steps, child.data.flip, child.model) == (7, False, tiny.model)
    cultures = load_config("multidomain_cultures")
    assert cultures.model == load_config("multidomain_structure").model
    assert "ukiyoe:palette=10" in cultures.loss.domain_weights
    # Loops and bases that are not names are refused, naming the file.
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="a.yaml': its bases form a loop"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "odd.yaml").write_text("base: [cyclegan]\n")
    with pytest.raises(ValueError, match="odd.yaml': base must be a preset name"):
        load_config(str(tmp_path / "odd.yaml"))
    (tmp_path / "gone.yaml").write_text("base: no_such_preset\n")
    with pytest.raises(FileNotFoundError, match="no_such_preset"):
        load_config(str(tmp_path / "gone.yaml"))


def test_adversarial_losses_closed_forms():
    ones, zeros = torch.ones(4), torch.zeros(4)
    lsgan = AdversarialLoss("lsgan")
    assert lsgan.generator(ones).item() == 0.0
    assert lsgan.discriminator(ones, zeros).item() == 0.0
    assert lsgan.discriminator(zeros, ones).item() == pytest.approx(1.0)
    ns = AdversarialLoss("nonsaturating")
    log2 = torch.log(torch.tensor(2.0)).item()
    assert ns.generator(zeros).item() == pytest.approx(log2)
    assert ns.discriminator(zeros, zeros).item() == pytest.approx(log2)
    hinge = AdversarialLoss("hinge")
    assert hinge.discriminator(2 * ones, -2 * ones).item() == 0.0
    assert hinge.discriminator(zeros, zeros).item() == pytest.approx(1.0)
    assert hinge.generator(3 * ones).item() == -3.0
    with pytest.raises(ValueError, match="unknown gan_mode"):
        AdversarialLoss("wgan")


def test_image_pool_fills_then_mixes_and_restores():
    pool = ImagePool(3, seed=0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: passes through
    state = pool.state_dict()
    new = torch.full((8, 1, 1, 1), 9.0)
    mixed = pool.query(new)
    assert (mixed != 9).any() and (mixed == 9).any()  # some old images came back
    pool.load_state_dict(state)
    assert torch.equal(pool.query(new), mixed)  # same RNG and contents: same draw
    assert torch.equal(ImagePool(0).query(new), new)


def test_linear_decay_schedule():
    f = linear_decay_schedule(100, -1)
    assert f(0) == 1.0 and f(49) == 1.0
    assert f(75) == pytest.approx(0.5)
    assert f(100) == 0.0
    assert linear_decay_schedule(10, 0)(9) == 1.0
