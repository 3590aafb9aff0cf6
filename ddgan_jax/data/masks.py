"""Inpainting masks: the conventions, the mask names, the primitives every generator draws and
their rendering, and hole-ratio buckets. The generators are in `training_masks` (the training
mixture), `eval_masks` (RePaint's six evaluation families, and `family_masks`: any mask by name)
and `heldout_masks` (six shapes in neither set).

Convention (SPEC section 4): a mask is float32 with 1 where pixels are missing (to be
filled) and 0 where they are known. Batched masks are NHWC ``[B, H, W, 1]``; the
single-mask helpers return ``[H, W, 1]``. Images are square, ``H = W = image_size``.

Everything is pure jnp with static shapes: ``batch_size``, ``image_size``,
``preset``/``family`` names and the training mixture are Python values, keys and
``index_offset`` may be traced. Callers can jit with e.g.
``jax.jit(training_masks.sample_training_masks, static_argnums=(1, 2, 3))`` (pass the mixture
as a tuple of ``(name, weight)`` pairs there, dicts are not hashable) or use
:func:`training_masks.make_training_mask_sampler`.

Geometry: pixel ``(row i, col j)`` has its centre at ``(x, y) = (j + 0.5, i + 0.5)`` in
continuous image coordinates ``[0, image_size]^2``. A shape generator first draws geometric
primitives (:class:`Shapes`: thick segments and rectangles, padded to a fixed maximum count
with validity flags, so shapes are static); :func:`render` then thresholds the distance from
each pixel centre to every segment (round caps and joints) and unions the rectangles.

Batch determinism: mask ``b`` of a batch depends only on ``(key, index_offset + b)``
(``jax.random.fold_in``), so a batch of 8 equals the first 8 masks of a batch of 64 and
an evaluation set can be drawn in chunks.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

TRAIN_GENERATORS: tuple[str, ...] = ('thick', 'medium', 'thin', 'box', 'brush', 'noise')
EVAL_FAMILIES: tuple[str, ...] = ('wide', 'narrow', 'line', 'half', 'expand', 'sr2')
# Training presets whose distribution IS an evaluation family's.
EVAL_EQUIVALENT: dict[str, str] = {'thick': 'wide', 'thin': 'narrow'}

# Hole-ratio buckets (lo, hi], index 0..4; a ratio of exactly 0 gets bucket -1.
HOLE_RATIO_BUCKETS: tuple[tuple[float, float], ...] = (
    (0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


def _pixel_centres(image_size: int) -> Array:
  """[S] float32 pixel-centre coordinates 0.5 .. S - 0.5."""
  return jnp.arange(image_size, dtype=jnp.float32) + 0.5


# ------------------------------------------------------------------------ rendering
class Shapes(NamedTuple):
  """Geometric primitives of one mask, padded to static counts.

  seg_p0, seg_p1: [K, 2] segment end points (x, y); seg_radius: [K] half widths;
  seg_valid: [K] bool. rects: [R, 4] (x0, y0, x1, y1), covering pixel centres in
  [x0, x1) x [y0, y1); rect_valid: [R] bool. Invalid primitives draw nothing.
  """
  seg_p0: Array
  seg_p1: Array
  seg_radius: Array
  seg_valid: Array
  rects: Array
  rect_valid: Array


def pad_shapes(shapes: Shapes, num_segments: int, num_rects: int) -> Shapes:
  """Pads every field with invalid primitives to K = num_segments, R = num_rects."""
  dk = num_segments - shapes.seg_p0.shape[0]
  dr = num_rects - shapes.rects.shape[0]
  pad = lambda x, n: jnp.pad(x, [(0, n)] + [(0, 0)] * (x.ndim - 1))
  return Shapes(pad(shapes.seg_p0, dk), pad(shapes.seg_p1, dk), pad(shapes.seg_radius, dk),
                pad(shapes.seg_valid, dk), pad(shapes.rects, dr), pad(shapes.rect_valid, dr))


def render(shapes: Shapes, image_size: int, unroll: int = 4) -> Array:
  """Rasterises Shapes -> [S, S, 1] float32 (1 = covered).

  A pixel is covered if its centre lies within seg_radius of a valid segment (round caps
  and joints) or inside a valid rectangle. Segments are accumulated by a lax.scan so
  no [K, S, S] intermediate is materialised.
  """
  c = _pixel_centres(image_size)
  px, py = c[None, :], c[:, None]

  def add_segment(canvas: Array, seg: tuple[Array, ...]) -> tuple[Array, None]:
    p0, p1, radius, valid = seg
    d = p1 - p0
    inv_len2 = 1.0 / jnp.maximum(jnp.sum(d * d), 1e-12)
    rx, ry = px - p0[0], py - p0[1]
    t = jnp.clip((rx * d[0] + ry * d[1]) * inv_len2, 0.0, 1.0)
    ex, ey = rx - t * d[0], ry - t * d[1]
    r2 = jnp.where(valid, radius * radius, -1.0)
    return canvas | (ex * ex + ey * ey <= r2), None

  canvas = jnp.zeros((image_size, image_size), bool)
  if shapes.seg_p0.shape[0]:
    canvas, _ = lax.scan(add_segment, canvas, (shapes.seg_p0, shapes.seg_p1,
                                               shapes.seg_radius, shapes.seg_valid),
                         unroll=unroll)
  if shapes.rects.shape[0]:
    x0, y0, x1, y1 = (shapes.rects[:, i:i + 1] for i in range(4))
    in_x = (c[None, :] >= x0) & (c[None, :] < x1)  # [R, S]
    in_y = (c[None, :] >= y0) & (c[None, :] < y1)
    canvas |= jnp.any(in_y[:, :, None] & in_x[:, None, :]
                      & shapes.rect_valid[:, None, None], axis=0)
  return canvas.astype(jnp.float32)[..., None]


# ---------------------------------------------------------------- random draws
def uniforms(key: Array, *shapes: tuple[int, ...]) -> list[Array]:
  """U[0, 1) float32 arrays of the given shapes from ONE flat draw.

  One threefry call per mask instead of one per quantity: XLA:CPU compile time grows
  with the number of (multi-dimensional) random calls, several seconds for a handful.
  """
  sizes = [math.prod(s) for s in shapes]
  u = jax.random.uniform(key, (sum(sizes),))
  out, offset = [], 0
  for shape, n in zip(shapes, sizes):
    out.append(u[offset:offset + n].reshape(shape))
    offset += n
  return out


def randint(u: Array, lo: int | Array, hi: int | Array) -> Array:
  """Uniform integers in [lo, hi) from uniforms u (int32, same shape)."""
  return jnp.minimum(lo + jnp.floor(u * (hi - lo)), hi - 1).astype(jnp.int32)


def normal(u: Array) -> Array:
  """Standard normal samples from uniforms u by the inverse CDF."""
  return math.sqrt(2.0) * jax.scipy.special.erfinv(jnp.clip(2.0 * u - 1.0, -1 + 1e-6, 1 - 1e-6))


# ------------------------------------------------------------------------ hole ratios
def hole_ratio(masks: Array) -> Array:
  """Fraction of missing pixels per mask: [B, H, W, C] -> [B] float32."""
  masks = jnp.asarray(masks, jnp.float32)
  count = np.prod(masks.shape[1:])
  return jnp.sum(masks.reshape(masks.shape[0], -1), axis=1) / count


def hole_ratio_bucket(ratios: Array) -> Array:
  """Bucket index of each ratio for ``HOLE_RATIO_BUCKETS`` -> int32 [B].

  (0, .2] -> 0, (.2, .4] -> 1, (.4, .6] -> 2, (.6, .8] -> 3, (.8, 1] -> 4; a ratio
  <= 0 gives -1. Edges are compared in float32, so a ratio k / N that equals an edge in
  exact arithmetic lands in the lower bucket.
  """
  ratios = jnp.asarray(ratios, jnp.float32)
  edges = jnp.asarray([hi for _, hi in HOLE_RATIO_BUCKETS[:-1]], jnp.float32)
  bucket = jnp.sum(ratios[..., None] > edges, axis=-1).astype(jnp.int32)
  return jnp.where(ratios > 0, bucket, -1)
