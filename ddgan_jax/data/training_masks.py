"""Training masks: LaMa's irregular strokes and boxes, CoModGAN's brush, pixel noise, and the
weighted mixture of them a model trains on (`sample_training_masks`). Conventions as in `masks`.

All lengths, widths and margins are given at 256 px and multiplied by ``image_size / 256``;
stroke widths are then clamped to at least ``MIN_WIDTH_PX`` so thin strokes do not break up
into dots at small sizes.
"""
from __future__ import annotations

import dataclasses
import math
import types
from typing import Callable, Mapping, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ddgan_jax.data.masks import (EVAL_FAMILIES, TRAIN_GENERATORS, Shapes, normal, pad_shapes,
                                  randint, render, uniforms)

Array = jax.Array
MixtureLike = Union[Mapping[str, float], Sequence[tuple[str, float]]]

REFERENCE_SIZE = 256
MIN_WIDTH_PX = 1.0


# --------------------------------------------------------------------------- presets
@dataclasses.dataclass(frozen=True)
class StrokePreset:
  """LaMa irregular-stroke preset, numbers at 256 px.

  A mask has U{min_strokes..max_strokes} strokes; each stroke is a clipped random walk
  of U{1..max_segments} segments with angle U[0, 2 pi), length 10 + U[0, max_len) and
  width 5 + U[0, max_width) (per segment, as LaMa's cv2.line calls).
  """
  min_strokes: int
  max_strokes: int
  max_len: float
  max_width: float
  max_segments: int = 5


STROKE_PRESETS: dict[str, StrokePreset] = {
    'thick': StrokePreset(1, 5, 200.0, 100.0),
    'medium': StrokePreset(4, 5, 100.0, 50.0),
    'thin': StrokePreset(4, 50, 40.0, 10.0),
}

# Boxes (LaMa "random rectangles"), numbers at 256 px.
BOX_MIN_COUNT, BOX_MAX_COUNT = 1, 4
BOX_MIN_SIDE, BOX_MAX_SIDE, BOX_MARGIN = 30.0, 150.0, 10.0

# CoModGAN / MAT RandomMask at 256 px (mask_generator_256): 0-3 rectangles of side
# < s/2, 0-1 of side < s, 0-7 brush strokes of 4-17 vertices, width U[12, 48).
BRUSH_MAX_STROKES = 7
BRUSH_MIN_VERTEX, BRUSH_MAX_VERTEX = 4, 17
BRUSH_MEAN_ANGLE = 2.0 * math.pi / 5.0
BRUSH_ANGLE_RANGE = 2.0 * math.pi / 15.0
BRUSH_MIN_WIDTH, BRUSH_MAX_WIDTH = 12.0, 48.0
BRUSH_SMALL_RECTS, BRUSH_BIG_RECTS = 3, 1

# Pixel-noise holes: i.i.d. missing cells of NOISE_CELL px (at 256 px; >= 1 px), each
# missing with a probability drawn per mask from U[NOISE_MIN_P, NOISE_MAX_P].
NOISE_CELL = 8.0
NOISE_MIN_P, NOISE_MAX_P = 0.2, 0.9


# thick and thin produce the same distribution as the evaluation families wide and
# narrow, so the default leaves them out to keep those families unseen; users may add
# them (e.g. {'thick': 1, 'medium': 1, 'thin': 1, 'box': 1, 'brush': 1}).
DEFAULT_TRAIN_MIXTURE: Mapping[str, float] = types.MappingProxyType(
    {'medium': 1.0, 'box': 1.0, 'brush': 1.0})


def _scale(image_size: int) -> float:
  return image_size / REFERENCE_SIZE


def _no_segments() -> tuple[Array, Array, Array, Array]:
  return jnp.zeros((0, 2)), jnp.zeros((0, 2)), jnp.zeros((0,)), jnp.zeros((0,), bool)


def _no_rects() -> tuple[Array, Array]:
  return jnp.zeros((0, 4)), jnp.zeros((0,), bool)


def _random_walk(start: Array, steps: Array, image_size: int) -> Array:
  """Clipped random walk. start [N, 2], steps [N, M, 2] -> points [N, M + 1, 2]."""
  def step(p: Array, delta: Array) -> tuple[Array, Array]:
    p = jnp.clip(p + delta, 0.0, float(image_size))
    return p, p

  _, pts = lax.scan(step, start, jnp.swapaxes(steps, 0, 1))  # [M, N, 2]
  return jnp.concatenate([start[:, None], jnp.swapaxes(pts, 0, 1)], axis=1)


def _polylines(pts: Array, radius: Array, valid: Array) -> tuple[Array, Array, Array, Array]:
  """[N, M + 1, 2] points, [N, M] radii and validity -> flat segment fields (K = N M)."""
  return (pts[:, :-1].reshape(-1, 2), pts[:, 1:].reshape(-1, 2), radius.reshape(-1),
          valid.reshape(-1))


# ------------------------------------------------------------- training generators
def lama_stroke_shapes(key: Array, image_size: int, preset: str = 'medium') -> Shapes:
  """LaMa-style irregular strokes (``STROKE_PRESETS``: thick, medium, thin).

  K = max_strokes * max_segments segments (thick/medium 25, thin 250), no rectangles.
  Deviations from LaMa's numpy code, on purpose: angles are continuous U[0, 2 pi) (LaMa
  draws from {0.01, 1.01, 2.01, 3.01} mirrored on odd strokes) and coordinates are not
  rounded to integers.
  """
  p = STROKE_PRESETS[preset]
  s, n, m = _scale(image_size), p.max_strokes, p.max_segments
  u_n, u_seg, u_start, u_angle, u_len, u_width = uniforms(
      key, (), (n,), (n, 2), (n, m), (n, m), (n, m))
  n_strokes = randint(u_n, p.min_strokes, p.max_strokes + 1)
  n_segments = randint(u_seg, 1, m + 1)
  start = u_start * image_size
  angle = u_angle * (2.0 * math.pi)
  length = (10.0 + u_len * p.max_len) * s
  width = (5.0 + u_width * p.max_width) * s
  width = jnp.maximum(width, MIN_WIDTH_PX)
  steps = length[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
  pts = _random_walk(start, steps, image_size)  # [n, m + 1, 2]
  valid = ((jnp.arange(n) < n_strokes)[:, None]
           & (jnp.arange(m)[None, :] < n_segments[:, None]))
  return Shapes(*_polylines(pts, 0.5 * width, valid), *_no_rects())


def box_shapes(key: Array, image_size: int) -> Shapes:
  """1-4 boxes, sides U[30, 150) px (capped at S - 2 margin), margin 10 px, all scaled.

  The top-left corner is U[margin, S - margin - side] per axis. R = 4, no segments.
  """
  s, n = _scale(image_size), BOX_MAX_COUNT
  margin = BOX_MARGIN * s
  lo = BOX_MIN_SIDE * s
  hi = max(min(BOX_MAX_SIDE * s, image_size - 2.0 * margin), lo)
  u_count, u_side, u_start = uniforms(key, (), (n, 2), (n, 2))
  count = randint(u_count, BOX_MIN_COUNT, BOX_MAX_COUNT + 1)
  side = lo + u_side * (hi - lo)  # (w, h)
  start = margin + u_start * jnp.maximum(
      image_size - 2.0 * margin - side, 0.0)
  rects = jnp.concatenate([start, start + side], axis=1)
  return Shapes(*_no_segments(), rects, jnp.arange(n) < count)


def brush_shapes(key: Array, image_size: int) -> Shapes:
  """CoModGAN-style free-form mask (MAT's 256-px RandomMask, in our words).

  Union of (a) 0-3 rectangles of side U{0..S/2-1} and 0-1 of side U{0..S-1}, each
  placed so that it may stick out of the image by up to half its side, and (b) 0-7
  brush strokes: a polyline of 4-17 segments whose directions alternate around
  +-2 pi / 5 (spread up to 2 pi / 15), step lengths N(r, r / 2) clipped to [0, 2 r]
  with r = S sqrt(2) / 8, width U[12, 48) px (scaled), round joints; the strokes are
  then flipped left-right and/or up-down with probability 1/2 each. The reference
  rejects empty masks; here a draw with no rectangle and no stroke gets one stroke.
  K = 7 * 17 = 119 segments, R = 4 rectangles.
  """
  s, size = _scale(image_size), float(image_size)
  ns, nv = BRUSH_MAX_STROKES, BRUSH_MAX_VERTEX
  n_rect = BRUSH_SMALL_RECTS + BRUSH_BIG_RECTS
  u_n, u_v, u_a, u_u, u_r, u_s, u_w, u_f, u_wh, u_xy = uniforms(
      key, (3,), (ns,), (ns, 2), (ns, nv), (ns, nv), (ns, 2), (ns, 1), (2,), (n_rect, 2),
      (n_rect, 2))
  counts = randint(u_n, 0, jnp.array([BRUSH_SMALL_RECTS + 1, BRUSH_BIG_RECTS + 1, ns + 1]))
  n_strokes = jnp.where(jnp.sum(counts) == 0, 1, counts[2])
  n_vertex = randint(u_v, BRUSH_MIN_VERTEX, nv + 1)
  spread = u_a * BRUSH_ANGLE_RANGE
  a_min = BRUSH_MEAN_ANGLE - spread[:, :1]
  a_max = BRUSH_MEAN_ANGLE + spread[:, 1:]
  a = a_min + u_u * (a_max - a_min)
  angle = jnp.where(jnp.arange(nv)[None, :] % 2 == 0, 2.0 * math.pi - a, a)
  avg_r = size * math.sqrt(2.0) / 8.0
  r = jnp.clip(avg_r + 0.5 * avg_r * normal(u_r), 0.0, 2.0 * avg_r)
  start = u_s * size
  steps = r[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
  pts = _random_walk(start, steps, image_size)  # [ns, nv + 1, 2]
  flip = u_f < 0.5
  pts = jnp.where(flip, size - pts, pts)
  width = (BRUSH_MIN_WIDTH + u_w * (BRUSH_MAX_WIDTH - BRUSH_MIN_WIDTH)) * s
  radius = jnp.broadcast_to(0.5 * jnp.maximum(width, MIN_WIDTH_PX), (ns, nv))
  valid = ((jnp.arange(ns) < n_strokes)[:, None]
           & (jnp.arange(nv)[None, :] < n_vertex[:, None]))
  # Rectangles in integer pixel units, as in the reference.
  max_side = jnp.array([image_size // 2] * BRUSH_SMALL_RECTS
                       + [image_size] * BRUSH_BIG_RECTS, jnp.float32)[:, None]
  wh = jnp.floor(u_wh * max_side)
  half = jnp.floor(wh / 2)
  # Top-left corner U{-half .. S - side + half - 1}.
  xy = -half + jnp.floor(u_xy * (size - wh + 2 * half))
  rect_valid = jnp.concatenate([jnp.arange(BRUSH_SMALL_RECTS) < counts[0],
                                jnp.arange(BRUSH_BIG_RECTS) < counts[1]])
  return Shapes(*_polylines(pts, radius, valid), jnp.concatenate([xy, xy + wh], axis=1),
                rect_valid)


def lama_stroke_mask(key: Array, image_size: int, preset: str = 'medium') -> Array:
  """One LaMa stroke mask (see :func:`lama_stroke_shapes`) -> [S, S, 1]."""
  return render(lama_stroke_shapes(key, image_size, preset), image_size)


def box_mask(key: Array, image_size: int) -> Array:
  """One box mask (see :func:`box_shapes`) -> [S, S, 1]."""
  return render(box_shapes(key, image_size), image_size)


def brush_mask(key: Array, image_size: int) -> Array:
  """One CoModGAN-style brush mask (see :func:`brush_shapes`) -> [S, S, 1]."""
  return render(brush_shapes(key, image_size), image_size)


def noise_mask(key: Array, image_size: int) -> Array:
  """Random pixel-noise holes -> [S, S, 1]: square cells of NOISE_CELL px (scaled, >= 1 px),
  each missing with probability p ~ U[NOISE_MIN_P, NOISE_MAX_P] (one p per mask)."""
  cell = max(1, int(round(NOISE_CELL * _scale(image_size))))
  cells = -(-image_size // cell)
  k_p, k_cells = jax.random.split(key)
  p = jax.random.uniform(k_p, (), minval=NOISE_MIN_P, maxval=NOISE_MAX_P)
  grid = (jax.random.uniform(k_cells, (cells, cells)) < p).astype(jnp.float32)
  grid = jnp.repeat(jnp.repeat(grid, cell, axis=0), cell, axis=1)[:image_size, :image_size]
  return grid[..., None]


_SHAPE_GENERATORS: dict[str, Callable[[Array, int], Shapes]] = {
    'thick': lambda k, s: lama_stroke_shapes(k, s, 'thick'),
    'medium': lambda k, s: lama_stroke_shapes(k, s, 'medium'),
    'thin': lambda k, s: lama_stroke_shapes(k, s, 'thin'),
    'box': box_shapes,
    'brush': brush_shapes,
}
# Stable per-generator key salt: adding a generator to a mixture leaves the others' masks.
_GENERATOR_SALT = {name: 1000 + i for i, name in enumerate(TRAIN_GENERATORS)}


# ------------------------------------------------------------------- training mixture
def validate_train_mixture(mixture: MixtureLike) -> tuple[tuple[str, ...], tuple[float, ...]]:
  """Checks a training mixture in Python; returns (names, probabilities) of weight > 0.

  Accepts a mapping (dict, ConfigDict) or a sequence of (name, weight) pairs. Raises
  ValueError for evaluation-family names, unknown names, negative/non-finite weights or
  an all-zero mixture.
  """
  pairs = list(mixture.items()) if hasattr(mixture, 'items') else list(mixture)
  allowed = ', '.join(TRAIN_GENERATORS)
  names, weights = [], []
  for item in pairs:
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
      raise ValueError(f'mask mixture entries must be (name, weight) pairs, got {item!r}')
    name, weight = item
    if name in EVAL_FAMILIES:
      raise ValueError(f'mask mixture: {name!r} is an evaluation family and may not be used '
                       f'for training; allowed training names: {allowed}')
    if name not in TRAIN_GENERATORS:
      raise ValueError(f'mask mixture: unknown name {name!r}; allowed training names: {allowed}')
    if name in names:
      raise ValueError(f'mask mixture: duplicate name {name!r}')
    w = float(weight)
    if not math.isfinite(w) or w < 0:
      raise ValueError(f'mask mixture: weight of {name!r} must be finite and >= 0, got {weight!r}')
    if w > 0:
      names.append(name)
      weights.append(w)
  if not names:
    raise ValueError(f'mask mixture needs a positive weight on at least one of: {allowed}')
  total = sum(weights)
  return tuple(names), tuple(w / total for w in weights)


def sample_training_masks(key: Array, batch_size: int, image_size: int,
                          mixture: MixtureLike = DEFAULT_TRAIN_MIXTURE,
                          p_uncond: float | Array = 0.0,
                          index_offset: int | Array = 0) -> Array:
  """Training masks from a weighted mixture of generators -> [B, S, S, 1] float32.

  Each sample independently picks a generator with probability weight / sum(weights)
  and, with probability ``p_uncond``, is replaced by an all-ones mask (unconditional
  sample). Every generator with positive weight draws its primitives (cheap); the chosen
  one's are selected and rendered once, so the rendering cost is that of the generator
  with the most segments (thin 250, brush 119, thick/medium 25, box 0), not the sum.
  ``batch_size``, ``image_size`` and ``mixture`` are static; a generator's masks depend
  on the key and sample index only, not on which other generators are in the mixture.
  """
  names, probs = validate_train_mixture(mixture)
  if isinstance(p_uncond, (int, float)) and not 0.0 <= p_uncond <= 1.0:
    raise ValueError(f'p_uncond must be in [0, 1], got {p_uncond}')
  cum_p = jnp.asarray(np.cumsum(probs)[:-1], jnp.float32)

  def one(index: Array) -> Array:
    k = jax.random.fold_in(key, index)
    u_choice, u_uncond = jax.random.uniform(jax.random.fold_in(k, 1), (2,))
    # Inverse CDF: index of the first cumulative probability above u.
    choice = jnp.minimum(jnp.sum(u_choice >= cum_p), len(names) - 1)
    shape_names = [n for n in names if n != 'noise']
    shapes = [_SHAPE_GENERATORS[n](jax.random.fold_in(k, _GENERATOR_SALT[n]), image_size)
              for n in shape_names]
    mask = None
    if len(shapes) == 1:
      mask = render(shapes[0], image_size)
    elif shapes:
      num_seg = max(sh.seg_p0.shape[0] for sh in shapes)
      num_rect = max(sh.rects.shape[0] for sh in shapes)
      stacked = jax.tree.map(lambda *xs: jnp.stack(xs),
                             *[pad_shapes(sh, num_seg, num_rect) for sh in shapes])
      # Position of the choice among the shape generators (noise, if chosen, replaces it).
      shape_index = jnp.asarray([shape_names.index(n) if n != 'noise' else 0 for n in names])
      chosen = jax.tree.map(lambda x: x[shape_index[choice]], stacked)
      mask = render(chosen, image_size)
    if 'noise' in names:
      noise = noise_mask(jax.random.fold_in(k, _GENERATOR_SALT['noise']), image_size)
      mask = noise if mask is None else jnp.where(choice == names.index('noise'), noise, mask)
    uncond = u_uncond < p_uncond
    return jnp.where(uncond, 1.0, mask)

  return jax.vmap(one)(jnp.arange(batch_size) + index_offset)


def make_training_mask_sampler(batch_size: int, image_size: int,
                               mixture: MixtureLike = DEFAULT_TRAIN_MIXTURE,
                               p_uncond: float = 0.0) -> Callable[[Array], Array]:
  """Validates now and returns a jitted ``key -> [B, S, S, 1]`` training-mask sampler."""
  pairs = tuple(zip(*validate_train_mixture(mixture)))
  if not 0.0 <= p_uncond <= 1.0:
    raise ValueError(f'p_uncond must be in [0, 1], got {p_uncond}')
  return jax.jit(lambda key: sample_training_masks(key, batch_size, image_size, pairs,
                                                   p_uncond))
