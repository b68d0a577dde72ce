"""evaluate_model on stylizers with known answers, record_eval, and the `evaluate` command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from culturegan.checkpoint import save_pretrained
from culturegan.data.splits import load_splits
from culturegan.data.synthetic import build_demo_dataset
from culturegan.inference import Stylizer
from culturegan.metrics.cli import register
from culturegan.metrics.evaluate import direction_pairs, evaluate_model, record_eval
from culturegan.metrics.registry import higher_is_better
from culturegan.models.generators import ResnetGenerator

RATIOS = (0.34, 0.33, 0.33)


class IdentityStylizer(Stylizer):
    """A two-domain "model" that changes nothing: content is perfectly kept."""

    kind = "identity"

    def __init__(self):
        directions = {"photo->woodblock": "g_ab", "woodblock->photo": "g_ba"}
        super().__init__(domains=["photo", "woodblock"], directions=directions)

    def _stylize(self, pils, request):
        return [img.copy() for img in pils]


class BandStylizer(IdentityStylizer):
    """Keeps the photo but paints a black band down its left side, as a padding artefact does."""

    def _stylize(self, pils, request):
        out = []
        for img in pils:
            arr = np.asarray(img).copy()
            arr[:, : max(1, arr.shape[1] // 32)] = 0 if arr.mean() > 127 else 255  # 1/32 wide
            out.append(Image.fromarray(arr))
        return out


class LatticeStylizer(IdentityStylizer):
    """Keeps the photo but adds a diagonal pattern fixed to its 4-pixel grid (size_multiple)."""

    def _stylize(self, pils, request):
        out = []
        for img in pils:
            arr = np.asarray(img).astype(np.float64)
            rows, cols = np.indices(arr.shape[:2])
            arr += 20 * np.cos(2 * np.pi * (rows + cols) / self.size_multiple)[..., None]
            out.append(Image.fromarray(arr.clip(0, 255).astype(np.uint8)))
        return out


class NoisyMultiDomainStylizer(Stylizer):
    """Three domains; the seed adds different noise, so outputs of one input differ."""

    kind = "noisy"
    options = frozenset({"seed"})

    def __init__(self):
        directions = {"photo->woodblock": "g", "photo->ink_wash": "g"}
        super().__init__(domains=["photo", "woodblock", "ink_wash"], directions=directions)
        self.seeds = []

    def _resolve(self, request):  # like a multi-domain model: any source, any target
        for role in ("source", "target"):
            self.check_domain(getattr(request, role), role)
        request.direction = f"{request.source}->{request.target}"

    def _stylize(self, pils, request):
        self.seeds.append(request.seed)
        rng = np.random.default_rng([request.seed, self.domains.index(request.target)])
        out = []
        for img in pils:
            arr = np.asarray(img).astype(np.float64)
            arr = arr + rng.normal(0, 40, arr.shape)
            out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
        return out


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "data"
    styles = ("woodblock", "ink_wash")
    return build_demo_dataset(
        root, size=32, photos=12, art_per_style=12, heldout_photos=0, styles=styles
    )


def test_identity_model_keeps_content_and_gets_the_inputs_fd(demo_root, tmp_path):
    splits = load_splits(demo_root, domains=["photo", "woodblock"], ratios=RATIOS)
    rng_before = torch.get_rng_state()
    result = evaluate_model(
        IdentityStylizer(),
        splits,
        split="val",
        max_images=4,
        cache_dir=tmp_path / "cache",
        examples_dir=tmp_path / "out" / "examples",
        num_examples=2,
    )
    assert torch.equal(torch.get_rng_state(), rng_before)  # a resumed run stays bit-exact
    json.dumps(result, allow_nan=False)  # valid JSON as it is
    pair = result["pairs"]["photo->woodblock"]
    m = pair["metrics"]
    assert m["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert m["border_band"] == 0
    assert m["perceptual_lite0"] == pytest.approx(0.0, abs=1e-6)
    assert m["fd_lite0"] == pytest.approx(m["fd_lite0_inputs"], rel=1e-6)
    assert m["artfid_lite0"] == pytest.approx(1 + m["fd_lite0"], rel=1e-6)
    assert m["kd_lite0_std"] >= 0 and pair["num_inputs"] == 4
    assert result["metrics"]["fd_lite0/photo_to_woodblock"] == m["fd_lite0"]
    mean = (m["fd_lite0"] + result["pairs"]["woodblock->photo"]["metrics"]["fd_lite0"]) / 2
    assert result["metrics"]["fd_lite0"] == pytest.approx(mean)
    assert result["primary"] == "artfid_lite0" and not result["primary_higher_is_better"]
    assert result["backbones"]["lite0"]["weight_sha256"].startswith("57934424")
    assert result["matrices"]["fd_lite0"][0][0] is None
    example = pair["examples"][0]
    assert example["input"].startswith("examples/photo_to_woodblock/")
    assert (tmp_path / "out" / example["output"]).is_file()
    assert "diversity_lite0" not in m  # no `diverse` attribute: treated as not diverse
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate_model(IdentityStylizer(), splits, split="holdout")


def test_a_band_down_one_side_is_measured(demo_root, tmp_path):
    splits = load_splits(demo_root, domains=["photo", "woodblock"], ratios=RATIOS)
    result = evaluate_model(BandStylizer(), splits, split="val", max_images=4, cache_dir=tmp_path)
    bands = [pair["metrics"]["border_band"] for pair in result["pairs"].values()]
    # The band is as wide as the outer strip and at least half the range from the picture.
    assert all(0.3 < band <= 1 for band in bands)
    assert result["metrics"]["border_band"] == pytest.approx(np.mean(bands))
    assert not higher_is_better("border_band")


def test_a_pattern_fixed_to_the_models_grid_is_measured(demo_root, tmp_path):
    splits = load_splits(demo_root, domains=["photo", "woodblock"], ratios=RATIOS)
    clean, lattice = (
        evaluate_model(model, splits, split="val", max_images=4, cache_dir=tmp_path)["pairs"]
        for model in (IdentityStylizer(), LatticeStylizer())
    )
    for key in ("photo->woodblock", "woodblock->photo"):
        assert lattice[key]["metrics"]["grid_peak"] > 3 * clean[key]["metrics"]["grid_peak"]
    assert not higher_is_better("grid_peak")


def test_multi_domain_model_gives_matrices_and_diversity(demo_root, tmp_path):
    splits = load_splits(demo_root, ratios=RATIOS)
    stylizer = NoisyMultiDomainStylizer()
    assert len(direction_pairs(stylizer)) == 6  # every ordered pair, not only `directions`
    result = evaluate_model(
        stylizer,
        splits,
        split="val",
        max_images=2,
        diversity_seeds=3,
        diversity_images=2,
        cache_dir=tmp_path / "cache",
    )
    assert set(stylizer.seeds) == {0, 1, 2}
    assert len(result["pairs"]) == 6 and result["diverse"]
    matrix = result["matrices"]["diversity_lite0"]
    assert result["matrices"]["domains"] == ["photo", "woodblock", "ink_wash"]
    assert all(matrix[i][i] is None for i in range(3))
    assert all(matrix[i][j] > 0.01 for i in range(3) for j in range(3) if i != j)
    assert result["matrices"]["ssim"][0][1] < 0.9  # the noise costs structure
    assert "diversity_lite0/photo_to_ink_wash" in result["metrics"]


def test_record_eval_keeps_the_best_step(tmp_path):
    def result(value):
        return {"split": "val", "primary": "artfid_lite0", "metrics": {"artfid_lite0": value}}

    assert record_eval(tmp_path, 100, result(5.0))
    assert not record_eval(tmp_path, 200, result(6.0))
    assert record_eval(tmp_path, 300, result(4.0))
    best = json.loads((tmp_path / "eval_best.json").read_text())
    assert best["step"] == 300 and best["value"] == 4.0 and not best["higher_is_better"]
    lines = (tmp_path / "eval.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [100, 200, 300]


def test_evaluate_command_writes_metrics_and_page(demo_root, tmp_path, capsys):
    torch.manual_seed(0)
    nets = {"g_ab": ResnetGenerator(ngf=4, n_blocks=1), "g_ba": ResnetGenerator(ngf=4, n_blocks=1)}
    model_dir = tmp_path / "model"
    save_pretrained(
        model_dir,
        nets,
        {
            "kind": "two_domain",
            "domains": ["photo", "ink_wash"],
            "networks": {k: v.config for k, v in nets.items()},
            "directions": {"photo->ink_wash": "g_ab", "ink_wash->photo": "g_ba"},
            "size_multiple": 4,
        },
    )
    parser = argparse.ArgumentParser(prog="culturegan")
    handlers = register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "eval"
    args = parser.parse_args(
        ["evaluate", "--model", str(model_dir), "--data", str(demo_root), "--out", str(out)]
        + ["--split", "test", "--max-images", "3", "--examples", "2", "--no-progress"]
        + ["--split-ratios", ",".join(map(str, RATIOS)), "--cache-dir", str(tmp_path / "c")]
    )
    assert handlers[args.command](args) == 0
    printed = capsys.readouterr().out
    assert "photo->ink_wash: ssim" in printed and "backbone lite0: sha256 579344248a93" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["pairs"]) == {"photo->ink_wash", "ink_wash->photo"}
    assert metrics["split"] == "test" and metrics["model"] == str(model_dir)
    page = (out / "index.html").read_text()
    assert "lite0@579344248a93" in page and "Examples photo-&gt;ink_wash" in page
    for pair in metrics["pairs"].values():
        for example in pair["examples"]:
            assert (out / example["input"]).is_file() and (out / example["output"]).is_file()
            assert f'src="{example["output"]}"' in page
    bad = parser.parse_args(
        ["evaluate", "--model", str(model_dir), "--data", str(demo_root)]
        + ["--out", str(out), "--weights", "vgg=x.pth"]
    )
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        handlers["evaluate"](bad)
