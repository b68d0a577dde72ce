"""The style classifier: trains on the synthetic domains, exports, serves as a backbone."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from culturegan.data.images import load_image, pil_to_tensor
from culturegan.data.splits import load_splits
from culturegan.data.synthetic import build_demo_dataset
from culturegan.inference import Stylizer
from culturegan.metrics.backbones import get_backbone
from culturegan.metrics.classifier import load_classifier, predict, train_classifier
from culturegan.metrics.cli import register
from culturegan.metrics.evaluate import evaluate_model

RATIOS = (0.5, 0.25, 0.25)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf") / "data"
    return build_demo_dataset(root, size=48, photos=12, art_per_style=12, heldout_photos=0)


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """Trained through the `train-classifier` command, as a user would."""
    out = tmp_path_factory.mktemp("clf") / "model"
    parser = argparse.ArgumentParser(prog="culturegan")
    handlers = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["train-classifier", "--data", str(demo_root), "--out", str(out), "--epochs", "40"]
        + ["--split-ratios", ",".join(map(str, RATIOS)), "--no-progress"]
    )
    assert handlers["train-classifier"](args) == 0
    return out


def test_classifier_reaches_high_heldout_accuracy_and_records_it(trained, capsys):
    config = json.loads((trained / "config.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    assert config["kind"] == "style_classifier"
    assert config["classes"] == ["impasto", "ink_wash", "photo", "woodblock"]
    assert config["base_weights"]["sha256"].startswith("57934424")
    evaluation = config["evaluation"]
    assert evaluation == metrics
    assert evaluation["heldout_split"] == "test" and evaluation["num_heldout"] >= 8
    assert evaluation["accuracy"] >= 0.9, evaluation
    confusion = evaluation["confusion"]
    assert len(confusion) == 4 and sum(map(sum, confusion)) == evaluation["num_heldout"]
    assert sum(confusion[i][i] for i in range(4)) / evaluation["num_heldout"] == pytest.approx(
        evaluation["accuracy"]
    )


def test_classifier_backbone_predicts_and_has_its_own_feature_space(trained, demo_root):
    model, _ = load_classifier(trained)
    assert model.embed_dim == 256
    backbone = get_backbone("classifier", weights=trained)
    assert backbone.name == "classifier" and backbone.dim == 256
    splits = load_splits(demo_root, ratios=RATIOS)
    files = splits.domain("woodblock").test[:3] + splits.domain("photo").test[:3]
    images = [pil_to_tensor(load_image(f)) for f in files]
    preds = predict(backbone, images).tolist()
    woodblock, photo = model.classes.index("woodblock"), model.classes.index("photo")
    assert sum(p == woodblock for p in preds[:3]) + sum(p == photo for p in preds[3:]) >= 5
    assert backbone.features(images).shape == (6, 256)


class TargetSampleStylizer(Stylizer):
    """Returns real images of the target domain: a perfect style, no content kept."""

    kind = "target_sample"

    def __init__(self, splits, domains):
        directions = {f"{domains[0]}->{domains[1]}": "g", f"{domains[1]}->{domains[0]}": "f"}
        super().__init__(domains=domains, directions=directions)
        self.splits = splits

    def _stylize(self, pils, request):
        pool = self.splits.domain(request.target).train
        return [load_image(pool[i % len(pool)]).resize(img.size) for i, img in enumerate(pils)]


def test_style_accuracy_of_outputs_that_look_like_the_target(trained, demo_root, tmp_path):
    splits = load_splits(demo_root, domains=["photo", "woodblock"], ratios=RATIOS)
    stylizer = TargetSampleStylizer(splits, ["photo", "woodblock"])
    result = evaluate_model(
        stylizer, splits, split="test", classifier=trained, cache_dir=tmp_path, max_images=4
    )
    for pair in result["pairs"].values():
        assert pair["metrics"]["style_acc"] >= 0.75
    assert result["backbones"]["classifier"]["classes"][2] == "photo"
    assert "style_acc" in result["metrics"]


def test_finetuning_last_blocks_trains_and_reloads(demo_root, tmp_path):
    report = train_classifier(
        demo_root,
        tmp_path / "ft",
        domains=["photo", "ink_wash"],
        ratios=RATIOS,
        hidden=0,
        finetune_blocks=1,
        epochs=3,
        batch_size=16,
        flip=False,
        progress=False,
    )
    assert report.classes == ["photo", "ink_wash"] and report.accuracy >= 0.75
    assert "held-out (test) accuracy" in report.summary()
    model, config = load_classifier(tmp_path / "ft")
    assert config["architecture"]["finetune_blocks"] == 1 and model.embed_dim == 1280
    base = get_backbone("lite0").net
    # The fine-tuned block changed, the frozen ones did not.
    assert not torch.equal(
        model.trunk._blocks[15]._project_conv.weight, base._blocks[15]._project_conv.weight
    )
    assert torch.equal(
        model.trunk._blocks[3]._project_conv.weight, base._blocks[3]._project_conv.weight
    )
    with pytest.raises(ValueError, match="finetune_blocks must be in 0..16"):
        train_classifier(demo_root, tmp_path / "x", ratios=RATIOS, finetune_blocks=17)
