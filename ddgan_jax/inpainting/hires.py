"""Inpainting images of any size with a model of one resolution, the result at the image's size.

Strategies (as IOPaint's high-resolution settings):

* ``crop``: one square window around each connected hole region, grown by a margin of context
  (default: half the region's larger side, at least a quarter of the model's resolution) and
  never smaller than the model's resolution, so a small hole in a large photo is filled at the
  photo's own scale. Regions whose windows overlap share one window (as do all regions of a
  mask with more than `MAX_REGIONS` of them).
* ``resize``: one window, the whole image (padded to a square), resized to the model.
* ``exact``: the image already has the model's size; one window, no resampling.

Each window is cut out (edge-replicated where it reaches past the image; that padding counts as
known), resized to the model's resolution (Lanczos; a model pixel is missing when any image
pixel under it is), filled, resized back (bicubic) and pasted into its own hole pixels only.
Every known pixel of the result is the input's byte. ``feather=N`` softens the seam inside the
hole: over the N pixels nearest the known ones the fill is blended with the nearest known pixel
(weight d / (N + 1) for the fill at distance d).

All windows have the model's size, so the windows of many images go through one jitted
`inpaint` together, in fixed-size batches: one compiled program for every image size.

  results = hires.inpaint_images(fill, images, holes, key, size=nets.image_size)

where `fill` is `inpaint.load_inpainter(...)[0]` (or any fn(images, masks, key) -> (result,
nfe) over [-1, 1] floats), `images` uint8 [H, W, C] arrays of any sizes and `holes` bool [H, W].
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np
from PIL import Image

from ddgan_jax.inpainting import inpaint

STRATEGIES = ('crop', 'resize', 'exact')
MAX_REGIONS = 64  # more connected hole regions than this share one crop window


@dataclasses.dataclass(frozen=True)
class Window:
  """A square [top, top + side) x [left, left + side) of the image (may reach past it) and the
  hole pixels it pastes (bool [H, W] of the whole image)."""
  top: int
  left: int
  side: int
  paste: np.ndarray


@dataclasses.dataclass
class Plan:
  """One image's windows and their model-size inputs."""
  windows: list[Window]
  images: np.ndarray  # uint8 [n, size, size, C]
  masks: np.ndarray   # bool [n, size, size, 1]


def default_strategy(height: int, width: int, size: int) -> str:
  """`exact` for an image of the model's size, else `crop`."""
  return 'exact' if (height, width) == (size, size) else 'crop'


def _place(lo: int, hi: int, side: int, extent: int) -> int:
  """Start of a window of `side` around [lo, hi), inside [0, extent) where it fits."""
  start = (lo + hi - side) // 2
  if side <= extent:
    return int(np.clip(start, 0, extent - side))
  return (extent - side) // 2  # larger than the image: centred, padded on both sides


def _crop_windows(hole: np.ndarray, size: int, margin: int | None) -> list[Window]:
  from scipy import ndimage  # scipy.ndimage: lazy, +0.13 s on sample.py --help
  labels, count = ndimage.label(hole)
  h, w = hole.shape
  # Groups of regions: [y0, y1, x0, x1] of their joint box, and their labels.
  groups = [([s[0].start, s[0].stop, s[1].start, s[1].stop], {i + 1})
            for i, s in enumerate(ndimage.find_objects(labels)) if s is not None]
  if count > MAX_REGIONS:  # e.g. pixel noise: one window around all of it
    groups = [([min(g[0][0] for g in groups), max(g[0][1] for g in groups),
                min(g[0][2] for g in groups), max(g[0][3] for g in groups)],
               set(range(1, count + 1)))]

  def square(box):
    y0, y1, x0, x1 = box
    extent = max(y1 - y0, x1 - x0)
    m = margin if margin is not None else max(size // 4, (extent + 1) // 2)
    side = max(extent + 2 * m, size)
    return _place(y0, y1, side, h), _place(x0, x1, side, w), side

  merged = True
  while merged:  # merge groups whose windows overlap, until none do
    merged = False
    for i in range(len(groups)):
      ti, li, si = square(groups[i][0])
      for j in range(i + 1, len(groups)):
        tj, lj, sj = square(groups[j][0])
        if ti < tj + sj and tj < ti + si and li < lj + sj and lj < li + si:
          (a, la), (b, lb) = groups[i], groups[j]
          groups[i] = ([min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])],
                       la | lb)
          del groups[j]
          merged = True
          break
      if merged:
        break
  windows = []
  for box, members in groups:
    top, left, side = square(box)
    windows.append(Window(top, left, side, np.isin(labels, list(members))))
  return windows


def plan_windows(hole: np.ndarray, size: int, strategy: str | None = None,
                 margin: int | None = None) -> list[Window]:
  """The windows that fill `hole` (bool [H, W]) with a model of `size` px."""
  hole = np.asarray(hole, bool)
  h, w = hole.shape
  strategy = strategy or default_strategy(h, w, size)
  if strategy not in STRATEGIES:
    raise ValueError(f'strategy must be one of {", ".join(STRATEGIES)}, got {strategy!r}.')
  if margin is not None and margin < 0:
    raise ValueError(f'margin must be >= 0 pixels, got {margin}.')
  if strategy == 'exact' and (h, w) != (size, size):
    raise ValueError(f'the image is {w}x{h} but strategy "exact" needs the model\'s '
                     f'{size}x{size}; use strategy "crop" or "resize" for other sizes.')
  if not hole.any():
    return []
  if strategy == 'crop':
    return _crop_windows(hole, size, margin)
  side = max(h, w, size)
  return [Window(_place(0, h, side, h), _place(0, w, side, w), side, hole)]


def _cut(array: np.ndarray, window: Window) -> np.ndarray:
  """array[window] with edge replication past the image ([H, W, ...] -> [side, side, ...])."""
  h, w = array.shape[:2]
  t, l, s = window.top, window.left, window.side
  pad = [(max(0, -t), max(0, t + s - h)), (max(0, -l), max(0, l + s - w))]
  pad += [(0, 0)] * (array.ndim - 2)
  padded = np.pad(array, pad, mode='edge') if any(p != (0, 0) for p in pad) else array
  t, l = t + pad[0][0], l + pad[1][0]
  return padded[t:t + s, l:l + s]


def _resize(image: np.ndarray, side: int, down: bool) -> np.ndarray:
  """uint8 [s, s, C] -> [side, side, C] (Lanczos down, bicubic up)."""
  if image.shape[0] == side:
    return image
  method = Image.Resampling.LANCZOS if down else Image.Resampling.BICUBIC
  channels = [np.asarray(Image.fromarray(image[..., c]).resize((side, side), method))
              for c in range(image.shape[-1])]
  return np.stack(channels, axis=-1)


def _resize_hole(hole: np.ndarray, size: int) -> np.ndarray:
  """bool [s, s] -> [size, size]: missing where any pixel under a model pixel is."""
  if hole.shape[0] == size:
    return hole
  coverage = Image.fromarray(hole.astype(np.float32)).resize(
      (size, size), Image.Resampling.BOX if hole.shape[0] > size else Image.Resampling.NEAREST)
  return np.asarray(coverage) > 1e-6


def plan(image: np.ndarray, hole: np.ndarray, size: int, strategy: str | None = None,
         margin: int | None = None) -> Plan:
  """The windows of one uint8 image [H, W, C] and hole [H, W], cut and resized to `size`."""
  image, hole = np.asarray(image, np.uint8), np.asarray(hole, bool)
  if image.ndim != 3 or hole.shape != image.shape[:2]:
    raise ValueError(f'image {image.shape} and hole {hole.shape} must be [H, W, C] and [H, W].')
  windows = plan_windows(hole, size, strategy, margin)
  xs = [_resize(_cut(image, win), size, down=True) for win in windows]
  # Outside the image the padding is known; inside, every hole pixel of the window is missing.
  ms = [_resize_hole(_cut(hole, win) & _inside(image.shape, win), size)
        for win in windows]
  c = image.shape[-1]
  return Plan(windows, np.stack(xs) if xs else np.zeros((0, size, size, c), np.uint8),
              np.stack(ms)[..., None] if ms else np.zeros((0, size, size, 1), bool))


def _inside(shape: Sequence[int], win: Window) -> np.ndarray:
  """bool [side, side]: which window pixels lie inside the image."""
  ys = np.arange(win.top, win.top + win.side)
  xs = np.arange(win.left, win.left + win.side)
  return ((ys >= 0) & (ys < shape[0]))[:, None] & ((xs >= 0) & (xs < shape[1]))[None, :]


def compose(image: np.ndarray, hole: np.ndarray, windows: Sequence[Window],
            fills: np.ndarray, feather: int = 0) -> np.ndarray:
  """uint8 [H, W, C]: `image` with each window's fill (uint8 [n, size, size, C]) resized back
  and pasted into its hole pixels; the known pixels are `image`'s bytes."""
  image, hole = np.asarray(image, np.uint8), np.asarray(hole, bool)
  h, w = hole.shape
  out = image.copy()
  for win, fill in zip(windows, fills):
    big = _resize(np.asarray(fill, np.uint8), win.side, down=False)
    y0, x0 = max(0, win.top), max(0, win.left)
    y1, x1 = min(h, win.top + win.side), min(w, win.left + win.side)
    part = big[y0 - win.top:y1 - win.top, x0 - win.left:x1 - win.left]
    paste = win.paste[y0:y1, x0:x1] & hole[y0:y1, x0:x1]
    out[y0:y1, x0:x1][paste] = part[paste]
  if feather > 0 and hole.any() and not hole.all():
    from scipy import ndimage  # scipy.ndimage: lazy, +0.13 s on sample.py --help
    dist, (iy, ix) = ndimage.distance_transform_edt(hole, return_indices=True)
    band = hole & (dist <= feather)
    weight = (dist[band] / (feather + 1.0))[:, None]
    nearest = image[iy[band], ix[band]].astype(np.float32)
    out[band] = np.clip(np.round(weight * out[band] + (1.0 - weight) * nearest), 0, 255
                        ).astype(np.uint8)
  return np.where(hole[..., None], out, image)


def fill_windows(fill: Any, images: np.ndarray, masks: np.ndarray, key: jax.Array,
                 batch_size: int) -> np.ndarray:
  """uint8 fills of model-size windows [n, size, size, C], in padded batches of `batch_size`
  (one shape for the jitted inpainter); batch b draws from fold_in(key, b)."""
  n = len(images)
  if n == 0:
    return images
  out = []
  for b, idx in inpaint.padded_batches(n, batch_size):
    result, _ = inpaint.inpaint_uint8(fill, images[idx], masks[idx], jax.random.fold_in(key, b))
    out.append(result)
  return np.concatenate(out)[:n]


def inpaint_images(fill: Any, images: Sequence[np.ndarray], holes: Sequence[np.ndarray],
                   key: jax.Array, *, size: int, strategy: str | None = None,
                   margin: int | None = None, feather: int = 0,
                   batch_size: int = 8) -> list[np.ndarray]:
  """Inpaints uint8 images [H, W, C] of any sizes, each at its own size (see module doc).

  Args:
    fill: fn(images [B, size, size, C] in [-1, 1], masks [B, size, size, 1], key) ->
      (result, nfe), e.g. `inpaint.load_inpainter(...)[0]`.
    images: uint8 [H, W, C] each (C = the model's channels).
    holes: bool [H, W] each, True = missing (see `mask_io` for reading mask files).
    key: PRNG key.
    size: the model's resolution.
    strategy: 'crop', 'resize' or 'exact' (default: `default_strategy` per image).
    margin: context around each hole region for 'crop' (pixels of the image).
    feather: seam softening inside the hole (pixels).
    batch_size: windows per call of `fill`.
  Returns:
    uint8 [H, W, C] per image; known pixels are the input's bytes.
  """
  plans = [plan(x, m, size, strategy, margin) for x, m in zip(images, holes)]
  if not plans:
    return []
  fills = fill_windows(fill, np.concatenate([p.images for p in plans]),
                       np.concatenate([p.masks for p in plans]), key, batch_size)
  out, start = [], 0
  for x, m, p in zip(images, holes, plans):
    n = len(p.windows)
    out.append(compose(x, m, p.windows, fills[start:start + n], feather))
    start += n
  return out
