"""Cross-validated classifiers and 2-D maps, in numpy and scipy only.

* The classifier is multinomial logistic regression with an L2 penalty on the weights (not the
  intercepts), fitted by L-BFGS on features standardised with the training folds' mean and
  standard deviation. It is linear, so its accuracy says whether the cultures are separable
  by a weighted sum of the features.
* Cross-validation is stratified k-fold (every fold keeps the culture proportions) with a
  seeded shuffle; every image is predicted once, by a model that never saw it, and the
  confusion matrix counts those out-of-fold predictions.
* The accuracy's interval is a percentile bootstrap over images of those out-of-fold
  predictions (the images are resampled, the models are not refitted), so it says how much the
  accuracy depends on which images happened to be collected. When every prediction is right
  (or every one wrong) the bootstrap has nothing to resample and the exact Clopper-Pearson
  bound is given instead.
* Maps are principal component analysis (SVD of the standardised, centred features), and UMAP
  (McInnes et al., 2018) when the optional ``umap-learn`` package is installed
  (``pip install 'culturegan[umap]'``).

Usage::

    result = cross_validate(features, labels, rng=np.random.default_rng(0))
    print(result.accuracy_text())  # "92.5% [88.1, 95.9]"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

INTERVAL_METHOD = "percentile bootstrap over images of the out-of-fold predictions"


def standardise(
    x: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z-scores, mean, std); constant columns get std 1 so they become 0, not NaN."""
    mean = x.mean(0) if mean is None else mean
    if std is None:
        std = x.std(0)
        std = np.where(std > 1e-12, std, 1.0)
    return (x - mean) / std, mean, std


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1.0) -> np.ndarray:
    """Weights (D + 1, C) of multinomial logistic regression; the last row is the intercept.

    Minimises mean cross-entropy + l2 / (2 n) * |W|^2 over the feature weights.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    onehot = np.eye(n_classes)[y]

    def loss_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(d + 1, n_classes)
        logits = xb @ w
        log_p = logits - logsumexp(logits, axis=1, keepdims=True)
        loss = -(onehot * log_p).sum() / n + l2 / (2 * n) * (w[:-1] ** 2).sum()
        grad = xb.T @ (np.exp(log_p) - onehot) / n
        grad[:-1] += l2 / n * w[:-1]
        return loss, grad.ravel()

    start = np.zeros((d + 1) * n_classes)
    result = minimize(
        loss_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": 300, "ftol": 1e-8}
    )
    return result.x.reshape(d + 1, n_classes)


def predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (np.hstack([x, np.ones((len(x), 1))]) @ w).argmax(1)


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``k`` disjoint index arrays; each class is shuffled and dealt round-robin to the folds."""
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in np.unique(y):
        members = rng.permutation(np.nonzero(y == label)[0])
        for i, index in enumerate(members):
            folds[(i + offset) % k].append(int(index))
        offset += len(members)  # the next class starts where this one stopped
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def format_accuracy(accuracy: float, low: float, high: float) -> str:
    """``"92.5% [88.1, 95.9]"``: an accuracy and its interval, in percent."""
    return f"{accuracy:.1%} [{100 * low:.1f}, {100 * high:.1f}]"


def accuracy_interval(
    n_right: int, n: int, *, rng: np.random.Generator, n_boot: int = 1000, level: float = 0.95
) -> tuple[float, float, str]:
    """(low, high, method) of an accuracy of ``n_right`` out of ``n`` predictions.

    Resampling n images with replacement and counting the right ones is a Binomial(n, k / n)
    draw, so the bootstrap draws those counts directly (no (n_boot, n) index array).
    """
    alpha = 1.0 - level
    if n_right in (0, n):
        bound = (alpha / 2) ** (1.0 / n)  # Clopper-Pearson: p^n = alpha / 2
        low, high = (bound, 1.0) if n_right == n else (0.0, 1.0 - bound)
        which = "right" if n_right == n else "wrong"
        return low, high, f"Clopper-Pearson (every prediction {which})"
    share = rng.binomial(n, n_right / n, size=n_boot) / n
    low, high = np.quantile(share, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high), INTERVAL_METHOD


@dataclass
class CrossValidation:
    accuracy: float  # share of out-of-fold predictions that are right
    fold_accuracies: list[float]
    chance: float  # accuracy of always guessing the largest class
    confusion: list[list[int]]  # [true class][predicted class], counts over all images
    classes: list[str]
    n_images: int
    n_folds: int
    n_features: int
    ci_low: float  # interval of the accuracy (see accuracy_interval)
    ci_high: float
    ci_level: float
    ci_method: str

    def accuracy_text(self) -> str:
        return format_accuracy(self.accuracy, self.ci_low, self.ci_high)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "accuracy_ci": [self.ci_low, self.ci_high],
            "ci_level": self.ci_level,
            "ci_method": self.ci_method,
            "accuracy_text": self.accuracy_text(),
            "fold_accuracies": self.fold_accuracies,
            "accuracy_sd_over_folds": float(np.std(self.fold_accuracies)),
            "chance": self.chance,
            "confusion": self.confusion,
            "classes": self.classes,
            "n_images": self.n_images,
            "n_folds": self.n_folds,
            "n_features": self.n_features,
        }


def cross_validate(
    x: np.ndarray,  # (N, D) features
    labels: np.ndarray,  # (N,) class names
    *,
    rng: np.random.Generator,
    k: int = 5,  # folds (lowered to the smallest class size)
    l2: float = 1.0,
    max_components: int | None = None,  # PCA inside each training fold, for embeddings
    n_boot: int = 1000,  # bootstrap resamples of the accuracy's interval
    level: float = 0.95,  # the interval's confidence level
) -> CrossValidation:
    """Stratified k-fold accuracy (with its interval) and confusion matrix of logistic
    regression."""
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(y)
    if len(classes) < 2:
        raise ValueError("a classifier needs at least two classes")
    k = int(min(k, counts.min()))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 images per class, got {counts.min()}")
    predicted = np.empty(len(y), dtype=np.int64)
    fold_acc = []
    for test in stratified_folds(y, k, rng):
        train = np.setdiff1d(np.arange(len(y)), test)
        x_train, mean, std = standardise(x[train])
        x_test = (x[test] - mean) / std
        if max_components is not None and x.shape[1] > max_components:
            basis = pca_basis(x_train, min(max_components, len(train) - 1))
            x_train, x_test = x_train @ basis, x_test @ basis
        w = fit_logistic(x_train, y[train], len(classes), l2=l2)
        predicted[test] = predict_logistic(w, x_test)
        fold_acc.append(float((predicted[test] == y[test]).mean()))
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    n_right = int((predicted == y).sum())
    low, high, method = accuracy_interval(n_right, len(y), rng=rng, n_boot=n_boot, level=level)
    return CrossValidation(
        accuracy=n_right / len(y),
        fold_accuracies=fold_acc,
        chance=float(counts.max() / counts.sum()),
        confusion=confusion.tolist(),
        classes=[str(c) for c in classes],
        n_images=len(y),
        n_folds=k,
        n_features=int(x.shape[1]),
        ci_low=low,
        ci_high=high,
        ci_level=level,
        ci_method=method,
    )


def pca_basis(x: np.ndarray, n_components: int) -> np.ndarray:
    """(D, n) orthonormal principal directions of centred rows ``x``, sign fixed so that the
    largest loading of each direction is positive (stable across runs).

    Uses the eigenvectors of the smaller of the two Gram matrices (N x N or D x D), which is
    much cheaper than an SVD when there are few images of many-dimensional embeddings.
    """
    centred = x - x.mean(0)
    n, d = centred.shape
    n_components = min(n_components, n, d)
    if n < d:
        values, vectors = np.linalg.eigh(centred @ centred.T)  # ascending
        values, vectors = values[::-1][:n_components], vectors[:, ::-1][:, :n_components]
        basis = centred.T @ vectors / np.sqrt(np.clip(values, 1e-300, None))
        # Directions of (numerically) zero variance carry no information; keep them unit-norm.
        basis /= np.maximum(np.linalg.norm(basis, axis=0), 1e-300)
    else:
        values, vectors = np.linalg.eigh(centred.T @ centred)
        basis = vectors[:, ::-1][:, :n_components]
    signs = np.sign(basis[np.abs(basis).argmax(0), np.arange(basis.shape[1])])
    return basis * np.where(signs == 0, 1, signs)


@dataclass
class Projection:
    """A fitted linear map to a few dimensions: z = ((x - mean) / std - centre) @ basis."""

    mean: np.ndarray
    std: np.ndarray
    centre: np.ndarray
    basis: np.ndarray  # (D, n)
    explained: list[float]  # share of total variance per component

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std - self.centre) @ self.basis


def fit_pca(x: np.ndarray, n_components: int = 2, *, scale: bool = True) -> Projection:
    """PCA of the rows of ``x`` (standardised first when ``scale``)."""
    if len(x) < 2:
        raise ValueError("PCA needs at least two rows")
    if scale:
        z, mean, std = standardise(x)
    else:
        mean, std = x.mean(0), np.ones(x.shape[1])
        z = x - mean
    n_components = min(n_components, z.shape[1], len(z))
    basis = pca_basis(z, n_components)
    total = float((z - z.mean(0)).var(0).sum())
    var = ((z - z.mean(0)) @ basis).var(0)
    explained = [float(v / total) if total > 0 else 0.0 for v in var]
    return Projection(mean=mean, std=std, centre=z.mean(0), basis=basis, explained=explained)


def umap_coordinates(x: np.ndarray, *, seed: int = 0) -> np.ndarray | None:
    """2-D UMAP of standardised ``x`` when ``umap-learn`` is installed (the ``[umap]`` extra),
    else None (the report then says how to add it)."""
    try:
        import umap  # optional dependency
    except ImportError:
        return None
    z, _, _ = standardise(x)
    neighbours = max(2, min(15, len(z) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed)
    return np.asarray(reducer.fit_transform(z), dtype=np.float64)
