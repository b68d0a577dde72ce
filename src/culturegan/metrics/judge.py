"""An independent culture judge: a linear probe on a frozen ImageNet backbone.

The judge says which culture an image looks like, and takes no part in training the models it
scores, so that "the ukiyo-e model's outputs look like ukiyo-e" is measured by something the
model could not fit. It is the linear-probe protocol of Kornblith, Shlens & Le ("Do Better
ImageNet Models Transfer Better?", CVPR 2019): an L2-regularised multinomial logistic regression
on the pooled features of a frozen pretrained network (default ``lite1``, EfficientNet-Lite1),
fitted with L-BFGS. Here:

* features are standardised with the training set's mean and standard deviation;
* the loss is the class-balanced cross-entropy (every class weighs the same in total, however
  many images it has) plus ``l2 / 2 * |W|^2`` (the bias is not penalised);
* L-BFGS runs full-batch in float64 from zero weights: the problem is strictly convex, so the
  result is the one optimum, reached the same way on every run (nothing random);
* ``cross_validation`` holds a stratified k-fold estimate of its accuracy on its own training
  data (standardisation refitted inside each fold), reported with every use of the judge.

A judge is saved as a culturegan model folder: ``model.safetensors`` (the standardisation and
the linear layer, float64) and ``config.json`` (kind ``culture_judge``, classes, backbone name
and weight hash, fit settings, training files, cross-validation); nothing is pickled.

Usage::

    judge = fit_judge({"photo": photo_files, "ukiyoe": print_files}); judge.save("judge/")
    judge_scores(Judge.load("judge/"), stylized_images, target="ukiyoe")
    # {"hit_rate": 0.8, "mean_target_prob": 0.71, "n": 64}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from culturegan.checkpoint import CheckpointError, load_pretrained, save_pretrained, sub_state
from culturegan.metrics.backbones import Backbone, get_backbone
from culturegan.metrics.features import Source, iter_batches, list_source_files, source_size

log = logging.getLogger("culturegan.metrics")

JUDGE_KIND = "culture_judge"
NETWORK_NAME = "judge"  # prefix of the tensors in model.safetensors
# On the mean loss. On cultures-dev (lite1, 263 judging images, 5 classes) the 5-fold accuracy
# is the same (0.951) for every l2 from 1e-4 to 1e-1; larger values only soften probabilities.
DEFAULT_L2 = 1e-2
MIN_STD = 1e-6  # features whose training spread is below this are left unscaled
# L-BFGS stops when no partial derivative exceeds this. The L2 term makes the objective at
# least l2-curved in W, so W is then within about sqrt(#parameters) * GRAD_TOLERANCE / l2 of
# the optimum: far below anything that moves a probability.
GRAD_TOLERANCE = 1e-7


class JudgeHead(nn.Module):
    """Standardisation and a linear layer: features (B, D) -> logits (B, K), in float64."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("std", torch.ones(dim, dtype=torch.float64))
        self.weight = nn.Parameter(torch.zeros(num_classes, dim, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(num_classes, dtype=torch.float64))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        z = (feats.to(torch.float64) - self.mean) / self.std  # (B, D)
        return z @ self.weight.T + self.bias  # (B, K)


def standardisation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (population) of the rows of ``x`` (N, D)."""
    mean = x.mean(dim=0)
    std = x.std(dim=0, correction=0)
    return mean, torch.where(std > MIN_STD, std, torch.ones_like(std))


def fit_logistic(
    z: torch.Tensor,  # (N, D) standardised features
    y: torch.Tensor,  # (N,) class indices
    num_classes: int,
    *,
    l2: float,  # weight of l2 / 2 * |W|^2 next to the mean loss
    max_iter: int = 500,  # L-BFGS iterations
    balanced: bool = True,  # every class weighs the same (False: every row does)
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Class-balanced, L2-regularised softmax regression by L-BFGS: weight (K, D), bias (K,)."""
    z = z.to(torch.float64)
    counts = torch.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        empty = [i for i, n in enumerate(counts.tolist()) if n == 0]
        raise ValueError(f"classes {empty} have no training rows")
    if balanced:  # each row weighs 1 / (K * n_class): every class sums to 1 / K, all rows to 1
        row_weight = (1.0 / (num_classes * counts.to(torch.float64)))[y]
    else:
        row_weight = torch.full((len(y),), 1.0 / len(y), dtype=torch.float64)
    weight = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=GRAD_TOLERANCE,
        tolerance_change=0.0,  # stop on the gradient (or max_iter), never on a slow step
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        losses = F.cross_entropy(z @ weight.T + bias, y, reduction="none")  # (N,)
        loss = (row_weight * losses).sum() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(objective)
    loss = objective()  # also leaves the final gradient in .grad
    grad_norm = float(torch.cat([weight.grad.flatten(), bias.grad.flatten()]).abs().max())
    state = optimiser.state[weight]  # L-BFGS keeps its counters with the first parameter
    info = {
        "loss": float(loss.detach()),
        "max_abs_grad": grad_norm,
        "converged": grad_norm <= GRAD_TOLERANCE,
        "iterations": state.get("n_iter", 0),
    }
    if not info["converged"]:
        log.warning(
            "judge: L-BFGS stopped after %d iterations with gradient %.2g (> %.0e); raise max_iter",
            info["iterations"],
            grad_norm,
            GRAD_TOLERANCE,
        )
    return weight.detach(), bias.detach(), info


def stratified_folds(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """(N,) fold index in [0, k): each class shuffled (seeded) and dealt round the folds."""
    generator = torch.Generator().manual_seed(seed)
    folds = torch.empty_like(y)
    offset = 0
    for c in torch.unique(y).tolist():
        rows = torch.nonzero(y == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        # Start each class where the last one stopped, so the folds also get even sizes.
        folds[rows] = (torch.arange(len(rows)) + offset) % k
        offset += len(rows)
    return folds


def _confusion(y: torch.Tensor, pred: torch.Tensor, k: int) -> np.ndarray:
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (y.numpy(), pred.numpy()), 1)
    return matrix


def cross_validate(
    feats: torch.Tensor,  # (N, D) raw features
    y: torch.Tensor,
    classes: list[str],
    *,
    folds: int,
    l2: float,
    seed: int,
    max_iter: int = 500,
) -> dict[str, Any] | None:
    """Stratified k-fold accuracy of the judge's fit (None when a class has < 2 rows)."""
    k = min(folds, int(torch.bincount(y, minlength=len(classes)).min()))
    if k < 2:
        return None
    fold_of = stratified_folds(y, k, seed)
    pred = torch.empty_like(y)
    for fold in range(k):
        held = fold_of == fold
        mean, std = standardisation(feats[~held])
        weight, bias, _ = fit_logistic(
            (feats[~held] - mean) / std, y[~held], len(classes), l2=l2, max_iter=max_iter
        )
        pred[held] = (((feats[held] - mean) / std) @ weight.T + bias).argmax(1)
    confusion = _confusion(y, pred, len(classes))
    recalls = confusion.diagonal() / confusion.sum(axis=1)
    return {
        "folds": k,
        "seed": seed,
        "accuracy": float((pred == y).double().mean()),
        "balanced_accuracy": float(recalls.mean()),  # mean of per-class recalls
        "per_class_recall": {name: float(r) for name, r in zip(classes, recalls, strict=True)},
        "confusion": confusion.tolist(),
        "confusion_axes": "rows: true class, columns: predicted class",
    }


class Judge:
    """A fitted judge: ``predict_proba`` over :attr:`classes`, from a named frozen backbone."""

    def __init__(self, head: JudgeHead, config: dict[str, Any]) -> None:
        self.head = head.eval().requires_grad_(False)
        self.config = config
        self.classes: list[str] = list(config["classes"])
        self._backbone: Backbone | None = None

    @property
    def cross_validated_accuracy(self) -> float | None:
        """k-fold accuracy on the judge's own training images (None if too few per class)."""
        cv = self.config.get("cross_validation")
        return None if cv is None else cv["accuracy"]

    @property
    def backbone(self) -> Backbone:
        """The backbone the judge was fitted on; refuses one with other weights."""
        if self._backbone is None:
            info = self.config["backbone"]
            backbone = get_backbone(info["name"], weights=info.get("weights"))
            if backbone.weight_sha256 != info["weight_sha256"]:
                raise ValueError(
                    f"this judge was fitted on {info['name']} weights with sha256 "
                    f"{info['weight_sha256'][:12]}..., but the installed ones are "
                    f"{backbone.label}; refit the judge"
                )
            self._backbone = backbone
        return self._backbone

    def features(self, images: Source, *, batch_size: int = 16) -> torch.Tensor:
        """Pooled backbone features (N, D) of every image; an unreadable file is an error."""
        parts = [self.backbone.features(batch) for batch in iter_batches(images, batch_size)]
        if not parts:
            raise ValueError("no images given to the judge")
        return torch.cat(parts)

    @torch.no_grad()
    def proba_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, K), float64, from backbone features (N, D)."""
        return self.head(feats).softmax(dim=1)

    def predict_proba(self, images: Source, *, batch_size: int = 16) -> torch.Tensor:
        """Class probabilities (N, K), float64, columns in the order of :attr:`classes`.

        ``images``: a (N, 3, H, W) tensor in [-1, 1], a list of (3, H, W) tensors, PIL images
        or image files, or a folder.
        """
        return self.proba_from_features(self.features(images, batch_size=batch_size))

    def predict(self, images: Source, *, batch_size: int = 16) -> list[str]:
        """The most probable class of each image."""
        proba = self.predict_proba(images, batch_size=batch_size)
        return [self.classes[i] for i in proba.argmax(dim=1).tolist()]

    def class_index(self, name: str) -> int:
        if name not in self.classes:
            raise ValueError(f"the judge knows no class '{name}' (classes: {self.classes})")
        return self.classes.index(name)

    def save(self, out_dir: str | os.PathLike) -> Path:
        """A model folder: model.safetensors + config.json (kind ``culture_judge``)."""
        return save_pretrained(out_dir, {NETWORK_NAME: self.head}, self.config)

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> Judge:
        config, tensors = load_pretrained(model_dir)
        if config.get("kind") != JUDGE_KIND:
            raise CheckpointError(
                f"'{model_dir}' holds a '{config.get('kind')}' model, not a {JUDGE_KIND}"
            )
        head = JudgeHead(int(config["dim"]), len(config["classes"]))
        try:
            head.load_state_dict(sub_state(tensors, NETWORK_NAME))
        except RuntimeError as exc:
            raise CheckpointError(
                f"weights in '{model_dir}' do not fit its config.json: {exc}"
            ) from None
        return cls(head, config)

    def summary(self) -> str:
        info = self.config["backbone"]
        counts = ", ".join(f"{c} {n}" for c, n in self.config["num_images"].items())
        text = f"judge on {info['name']}@{info['weight_sha256'][:12]}: {counts}"
        cv = self.config.get("cross_validation")
        if cv is not None:
            text += (
                f"; {cv['folds']}-fold accuracy {cv['accuracy']:.3f} "
                f"(balanced {cv['balanced_accuracy']:.3f})"
            )
        return text


def _class_features(
    name: str,
    source: Source,
    backbone: Backbone,
    *,
    batch_size: int,
    bar: tqdm,
) -> tuple[torch.Tensor, list[str], list[dict[str, str]]]:
    """Features of one class's readable images, the files used and the files skipped."""
    files = list_source_files(source)
    skipped: list[tuple[Path, str]] = []
    parts = []
    for batch in iter_batches(source, batch_size, skipped=skipped):
        parts.append(backbone.features(batch))
        bar.update(len(batch))
    for path, reason in skipped:
        log.warning("judge: skipped unreadable image '%s' of class '%s' (%s)", path, name, reason)
    if not parts:
        given = source_size(source)
        first = f"; first: '{skipped[0][0]}': {skipped[0][1]}" if skipped else ""
        raise ValueError(
            f"class '{name}' has no readable image ({given} given, {len(skipped)} "
            f"unreadable{first})"
        )
    bad = {str(path) for path, _ in skipped}
    used = [str(f) for f in files if str(f) not in bad] if files is not None else []
    return torch.cat(parts), used, [{"file": str(p), "reason": r} for p, r in skipped]


def fit_judge(
    files_by_class: Mapping[str, Source],  # class name -> image files (or folder, or tensor)
    *,
    backbone: str | Backbone = "lite1",  # any registered backbone name
    weights: str | os.PathLike | None = None,  # the backbone's weights (default: its own)
    l2: float = DEFAULT_L2,  # L2 penalty on the weights, next to the mean loss
    folds: int = 5,  # k of the cross-validation (fewer if a class is smaller)
    seed: int = 0,  # of the fold assignment (the fit itself draws nothing)
    max_iter: int = 500,  # L-BFGS iterations
    batch_size: int = 16,  # images read per batch
    progress: bool = False,
) -> Judge:
    """Fit a judge on the images of each class; unreadable files are named and skipped."""
    classes = list(files_by_class)
    if len(classes) < 2:
        raise ValueError(f"a judge needs at least 2 classes, got {classes}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    net = get_backbone(backbone, weights=weights)
    sizes = {}
    for name, source in files_by_class.items():
        try:
            sizes[name] = source_size(source)
        except (ValueError, OSError) as exc:  # e.g. a folder without image files
            raise ValueError(f"class '{name}': {exc}") from exc
    total = sum(sizes.values())
    feats, labels, used, skipped = [], [], {}, []
    with tqdm(total=total, disable=not progress, unit="img", desc="judge features") as bar:
        for index, name in enumerate(classes):
            x, files, bad = _class_features(
                name, files_by_class[name], net, batch_size=batch_size, bar=bar
            )
            feats.append(x.to(torch.float64))
            labels.append(torch.full((len(x),), index, dtype=torch.long))
            used[name] = files
            skipped += [{"class": name, **entry} for entry in bad]
    x, y = torch.cat(feats), torch.cat(labels)
    mean, std = standardisation(x)
    weight, bias, info = fit_logistic((x - mean) / std, y, len(classes), l2=l2, max_iter=max_iter)
    head = JudgeHead(x.shape[1], len(classes))
    with torch.no_grad():
        head.mean.copy_(mean)
        head.std.copy_(std)
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    cv = cross_validate(x, y, classes, folds=folds, l2=l2, seed=seed, max_iter=max_iter)
    config = {
        "kind": JUDGE_KIND,
        "classes": classes,
        "dim": int(x.shape[1]),
        "backbone": {
            **net.info(),
            "weights": str(weights) if weights is not None else None,
        },
        "fit": {
            "method": "class-balanced multinomial logistic regression on standardised "
            "features, L2 on the weights, full-batch L-BFGS (float64)",
            "l2": l2,
            "max_iter": max_iter,
            **info,
        },
        "num_images": {name: int((y == i).sum()) for i, name in enumerate(classes)},
        "training_files": used,
        "skipped": skipped,
        "cross_validation": cv,
    }
    judge = Judge(head, config)
    judge._backbone = net
    return judge


def scores_from_proba(proba: torch.Tensor, target: int) -> dict[str, float | int]:
    """``hit_rate`` (share of rows whose argmax is ``target``), ``mean_target_prob``, ``n``."""
    if proba.dim() != 2 or len(proba) == 0:
        raise ValueError(f"expected probabilities of shape (N >= 1, K), got {tuple(proba.shape)}")
    return {
        "hit_rate": float((proba.argmax(dim=1) == target).double().mean()),
        "mean_target_prob": float(proba[:, target].double().mean()),
        "n": len(proba),
    }


def judge_scores(
    judge: Judge, images: Source, target: str, *, batch_size: int = 16
) -> dict[str, float | int]:
    """How much ``images`` look like the class ``target`` to the judge (see scores_from_proba)."""
    index = judge.class_index(target)  # before any feature is computed
    return scores_from_proba(judge.predict_proba(images, batch_size=batch_size), index)


ARTIFACT_CLASS = "artifact"


def artifact_images(n: int, *, size: int = 192, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) images in [-1, 1] that are neither photos nor art: the judge's reject
    class. A closed-set judge must put every image in some class, and without this one it
    files uniform noise under ``chinese_ink`` (p 0.95 on cultures-dev): a broken generator would
    score hits. Five kinds in turn: uniform noise, coloured Gaussian noise, flat colour, smooth
    random blobs, and stripes / checkerboards (the periodic artefacts of transposed or
    pixel-shuffle layers), each with a random colour cast."""
    gen = torch.Generator().manual_seed(seed)
    images = []
    for i in range(n):
        colour = torch.rand(3, 1, 1, generator=gen) * 2 - 1
        kind = i % 5
        if kind == 0:
            x = torch.rand(3, size, size, generator=gen) * 2 - 1
        elif kind == 1:
            x = colour + 0.5 * torch.randn(3, size, size, generator=gen)
        elif kind == 2:
            x = colour.expand(3, size, size).clone()
        elif kind == 3:
            coarse = torch.rand(1, 3, 4, 4, generator=gen) * 2 - 1
            x = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
        else:
            period = int(torch.randint(2, 9, (1,), generator=gen))
            grid = torch.arange(size)
            rows = (grid // period) % 2
            pattern = (rows.view(-1, 1) ^ rows.view(1, -1)) if i % 2 else rows.view(-1, 1)
            x = colour + 0.6 * (pattern.float().expand(size, size) - 0.5)
        images.append(x.clamp(-1, 1))
    return torch.stack(images)
