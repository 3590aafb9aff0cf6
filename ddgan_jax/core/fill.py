"""A cheap smooth fill of the holes from the known pixels (pull-push + harmonic smoothing).

Used as an optional prior in the inpainting condition (`inpaint.cond_fill='smooth'`): instead
of zeros in the hole, the generator and the discriminator see this fill next to the mask, so
from step 0 every missing pixel carries an estimate from its surroundings, however thin or
large the hole. It is a deterministic function of the known pixels and the mask, so the
condition holds no more information than concat((1 - m) x0, m) does; it only hands the
networks a long-range interpolation they would otherwise have to learn.

Pull-push (Gortler et al., 1996): pull mask-weighted 2x2 averages up a pyramid until every
cell has known pixels below it, then push coarse values back down (bilinear), keeping every
cell that has known pixels at its own level. A few Jacobi sweeps of the Laplace equation
inside the hole then smooth the block structure. Known pixels are returned bit for bit.
Pure jnp, static shapes; any H, W (odd sizes are zero-weight padded).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

DEFAULT_SMOOTHING_STEPS = 8


def _pull(values: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  """2x2 sums of weighted values and weights: [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C]."""
  h, w = values.shape[1], values.shape[2]
  pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
  values, weights = jnp.pad(values, pad), jnp.pad(weights, pad)
  b, hh, ww = values.shape[0], values.shape[1] // 2, values.shape[2] // 2
  s = lambda x: x.reshape(b, hh, 2, ww, 2, x.shape[-1]).sum(axis=(2, 4))
  return s(values), s(weights)


def pull_push(images: jax.Array, masks: jax.Array) -> jax.Array:
  """Pull-push interpolation of the holes.

  Args:
    images: [B, H, W, C].
    masks: [B, H, W, 1], 1 = missing.
  Returns:
    [B, H, W, C]: known pixels unchanged, holes filled from the known pixels (0 where an
    image has no known pixel at all).
  """
  known = (masks < 0.5).astype(images.dtype)
  levels = [(images * known, jnp.broadcast_to(known, images.shape[:3] + (1,)))]
  while max(levels[-1][0].shape[1:3]) > 1:
    levels.append(_pull(*levels[-1]))
  filled = None
  for values, weights in reversed(levels):
    mean = values / jnp.maximum(weights, 1e-12)
    if filled is None:
      filled = mean  # Coarsest level: the mean of all known pixels (0 if none).
      continue
    coarse = jax.image.resize(filled, values.shape, 'linear')
    alpha = jnp.clip(weights, 0.0, 1.0)
    filled = alpha * mean + (1.0 - alpha) * coarse
  return jnp.where(masks > 0.5, filled, images)


def smooth_fill(images: jax.Array, masks: jax.Array,
                steps: int = DEFAULT_SMOOTHING_STEPS) -> jax.Array:
  """pull_push, then `steps` Jacobi sweeps of Laplace's equation inside the holes.

  Args:
    images: [B, H, W, C].
    masks: [B, H, W, 1], 1 = missing.
    steps: smoothing sweeps (edge-replicated borders).
  Returns:
    [B, H, W, C] with the known pixels of `images` exactly.
  """
  hole = masks > 0.5
  x = pull_push(images, masks)

  def sweep(_, x):
    p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
    avg = 0.25 * (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:])
    return jnp.where(hole, avg, x)

  return jax.lax.fori_loop(0, steps, sweep, x) if steps > 0 else x
