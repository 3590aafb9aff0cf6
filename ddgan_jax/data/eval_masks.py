"""Evaluation masks: RePaint's six families (`eval_masks`), and `family_masks`, the one place
that draws masks by family name: RePaint's six, a training generator alone, or a held-out shape.
Conventions as in `masks`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ddgan_jax.data import heldout_masks, training_masks
from ddgan_jax.data.masks import EVAL_FAMILIES, TRAIN_GENERATORS, randint

Array = jax.Array
HALF_SIDES: tuple[str, ...] = ('left', 'right', 'top', 'bottom')
# Every name `family_masks` draws (`sample.py inpaint --mask_type`).
MASK_FAMILIES: tuple[str, ...] = (EVAL_FAMILIES + TRAIN_GENERATORS
                                  + heldout_masks.HELDOUT_FAMILIES)


def line_mask(image_size: int) -> Array:
  """Every second line missing: rows with odd index are 1 -> [S, S, 1]."""
  rows = jnp.arange(image_size) % 2 == 1
  return jnp.broadcast_to(rows[:, None, None], (image_size, image_size, 1)).astype(jnp.float32)


def sr2_mask(image_size: int) -> Array:
  """Super-resolution x2: known (0) only where row AND column are even -> [S, S, 1]."""
  even = jnp.arange(image_size) % 2 == 0
  return (~(even[:, None] & even[None, :]))[..., None].astype(jnp.float32)


def expand_mask(image_size: int) -> Array:
  """Everything missing except the central square of side S // 4 (64 of 256) -> [S, S, 1].

  The known square spans rows and columns [(S - S // 4) // 2, (S - S // 4) // 2 + S // 4).
  """
  side = image_size // 4
  lo = (image_size - side) // 2
  idx = jnp.arange(image_size)
  inside = (idx >= lo) & (idx < lo + side)
  return (~(inside[:, None] & inside[None, :]))[..., None].astype(jnp.float32)


def half_mask(side: int | Array, image_size: int) -> Array:
  """One half missing; side 0 left, 1 right, 2 top, 3 bottom (``HALF_SIDES``) -> [S, S, 1].

  The missing half is the first (left/top) or last (right/bottom) S // 2 columns/rows,
  so for odd S the missing part is the smaller one.
  """
  idx = jnp.arange(image_size)
  h = image_size // 2
  first, last = idx < h, idx >= image_size - h
  cols = jnp.where(side == 0, first, last)
  rows = jnp.where(side == 2, first, last)
  by_col = jnp.broadcast_to(cols[None, :], (image_size, image_size))
  by_row = jnp.broadcast_to(rows[:, None], (image_size, image_size))
  return jnp.where(side < 2, by_col, by_row)[..., None].astype(jnp.float32)


def _eval_one(family: str, key: Array, image_size: int) -> Array:
  if family == 'wide':
    return training_masks.lama_stroke_mask(key, image_size, 'thick')
  if family == 'narrow':
    return training_masks.lama_stroke_mask(key, image_size, 'thin')
  if family == 'line':
    return line_mask(image_size)
  if family == 'half':
    return half_mask(randint(jax.random.uniform(key), 0, 4), image_size)
  if family == 'expand':
    return expand_mask(image_size)
  return sr2_mask(image_size)


def eval_masks(family: str, key: Array, batch_size: int, image_size: int,
               index_offset: int | Array = 0) -> Array:
  """Evaluation masks of one RePaint family -> [B, S, S, 1] float32.

  Families (``EVAL_FAMILIES``): 'wide' (LaMa thick distribution), 'narrow' (LaMa thin),
  'line' (odd rows missing), 'half' (left/right/top/bottom half missing, uniform per
  mask from the key), 'expand' (only the central S/4 square known), 'sr2' (only even
  row AND even column pixels known). line, expand and sr2 ignore the key.
  """
  if family not in EVAL_FAMILIES:
    raise ValueError(f'unknown evaluation mask family {family!r}; '
                     f'allowed: {", ".join(EVAL_FAMILIES)}')
  return jax.vmap(lambda i: _eval_one(family, jax.random.fold_in(key, i), image_size))(
      jnp.arange(batch_size) + index_offset)


def family_masks(family: str, key: Array, batch_size: int, image_size: int,
                 index_offset: int | Array = 0) -> Array:
  """Masks of any family of ``MASK_FAMILIES`` -> [B, S, S, 1] float32: RePaint's six
  (`eval_masks`), a held-out shape (`heldout_masks.heldout_masks`) or a training generator
  alone (`training_masks.sample_training_masks` with it as the whole mixture, no unconditional
  masks). Mask b depends only on (key, index_offset + b)."""
  if family in heldout_masks.HELDOUT_FAMILIES:
    return heldout_masks.heldout_masks(family, key, batch_size, image_size,
                                       index_offset=index_offset)
  if family in TRAIN_GENERATORS:
    return training_masks.sample_training_masks(key, batch_size, image_size, ((family, 1.0),),
                                                0.0, index_offset)
  if family not in EVAL_FAMILIES:
    raise ValueError(f'unknown mask family {family!r}; allowed: {", ".join(MASK_FAMILIES)}')
  return eval_masks(family, key, batch_size, image_size, index_offset=index_offset)
