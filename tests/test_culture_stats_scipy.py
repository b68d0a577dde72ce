"""The project's resampling statistics against SciPy's independent implementations.

Both sides are Monte Carlo estimates of the same number (a bootstrap quantile, a permutation
p-value) from independent random draws, so they differ by sampling error alone. Each tolerance
is four standard errors of that difference, computed from the draw counts (a chance failure
about once in 15,000 comparisons); a wrong statistic, side or quantile is off by far more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from culturegan.culture.stats import benjamini_hochberg, bootstrap_mean_ci, permutation_pvalues

Z = 4.0  # standard errors allowed


def test_benjamini_hochberg_is_scipys_on_the_finite_values_and_keeps_shape_and_nans():
    p = np.random.default_rng(0).uniform(0, 0.2, (6, 5))
    p[2, 3] = np.nan  # a test that could not be run
    q = benjamini_hochberg(p)
    ok = np.isfinite(p)
    assert q.shape == p.shape and np.isnan(q[2, 3])
    np.testing.assert_allclose(q[ok], stats.false_discovery_control(p[ok], method="bh"))
    assert np.all(q[ok] >= p[ok])
    assert np.isnan(benjamini_hochberg(np.array([np.nan]))).all()
    assert benjamini_hochberg(np.array([])).shape == (0,)


def quantile_standard_error(alpha: float, sd: float, n_draws: int) -> float:
    """Monte Carlo SE of the alpha-quantile of n_draws normal(., sd) values:
    sqrt(alpha (1 - alpha) / B) / density at the quantile."""
    z = stats.norm.ppf(alpha)
    return math.sqrt(alpha * (1 - alpha) / n_draws) * sd / stats.norm.pdf(z)


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    g = np.random.default_rng(1)
    n, n_boot = 150, 4000
    # columns of different shapes: normal, skewed (exponential), heavy-tailed (t with 3 dof)
    x = np.column_stack([g.normal(5, 2, n), g.exponential(1.0, n), g.standard_t(3, n)])
    mean, low, high = bootstrap_mean_ci(x, rng=np.random.default_rng(2), n_boot=n_boot)
    ref = stats.bootstrap(
        (x,), np.mean, axis=0, vectorized=True, n_resamples=n_boot, method="percentile",
        confidence_level=0.95, random_state=np.random.default_rng(3),
    ).confidence_interval  # fmt: skip
    np.testing.assert_allclose(mean, x.mean(0))
    for column in range(x.shape[1]):
        sd = x[:, column].std() / math.sqrt(n)  # spread of the bootstrap means
        tolerance = Z * math.sqrt(2) * quantile_standard_error(0.025, sd, n_boot)
        assert low[column] == pytest.approx(ref.low[column], abs=tolerance)
        assert high[column] == pytest.approx(ref.high[column], abs=tolerance)
        assert tolerance < 0.2 * (high[column] - low[column])  # a check with teeth


def p_tolerance(p: float, n_a: int, n_b: int) -> float:
    """Four SEs of the difference of two permutation p estimates of p (binomial counts), plus
    the 1/(n+1) that the never-zero correction adds to one side only (when n_b is inf)."""
    variance = p * (1 - p) / n_a + (p * (1 - p) / n_b if math.isfinite(n_b) else 0.0)
    return Z * math.sqrt(variance) + 1 / (n_a + 1)


def abs_mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.abs(a.mean(axis=axis) - b.mean(axis=axis))


def test_permutation_pvalues_agree_with_scipy_permutation_test():
    g = np.random.default_rng(4)
    shifts = np.array([0.0, 0.25, 0.5, 0.8])  # from no difference to a clear one, in SDs
    a = g.normal(0, 1, (30, len(shifts)))
    b = g.normal(0, 1, (24, len(shifts))) + shifts
    n_perm = 4000
    ours = permutation_pvalues(a, b, rng=np.random.default_rng(5), n_perm=n_perm)
    # |mean difference| with alternative "greater" is our two-sided definition:
    # p = (1 + #{|T*| >= |T|}) / (1 + n), SciPy's own correction included.
    ref = stats.permutation_test(
        (a, b), abs_mean_difference, permutation_type="independent", vectorized=True,
        n_resamples=n_perm, alternative="greater", axis=0, random_state=np.random.default_rng(6),
    ).pvalue  # fmt: skip
    for p, r in zip(ours, ref, strict=True):
        assert p == pytest.approx(r, abs=p_tolerance((p + r) / 2, n_perm, n_perm))
    assert ours[-1] < 0.05 < ours[0]  # the columns span the interesting range


def test_permutation_pvalue_converges_to_scipys_exact_one():
    # 6 + 6 values: SciPy enumerates all 924 splits, so its p-value is exact.
    g = np.random.default_rng(7)
    a, b = g.normal(0, 1, (6, 3)), g.normal(0, 1, (6, 3)) + np.array([0.0, 0.8, 1.6])
    exact = stats.permutation_test(
        (a, b), abs_mean_difference, permutation_type="independent", vectorized=True,
        n_resamples=np.inf, alternative="greater", axis=0,
    ).pvalue  # fmt: skip
    n_perm = 5000
    ours = permutation_pvalues(a, b, rng=np.random.default_rng(8), n_perm=n_perm)
    for p, e in zip(ours, exact, strict=True):
        assert p == pytest.approx(e, abs=p_tolerance(e, n_perm, math.inf))
