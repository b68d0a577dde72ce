"""Streaming feature statistics, Fréchet distance and kernel distance.

* :class:`FeatureStats` takes features batch by batch and keeps, in float64, their count, sum
  and sum of outer products (around a shift, the first batch's mean, so that large means do
  not cancel digits), which give the mean and covariance of any number of images in bounded
  memory. For the kernel distance it also keeps a uniform random subset of the feature rows,
  at most ``max_kd_rows`` (10,000 by default; reservoir sampling with a seeded generator), so
  KD over more images than that is computed on a random 10,000 of them.
* :func:`frechet_distance` is the Fréchet distance between Gaussians fitted to two feature sets
  (Heusel et al., 2017): ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The trace of the
  matrix square root is taken as ``sum(sqrt(eig(R S2 R)))`` with ``R = S1^(1/2)`` from a
  symmetric eigen-decomposition: equal to the usual ``sqrtm(S1 S2)`` form, but real, and stable
  when the covariances are singular (fewer images than dimensions).
* :func:`kernel_distance` is the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3`` (Binkowski et al., 2018, "KID"), averaged over random subsets
  as in the reference implementation; it returns the mean and the standard deviation.

Usage::

    a = FeatureStats(1280); a.update(feats_a); b = ...
    fd = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    kd, kd_std = kernel_distance(a.kd_features, b.kd_features)
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_MAX_KD_ROWS = 10_000


class FeatureStats:
    """Running count, mean and covariance of feature rows, plus a bounded random subset."""

    def __init__(self, dim: int, *, max_kd_rows: int = DEFAULT_MAX_KD_ROWS, seed: int = 0) -> None:
        if max_kd_rows < 0:
            raise ValueError(f"max_kd_rows must be >= 0, got {max_kd_rows}")
        self.dim = dim
        self.max_kd_rows = max_kd_rows
        self.n = 0
        self.skipped = 0  # inputs that could not be read (counted by the caller)
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(dim, np.float64)
        self._outer = np.zeros((dim, dim), np.float64)
        self._kd = np.empty((0, dim), np.float32)
        self._rng = np.random.default_rng(seed)
        self._frozen: tuple[np.ndarray, np.ndarray] | None = None  # (mean, cov) when loaded

    def update(self, feats: np.ndarray | torch.Tensor) -> None:
        """Add a batch of features (B, dim)."""
        if self._frozen is not None:
            raise RuntimeError("these statistics were loaded from a file and cannot grow")
        if isinstance(feats, torch.Tensor):
            feats = feats.detach().cpu().numpy()
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (B, {self.dim}), got {feats.shape}")
        if len(feats) == 0:
            return
        x = feats.astype(np.float64)
        if self._shift is None:
            self._shift = x.mean(axis=0)
        centred = x - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self._reservoir(feats.astype(np.float32))
        self.n += len(feats)

    def _reservoir(self, rows: np.ndarray) -> None:
        # Algorithm R: after t rows, each of them is in the subset with probability k / t.
        k = self.max_kd_rows
        room = max(0, min(k - len(self._kd), len(rows)))
        if room:
            self._kd = np.concatenate([self._kd, rows[:room]])
        if room == len(rows):
            return
        seen = self.n + room + np.arange(len(rows) - room)  # rows seen before each newcomer
        slots = self._rng.integers(0, seen + 1)
        for row, slot in zip(rows[room:], slots, strict=True):
            if slot < k:
                self._kd[slot] = row

    @property
    def mean(self) -> np.ndarray:
        if self._frozen is not None:
            return self._frozen[0]
        self._need(1)
        return self._shift + self._sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by n - 1), as numpy's ``np.cov`` and the FID code."""
        if self._frozen is not None:
            return self._frozen[1]
        self._need(2)
        centred_mean = self._sum / self.n
        cov = (self._outer - self.n * np.outer(centred_mean, centred_mean)) / (self.n - 1)
        return (cov + cov.T) / 2

    @property
    def kd_features(self) -> np.ndarray:
        return self._kd

    def _need(self, count: int) -> None:
        if self.n < count:
            raise ValueError(
                f"statistics of {self.n} images: at least {count} are needed "
                f"({self.skipped} unreadable inputs were skipped)"
            )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for an ``.npz`` file (no pickled objects)."""
        return {
            "n": np.asarray(self.n, np.int64),
            "skipped": np.asarray(self.skipped, np.int64),
            "mean": self.mean,
            "cov": self.cov,
            "kd_features": self._kd,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureStats:
        mean, cov = np.asarray(arrays["mean"]), np.asarray(arrays["cov"])
        stats = cls(int(mean.shape[0]), max_kd_rows=len(arrays["kd_features"]))
        stats.n = int(arrays["n"])
        stats.skipped = int(arrays["skipped"])
        stats._kd = np.asarray(arrays["kd_features"], np.float32)
        stats._frozen = (mean.astype(np.float64), cov.astype(np.float64))
        return stats


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues,
    which rounding produces, are set to zero)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (non-negative)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1),) * 2:
        raise ValueError(
            f"mismatched statistics: means {mu1.shape} / {mu2.shape}, "
            f"covariances {cov1.shape} / {cov2.shape}"
        )
    if not (np.isfinite(cov1).all() and np.isfinite(cov2).all()):
        raise ValueError("covariance holds NaN or infinity (features of a broken network?)")
    root1 = _psd_sqrt(cov1)
    inner = root1 @ cov2 @ root1  # similar to cov1 @ cov2, but symmetric PSD
    eigen = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigen, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def fd_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Fréchet distance of two :class:`FeatureStats`, by the cheapest exact route.

    When one side kept all its rows and has no more rows than dimensions (the usual case for
    small evaluation sets), ``Tr (S1 S2)^(1/2)`` is taken from the n x n matrix
    ``B S1 B^T / (n - 1)`` (B: that side's centred rows), whose non-zero eigenvalues are those
    of ``S1 S2``; this avoids decomposing a 1280 x 1280 or 2048 x 2048 matrix.
    """
    for small, other in ((b, a), (a, b)):
        if small.n == len(small.kd_features) and 2 <= small.n <= small.dim:
            rows = small.kd_features.astype(np.float64)
            centred = rows - rows.mean(axis=0)
            inner = centred @ other.cov @ centred.T / (small.n - 1)  # (n, n), PSD
            eigen = np.linalg.eigvalsh((inner + inner.T) / 2)
            trace_sqrt = float(np.sqrt(np.clip(eigen, 0.0, None)).sum())
            diff = a.mean - b.mean
            value = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt
            return max(float(value), 0.0)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def kernel_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    *,
    num_subsets: int = 100,  # random subsets averaged (the KID reference uses 100)
    subset_size: int = 1000,  # rows per subset, capped by the smaller set (reference: 1000)
    seed: int = 0,
) -> tuple[float, float]:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3: mean and std over random subsets."""
    feats1 = np.asarray(feats1, np.float64)
    feats2 = np.asarray(feats2, np.float64)
    if feats1.ndim != 2 or feats2.ndim != 2 or feats1.shape[1] != feats2.shape[1]:
        raise ValueError(f"mismatched feature arrays {feats1.shape} and {feats2.shape}")
    m = min(len(feats1), len(feats2), subset_size)
    if m < 2:
        raise ValueError(
            f"kernel distance needs at least 2 feature rows in each set "
            f"(got {len(feats1)} and {len(feats2)})"
        )
    d = feats1.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = feats1[rng.choice(len(feats1), m, replace=False)]
        y = feats2[rng.choice(len(feats2), m, replace=False)]
        k_xx = (x @ x.T / d + 1.0) ** 3
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        # Unbiased: the within-set sums leave out the diagonal (k(x_i, x_i)).
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[i] = within - 2.0 * k_xy.mean()
    return float(values.mean()), float(values.std())
