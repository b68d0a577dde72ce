"""The CPU multi-domain recipe: the style-modulated mobile generator, photo-only sources, and
terms of weight 0 that cost nothing (preset ``multidomain_structure``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_resumes_exactly
from culturegan.cli import main
from culturegan.config import load_config
from culturegan.data.datasets import MultiDomainBatchSampler
from culturegan.data.synthetic import build_demo_dataset
from culturegan.inference import MultiDomainStylizer, Stylizer
from culturegan.models.multidomain import (
    MobileStyleGenerator,
    StyleEncoder,
    StyleGenerator,
    multidomain_from_config,
)
from culturegan.training.multidomain import MultiDomainRecipe


def small_cfg(root, runs, steps, preset="multidomain_structure", **extra):
    return load_config(
        preset,
        {
            "data.root": str(root),
            "data.load_size": 36,
            "data.crop_size": 32,
            "data.source_domains": ["photo"],
            "model.ngf": 8,
            "model.ndf": 8,
            "model.style_dim": 16,
            "model.max_channels": 32,
            "model.mapping_hidden": 32,
            "model.d_down": 3,
            "train.steps": steps,
            "train.batch_size": 4,
            "train.runs_dir": str(runs),
            "train.log_every": 2,
            "train.sample_every": 100,
            "train.checkpoint_every": 100,
            "train.num_samples": 1,
            **extra,
        },
    )


def photo_to_ink_batch() -> dict[str, torch.Tensor]:
    """Four random 32 px "photos" (domain 1) aimed at domain 0, with random references."""
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    return {
        "x": x,
        "y": torch.ones(4, dtype=torch.long),
        "x_ref": torch.rand_like(x) * 2 - 1,
        "x_ref2": torch.rand_like(x) * 2 - 1,
        "y_trg": torch.zeros(4, dtype=torch.long),
    }


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mdm") / "data"
    build_demo_dataset(root, size=32, photos=8, art_per_style=8, heldout_photos=2)
    return root


@pytest.mark.parametrize(("residual", "pad_mode"), [(False, "zeros"), (True, "reflect")])
def test_mobile_style_generator_follows_the_style_code_and_round_trips(residual, pad_mode):
    torch.manual_seed(0)
    g = MobileStyleGenerator(
        ngf=8, style_dim=16, n_blocks=2, residual=residual, pad_mode=pad_mode
    ).eval()
    assert g.config.get("pad_mode", "zeros") == pad_mode
    for name, p in g.named_parameters():  # AdaINs start neutral; give them a trained look
        if ".fc." in name:
            torch.nn.init.normal_(p, std=0.3)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    s1, s2 = torch.randn(2, 16), torch.randn(2, 16)
    with torch.no_grad():
        a, b = g(x, s1), g(x, s2)
        assert a.shape == x.shape and a.abs().max() <= 1
        assert (a - b).abs().mean() > 1e-3  # the style code changes the picture
        if residual:  # strength 0 returns the input up to the clamp in atanh
            assert torch.allclose(g(x, s1, 0.0), x.clamp(-0.999, 0.999), atol=1e-5)
        rebuilt = multidomain_from_config(g.config)
        rebuilt.load_state_dict(g.state_dict())
        assert torch.equal(rebuilt.eval()(x, s1), a)
    assert g.size_multiple == 8


def test_mobile_style_generator_icnr_and_tent_options():
    x, s = torch.rand(1, 3, 32, 32) * 2 - 1, torch.randn(1, 16)
    torch.manual_seed(1)
    g = MobileStyleGenerator(ngf=8, style_dim=16, n_blocks=2, icnr=True).eval()
    with torch.no_grad():
        y = g(x, s)
    for i, j in ((0, 1), (1, 0), (1, 1)):
        torch.testing.assert_close(y[..., i::2, j::2], y[..., 0::2, 0::2], atol=1e-5, rtol=0)
    torch.manual_seed(1)
    g = MobileStyleGenerator(ngf=8, style_dim=16, n_blocks=2, residual=True, output_tent=True)
    rebuilt = multidomain_from_config(g.config)
    rebuilt.load_state_dict(g.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x, s), g.eval()(x, s))
        # The filter acts on the change, so strength 0 still returns the input.
        assert torch.allclose(g(x, s, 0.0), x.clamp(-0.999, 0.999), atol=1e-5)


def test_style_generator_skips_are_optional_and_old_configs_load():
    plain = StyleGenerator(ngf=8, style_dim=8, n_down=2, max_channels=16)
    assert "skips" not in plain.config  # folders written before the option read the same
    torch.manual_seed(0)
    skipped = StyleGenerator(ngf=8, style_dim=8, n_down=2, max_channels=16, skips=True).eval()
    rebuilt = multidomain_from_config(skipped.config)
    rebuilt.load_state_dict(skipped.state_dict())
    x, s = torch.rand(1, 3, 16, 16) * 2 - 1, torch.randn(1, 8)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x, s), skipped(x, s))
        plain.load_state_dict(skipped.state_dict())  # same weights, without the skips
        assert not torch.equal(plain.eval()(x, s), skipped(x, s))


def test_source_domains_restrict_what_is_translated():
    sampler = MultiDomainBatchSampler([5, 7, 9], batch_size=16, seed=3, sources=[1])
    items = [item for step in range(5) for item in sampler.global_batch(step)]
    assert {src for src, *_ in items} == {1}
    assert {trg for _, _, trg, *_ in items} == {0, 2}  # every other domain is a target
    with pytest.raises(ValueError, match="out of range"):
        MultiDomainBatchSampler([5, 7], batch_size=2, seed=0, sources=[2])


def test_target_weights_share_the_steps_between_cultures(synthetic_root, tmp_path, capsys):
    # Photos (domain 0) into three cultures, the first drawn twice as often as each other one.
    sizes, weights = [9, 5, 7, 6], [1.0, 2.0, 1.0, 1.0]
    sampler = MultiDomainBatchSampler(sizes, batch_size=50, seed=3, sources=[0],
                                      target_weights=weights)  # fmt: skip
    items = [item for step in range(60) for item in sampler.global_batch(step)]
    targets = np.bincount([trg for _, _, trg, *_ in items], minlength=4) / len(items)
    # 3000 draws: each share's standard error is under 0.01; 0.04 is four of them.
    np.testing.assert_allclose(targets, [0.0, 0.5, 0.25, 0.25], atol=0.04)
    assert all(r < sizes[trg] and q < sizes[trg] for _, _, trg, r, q, _ in items)
    again = MultiDomainBatchSampler(sizes, batch_size=50, seed=3, sources=[0],
                                    target_weights=weights, start_step=7)  # fmt: skip
    assert next(iter(again)) == sampler.global_batch(7)  # a pure function of (seed, step)
    assert {trg for _, _, trg, *_ in MultiDomainBatchSampler(
        sizes, batch_size=40, seed=0, sources=[0], target_weights=[1, 0, 0, 3]
    ).global_batch(0)} == {3}  # fmt: skip
    with pytest.raises(ValueError, match="no target"):
        MultiDomainBatchSampler(sizes, batch_size=2, seed=0, target_weights=[0, 0, 0, 1])
    with pytest.raises(ValueError, match="one weight >= 0 per domain"):
        MultiDomainBatchSampler(sizes, batch_size=2, seed=0, target_weights=[1, 1])

    # From the config: an unknown culture or a malformed item is refused before anything is
    # written, naming it; the weights reach the run's loader.
    runs = tmp_path / "runs"
    for bad, message in (("woodcut=2", "woodcut"), ("woodblock", "NAME=WEIGHT"),
                         ("woodblock=-1", "woodblock=-1")):  # fmt: skip
        code = main(["train", "--config", "multidomain_structure", "--data.root",
                     str(synthetic_root), "--data.target_weights", bad,
                     "--train.runs_dir", str(runs)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and message in err and "target_weights" in err, err
    assert not runs.exists() or not any(runs.iterdir())
    with pytest.raises(ValueError, match="applies to the multidomain recipe"):
        load_config("fewshot_structure", {"data.target_weights": ["art=2"]}).validate()
    from culturegan.training.loop import build_loader, prepare_splits, select_domains

    cfg = small_cfg(
        synthetic_root, runs, 2, **{"data.target_weights": ["woodblock=0", "impasto=0"]}
    )
    splits = prepare_splits(cfg)
    domains = select_domains(cfg, splits)
    loader = build_loader(cfg, splits, domains, start_step=0)
    assert domains.index("ink_wash") == int(next(iter(loader))["y_trg"].unique())


def test_unknown_source_domain_is_refused_before_anything_is_written(
    synthetic_root, tmp_path, capsys
):
    runs = tmp_path / "runs"
    code = main(["train", "--config", "multidomain_structure", "--data.root",
                 str(synthetic_root), "--data.source_domains", "photograph",
                 "--train.runs_dir", str(runs)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "photograph" in err and "source_domains" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_terms_of_weight_zero_cost_no_generator_pass(synthetic_root, tmp_path):
    cfg = small_cfg(synthetic_root, tmp_path, 2)
    assert cfg.loss.lambda_gan == cfg.loss.lambda_cycle == cfg.loss.lambda_ds == 0
    torch.manual_seed(0)
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    calls = []
    recipe.generator.register_forward_hook(lambda *_: calls.append(1))
    batch = photo_to_ink_batch()
    losses = recipe.train_step(batch, 0)
    assert len(calls) == 1  # the output the loss terms read, and nothing else
    assert losses["loss/cycle"] == losses["loss/diversity"] == losses["loss/d"] == 0
    assert losses["loss/structure"] > 0 and losses["loss/style_stats"] > 0
    recipe.cfg.loss.lambda_cycle = 1.0  # a weighed cycle term costs one more pass
    calls.clear()
    recipe.train_step(batch, 2)
    assert len(calls) == 2 and recipe.train_step(batch, 4)["loss/cycle"] > 0


def test_the_style_encoder_reads_each_image_once_and_scores_as_separate_passes(
    synthetic_root, tmp_path
):
    import copy

    cfg = small_cfg(synthetic_root, tmp_path, 2, **{"loss.lambda_cycle": 1.0})
    assert cfg.loss.lambda_style > 0 and cfg.loss.lambda_domain_cls > 0
    torch.manual_seed(0)
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    batch = photo_to_ink_batch()
    seen = []
    recipe.style_encoder.body.register_forward_hook(lambda _m, args, _o: seen.append(args))
    for step in (0, 1):  # a latent-guided step, then a reference-guided one
        before = copy.deepcopy(recipe)
        seen.clear()
        torch.manual_seed(7)
        losses = recipe.train_step(batch, step)
        # One trunk pass over [output, photo, reference] (reference steps: the reference first,
        # for the style code), each image read once.
        assert [len(a[0]) for a in seen] == ([12] if step == 0 else [4, 8])
        # The same values as the encoder's own calls, one image set at a time, before the step.
        torch.manual_seed(7)
        z1 = torch.randn(4, cfg.model.latent_dim)
        enc = before.style_encoder
        x, y, y_trg, ref = batch["x"], batch["y"], batch["y_trg"], batch["x_ref"]
        s_trg = enc(ref, y_trg) if step else before.mapping(z1, y_trg)
        fake = before._generate(x, s_trg, y_trg)
        expect = {
            "loss/style": (enc(fake, y_trg) - s_trg).abs().mean(),
            "loss/domain_cls": F.cross_entropy(enc.classify(x), y)
            + F.cross_entropy(enc.classify(ref), y_trg),
            "loss/cycle": (before._generate(fake, enc(x, y), y) - x).abs().mean(),
        }
        for key, value in expect.items():  # float32 sums in another order: ~1e-6 relative
            assert losses[key] == pytest.approx(value.item(), rel=1e-4), key


def test_the_style_encoder_reads_images_at_its_read_size(synthetic_root, tmp_path):
    torch.manual_seed(0)
    sizes = {"num_domains": 3, "style_dim": 16, "ndf": 8, "n_down": 3, "max_channels": 32}
    halved, plain = StyleEncoder(**sizes, read_size=16), StyleEncoder(**sizes)
    plain.load_state_dict(halved.state_dict())
    x = (torch.rand(2, 3, 32, 48) * 2 - 1).requires_grad_(True)  # shorter side 32 -> 16 x 24
    y = torch.tensor([0, 2])
    # Area-averaging by 2 is the mean of each 2 x 2 block: four terms per pixel, summed in
    # another order than avg_pool2d's at most, so the styles agree to float32 rounding.
    torch.testing.assert_close(halved(x, y), plain(F.avg_pool2d(x, 2), y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(halved.classify(x), plain.classify(F.avg_pool2d(x, 2)))
    halved(x, y).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the style loss reaches the image
    small = torch.rand(2, 3, 16, 20)  # already at or under the read size: read as given
    assert torch.equal(halved(small, y), plain(small, y))
    assert multidomain_from_config(halved.config).read_size == 16
    assert "read_size" not in plain.config  # model folders from before read as 0
    assert multidomain_from_config(plain.config).read_size == 0

    # A run with model.style_read_size trains on (and resumes, and exports) the smaller reads.
    cfg = small_cfg(synthetic_root, tmp_path / "runs", 4, **{"model.style_read_size": 16})
    torch.manual_seed(0)
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    seen = []
    recipe.style_encoder.body.register_forward_hook(lambda _m, a, _o: seen.append(a[0].shape))
    recipe.train_step(photo_to_ink_batch(), 1)
    assert seen and all(shape[-2:] == (16, 16) for shape in seen)
    straight = assert_resumes_exactly(cfg, ("generator", "mapping", "style_encoder"))
    stylizer = Stylizer.from_pretrained(straight.run_dir / "model")
    assert stylizer.style_encoder.read_size == 16
    photos = sorted((synthetic_root / "photo").glob("*.png"))
    art = sorted((synthetic_root / "woodblock").glob("*.png"))[0]
    out = stylizer(photos[0], reference=art).images[0]
    assert out.size == (32, 32) and stylizer.classify(art) in stylizer.domains


def test_fake_classification_trains_the_generator_not_the_classifier(synthetic_root, tmp_path):
    batch = photo_to_ink_batch()
    cfg = small_cfg(synthetic_root, tmp_path, 2, **{"loss.lambda_fake_cls": 1.0})
    torch.manual_seed(0)
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    images = batch["x"].clone().requires_grad_(True)
    F.cross_entropy(recipe._frozen_classify(images), batch["y_trg"]).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in recipe.style_encoder.parameters())
    assert all(p.requires_grad for p in recipe.style_encoder.parameters())  # restored
    # In a step the term weighs, the classifier's weights move only through the terms on
    # real images: with lambda_domain_cls 0 (and no style reconstruction) they do not move.
    for weight in (0.0, 1.0):
        cfg = small_cfg(synthetic_root, tmp_path, 2, **{
            "loss.lambda_fake_cls": weight, "loss.lambda_domain_cls": 0.0,
            "loss.lambda_style": 0.0})  # fmt: skip
        torch.manual_seed(0)
        recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
        before = [p.detach().clone() for p in recipe.style_encoder.parameters()]
        g_before = [p.detach().clone() for p in recipe.generator.parameters()]
        losses = recipe.train_step(batch, 0)
        assert (losses["loss/fake_cls"] > 0) == (weight > 0)
        assert all(torch.equal(p, b) for p, b in
                   zip(recipe.style_encoder.parameters(), before, strict=True))  # fmt: skip
        assert any(not torch.equal(p, b) for p, b in
                   zip(recipe.generator.parameters(), g_before, strict=True))  # fmt: skip
    with pytest.raises(ValueError, match="lambda_fake_cls"):
        small_cfg(synthetic_root, tmp_path, 2, **{"loss.lambda_fake_cls": -1.0}).validate()


def test_mapping_network_learns_at_its_own_rate(synthetic_root, tmp_path):
    batch = photo_to_ink_batch()
    moved = {}
    for ratio in (0.01, 1.0):
        cfg = small_cfg(synthetic_root, tmp_path, 2, **{"optim.mapping_lr_ratio": ratio})
        torch.manual_seed(0)
        recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
        before = [p.detach().clone() for p in recipe.mapping.parameters()]
        recipe.train_step(batch, 0)  # even step: the style code comes from the mapping network
        moved[ratio] = max(
            (p - b).abs().max().item()
            for p, b in zip(recipe.mapping.parameters(), before, strict=True)
        )
    # Adam's first step moves every weight with a gradient by about its learning rate.
    lr = cfg.optim.lr
    assert moved[0.01] == pytest.approx(0.01 * lr, rel=0.05)
    assert moved[1.0] == pytest.approx(lr, rel=0.05)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="mapping_lr_ratio"):
            small_cfg(synthetic_root, tmp_path, 2, **{"optim.mapping_lr_ratio": bad}).validate()


def test_preset_trains_exports_stylizes_and_resumes_exactly(synthetic_root, tmp_path):
    cfg = small_cfg(synthetic_root, tmp_path / "runs", 6)
    straight = assert_resumes_exactly(cfg, ("generator", "mapping", "style_encoder"))
    stylizer = Stylizer.from_pretrained(straight.run_dir / "model")
    assert isinstance(stylizer, MultiDomainStylizer)
    assert stylizer.generator.config["name"] == "mobile_style_generator"
    photo = sorted((synthetic_root / "photo").glob("*.png"))[0]
    full = np.asarray(stylizer(photo, target="woodblock").images[0], dtype=np.float64)
    half = np.asarray(stylizer(photo, target="woodblock", strength=0.5).images[0], dtype=np.float64)
    assert full.shape == half.shape == (32, 32, 3)
    assert np.abs(full - half).mean() > 0.1  # strength reaches the non-residual generator


def test_domain_branches_draw_each_item_with_its_own_domain():
    torch.manual_seed(0)
    g = MobileStyleGenerator(
        ngf=8, style_dim=16, n_blocks=2, domain_branch="blocks", num_domains=3
    ).eval()
    assert len(g.blocks) == 0 and all(len(b.blocks) == 2 for b in g.branches)
    x, s = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, 16)
    domain = torch.tensor([0, 2, 2, 1])
    with torch.no_grad():
        out = g(x, s, domain=domain)
        # An item in a batch is drawn as alone: a few hundred fp32 products summed per value
        # in another order (batched kernels), well under 1e-4 after the tanh.
        for i in range(4):
            alone = g(x[i : i + 1], s[i : i + 1], domain=domain[i : i + 1])
            torch.testing.assert_close(out[i : i + 1], alone, atol=1e-4, rtol=0)
        # Weights that pick one branch are the index; only branch 2 draws items 1 and 2.
        torch.testing.assert_close(g(x, s, domain=F.one_hot(domain, 3).float()), out)
        for p in g.branches[2].parameters():
            p.add_(0.1)
        changed = g(x, s, domain=domain)
        assert torch.equal(changed[[0, 3]], out[[0, 3]])
        assert (changed[[1, 2]] - out[[1, 2]]).abs().mean() > 1e-3
        rebuilt = multidomain_from_config(g.config)
        rebuilt.load_state_dict(g.state_dict())
        assert torch.equal(rebuilt.eval()(x, s, domain=domain), changed)
    for bad, message in ((None, "pass domain="), (torch.tensor([0, 1, 3, 0]), "indices"),
                         (torch.ones(4, 2), "shape")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            g(x, s, domain=bad)
    with pytest.raises(ValueError, match="num_domains >= 2"):
        MobileStyleGenerator(ngf=8, style_dim=16, domain_branch="decoder", num_domains=1)


def test_domain_branch_preset_trains_mixes_and_resumes_exactly(synthetic_root, tmp_path):
    cfg = small_cfg(synthetic_root, tmp_path / "runs", 6, **{"model.domain_branch": "decoder"})
    straight = assert_resumes_exactly(cfg, ("generator", "mapping", "style_encoder"))
    stylizer = Stylizer.from_pretrained(straight.run_dir / "model")
    assert len(stylizer.generator.branches) == len(stylizer.domains)
    photo = sorted((synthetic_root / "photo").glob("*.png"))[0]

    def render(**kwargs) -> np.ndarray:
        return np.asarray(stylizer(photo, **kwargs).images[0], dtype=np.float64)

    ink, wood = render(target="ink_wash"), render(target="woodblock")
    mixed = render(mix={"ink_wash": 0.5, "woodblock": 0.5})
    assert np.abs(ink - wood).mean() > 0.5  # each culture's branch draws its own picture
    assert np.abs(mixed - ink).mean() > 0.5 and np.abs(mixed - wood).mean() > 0.5
    assert np.abs(render(target="woodblock", strength=0.5) - wood).mean() > 0.1
    for bad in ({"train.recipe": "cyclegan"}, {"model.domain_branch": "encoder"}):
        overrides = {"model.domain_branch": "decoder", **bad}
        bad_cfg = small_cfg(synthetic_root, tmp_path, 2, **overrides)
        with pytest.raises(ValueError, match="domain_branch"):
            bad_cfg.validate()


def test_domain_weights_change_the_terms_of_one_cultures_items_only(synthetic_root, tmp_path):
    from culturegan.training.base import PERCEPTUAL_TERMS, DomainPerceptualTerms

    domains = ("ink_wash", "photo", "woodblock")
    gen = torch.Generator().manual_seed(5)
    fake, source, style = (torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(3))
    target = torch.tensor([0, 2, 0, 2])  # two items aimed at ink_wash, two at woodblock

    def score(*weights):
        cfg = small_cfg(synthetic_root, tmp_path, 2, **{"loss.domain_weights": list(weights)})
        return DomainPerceptualTerms(cfg.validate(), domains)(fake, source, style, target, step=3)

    base, base_logs = score()
    # The preset's own weights spelled out per culture: the same total, now summed over the
    # two groups of two instead of over four items (float32 means over ~1e4 values each: a
    # relative difference of order 1e-6; 1e-4 leaves room for other kernels' summation order).
    cfg = small_cfg(synthetic_root, tmp_path, 2)
    same = [f"{d}:{t}={getattr(cfg.loss, f'lambda_{t}')}" for d in ("ink_wash", "woodblock")
            for t in PERCEPTUAL_TERMS]  # fmt: skip
    total, logs = score(*same)
    assert torch.allclose(total, base, rtol=1e-4)
    assert logs.keys() == base_logs.keys()
    # Every term off for woodblock: half the batch, scored as the ink_wash items alone.
    total, logs = score(*[f"woodblock:{t}=0" for t in PERCEPTUAL_TERMS])
    ink = (target == 0).nonzero().squeeze(1)
    alone, alone_logs = DomainPerceptualTerms(cfg, domains).default(
        fake[ink], source[ink], style[ink], step=3
    )
    assert torch.allclose(total, 0.5 * alone, rtol=1e-4) and total < base
    assert logs["loss/content"] == pytest.approx(alone_logs["loss/content"], rel=1e-4)
    # Lite0 reads the whole batch once and each culture takes its items' maps: the gradient
    # reaching each item is the one its group alone gives (the woodblock items get none).
    both = fake.clone().requires_grad_(True)
    cfg_off = small_cfg(synthetic_root, tmp_path, 2, **{
        "loss.domain_weights": [f"woodblock:{t}=0" for t in PERCEPTUAL_TERMS]})  # fmt: skip
    DomainPerceptualTerms(cfg_off.validate(), domains)(both, source, style, target, step=3)[
        0
    ].backward()
    part = fake[ink].clone().requires_grad_(True)
    DomainPerceptualTerms(cfg, domains).default(part, source[ink], style[ink], step=3)[0].backward()
    assert both.grad[target == 2].abs().max() == 0
    scale = part.grad.abs().max()
    assert torch.allclose(both.grad[ink], 0.5 * part.grad, rtol=1e-3, atol=1e-4 * scale)
    # A term the defaults leave off weighs for one culture only.
    assert "loss/patch" not in base_logs and "loss/patch" in score("woodblock:patch=1")[1]

    for bad, message in [
        ("woodblock-content=1", "not DOMAIN:TERM=WEIGHT"),
        ("woodblock:colour=1", "unknown term 'colour'"),
        ("woodblock:content=-1", "must be a number >= 0"),
        ("woodblock:content=much", "must be a number >= 0"),
        ("?:content=1", "'\\?' names no domain"),
    ]:
        with pytest.raises(ValueError, match=message):
            score(bad)
    with pytest.raises(ValueError, match=r"names \['ukiyoe'\], which are not domains"):
        score("ukiyoe:content=1")
    # A name ending in '?' weighs only when the data has the domain.
    assert torch.equal(score("ukiyoe?:content=1")[0], base)
    assert torch.allclose(score("woodblock?:content=0")[0], score("woodblock:content=0")[0])
    with pytest.raises(ValueError, match="applies to the multidomain, cyclegan and cut recipes"):
        load_config("pix2pix_tiny", {"loss.domain_weights": ["art:content=1"]}).validate()
    # In training: the step runs and logs the terms of its culture's weights.
    weights = ["ink_wash:patch=1", "ink_wash:flat=1"]
    cfg = small_cfg(synthetic_root, tmp_path, 2, **{"loss.domain_weights": weights})
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    losses = recipe.train_step(photo_to_ink_batch(), 0)
    assert losses["loss/patch"] > 0 and losses["loss/flat"] > 0


def test_the_cultures_preset_weighs_each_culture_and_names_a_missing_one(synthetic_root, tmp_path):
    cfg = small_cfg(synthetic_root, tmp_path, 2, preset="multidomain_cultures").validate()
    cultures = ("chinese_ink", "impressionism_monet", "photo", "ukiyoe")
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=cultures)
    ink = recipe.perceptual.by_domain[cultures.index("chinese_ink")]
    assert (ink.lambda_content, ink.lambda_structure) == (0.5, 2.0)
    assert cultures.index("photo") not in recipe.perceptual.by_domain  # the preset's defaults
    batch = photo_to_ink_batch()
    batch["y"] = torch.full((4,), cultures.index("photo"))
    batch["y_trg"] = torch.tensor([0, 1, 3, 3])
    losses = recipe.train_step(batch, 0)
    assert losses["loss/content"] > 0 and losses["loss/structure"] > 0
    with pytest.raises(ValueError, match=r"names \['impressionism_monet', 'ukiyoe'\]"):
        MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("chinese_ink", "photo"))


def test_the_cpu_preset_weighs_the_cultures_a_dataset_has(synthetic_root, tmp_path):
    from culturegan.data.datasets import target_weight_list
    from culturegan.training.base import PERCEPTUAL_TERMS

    # On the three cultures it was measured on, multidomain_cpu is multidomain_cultures with
    # outlines for ukiyo-e and Chinese ink.
    cultures = ("chinese_ink", "impressionism_monet", "photo", "ukiyoe")
    presets = [small_cfg(synthetic_root, tmp_path, 2, preset=p).validate()
               for p in ("multidomain_cpu", "multidomain_cultures")]  # fmt: skip
    (cpu, strict) = (MultiDomainRecipe(c, device=torch.device("cpu"), domains=cultures).perceptual
                     for c in presets)  # fmt: skip
    assert cpu.by_domain.keys() == strict.by_domain.keys() == {0, 1, 3}
    others = [t for t in PERCEPTUAL_TERMS if t != "outline"]
    for index, terms in cpu.by_domain.items():
        assert [getattr(terms, f"lambda_{t}") for t in others] == [
            getattr(strict.by_domain[index], f"lambda_{t}") for t in others
        ]
        lines = cultures[index] in ("ukiyoe", "chinese_ink")
        assert (terms.lambda_outline, strict.by_domain[index].lambda_outline) == (
            3.0 if lines else 0.0, 0.0)  # fmt: skip
    weights = [target_weight_list(c.data.target_weights, cultures) for c in presets]
    assert weights[0] == weights[1] == [1.0, 1.0, 1.0, 2.0]
    # On other folders it trains with the shared weights where the strict preset refuses.
    cfg = presets[0]
    assert target_weight_list(cfg.data.target_weights, ("ink_wash", "photo", "ukiyoe")) == [
        1.0, 1.0, 2.0]  # fmt: skip
    assert target_weight_list(cfg.data.target_weights, ("ink_wash", "photo")) == []
    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("ink_wash", "photo"))
    assert recipe.perceptual.by_domain == {}
    losses = recipe.train_step(photo_to_ink_batch(), 0)
    assert losses["loss/content"] > 0 and losses["loss/style_stats"] > 0
    with pytest.raises(ValueError, match="which are not domains"):
        MultiDomainRecipe(presets[1], device=torch.device("cpu"), domains=("ink_wash", "photo"))
