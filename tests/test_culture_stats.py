"""Statistics and classifiers against closed forms and synthetic groups with known differences."""

from __future__ import annotations

import numpy as np
import pytest

from culturegan.culture.classify import cross_validate, fit_pca, pca_basis, stratified_folds
from culturegan.culture.compare import CompareSettings, compare_cultures
from culturegan.culture.stats import (
    benjamini_hochberg,
    bootstrap_mean_ci,
    cliffs_delta,
    cohens_d,
    frechet_distance,
    mmd_test,
    permutation_pvalues,
)
from culturegan.culture.table import DescriptorTable


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_cohens_d_and_cliffs_delta_closed_forms():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    assert cohens_d(a, b)[0] == pytest.approx(-2.0)  # pooled SD 1
    assert cliffs_delta(a, b)[0] == pytest.approx(-8 / 9)  # one tie (3 vs 3) counts half
    assert cliffs_delta(b + 10, a)[0] == 1.0
    same = np.array([2.0, 2.0])
    assert cohens_d(same, same)[0] == 0.0 and np.isnan(cohens_d(same, same + 1)[0])


def test_effect_sizes_and_pvalues_on_groups_with_known_difference():
    g = rng(1)
    a = g.normal(0.0, 1.0, (200, 3))
    b = g.normal(0.0, 1.0, (200, 3))
    b[:, 0] += 1.0  # a true difference of one SD in column 0 only
    d = cohens_d(b, a)
    assert d[0] == pytest.approx(1.0, abs=0.2) and abs(d[1]) < 0.25 and abs(d[2]) < 0.25
    # Cliff's delta of two unit normals one SD apart: 2 * Phi(1 / sqrt 2) - 1 = 0.52.
    assert cliffs_delta(b, a)[0] == pytest.approx(0.52, abs=0.08)
    p = permutation_pvalues(a, b, rng=g, n_perm=500)
    assert p[0] == pytest.approx(1 / 501)  # the smallest p a 500-permutation test can give
    assert p[1] > 0.01 and p[2] > 0.01
    q = benjamini_hochberg(p)
    assert q[0] < 0.05 and np.all(q >= p - 1e-12)


def test_permutation_pvalues_are_uniform_under_the_null():
    g = rng(2)
    p = permutation_pvalues(g.normal(size=(20, 400)), g.normal(size=(25, 400)), rng=g, n_perm=99)
    assert 0.04 < (p <= 0.05).mean() < 0.1 + 0.02  # about 5% (discrete p, +1 correction)
    assert 0.4 < p.mean() < 0.6


def test_benjamini_hochberg_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(q[4])


def test_bootstrap_interval_covers_the_mean():
    x = rng(3).normal(5.0, 2.0, 400)
    mean, low, high = bootstrap_mean_ci(x, rng=rng(4), n_boot=400)
    se = 2.0 / np.sqrt(400)
    assert low[0] < mean[0] < high[0]
    assert high[0] - low[0] == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_frechet_distance_closed_form_and_mmd():
    g = rng(5)
    x = g.normal(size=(4000, 2))
    y = g.normal(size=(4000, 2)) * 2.0 + np.array([3.0, 0.0])
    # |mu|^2 + tr(I + 4I - 2 * 2I) = 9 + 2
    assert frechet_distance(x, y) == pytest.approx(11.0, rel=0.05)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    small_x, small_y = x[:40], y[:40]
    mmd2, p, _ = mmd_test(small_x, small_y, rng=g, n_perm=200)
    assert mmd2 > 0.1 and p < 0.01
    mmd2, p, _ = mmd_test(x[:40], x[40:80], rng=g, n_perm=200)
    assert abs(mmd2) < 0.1 and p > 0.05


def test_classifier_separates_groups_and_not_noise():
    g = rng(6)
    labels = np.repeat(["ink", "oil", "print"], 30)
    x = g.normal(size=(90, 5))
    separable = x.copy()
    separable[:, 0] += np.repeat([0.0, 6.0, 12.0], 30)
    cv = cross_validate(separable, labels, rng=g)
    assert cv.accuracy > 0.95 and cv.chance == pytest.approx(1 / 3)
    assert np.trace(cv.confusion) == round(cv.accuracy * 90) and np.sum(cv.confusion) == 90
    assert cross_validate(x, labels, rng=g).accuracy < 0.6


def test_folds_are_stratified_and_disjoint():
    y = np.array([0] * 10 + [1] * 5)
    folds = stratified_folds(y, 5, rng(0))
    assert sorted(np.concatenate(folds).tolist()) == list(range(15))
    assert all((y[f] == 1).sum() == 1 for f in folds)


def test_pca_finds_the_direction_of_largest_variance():
    x = rng(7).normal(size=(300, 3)) * np.array([5.0, 1.0, 0.2])
    basis = pca_basis(x, 2)
    assert abs(basis[0, 0]) > 0.99 and abs(basis[1, 1]) > 0.99
    projection = fit_pca(x, 2, scale=False)
    assert projection.explained[0] > 0.9


def _table(values: np.ndarray, cultures: list[str]) -> DescriptorTable:
    n = len(cultures)
    return DescriptorTable(
        names=[f"d{j}" for j in range(values.shape[1])],
        values=values,
        culture=cultures,
        path=[f"{c}/{i}.png" for i, c in enumerate(cultures)],
        file_sha256=["0" * 64] * n,
        width=[32] * n,
        height=[32] * n,
        palette=[""] * n,
    )


def test_compare_cultures_reports_counts_effects_and_small_groups():
    g = rng(8)
    values = g.normal(size=(63, 3))
    values[20:40, 0] += 3.0
    cultures = ["a"] * 20 + ["b"] * 20 + ["c"] * 20 + ["tiny"] * 3
    settings = CompareSettings(n_boot=200, n_perm=200, n_perm_distance=50)
    emb = g.normal(size=(63, 40))
    emb[20:40] += 2.0
    result = compare_cultures(_table(values, cultures), embeddings={"toy": emb}, settings=settings)
    assert result["counts"] == {"a": 20, "b": 20, "c": 20, "tiny": 3}
    assert result["means"]["d0"]["tiny"]["n"] == 3  # enough for a mean ...
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert any("'tiny' has 3 images" in w for w in result["warnings"])  # ... not for tests
    ab = result["pairs"][0]
    assert ab["separating"][0] == "d0" and ab["descriptors"]["d0"]["significant"]
    assert ab["descriptors"]["d0"]["cliffs_delta"] < -0.9
    assert not result["pairs"][1]["descriptors"]["d0"]["significant"]
    assert result["classifiers"]["descriptors"]["n_images"] == 60
    distances = result["embedding_distances"]["toy"]
    assert distances["frechet"]["a|b"]["p"] < 0.05 and distances["frechet"]["a|c"]["p"] > 0.05
    assert distances["mmd"]["a|b"]["value"] > distances["mmd"]["a|c"]["value"]
