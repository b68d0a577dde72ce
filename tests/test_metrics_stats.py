"""Metric maths against known answers: FD closed forms, KD, streaming statistics, SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from culturegan.metrics.content import added_band, border_steps, map_distance, ssim
from culturegan.metrics.registry import higher_is_better
from culturegan.metrics.stats import (
    FeatureStats,
    fd_from_stats,
    frechet_distance,
    kernel_distance,
)


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _scipy_fd(mu1, s1, mu2, s2) -> float:
    """The textbook formula with scipy's sqrtm, as the reference FID code computes it."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fd_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).standard_normal((300, 16)) * 3 + 5
    stats = FeatureStats(16)
    stats.update(feats)
    assert frechet_distance(stats.mean, stats.cov, stats.mean, stats.cov) == pytest.approx(
        0.0, abs=1e-8
    )


def test_fd_matches_scipy_sqrtm_formula():
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), 1e-8)


def test_fd_of_gaussian_samples_matches_closed_form():
    rng = np.random.default_rng(2)
    d = 4
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.0, 2.0])
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    expected = _scipy_fd(mu1, s1, mu2, s2)
    a, b = FeatureStats(d), FeatureStats(d)
    for _ in range(10):  # streamed in batches
        a.update(rng.multivariate_normal(mu1, s1, 5000))
        b.update(rng.multivariate_normal(mu2, s2, 5000))
    measured = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    assert measured == pytest.approx(expected, rel=0.03)
    # Closed form for diagonal covariances too: |mu|^2 + sum (sqrt(a) - sqrt(b))^2.
    diag1, diag2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    value = frechet_distance(np.zeros(2), diag1, np.ones(2), diag2)
    assert value == pytest.approx(2 + (1 - 3) ** 2 + (2 - 1) ** 2)


def test_fd_with_fewer_samples_than_dimensions_is_finite_and_real():
    rng = np.random.default_rng(3)
    a, b = FeatureStats(64), FeatureStats(64)
    a.update(rng.standard_normal((5, 64)))
    b.update(rng.standard_normal((7, 64)) + 1)
    value = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    assert np.isfinite(value) and value > 0
    one = FeatureStats(64)
    one.update(rng.standard_normal((1, 64)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = one.cov


def test_low_rank_fd_route_equals_the_full_computation():
    rng = np.random.default_rng(8)
    a, b = FeatureStats(40), FeatureStats(40)
    a.update(rng.standard_normal((300, 40)))  # more rows than dimensions: full route
    b.update(rng.standard_normal((12, 40)) * 2 + 0.3)  # all rows kept, 12 <= 40: low rank
    full = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    assert fd_from_stats(a, b) == pytest.approx(full, rel=1e-6)
    assert fd_from_stats(b, a) == pytest.approx(full, rel=1e-6)
    assert fd_from_stats(b, b) == pytest.approx(0.0, abs=1e-5)
    restored = FeatureStats.from_arrays(b.to_arrays())  # as read from the cache
    assert fd_from_stats(a, restored) == pytest.approx(full, rel=1e-6)


def test_streaming_stats_match_numpy_despite_large_offset():
    rng = np.random.default_rng(4)
    feats = rng.standard_normal((1000, 8)) * 0.01 + 1e4  # large mean, tiny spread
    stats = FeatureStats(8)
    for chunk in np.array_split(feats, 7):
        stats.update(torch.from_numpy(chunk))
    assert stats.n == 1000
    np.testing.assert_allclose(stats.mean, feats.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-6, atol=1e-12)
    restored = FeatureStats.from_arrays(stats.to_arrays())
    np.testing.assert_array_equal(restored.cov, stats.cov)
    assert restored.n == 1000


def test_kd_subset_is_bounded_uniform_and_seeded():
    rows = np.arange(2000, dtype=np.float32)[:, None].repeat(3, 1)
    stats = FeatureStats(3, max_kd_rows=100, seed=5)
    for chunk in np.array_split(rows, 13):
        stats.update(chunk)
    kept = stats.kd_features[:, 0]
    assert len(kept) == 100 and len(set(kept.tolist())) == 100  # distinct input rows
    assert 700 < kept.mean() < 1300  # uniform over all rows, not the first 100
    again = FeatureStats(3, max_kd_rows=100, seed=5)
    for chunk in np.array_split(rows, 13):
        again.update(chunk)
    np.testing.assert_array_equal(again.kd_features, stats.kd_features)


def test_kd_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((400, 32)), rng.standard_normal((400, 32))
    c = rng.standard_normal((400, 32)) * 1.5 + 0.5
    same, same_std = kernel_distance(a, b, num_subsets=20, subset_size=200)
    diff, diff_std = kernel_distance(a, c, num_subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert diff > 10 * max(abs(same), diff_std)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)


def test_ssim_known_answers_and_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.uniform(-1, 1, (3, 40, 36))).float()
    noisy = (x + 0.3 * torch.randn(3, 40, 36, generator=torch.Generator().manual_seed(0))).clamp(
        -1, 1
    )
    assert ssim(x[None], x[None]).item() == pytest.approx(1.0, abs=1e-6)
    ours = ssim([x], [noisy]).item()
    reference = structural_similarity(
        ((x.numpy() + 1) / 2).transpose(1, 2, 0),
        ((noisy.numpy() + 1) / 2).transpose(1, 2, 0),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=2,
    )
    assert ours == pytest.approx(reference, abs=1e-4)
    assert ours < 0.9
    assert ssim([x], [noisy], grey=True).shape == (1,)


def test_border_steps_find_a_band_on_the_side_it_is_on():
    white = torch.ones(3, 64, 128)
    assert torch.equal(border_steps([white]), torch.zeros(1, 4))
    banded = white.clone()
    banded[:, :, :4] = -1  # a black band 4 px wide (1/32 of 128) down the left side
    left, right, top, bottom = border_steps([banded])[0].tolist()
    assert left == pytest.approx(1.0) and right == 0
    assert top == pytest.approx(0.0, abs=1e-6) and bottom == pytest.approx(0.0, abs=1e-6)
    red = white.clone()
    red[1:, -2:, :] = -1  # the bottom 2 rows (1/32 of 64) red: green and blue drop by 1
    assert border_steps(red[None])[0, 3].item() == pytest.approx(2 / 3)
    # A smooth gradient steps a little at every side; a band stands out from it.
    ramp = torch.linspace(-1, 1, 96).expand(3, 48, 96)
    assert border_steps([ramp]).max().item() < 0.05
    assert added_band([banded, white], [white, banded]).tolist() == pytest.approx([1.0, 0.0])
    sizes = border_steps([banded, torch.zeros(3, 7, 5)])  # any sizes, tiny ones too
    assert sizes.shape == (2, 4) and torch.equal(sizes[1], torch.zeros(4))
    with pytest.raises(ValueError, match="3 px or more"):
        border_steps([torch.zeros(3, 2, 9)])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        border_steps(torch.zeros(3, 8, 8))


def test_map_distance_is_zero_for_equal_maps_and_bounded():
    maps = [torch.rand(2, 8, 5, 5), torch.rand(2, 16, 3, 3)]
    assert torch.allclose(map_distance(maps, maps), torch.zeros(2))
    other = [torch.rand(2, 8, 5, 5), torch.rand(2, 16, 3, 3)]
    d = map_distance(maps, other)
    assert ((d > 0) & (d <= 2)).all()


def test_higher_is_better():
    assert not higher_is_better("fd_lite0") and not higher_is_better("artfid_inception/a_to_b")
    assert higher_is_better("ssim") and higher_is_better("style_acc/photo_to_ink")
    assert higher_is_better("diversity_lite0")
