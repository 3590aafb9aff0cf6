"""The mask families of the evaluation and their masks: RePaint's six (masks.EVAL_FAMILIES),
the held-out shapes (heldout_masks.HELDOUT_FAMILIES) and `unconditional` (an all-ones mask:
unconditional samples, realism metrics only).

Masks come from a fixed seed and depend only on (seed, family, image index), never on the
batch size or the methods chosen.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.data import eval_masks, heldout_masks
from ddgan_jax.data import masks as masks_lib

ALL_FAMILIES = masks_lib.EVAL_FAMILIES + heldout_masks.HELDOUT_FAMILIES
UNCONDITIONAL = 'unconditional'  # The all-ones-mask family (model methods, realism only).


def expand_families(names: Sequence[str] | None) -> list[str]:
  """Family names as evaluate.py's --families gives them: none means RePaint's six
  (masks.EVAL_FAMILIES), and 'heldout' the held-out shapes (heldout_masks.HELDOUT_FAMILIES)."""
  expanded = []
  for name in names or masks_lib.EVAL_FAMILIES:
    expanded += list(heldout_masks.HELDOUT_FAMILIES) if name == 'heldout' else [name]
  return expanded


def check_families(names: Sequence[str]) -> None:
  """Raises a ValueError naming the first of `names` that is not in ALL_FAMILIES."""
  for family in names:
    if family not in ALL_FAMILIES:
      raise ValueError(f'unknown family {family!r}; one of {ALL_FAMILIES}.')


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _chunk(family: str, key: jax.Array, batch: int, size: int, offset: jax.Array) -> jax.Array:
  return eval_masks.family_masks(family, key, batch, size, index_offset=offset)


def seeded_masks(family: str, seed: int, num_images: int, image_size: int,
                 chunk: int = 64) -> np.ndarray:
  """Evaluation masks [N, S, S, 1] of `family`; mask i depends on (seed, family, i) only."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), ALL_FAMILIES.index(family))
  parts = [np.asarray(_chunk(family, key, chunk, image_size, jnp.int32(start)))
           for start in range(0, num_images, chunk)]
  return np.concatenate(parts)[:num_images]


def run_masks(family: str, seed: int, num_images: int, image_size: int) -> np.ndarray:
  """seeded_masks, or all ones [N, S, S, 1] float32 for UNCONDITIONAL."""
  if family == UNCONDITIONAL:
    return np.ones((num_images, image_size, image_size, 1), np.float32)
  return seeded_masks(family, seed, num_images, image_size)


def sample_key(family: str, seed: int) -> jax.Array:
  """The samplers' key of a family (UNCONDITIONAL after every name of ALL_FAMILIES)."""
  index = len(ALL_FAMILIES) if family == UNCONDITIONAL else ALL_FAMILIES.index(family)
  return jax.random.fold_in(jax.random.PRNGKey(seed), 1000 + index)
