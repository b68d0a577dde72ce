"""A style / culture classifier on EfficientNet-Lite0 features: our art-aware feature space.

:func:`train_classifier` fine-tunes ImageNet ``lite0`` to tell a dataset's domains apart (one
class per domain folder): a head (linear, or one hidden ReLU layer of ``hidden`` units) on the
1280-d pooled features, optionally also training the last ``finetune_blocks`` MBConv blocks and
the 1x1 head convolution. The frozen part of the network runs once per image (and once per
mirrored image, the only augmentation), and training runs on those cached activations, so a
few hundred images train in seconds on a CPU. Batch-norm statistics stay those of ImageNet.

The result is a pretrained folder (``model.safetensors`` + ``config.json``, like every
culturegan model) whose config records the classes, the architecture, the lite0 weights it
started from, the training settings and the held-out evaluation: accuracy and confusion matrix
on the test split (the validation split if there is no test split), also in ``metrics.json``.

As the ``classifier`` backbone its features are the hidden layer's activations (the pooled
lite0 features for a linear head), and it gives the style accuracy of stylized images.

Usage::

    report = train_classifier("data/", "models/style_clf"); print(report.summary())
    backbone = get_backbone("classifier", weights="models/style_clf")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from culturegan.checkpoint import CheckpointError, load_pretrained, save_pretrained, sub_state
from culturegan.data.splits import DatasetSplits, load_splits
from culturegan.fileio import write_json
from culturegan.metrics.backbones import (
    LITE0_INPUT_SIZE,
    LITE0_PREPROCESSING,
    MICRO_BATCH,
    Backbone,
    file_sha256,
    lite0_weights_path,
    load_lite0_trunk,
    resize_batch,
)
from culturegan.metrics.efficientnet_lite import HEAD_CHANNELS, EfficientNetLite0, normalise_lite
from culturegan.metrics.features import iter_batches

log = logging.getLogger("culturegan.metrics")

CLASSIFIER_KIND = "style_classifier"
NETWORK_NAME = "classifier"  # prefix of the tensors in model.safetensors


class StyleClassifier(nn.Module):
    """Lite0 trunk + head; ``forward`` gives logits, :meth:`extract` the feature space."""

    def __init__(self, classes: Sequence[str], *, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.classes = list(classes)
        self.hidden = hidden
        self.trunk = EfficientNetLite0(num_classes=None)
        self.dropout = nn.Dropout(dropout)
        if hidden > 0:
            self.embed = nn.Linear(HEAD_CHANNELS, hidden)
        self.out = nn.Linear(hidden if hidden > 0 else HEAD_CHANNELS, len(self.classes))

    @property
    def embed_dim(self) -> int:
        return self.hidden if self.hidden > 0 else HEAD_CHANNELS

    def embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features (B, 1280) -> the classifier's feature space (B, embed_dim)."""
        return F.relu(self.embed(pooled)) if self.hidden > 0 else pooled

    def logits_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.embedding(pooled)))

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pooled, maps = self.trunk.extract(x)
        return self.embedding(pooled), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_pooled(self.trunk.head(self.trunk.run_blocks(self.trunk.stem(x))))


@dataclass
class ClassifierReport:
    out_dir: Path
    classes: list[str]
    heldout_split: str  # "test", or "val" when the data has no test split
    accuracy: float  # on the held-out split
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    num_train: int
    num_heldout: int
    train_accuracy: float
    val_accuracy: float | None = None  # also reported when the held-out split is "test"
    per_class_accuracy: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"style classifier: {len(self.classes)} classes ({', '.join(self.classes)})",
            f"held-out ({self.heldout_split}) accuracy {self.accuracy:.3f} on "
            f"{self.num_heldout} images; train accuracy {self.train_accuracy:.3f} on "
            f"{self.num_train}",
            "confusion (rows true, columns predicted):",
        ]
        width = max(len(c) for c in self.classes)
        for name, row in zip(self.classes, self.confusion, strict=True):
            lines.append(f"  {name:>{width}}  " + " ".join(f"{n:4d}" for n in row))
        lines.append(f"model: {self.out_dir}")
        return "\n".join(lines)


def _frozen_activations(
    trunk: EfficientNetLite0,
    files: Sequence[Path],
    *,
    boundary: int,  # blocks [0, boundary) are frozen; boundary == num_blocks: pooled features
    flip: bool,
    batch_size: int,
    device: torch.device,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    """Outputs of the frozen part for every file (then for every mirrored file if ``flip``)."""
    outputs, mirrored = [], []
    with torch.no_grad(), tqdm(total=len(files), disable=not progress, desc=desc) as bar:
        for batch in iter_batches(list(files), batch_size):
            x = normalise_lite(resize_batch(batch, LITE0_INPUT_SIZE, antialias=True, device=device))
            views = [(x, outputs)] + ([(x.flip(-1), mirrored)] if flip else [])
            for view, sink in views:
                for chunk in view.split(MICRO_BATCH):
                    h = trunk.run_blocks(trunk.stem(chunk), 0, boundary)
                    if boundary == trunk.num_blocks:
                        h = trunk.head(h)
                    sink.append(h.cpu())
            bar.update(len(batch))
    return torch.cat(outputs + mirrored)


def _trainable_logits(model: StyleClassifier, h: torch.Tensor, boundary: int) -> torch.Tensor:
    trunk = model.trunk
    if boundary < trunk.num_blocks:
        h = trunk.head(trunk.run_blocks(h, boundary))
    return model.logits_from_pooled(h)


def _confusion(labels: torch.Tensor, preds: torch.Tensor, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (labels.numpy(), preds.numpy()), 1)
    return matrix


def train_classifier(
    data: str | os.PathLike | DatasetSplits,
    out_dir: str | os.PathLike,
    *,
    domains: Sequence[str] | None = None,  # classes, in order (default: every domain folder)
    ratios: Sequence[float] = (0.8, 0.1, 0.1),  # split ratios (per-domain layout)
    split_seed: int = 0,
    hidden: int = 256,  # hidden units of the head; 0 = a linear head
    dropout: float = 0.2,
    finetune_blocks: int = 0,  # also train this many last MBConv blocks (0-16)
    epochs: int = 60,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 32,
    flip: bool = True,  # add mirrored training images
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> ClassifierReport:
    """Train a style classifier on the train split, evaluate it on the held-out split, save it."""
    splits = (
        data
        if isinstance(data, DatasetSplits)
        else load_splits(data, domains=domains, ratios=ratios, seed=split_seed)
    )
    classes = splits.names
    heldout_split = "test" if any(d.test for d in splits.domains) else "val"
    if not any(getattr(d, heldout_split) for d in splits.domains):
        raise ValueError(
            f"'{splits.root}' has no validation or test images to measure the classifier on; "
            "give the split ratios a non-zero val or test share"
        )
    weights_path = lite0_weights_path()
    trunk = load_lite0_trunk(weights_path, with_classifier=False)
    if not 0 <= finetune_blocks <= trunk.num_blocks:
        raise ValueError(f"finetune_blocks must be in 0..{trunk.num_blocks}, got {finetune_blocks}")
    boundary = trunk.num_blocks - finetune_blocks
    dev = torch.device(device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = StyleClassifier(classes, hidden=hidden, dropout=dropout)
    model.trunk.load_state_dict(trunk.state_dict())
    model.to(dev).eval()

    def encode(split: str, with_flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        files, labels = [], []
        for index, domain in enumerate(splits.domains):
            part = getattr(domain, split)
            files += part
            labels += [index] * len(part)
        if not files:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        acts = _frozen_activations(
            model.trunk,
            files,
            boundary=boundary,
            flip=with_flip,
            batch_size=batch_size,
            device=dev,
            progress=progress,
            desc=f"classifier {split}",
        )
        y = torch.tensor(labels * (2 if with_flip else 1), dtype=torch.long)
        return acts, y

    x_train, y_train = encode("train", flip)
    counts = torch.bincount(y_train, minlength=len(classes)).clamp(min=1)
    class_weights = (len(y_train) / (len(classes) * counts.float())).to(dev)  # balance classes

    params = list(model.dropout.parameters()) + list(model.out.parameters())
    if hidden > 0:
        params += list(model.embed.parameters())
    if finetune_blocks:
        trunk_m = model.trunk
        params += [p for b in trunk_m._blocks[boundary:] for p in b.parameters()]
        params += list(trunk_m._conv_head.parameters()) + list(trunk_m._bn1.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), disable=not progress, desc="classifier epochs"):
        model.train()
        model.trunk.eval()  # keep ImageNet batch-norm statistics
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits = _trainable_logits(model, x_train[idx].to(dev), boundary)
            loss = F.cross_entropy(logits, y_train[idx].to(dev), weight=class_weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    model.eval()

    def accuracy(x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
        with torch.no_grad():
            preds = torch.cat(
                [
                    _trainable_logits(model, x[s : s + 256].to(dev), boundary).argmax(1).cpu()
                    for s in range(0, len(x), 256)
                ]
            )
        return float((preds == y).float().mean()), _confusion(y, preds, len(classes))

    train_acc, _ = accuracy(x_train, y_train)
    x_held, y_held = encode(heldout_split, False)
    held_acc, confusion = accuracy(x_held, y_held)
    val_acc = None
    if heldout_split == "test" and any(d.val for d in splits.domains):
        val_acc = accuracy(*encode("val", False))[0]
    per_class = {
        name: float(confusion[i, i] / row_sum) if (row_sum := confusion[i].sum()) else float("nan")
        for i, name in enumerate(classes)
    }
    evaluation = {
        "heldout_split": heldout_split,
        "accuracy": held_acc,
        "confusion": confusion.tolist(),
        "confusion_axes": "rows: true class, columns: predicted class",
        "per_class_accuracy": {k: (None if np.isnan(v) else v) for k, v in per_class.items()},
        "num_heldout": len(y_held),
        "num_train": len(y_train) // (2 if flip else 1),
        "train_accuracy": train_acc,
        "val_accuracy": val_acc,
    }
    config = {
        "kind": CLASSIFIER_KIND,
        "classes": classes,
        "architecture": {
            "trunk": "efficientnet_lite0",
            "hidden": hidden,
            "dropout": dropout,
            "finetune_blocks": finetune_blocks,
            "input_size": LITE0_INPUT_SIZE,
        },
        "preprocessing": LITE0_PREPROCESSING,
        "base_weights": {"name": "lite0", "sha256": file_sha256(weights_path)},
        "training": {
            "data_root": str(splits.root),
            "split_ratios": list(ratios),
            "split_seed": split_seed,
            "epochs": epochs,
            "lr": lr,
            "weight_decay": weight_decay,
            "batch_size": batch_size,
            "flip": flip,
            "seed": seed,
        },
        "evaluation": evaluation,
    }
    out_dir = Path(out_dir)
    save_pretrained(out_dir, {NETWORK_NAME: model.cpu()}, config)
    write_json(out_dir / "metrics.json", evaluation)
    return ClassifierReport(
        out_dir=out_dir,
        classes=classes,
        heldout_split=heldout_split,
        accuracy=held_acc,
        confusion=confusion.tolist(),
        num_train=evaluation["num_train"],
        num_heldout=len(y_held),
        train_accuracy=train_acc,
        val_accuracy=val_acc,
        per_class_accuracy=per_class,
    )


def load_classifier(model_dir: str | os.PathLike) -> tuple[StyleClassifier, dict[str, Any]]:
    """A trained :class:`StyleClassifier` and its config from a folder."""
    config, tensors = load_pretrained(model_dir)
    if config.get("kind") != CLASSIFIER_KIND:
        raise CheckpointError(
            f"'{model_dir}' is not a style classifier (config kind {config.get('kind')!r}); "
            "make one with: culturegan train-classifier --data ROOT --out DIR"
        )
    arch = config["architecture"]
    model = StyleClassifier(config["classes"], hidden=arch["hidden"], dropout=arch["dropout"])
    try:
        model.load_state_dict(sub_state(tensors, NETWORK_NAME))
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights in '{model_dir}' do not fit its config.json: {exc}"
        ) from None
    return model.eval(), config


def classifier_backbone(model_dir: str | os.PathLike, *, device: str = "cpu") -> Backbone:
    """A trained classifier as the ``classifier`` backbone (its ``net`` keeps ``classes``)."""
    model, _ = load_classifier(model_dir)
    return Backbone(
        "classifier",
        model,
        weight_sha256=file_sha256(Path(model_dir) / "model.safetensors"),
        input_size=LITE0_INPUT_SIZE,
        antialias=True,
        normalise=normalise_lite,
        preprocessing=LITE0_PREPROCESSING,
        dim=model.embed_dim,
        weights_path=str(model_dir),
        device=device,
    )


@torch.no_grad()
def predict(backbone: Backbone, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Class indices (B,) that a ``classifier`` backbone assigns to images in [-1, 1]."""
    if not isinstance(backbone.net, StyleClassifier):
        raise ValueError(f"backbone '{backbone.name}' is not a style classifier")
    return backbone.net(backbone.prepare(images)).argmax(1).cpu()
