"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

D judges x_t given x_{t+1} (and, for inpainting, the condition): all of them are moved by one
random translation and cut by one cutout per sample, so the pair and its condition stay
aligned. Real and fake pairs get independent draws of the same policy and G's loss sees its
fakes through it too, as in DiffAugment; every operation is differentiable in its input, so
G's gradient passes through. The empty policy is the official D input (no augmentation).

Policies: 'translation' (shift by up to 1/8 of the side, zero padding) and 'cutout' (a zeroed
square of half the side, centred anywhere), the two DiffAugment found to matter most.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

POLICIES = ('translation', 'cutout')
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5

# fn(key, x_t, x_tp1, cond) -> (x_t, x_tp1, cond), cond may be None.
Augment = Callable[..., tuple]


def translate(key: jax.Array, x: jax.Array, ratio: float = TRANSLATION_RATIO) -> jax.Array:
  """Shifts each image of [B, H, W, C] by integers in [-ratio H, ratio H] x [-ratio W, ratio W]
  (one shift per image), filling with zeros."""
  b, h, w, _ = x.shape
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k_y, k_x = jax.random.split(key)
  dy = jax.random.randint(k_y, (b,), -sh, sh + 1)
  dx = jax.random.randint(k_x, (b,), -sw, sw + 1)
  padded = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))
  rows = jnp.arange(h)[None, :] + sh - dy[:, None]  # [B, H]: output row i reads row i - dy
  cols = jnp.arange(w)[None, :] + sw - dx[:, None]  # [B, W]
  return padded[jnp.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def cutout(key: jax.Array, x: jax.Array, ratio: float = CUTOUT_RATIO) -> jax.Array:
  """Zeroes one square of side ratio x the image's per image of [B, H, W, C], centred at a
  uniformly drawn pixel (clipped at the borders)."""
  b, h, w, _ = x.shape
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k_y, k_x = jax.random.split(key)
  y0 = jax.random.randint(k_y, (b, 1, 1), 0, h) - ch // 2
  x0 = jax.random.randint(k_x, (b, 1, 1), 0, w) - cw // 2
  rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  inside = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)  # [B, H, W]
  return x * (~inside)[..., None].astype(x.dtype)


_OPS = {'translation': translate, 'cutout': cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
  """'translation,cutout' -> ('translation', 'cutout'); '' -> () (off)."""
  names = tuple(p.strip() for p in policy.split(',') if p.strip())
  for name in names:
    if name not in POLICIES:
      raise ValueError(f'unknown augmentation {name!r}; use a comma-separated subset of '
                       f'{", ".join(POLICIES)} (or nothing).')
  return names


def make_augment(policy: Sequence[str]) -> Augment | None:
  """The D-input augmentation of `policy` (names from POLICIES), or None when it is empty."""
  if not policy:
    return None

  def augment(key: jax.Array, x: jax.Array, x_tp1: jax.Array, cond: jax.Array | None):
    parts = [x, x_tp1] + ([cond] if cond is not None else [])
    sizes = [p.shape[-1] for p in parts]
    stacked = jnp.concatenate([p.astype(x.dtype) for p in parts], axis=-1)
    for k, name in zip(jax.random.split(key, len(policy)), policy):
      stacked = _OPS[name](k, stacked)
    out = jnp.split(stacked, [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)], axis=-1)
    return out[0], out[1], (out[2] if cond is not None else None)

  return augment
