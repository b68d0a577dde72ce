"""The multi-domain recipe: training, diversity, reference, strength, mix, grid, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_resumes_exactly
from culturegan.checkpoint import load_training_state
from culturegan.cli import main
from culturegan.config import load_config
from culturegan.data.images import ImageLoadError
from culturegan.data.synthetic import build_demo_dataset
from culturegan.grid import style_grid
from culturegan.inference import MultiDomainStylizer, Stylizer
from culturegan.training import export_run, train
from culturegan.training.loop import CHECKPOINT_NAME

DOMAINS = ["impasto", "ink_wash", "photo", "woodblock"]


def tiny_multidomain_cfg(root, runs, steps):
    return load_config(
        "multidomain_tiny",
        {
            "data.root": str(root),
            "data.load_size": 36,
            "data.crop_size": 32,
            "model.ngf": 8,
            "model.ndf": 8,
            "model.max_channels": 32,
            "model.mapping_hidden": 32,
            "model.d_down": 3,
            "train.steps": steps,
            "train.batch_size": 4,
            "train.runs_dir": str(runs),
            "train.log_every": 5,
            "train.sample_every": 20,
            "train.checkpoint_every": 20,
            "train.num_samples": 1,
            "loss.edge_domains": "woodblock",
            "loss.ink_domains": "ink_wash",
            "loss.blank_domains": "ink_wash",
            "loss.color_domains": "impasto",
        },
    )


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("md") / "data"
    build_demo_dataset(root, size=32, photos=12, art_per_style=12, heldout_photos=2)
    return root


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    runs = tmp_path_factory.mktemp("md_runs")
    return train(tiny_multidomain_cfg(synthetic_root, runs, 40), progress=False)


@pytest.fixture(scope="module")
def stylizer(trained):
    s = Stylizer.from_pretrained(trained.run_dir / "model")
    assert isinstance(s, MultiDomainStylizer)
    return s


def photo(root, i=0):
    return sorted((root / "photo").glob("*.png"))[i]


def arr(img):
    return np.asarray(img, dtype=np.float64)


def test_training_changes_every_network_and_logs_every_prior(trained):
    state = load_training_state(trained.run_dir / CHECKPOINT_NAME)
    assert state["domains"] == DOMAINS and state["step"] == 40
    log = (trained.run_dir / "log.jsonl").read_text()
    for key in ("loss/d", "loss/r1", "loss/style", "loss/diversity", "loss/cycle",
                "loss/prior_edge", "loss/prior_ink", "loss/prior_blank", "loss/prior_color",
                "loss/d_ink"):  # fmt: skip
        assert key in log, key
    assert (trained.run_dir / "samples" / "samples_000040.png").is_file()
    torch.manual_seed(0)
    from culturegan.training.multidomain import MultiDomainRecipe

    fresh = MultiDomainRecipe(
        tiny_multidomain_cfg("x", "y", 40), device=torch.device("cpu"), domains=tuple(DOMAINS)
    ).state_dict()
    for net in ("generator", "mapping", "style_encoder", "discriminator", "ink_discriminator"):
        changed = [not torch.equal(v, state["recipe"][net][k]) for k, v in fresh[net].items()]
        assert any(changed), f"{net} did not change"


def test_seeds_give_diverse_reproducible_outputs(stylizer, synthetic_root):
    x = photo(synthetic_root)
    a = arr(stylizer(x, target="woodblock", seed=1).images[0])
    again = arr(stylizer(x, target="woodblock", seed=1).images[0])
    b = arr(stylizer(x, target="woodblock", seed=2).images[0])
    assert np.array_equal(a, again)
    assert np.abs(a - b).mean() > 1.0


def test_no_seed_gives_the_domains_average_style(stylizer, synthetic_root):
    from culturegan.inference import AVERAGE_STYLE_SAMPLES

    x = photo(synthetic_root)
    z = torch.randn(AVERAGE_STYLE_SAMPLES, stylizer.latent_dim)
    label = torch.full((AVERAGE_STYLE_SAMPLES,), stylizer.domains.index("woodblock"))
    with torch.no_grad():
        codes = stylizer.mapping(z, label)
    # The mean over any 1024 draws lies within a few standard errors of the cached average.
    spread = codes.std(0) / AVERAGE_STYLE_SAMPLES**0.5
    average = stylizer.average_style("woodblock")[0]
    assert ((average - codes.mean(0)).abs() <= 6 * spread + 1e-6).all()
    assert ((average - codes[0]).abs() > 6 * spread).any()  # one draw is not the centre
    plain = arr(stylizer(x, target="woodblock").images[0])
    assert np.array_equal(plain, arr(stylizer(x, target="woodblock").images[0]))
    assert np.abs(plain - arr(stylizer(x, target="woodblock", seed=0).images[0])).mean() > 0.1
    # A mix without a seed blends the average styles.
    half = stylizer(x, mix="ink_wash:0.5,woodblock:0.5").images[0]
    request = stylizer.check_inputs(mix="ink_wash:0.5,woodblock:0.5")
    expected = 0.5 * stylizer.average_style("ink_wash") + 0.5 * stylizer.average_style("woodblock")
    assert torch.allclose(stylizer.style_code(request), expected, atol=1e-6)
    assert half.size == Image.open(x).size


def test_strength_runs_from_the_input_to_the_full_style(stylizer, synthetic_root):
    x = photo(synthetic_root)
    original = arr(Image.open(x).convert("RGB"))
    distances = [
        np.abs(arr(stylizer(x, target="ink_wash", strength=s).images[0]) - original).mean()
        for s in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert distances[0] < 0.5  # the input itself, up to rounding
    assert all(b > a for a, b in zip(distances, distances[1:], strict=False)), distances
    with pytest.raises(ValueError, match="strength must be in"):
        stylizer(x, target="ink_wash", strength=1.5)


def test_reference_guided_output_uses_the_references_domain(stylizer, synthetic_root):
    x = photo(synthetic_root)
    ref_ink = sorted((synthetic_root / "ink_wash").glob("*.png"))[0]
    ref_wood = sorted((synthetic_root / "woodblock").glob("*.png"))[0]
    ink = stylizer(x, reference=ref_ink, target="ink_wash")
    assert ink.direction == "auto->ink_wash"
    wood = stylizer(x, reference=ref_wood, target="woodblock")
    assert np.abs(arr(ink.images[0]) - arr(wood.images[0])).mean() > 1.0
    # Without a target, the style encoder's classifier names the reference's domain.
    guessed = stylizer(x, reference=ref_ink)
    assert guessed.direction == f"auto->{stylizer.classify(ref_ink)}"


def test_mix_blends_domains(stylizer, synthetic_root):
    x = photo(synthetic_root)
    ink = arr(stylizer(x, target="ink_wash", seed=3).images[0])
    wood = arr(stylizer(x, target="woodblock", seed=3).images[0])
    half = arr(stylizer(x, mix="ink_wash:0.5,woodblock:0.5", seed=3).images[0])
    only_ink = arr(stylizer(x, mix={"ink_wash": 1.0}, seed=3).images[0])
    assert np.array_equal(only_ink, ink)
    assert not np.array_equal(half, ink) and not np.array_equal(half, wood)
    with pytest.raises(ValueError, match="unknown mix domain 'persian'"):
        stylizer(x, mix="persian:1")


def test_export_reload_gives_identical_outputs(trained, stylizer, synthetic_root, tmp_path):
    again = Stylizer.from_pretrained(export_run(trained.run_dir, tmp_path / "exported"))
    x = Image.open(photo(synthetic_root)).resize((37, 29))
    for kwargs in ({"target": "impasto", "seed": 5}, {"target": "photo", "strength": 0.5}):
        assert np.array_equal(
            arr(stylizer(x, **kwargs).images[0]), arr(again(x, **kwargs).images[0])
        )


def test_grid_and_cli(trained, stylizer, synthetic_root, tmp_path, capsys):
    inputs = [photo(synthetic_root, 0), photo(synthetic_root, 1)]
    picture = style_grid(stylizer, inputs, samples=2, cell=40)
    # One row per input below the label row; input column plus 4 domains x 2 samples.
    assert picture.size == (9 * 44 + 4, 18 + 2 * 44)
    header = np.asarray(picture)[:18]
    assert (header < 128).any()  # the labels are drawn
    out = tmp_path / "grid.png"
    model = str(trained.run_dir / "model")
    assert main(["grid", *map(str, inputs), "--model", model, "--out", str(out)]) == 0
    assert Image.open(out).size == (5 * 132 + 4, 18 + 2 * 132)
    stylized = tmp_path / "stylized"
    code = main(["stylize", str(inputs[0]), "--model", model, "--out", str(stylized),
                 "--target", "woodblock", "--samples", "3", "--seed", "7"])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in stylized.iterdir())
    assert names == [f"{inputs[0].stem}_s{k}.png" for k in range(3)]
    code = main(["stylize", str(inputs[0]), "--model", model, "--out", str(stylized),
                 "--reference", str(inputs[1]), "--samples", "2"])  # fmt: skip
    assert code == 2 and "needs noise" in capsys.readouterr().err
    assert main(["info", model]) == 0
    assert "domains: impasto, ink_wash, photo, woodblock" in capsys.readouterr().out


def test_bad_inputs_are_clear_errors(stylizer, synthetic_root, tmp_path, capsys):
    x = photo(synthetic_root)
    with pytest.raises(ValueError, match="unknown target domain 'persian'.*impasto, ink_wash"):
        stylizer(x, target="persian")
    with pytest.raises(ValueError, match="needs a target"):
        stylizer(x)
    not_image = tmp_path / "painting.jpg"
    not_image.write_text("this is not a painting")
    with pytest.raises(ImageLoadError, match="painting.jpg"):
        stylizer(x, reference=not_image)

    # A domain folder with a single image stops training before it starts.
    root = tmp_path / "data"
    for name, n in (("photo", 3), ("ukiyoe", 1)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(root / name / f"{i}.png")
    code = main(["train", "--config", "multidomain_tiny", "--data.root", str(root),
                 "--train.runs_dir", str(tmp_path / "runs")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "ukiyoe" in err and "at least 2" in err
    code = main(["train", "--config", "multidomain_tiny", "--data.root", str(synthetic_root),
                 "--data.domains", "photo,persian",
                 "--train.runs_dir", str(tmp_path / "r")])  # fmt: skip
    assert code == 2 and "persian" in capsys.readouterr().err


def test_multidomain_resume_is_exact(synthetic_root, tmp_path):
    cfg = tiny_multidomain_cfg(synthetic_root, tmp_path / "runs", 6)
    assert_resumes_exactly(cfg, ("generator", "mapping", "style_encoder", "discriminator"))
