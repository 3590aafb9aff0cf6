"""Inpainting masks: on-device training generators, evaluation families, hole-ratio buckets.

Convention (SPEC section 4): a mask is float32 with 1 where pixels are missing (to be
filled) and 0 where they are known. Batched masks are NHWC ``[B, H, W, 1]``; the
single-mask helpers return ``[H, W, 1]``. Images are square, ``H = W = image_size``.

Everything here is pure jnp with static shapes: ``batch_size``, ``image_size``,
``preset``/``family`` names and the training mixture are Python values, keys and
``index_offset`` may be traced. Callers can jit with e.g.
``jax.jit(sample_training_masks, static_argnums=(1, 2, 3))`` (pass the mixture as a
tuple of ``(name, weight)`` pairs there, dicts are not hashable) or use
:func:`make_training_mask_sampler`.

Geometry: pixel ``(row i, col j)`` has its centre at ``(x, y) = (j + 0.5, i + 0.5)`` in
continuous image coordinates ``[0, image_size]^2``. All lengths, widths and margins are
given at 256 px and multiplied by ``image_size / 256``; stroke widths are then clamped to
at least ``MIN_WIDTH_PX`` so thin strokes do not break up into dots at small sizes.
Each generator first draws geometric primitives (:class:`Shapes`: thick segments and
rectangles, padded to a fixed maximum count with validity flags, so shapes are static);
:func:`render` then thresholds the distance from each pixel centre to every segment
(round caps and joints) and unions the rectangles.

Batch determinism: mask ``b`` of a batch depends only on ``(key, index_offset + b)``
(``jax.random.fold_in``), so a batch of 8 equals the first 8 masks of a batch of 64 and
an evaluation set can be drawn in chunks.
"""
from __future__ import annotations

import dataclasses
import math
import types
from typing import Callable, Mapping, NamedTuple, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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

TRAIN_GENERATORS: tuple[str, ...] = ('thick', 'medium', 'thin', 'box', 'brush', 'noise')
EVAL_FAMILIES: tuple[str, ...] = ('wide', 'narrow', 'line', 'half', 'expand', 'sr2')
# Training presets whose distribution IS an evaluation family's.
EVAL_EQUIVALENT: dict[str, str] = {'thick': 'wide', 'thin': 'narrow'}

# thick and thin produce the same distribution as the evaluation families wide and
# narrow, so the default leaves them out to keep those families unseen; users may add
# them (e.g. {'thick': 1, 'medium': 1, 'thin': 1, 'box': 1, 'brush': 1}).
DEFAULT_TRAIN_MIXTURE: Mapping[str, float] = types.MappingProxyType(
    {'medium': 1.0, 'box': 1.0, 'brush': 1.0})

# Hole-ratio buckets (lo, hi], index 0..4; a ratio of exactly 0 gets bucket -1.
HOLE_RATIO_BUCKETS: tuple[tuple[float, float], ...] = (
    (0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))
HALF_SIDES: tuple[str, ...] = ('left', 'right', 'top', 'bottom')


def _scale(image_size: int) -> float:
  return image_size / REFERENCE_SIZE


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


def _no_segments() -> tuple[Array, Array, Array, Array]:
  return jnp.zeros((0, 2)), jnp.zeros((0, 2)), jnp.zeros((0,)), jnp.zeros((0,), bool)


def _no_rects() -> tuple[Array, Array]:
  return jnp.zeros((0, 4)), jnp.zeros((0,), bool)


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


def _random_walk(start: Array, steps: Array, image_size: int) -> Array:
  """Clipped random walk. start [N, 2], steps [N, M, 2] -> points [N, M + 1, 2]."""
  def step(p: Array, delta: Array) -> tuple[Array, Array]:
    p = jnp.clip(p + delta, 0.0, float(image_size))
    return p, p

  _, pts = lax.scan(step, start, jnp.swapaxes(steps, 0, 1))  # [M, N, 2]
  return jnp.concatenate([start[:, None], jnp.swapaxes(pts, 0, 1)], axis=1)


def _uniforms(key: Array, *shapes: tuple[int, ...]) -> list[Array]:
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


def _randint(u: Array, lo: int | Array, hi: int | Array) -> Array:
  """Uniform integers in [lo, hi) from uniforms u (int32, same shape)."""
  return jnp.minimum(lo + jnp.floor(u * (hi - lo)), hi - 1).astype(jnp.int32)


def _normal(u: Array) -> Array:
  """Standard normal samples from uniforms u by the inverse CDF."""
  return math.sqrt(2.0) * jax.scipy.special.erfinv(jnp.clip(2.0 * u - 1.0, -1 + 1e-6, 1 - 1e-6))


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
  u_n, u_seg, u_start, u_angle, u_len, u_width = _uniforms(
      key, (), (n,), (n, 2), (n, m), (n, m), (n, m))
  n_strokes = _randint(u_n, p.min_strokes, p.max_strokes + 1)
  n_segments = _randint(u_seg, 1, m + 1)
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
  u_count, u_side, u_start = _uniforms(key, (), (n, 2), (n, 2))
  count = _randint(u_count, BOX_MIN_COUNT, BOX_MAX_COUNT + 1)
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
  u_n, u_v, u_a, u_u, u_r, u_s, u_w, u_f, u_wh, u_xy = _uniforms(
      key, (3,), (ns,), (ns, 2), (ns, nv), (ns, nv), (ns, 2), (ns, 1), (2,), (n_rect, 2),
      (n_rect, 2))
  counts = _randint(u_n, 0, jnp.array([BRUSH_SMALL_RECTS + 1, BRUSH_BIG_RECTS + 1, ns + 1]))
  n_strokes = jnp.where(jnp.sum(counts) == 0, 1, counts[2])
  n_vertex = _randint(u_v, BRUSH_MIN_VERTEX, nv + 1)
  spread = u_a * BRUSH_ANGLE_RANGE
  a_min = BRUSH_MEAN_ANGLE - spread[:, :1]
  a_max = BRUSH_MEAN_ANGLE + spread[:, 1:]
  a = a_min + u_u * (a_max - a_min)
  angle = jnp.where(jnp.arange(nv)[None, :] % 2 == 0, 2.0 * math.pi - a, a)
  avg_r = size * math.sqrt(2.0) / 8.0
  r = jnp.clip(avg_r + 0.5 * avg_r * _normal(u_r), 0.0, 2.0 * avg_r)
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


# --------------------------------------------------------------- evaluation families
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
    return lama_stroke_mask(key, image_size, 'thick')
  if family == 'narrow':
    return lama_stroke_mask(key, image_size, 'thin')
  if family == 'line':
    return line_mask(image_size)
  if family == 'half':
    return half_mask(_randint(jax.random.uniform(key), 0, 4), image_size)
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
