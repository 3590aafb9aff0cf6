"""Realism metrics (FID, KID, precision/recall), AlexNet features and the reference cache."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

from ddgan_jax.evaluation import realism


def _gaussian(rng, n, mean, cov):
  return rng.multivariate_normal(mean, cov, size=n)


def _random_cov(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def _fid_reference(a, b):
  """FID with scipy's sqrtm, as pytorch-fid (full-rank covariances only)."""
  sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(sa @ sb).real
  return np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * covmean)


# ------------------------------------------------------------------ FID

@pytest.mark.parametrize('n, d', [(200, 16), (12, 40)])  # Full-rank and rank-deficient.
def test_fid_of_a_set_with_itself_is_zero(n, d):
  a = np.random.default_rng(0).normal(size=(n, d)) * 3.0
  assert abs(realism.fid(a, a)) < 1e-6
  # A pure shift of the mean by 1 in every dimension: exactly d.
  assert realism.fid(a, a + 1.0) == pytest.approx(d, rel=1e-9)


def test_fid_matches_scipy_sqrtm_on_full_rank_sets():
  rng = np.random.default_rng(1)
  a = _gaussian(rng, 300, np.zeros(6), _random_cov(rng, 6))
  b = _gaussian(rng, 250, rng.normal(size=6), _random_cov(rng, 6))
  assert realism.fid(a, b) == pytest.approx(_fid_reference(a, b), rel=1e-9)
  # N <= D (singular covariances, the centred features as the factor): scipy's sqrtm of the
  # singular product is accurate to ~1e-8 only.
  x, y = rng.normal(size=(30, 100)), rng.normal(size=(30, 100)) + 0.5
  np.testing.assert_allclose(realism.fid(x, y), _fid_reference(x, y), rtol=1e-6)


def test_fid_of_samples_approaches_the_closed_form():
  rng = np.random.default_rng(2)
  mu_a, mu_b = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, 0.0])
  cov_a, cov_b = _random_cov(rng, 3), _random_cov(rng, 3)  # Do not commute.
  closed = (np.sum((mu_a - mu_b) ** 2)
            + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real))
  diag = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt([1.0, 4.0, 9.0]) - 1.0) ** 2)
  a, b = _gaussian(rng, 40000, mu_a, cov_a), _gaussian(rng, 40000, mu_b, cov_b)
  assert realism.fid(a, b) == pytest.approx(closed, rel=0.03)
  a = _gaussian(rng, 40000, mu_a, np.diag([1.0, 4.0, 9.0]))
  b = _gaussian(rng, 40000, mu_b, np.eye(3))
  assert realism.fid(a, b) == pytest.approx(diag, rel=0.03)


# ------------------------------------------------------------------ KID

def _mmd2_double_loop(x, y):
  k = lambda p, q: (float(np.dot(p, q)) / len(p) + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_kid_on_whole_sets_equals_the_double_loop_estimator():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)) + 0.3
  mean, std = realism.kid(x, y, subset_size=9)
  assert mean == pytest.approx(_mmd2_double_loop(x, y), rel=1e-10)
  assert np.isnan(std)  # One estimate: no spread over subsets.


def test_kid_is_unbiased_and_separates_distributions():
  rng = np.random.default_rng(4)
  m, d, trials = 20, 8, 300
  pairs = [(rng.normal(size=(m, d)), rng.normal(size=(m, d))) for _ in range(trials)]
  values = np.array([realism.kid(x, y)[0] for x, y in pairs])
  stderr = values.std() / np.sqrt(trials)
  assert abs(values.mean()) < 3 * stderr, (values.mean(), stderr)
  # The biased (V-statistic) estimator, with the diagonal terms, fails the same check, so the
  # check has the power to see a bias of this size.
  kernel = lambda p, q: (p @ q.T / d + 1.0) ** 3
  biased = np.array([kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()
                     for x, y in pairs])
  assert biased.mean() > 10 * stderr
  # Subsets: deterministic for a seed, a spread, and far above 0 for a shifted set.
  x, y = rng.normal(size=(120, d)), rng.normal(size=(100, d)) + 1.0
  mean, std = realism.kid(x, y, num_subsets=20, subset_size=50, seed=1)
  assert (mean, std) == realism.kid(x, y, num_subsets=20, subset_size=50, seed=1)
  assert std > 0 and mean > 5 * std


# ------------------------------------------------------------------ precision / recall

def _pr_brute_force(real, fake, k):
  def radii(x):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, k]
  def inside(points, centres, r):
    d = np.sqrt(((points[:, None] - centres[None]) ** 2).sum(-1))
    return np.mean(np.any(d <= r[None], axis=1))
  return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def test_precision_recall_cases():
  rng = np.random.default_rng(5)
  a = rng.normal(size=(60, 4))
  assert realism.precision_recall(a, a.copy(), k=3) == (1.0, 1.0)
  far = rng.normal(size=(60, 4)) + 100.0
  assert realism.precision_recall(a, far, k=3) == (0.0, 0.0)
  # Real: two clusters; fake: only the first one. Every fill is realistic, half the real
  # distribution is missed.
  real = np.concatenate([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 20.0])
  fake = rng.normal(size=(100, 4))
  precision, recall = realism.precision_recall(real, fake, k=3)
  assert precision > 0.9 and 0.4 <= recall <= 0.55, (precision, recall)
  # Blocked distances (7 rows at a time) give what the full matrices give.
  x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) * 1.3 + 0.2
  ours = realism.precision_recall(x, y, k=3, block=7)
  np.testing.assert_allclose(ours, _pr_brute_force(x, y, 3))
  assert 0 < ours[0] < 1 and 0 < ours[1] < 1


def _dc_brute_force(real, fake, k):
  d_rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
  radii = np.sort(d_rr, axis=1)[:, k]
  d_rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))  # [N, M]
  inside = d_rf <= radii[:, None]
  return inside.sum() / (k * len(fake)), np.mean(inside.any(axis=1))


def test_density_coverage_cases():
  rng = np.random.default_rng(7)
  a = rng.normal(size=(60, 4))
  density, coverage = realism.density_coverage(a, a.copy(), k=3)
  assert coverage == 1.0 and density >= 1.0  # each sample is in its own ball and k others'
  assert realism.density_coverage(a, rng.normal(size=(60, 4)) + 100.0, k=3) == (0.0, 0.0)
  # Fakes: the first real cluster, plus far outliers. Recall counts the outliers' huge balls
  # (their k-th neighbours are far), coverage does not.
  real = np.concatenate([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 20.0])
  fake = np.concatenate([rng.normal(size=(96, 4)), rng.normal(size=(4, 4)) * 30.0 + 10.0])
  _, recall = realism.precision_recall(real, fake, k=3)
  density, coverage = realism.density_coverage(real, fake, k=3)
  assert recall > 0.9 and 0.4 <= coverage <= 0.55, (recall, coverage)
  x, y = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) * 1.3 + 0.2
  ours = realism.density_coverage(x, y, k=3, block=7)
  np.testing.assert_allclose(ours, _dc_brute_force(x, y, 3))
  assert 0 < ours[1] < 1 and ours[0] > 0


def test_scores_uses_equal_sizes_for_precision_recall():
  rng = np.random.default_rng(6)
  real, fake = rng.normal(size=(30, 5)), rng.normal(size=(12, 5))
  s = realism.scores(fake, real)
  assert (s['precision'], s['recall']) == realism.precision_recall(real[:12], fake, 3)
  assert (s['density'], s['coverage']) == realism.density_coverage(real[:12], fake, 3)
  assert s['kid'] == realism.kid(fake, real)[0] and s['kid_std'] is None
  assert s['fid'] == realism.fid(fake, real) > 0


# ------------------------------------------------------------------ reference cache

def test_reference_features_are_cached_and_recomputed_on_a_checksum_mismatch(tmp_path):
  calls = []

  def features_fn(images):
    calls.append(len(images))
    return images.reshape(len(images), -1).astype(np.float64)[:, :5] + len(calls)

  rng = np.random.default_rng(7)
  images = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
  key = dict(dataset='synthetic', split='validation', num_images=4, image_size=8,
             features=realism.FEATURE_VERSION)
  first, path = realism.reference_features(images, key, cache_dir=str(tmp_path),
                                           features_fn=features_fn)
  assert os.path.dirname(path) == str(tmp_path) and path.endswith('.npz')
  second, path2 = realism.reference_features(images, key, cache_dir=str(tmp_path),
                                             features_fn=features_fn)
  assert calls == [4] and path2 == path
  np.testing.assert_array_equal(first, second)
  changed = images.copy()
  changed[0, 0, 0, 0] ^= 1  # Same key, other data: the checksum differs.
  third, _ = realism.reference_features(changed, key, cache_dir=str(tmp_path),
                                        features_fn=features_fn)
  assert calls == [4, 4] and not np.array_equal(third, first)
  with open(path, 'wb') as f:  # A corrupt file is recomputed too.
    f.write(b'not an npz')
  realism.reference_features(changed, key, cache_dir=str(tmp_path), features_fn=features_fn)
  assert calls == [4, 4, 4]
  realism.reference_features(changed, key, cache_dir=str(tmp_path), features_fn=features_fn)
  assert calls == [4, 4, 4]
  assert [p for p in os.listdir(tmp_path)] == [os.path.basename(path)]  # No temporary left.
  other = realism.cache_path(dict(key, split='test'), str(tmp_path))
  assert other != path


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert realism.default_cache_dir() == os.path.join(str(tmp_path), 'ddgan_jax', 'realism')


# ------------------------------------------------------------------ AlexNet features

def test_alexnet_features():
  fn = realism.AlexNetFeatures(batch_size=4)
  rng = np.random.default_rng(8)
  smooth = np.cumsum(rng.normal(size=(3, 16, 16, 3)), axis=1)
  images = np.clip(128 + 20 * smooth, 0, 255).astype(np.uint8)
  feats = fn(images)
  assert feats.shape == (3, realism.FEATURE_DIM) and feats.dtype == np.float64
  assert np.all(np.isfinite(feats)) and np.all(feats >= 0)  # Means of ReLUs.
  for i, j in itertools.combinations(range(3), 2):
    assert np.linalg.norm(feats[i] - feats[j]) > 1e-3 * np.linalg.norm(feats[i])
  # Floats in [-1, 1] give what uint8 gives; batches are independent of their neighbours.
  np.testing.assert_allclose(fn(images.astype(np.float32) / 127.5 - 1), feats, rtol=1e-5)
  np.testing.assert_allclose(fn(images[1:2]), feats[1:2], rtol=1e-4, atol=1e-6)
  gray = fn(images[..., :1])  # Tiled to RGB.
  assert gray.shape == (3, realism.FEATURE_DIM) and np.all(np.isfinite(gray))
  # Larger images are shrunk to FEATURE_SIZE: a 2x nearest upsampling of a smooth 128 px image
  # (smooth, so the antialiasing filter barely changes it) has nearly the image's features.
  def smooth_image():
    x = scipy.ndimage.gaussian_filter(rng.normal(size=(128, 128, 3)), (6, 6, 0))
    return np.clip(128 + 100 * x / x.std(), 0, 255).astype(np.uint8)[None]
  big, other = smooth_image(), smooth_image()
  shrunk = fn(big.repeat(2, axis=1).repeat(2, axis=2))
  assert np.linalg.norm(shrunk - fn(big)) < 0.1 * np.linalg.norm(fn(other) - fn(big))
