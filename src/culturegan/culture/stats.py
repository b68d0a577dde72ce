"""Statistics for comparing groups of pictures: confidence intervals, effect sizes, tests.

Every function takes an explicit ``numpy.random.Generator`` when it draws random numbers, so a
report is reproducible from its seed. Columns of 2-D inputs are separate descriptors; all
functions are vectorised over them.

* Bootstrap percentile confidence intervals of a mean (Efron and Tibshirani, 1993).
* Cohen's d with the pooled standard deviation (Cohen, 1988); Cliff's delta, the probability
  that a value of A exceeds one of B minus the reverse (Cliff, 1993).
* Two-sided permutation test of a difference of means, p = (1 + #{|T*| >= |T|}) / (1 + n),
  which is never 0 (Phipson and Smyth, 2010).
* Benjamini-Hochberg adjusted p-values (q-values) controlling the false discovery rate
  (Benjamini and Hochberg, 1995).
* Frechet distance between Gaussians fitted to two samples (Dowson and Landau, 1982; the FID of
  Heusel et al., 2017) and the unbiased squared MMD with a Gaussian kernel (Gretton et al.,
  JMLR 2012), each with a permutation p-value.

Usage::

    d = cohens_d(a, b); p = permutation_pvalues(a, b, rng=np.random.default_rng(0))
    q = benjamini_hochberg(p)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import false_discovery_control, rankdata


def _two_d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def bootstrap_mean_ci(
    x: np.ndarray,  # (n,) or (n, D)
    *,
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lower, upper) of each column: percentile bootstrap interval of the mean.

    Resamples are drawn as multinomial counts in chunks, so memory stays ~ 100 x n numbers.
    """
    x = _two_d(x)
    n = len(x)
    if n == 0:
        raise ValueError("bootstrap needs at least one value")
    means = np.empty((n_boot, x.shape[1]))
    chunk = 100
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=m)  # (m, n)
        means[start : start + m] = counts @ x / n
    alpha = (1 - level) / 2
    lower, upper = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return x.mean(0), lower, upper


def cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(mean(a) - mean(b)) / pooled SD, per column; NaN where both groups have no spread and
    different means (undefined), 0 where they also have equal means."""
    a, b = _two_d(a), _two_d(b)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        raise ValueError(f"Cohen's d needs at least 2 values per group, got {na} and {nb}")
    pooled = np.sqrt(((na - 1) * a.var(0, ddof=1) + (nb - 1) * b.var(0, ddof=1)) / (na + nb - 2))
    diff = a.mean(0) - b.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = diff / pooled
    flat = pooled <= 1e-12 * (1 + np.abs(a).max(0) + np.abs(b).max(0))
    return np.where(flat, np.where(np.abs(diff) <= 1e-12, 0.0, np.nan), d)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(a > b) - P(a < b) over all pairs, per column (ties count half), in [-1, 1]."""
    a, b = _two_d(a), _two_d(b)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise ValueError("Cliff's delta needs values in both groups")
    ranks = rankdata(np.concatenate([a, b]), axis=0)  # average ranks for ties
    u = ranks[:na].sum(0) - na * (na + 1) / 2  # Mann-Whitney U of a
    return 2.0 * u / (na * nb) - 1.0


def permutation_pvalues(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rng: np.random.Generator,
    n_perm: int = 1000,
) -> np.ndarray:
    """Two-sided permutation p-values of the difference of means, per column."""
    a, b = _two_d(a), _two_d(b)
    pooled = np.concatenate([a, b])
    na, n = len(a), len(a) + len(b)
    observed = np.abs(a.mean(0) - b.mean(0))
    total = pooled.sum(0)
    exceed = np.zeros(pooled.shape[1])
    tolerance = 1e-12 * (1 + np.abs(pooled).max(0))
    chunk = 64
    for start in range(0, n_perm, chunk):
        m = min(chunk, n_perm - start)
        member = np.zeros((m, n))  # 1 for the rows that play group A in each permutation
        picks = np.argsort(rng.random((m, n)), axis=1)[:, :na]
        np.put_along_axis(member, picks, 1.0, axis=1)
        sum_a = member @ pooled  # (m, D)
        diff = np.abs(sum_a / na - (total - sum_a) / (n - na))
        exceed += (diff >= observed - tolerance).sum(0)
    return (1.0 + exceed) / (1.0 + n_perm)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (same shape; NaNs stay NaN and are not counted).

    SciPy's ``false_discovery_control`` does the adjustment; it takes no NaN (a test that could
    not be run), so only the finite p-values are passed, as one family whatever the shape.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q


# ----------------------------------------------------------------------------- distributions


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance |mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)) of two samples
    (rows are observations), computed through symmetric square roots (no complex parts)."""
    x, y = _two_d(x), _two_d(y)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("the Frechet distance needs at least 2 observations per sample")
    cx, cy = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root_x = _sqrt_psd(cx)
    cross = np.linalg.eigvalsh(root_x @ cy @ root_x)
    trace_cross = float(np.sqrt(np.clip(cross, 0, None)).sum())
    mean_term = float(((x.mean(0) - y.mean(0)) ** 2).sum())
    return max(0.0, mean_term + float(np.trace(cx) + np.trace(cy)) - 2 * trace_cross)


def median_bandwidth(z: np.ndarray) -> float:
    """Median of the pairwise Euclidean distances of the rows (the usual MMD bandwidth)."""
    sq = _squared_distances(z, z)
    upper = sq[np.triu_indices(len(z), k=1)]
    med = float(np.sqrt(np.median(upper))) if len(upper) else 0.0
    return med if med > 0 else 1.0


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return np.maximum(sq, 0.0)


def _mmd2_from_kernel(k: np.ndarray, in_x: np.ndarray) -> float:
    """Unbiased MMD^2 from the pooled kernel matrix and a boolean mask of the x rows."""
    kxx, kyy, kxy = k[np.ix_(in_x, in_x)], k[np.ix_(~in_x, ~in_x)], k[np.ix_(in_x, ~in_x)]
    m, n = len(kxx), len(kyy)
    sum_xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    sum_yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sum_xx + sum_yy - 2 * kxy.mean())


def mmd_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    n_perm: int = 500,
    bandwidth: float | None = None,  # Gaussian kernel width; default: median heuristic
) -> tuple[float, float, float]:
    """(unbiased MMD^2, permutation p-value, bandwidth) with k(u, v) = exp(-|u-v|^2 / 2 h^2)."""
    x, y = _two_d(x), _two_d(y)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD needs at least 2 observations per sample")
    z = np.concatenate([x, y])
    h = bandwidth if bandwidth is not None else median_bandwidth(z)
    k = np.exp(-_squared_distances(z, z) / (2 * h * h))
    in_x = np.zeros(len(z), bool)
    in_x[: len(x)] = True
    observed = _mmd2_from_kernel(k, in_x)
    exceed = 0
    for _ in range(n_perm):
        exceed += _mmd2_from_kernel(k, rng.permutation(in_x)) >= observed - 1e-12
    return observed, (1.0 + exceed) / (1.0 + n_perm), h


def frechet_test(
    x: np.ndarray, y: np.ndarray, *, rng: np.random.Generator, n_perm: int = 200
) -> tuple[float, float]:
    """(Frechet distance, permutation p-value: share of label shuffles at least as far)."""
    x, y = _two_d(x), _two_d(y)
    observed = frechet_distance(x, y)
    z = np.concatenate([x, y])
    exceed = 0
    for _ in range(n_perm):
        order = rng.permutation(len(z))
        exceed += frechet_distance(z[order[: len(x)]], z[order[len(x) :]]) >= observed - 1e-12
    return observed, (1.0 + exceed) / (1.0 + n_perm)


def finite_or_none(value: float) -> float | None:
    """A float for JSON: NaN and infinities become None (null)."""
    value = float(value)
    return value if math.isfinite(value) else None
