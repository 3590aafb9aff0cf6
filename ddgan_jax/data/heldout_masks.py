"""Held-out mask families: shapes that are neither training generators nor RePaint's six.

For checking that a model generalises beyond both the training mixture (masks.TRAIN_GENERATORS)
and the evaluation families it is usually reported on (masks.EVAL_FAMILIES). Same conventions
as `masks` (1 = missing, [B, S, S, 1] float32, mask b depends only on (key, index_offset + b));
lengths scale with the image size. `eval_masks.family_masks` draws these and every other family
by name.

* columns  every second column missing (odd indices): `line` turned by 90 degrees.
* grid     a lattice of 1/32-wide lines every 1/8 of the side (both directions).
* checker  a checkerboard of cells 1/8 of the side; the missing colour is random.
* ellipses 1-3 filled ellipses, semi-axes 8-30% of the side, random centre and angle.
* ring     an annulus: outer radius 25-45% of the side, width 6-15%, centre near the middle.
* corner   one quadrant missing (outpainting a corner), chosen from the key.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array
HELDOUT_FAMILIES: tuple[str, ...] = ('columns', 'grid', 'checker', 'ellipses', 'ring', 'corner')


def _coords(size: int) -> tuple[Array, Array]:
  """Pixel-centre coordinates (x = column, y = row) in [0, size), each [S, S]."""
  c = jnp.arange(size, dtype=jnp.float32) + 0.5
  return c[None, :].repeat(size, 0), c[:, None].repeat(size, 1)


def _one(family: str, key: Array, size: int) -> Array:
  idx = jnp.arange(size)
  x, y = _coords(size)
  if family == 'columns':
    hole = jnp.broadcast_to((idx % 2 == 1)[None, :], (size, size))
  elif family == 'grid':
    period, width = max(4, size // 8), max(1, size // 32)
    line = idx % period < width
    hole = line[:, None] | line[None, :]
  elif family == 'checker':
    cell = max(1, size // 8)
    parity = ((idx[:, None] // cell) + (idx[None, :] // cell)) % 2
    hole = parity == jax.random.randint(key, (), 0, 2)
  elif family == 'ellipses':
    k_n, k_c, k_a, k_t = jax.random.split(key, 4)
    count = jax.random.randint(k_n, (), 1, 4)
    centres = jax.random.uniform(k_c, (3, 2), minval=0.15 * size, maxval=0.85 * size)
    axes = jax.random.uniform(k_a, (3, 2), minval=0.08 * size, maxval=0.3 * size)
    theta = jax.random.uniform(k_t, (3,), maxval=jnp.pi)
    dx, dy = x[None] - centres[:, 0, None, None], y[None] - centres[:, 1, None, None]
    c, s = jnp.cos(theta)[:, None, None], jnp.sin(theta)[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy
    inside = (u / axes[:, 0, None, None]) ** 2 + (v / axes[:, 1, None, None]) ** 2 <= 1.0
    hole = jnp.any(inside & (jnp.arange(3) < count)[:, None, None], axis=0)
  elif family == 'ring':
    k_c, k_r, k_w = jax.random.split(key, 3)
    centre = jax.random.uniform(k_c, (2,), minval=0.4 * size, maxval=0.6 * size)
    outer = jax.random.uniform(k_r, (), minval=0.25 * size, maxval=0.45 * size)
    width = jax.random.uniform(k_w, (), minval=0.06 * size, maxval=0.15 * size)
    r = jnp.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2)
    hole = (r <= outer) & (r >= outer - jnp.maximum(width, 1.0))
  elif family == 'corner':
    q = jax.random.randint(key, (), 0, 4)
    half = size // 2
    rows = jnp.where(q // 2 == 0, idx < half, idx >= size - half)
    cols = jnp.where(q % 2 == 0, idx < half, idx >= size - half)
    hole = rows[:, None] & cols[None, :]
  else:
    raise ValueError(f'unknown held-out mask family {family!r}; allowed: '
                     f'{", ".join(HELDOUT_FAMILIES)}')
  return hole[..., None].astype(jnp.float32)


def heldout_masks(family: str, key: Array, batch_size: int, image_size: int,
                  index_offset: int | Array = 0) -> Array:
  """Masks of one held-out family -> [B, S, S, 1] float32 (see the module docstring)."""
  if family not in HELDOUT_FAMILIES:
    raise ValueError(f'unknown held-out mask family {family!r}; allowed: '
                     f'{", ".join(HELDOUT_FAMILIES)}')
  return jax.vmap(lambda i: _one(family, jax.random.fold_in(key, i), image_size))(
      jnp.arange(batch_size) + index_offset)
