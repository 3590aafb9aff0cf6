"""The smooth hole fill of the inpainting condition (ddgan_jax/core/fill.py) against float64 numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.core import fill
from ddgan_jax.data import training_masks


def _harmonic_reference(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """Float64 solution of Laplace's equation in the hole (4-neighbour mean, edge-replicated
  borders, known pixels fixed), by a direct linear solve. image [H, W], hole [H, W] bool."""
  h, w = image.shape
  idx = -np.ones((h, w), np.int64)
  idx[hole] = np.arange(hole.sum())
  a = np.zeros((hole.sum(), hole.sum()))
  rhs = np.zeros(hole.sum())
  for (i, j), k in zip(np.argwhere(hole), idx[hole]):
    a[k, k] = 1.0
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
      ni, nj = min(max(i + di, 0), h - 1), min(max(j + dj, 0), w - 1)
      if hole[ni, nj]:
        a[k, idx[ni, nj]] -= 0.25
      else:
        rhs[k] += 0.25 * image[ni, nj]
  out = image.astype(np.float64).copy()
  out[hole] = np.linalg.solve(a, rhs)
  return out


@pytest.fixture(scope='module')
def batch():
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  images = jax.random.uniform(k1, (6, 16, 16, 2), minval=-1.0, maxval=1.0)
  m = training_masks.sample_training_masks(k2, 6, 16, (('medium', 1.0), ('box', 1.0), ('noise', 1.0)))
  return np.asarray(images), np.asarray(m)


def test_known_pixels_exact_and_holes_inside_known_range(batch):
  images, m = batch
  out = np.asarray(jax.jit(fill.smooth_fill)(images, m))
  hole = np.broadcast_to(m > 0.5, images.shape)
  np.testing.assert_array_equal(out[~hole], images[~hole])
  for b in range(len(images)):  # Convex combinations of known pixels (maximum principle).
    for c in range(images.shape[-1]):
      known = images[b, ..., c][m[b, ..., 0] < 0.5]
      filled = out[b, ..., c][m[b, ..., 0] > 0.5]
      assert filled.min() >= known.min() - 1e-6 and filled.max() <= known.max() + 1e-6
  # The hole now differs from the zeros of the plain condition.
  assert np.abs(out[hole]).mean() > 0.05


def test_constant_and_empty_images():
  m = np.zeros((2, 8, 8, 1), np.float32)
  m[0, 2:7, 1:5] = 1.0
  m[1] = 1.0  # Nothing known: zeros, like the plain condition.
  images = np.full((2, 8, 8, 1), 0.3, np.float32)
  out = np.asarray(fill.smooth_fill(images, m))
  np.testing.assert_allclose(out[0], 0.3, atol=1e-6)
  np.testing.assert_array_equal(out[1], 0.0)


@pytest.mark.parametrize('size', [16, 15])
def test_smoothing_converges_to_the_float64_harmonic_fill(size):
  key = jax.random.PRNGKey(3)
  image = np.asarray(jax.random.uniform(key, (size, size)), np.float64) * 2 - 1
  hole = np.zeros((size, size), bool)
  hole[3:9, 2:12] = True
  hole[:, 13] = True  # A full column: the fill must bridge it.
  ref = _harmonic_reference(image, hole)
  x = jnp.asarray(image[None, ..., None], jnp.float32)
  m = jnp.asarray(hole[None, ..., None], jnp.float32)
  near = np.asarray(fill.smooth_fill(x, m, steps=3000))[0, ..., 0]
  np.testing.assert_allclose(near, ref, atol=2e-5)
  # Pull-push alone already lands near it (that is what the few default sweeps refine).
  coarse = np.asarray(fill.smooth_fill(x, m))[0, ..., 0]
  zeros_err = np.abs(ref[hole]).mean()
  assert np.abs(coarse - ref)[hole].mean() < 0.5 * zeros_err
