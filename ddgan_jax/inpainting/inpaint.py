"""Few-step inpainting with a DDGAN generator (SPEC section 4).

Two modes, one jitted entry point (`inpaint`):

* ``conditional``: a mask-conditional generator (``nets.inpaint``) gets
  cond = concat((1 - m) * image, m) (the hole pre-filled when ``nets.cond_fill='smooth'``); its x_0 prediction is composited with the known pixels
  before every posterior step. NFE = T (2-4).
* ``repaint``: training-free, for ANY unconditional DDGAN (a mask-conditional one is run
  unconditionally, with the all-ones-mask condition). Before each reverse step x_{t+1} -> x_t
  the known pixels of x_{t+1} are replaced by a fresh draw of q(x_{t+1} | image); with
  ``resample`` > 1 the result x_t is re-noised to x_{t+1} (q_step) and the step is repeated,
  RePaint's jump_n_sample with jump length 1. NFE = T * resample.

Masks are [B, H, W, 1] with 1 = missing (to fill) and 0 = known; they are binarised at 0.5.
Images are [B, H, W, C] in [-1, 1]. In both modes the output's known pixels are the input's,
bit for bit (a final `jnp.where`, not arithmetic blending).

`inpaint` compiles once per (nets, image shape, mode, resample): the repaint loop is one
`lax.fori_loop` over T * resample iterations whose random draws come from
fold_in(key, iteration), so neither compile time nor memory grows with `resample`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import chex
import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.core import diffusion, losses
from ddgan_jax.data import visualize
from ddgan_jax.models import networks
from ddgan_jax.models.networks import Networks
from ddgan_jax.platform import compiling

MODES = ('conditional', 'repaint')

# fn(images [B, H, W, C], masks [B, H, W, 1], key) -> (result [B, H, W, C], nfe).
Inpainter = Callable[[Any, Any, jax.Array], tuple[jax.Array, int]]


def num_function_evaluations(nets: Networks, mode: str, resample: int = 1) -> int:
  """Generator calls per image: T (conditional) or T * resample (repaint)."""
  return nets.num_timesteps * (resample if mode == 'repaint' else 1)


def check_inputs(nets: Networks, images_shape: tuple[int, ...], masks_shape: tuple[int, ...],
                 mode: str, resample: int) -> None:
  """Raises a one-line ValueError unless the arguments of `inpaint` fit `nets`."""
  if mode not in MODES:
    raise ValueError(f'mode must be one of {MODES}, got {mode!r}.')
  if mode == 'conditional' and not nets.inpaint:
    raise ValueError('conditional inpainting needs a mask-conditional model (trained with '
                     'inpaint.enabled=True); use mode="repaint" for an unconditional one.')
  if not isinstance(resample, (int, np.integer)) or isinstance(resample, bool) or resample < 1:
    raise ValueError(f'resample must be a positive integer, got {resample!r}.')
  if mode == 'conditional' and resample != 1:
    raise ValueError('resample applies to mode="repaint" only; conditional mode uses '
                     f'exactly T={nets.num_timesteps} steps.')
  if len(images_shape) != 4:
    raise ValueError(f'images must be [B, H, W, C], got shape {tuple(images_shape)}.')
  if len(masks_shape) != 4 or masks_shape[-1] != 1:
    raise ValueError(f'masks must be [B, H, W, 1] (1 = missing), got shape {tuple(masks_shape)}.')
  if tuple(images_shape[:3]) != tuple(masks_shape[:3]):
    raise ValueError(f'images {tuple(images_shape)} and masks {tuple(masks_shape)} differ in '
                     'batch size or spatial size.')
  b, h, w, c = images_shape
  if b < 1:
    raise ValueError('images is an empty batch.')
  if (h, w) != (nets.image_size, nets.image_size):
    raise ValueError(f'images are {h}x{w} but the model works at {nets.image_size}x'
                     f'{nets.image_size}; resize or crop them first.')
  if c != nets.num_channels:
    raise ValueError(f'images have {c} channels but the model expects {nets.num_channels}.')


RANGE_TOLERANCE = 1e-3  # float rounding of [-1, 1] images (e.g. v / 127.5 - 1 in float16).


def check_arrays(images: Any, masks: Any, key: Any) -> None:
  """Raises a one-line ValueError unless the arrays of `inpaint` have usable dtypes and values.

  dtypes and the key are checked for any input. Values (NaN/inf pixels, images outside
  [-1, 1], NaN masks) are checked for host arrays (numpy, lists) only: on a jax.Array the check
  would be a device round trip on every call, which a loop of calls should not pay; tracers
  cannot be checked at all.
  """
  images_dtype, masks_dtype = _dtype(images, 'images'), _dtype(masks, 'masks')
  if not np.issubdtype(images_dtype, np.floating):
    raise ValueError(f'images must be floats in [-1, 1], got dtype {images_dtype}; convert uint8 '
                     'images with inpaint.uint8_to_float (or call inpaint.inpaint_uint8).')
  if not (masks_dtype == np.bool_ or np.issubdtype(masks_dtype, np.integer)
          or np.issubdtype(masks_dtype, np.floating)):
    raise ValueError(f'masks must be bool, integer or float (1 = missing), got dtype {masks_dtype}.')
  key_dtype = getattr(key, 'dtype', None)
  if not (key_dtype is not None and (jax.dtypes.issubdtype(key_dtype, jax.dtypes.prng_key)
                                     or (key_dtype == np.uint32 and np.shape(key) == (2,)))):
    what = ' '.join(str(p) for p in (type(key).__name__, key_dtype) if p is not None)
    raise ValueError(f'key must be one PRNG key, e.g. jax.random.PRNGKey(0), got {what} of '
                     f'shape {np.shape(key)}.')
  if not isinstance(images, jax.Array):  # (tracers are jax.Arrays too)
    values = np.asarray(images)
    bad = ~np.isfinite(values)
    if bad.any():
      raise ValueError(f'images hold {int(bad.sum())} NaN or infinite value(s), the first at '
                       f'[b, y, x, c] = {list(map(int, np.argwhere(bad)[0]))}; give every pixel a '
                       'finite value (mark unknown ones in the mask).')
    lo, hi = float(values.min()), float(values.max())
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
      raise ValueError(f'images must be in [-1, 1], got values in [{lo:g}, {hi:g}]; scale '
                       '[0, 255] images with inpaint.uint8_to_float, [0, 1] ones with 2 * x - 1.')
  if not isinstance(masks, jax.Array):
    if np.issubdtype(masks_dtype, np.floating) and np.isnan(np.asarray(masks)).any():
      raise ValueError('masks hold NaN values; use 1 for missing and 0 for known pixels.')


def _dtype(x: Any, name: str) -> np.dtype:
  dtype = getattr(x, 'dtype', None)
  if dtype is None:
    try:
      dtype = np.asarray(x).dtype
    except (ValueError, TypeError) as e:
      raise ValueError(f'{name} must be an array, got {type(x).__name__} ({e}).') from None
  if dtype == object:  # noqa: E721  (a NumPy dtype equal to the object dtype)
    raise ValueError(f'{name} must be a numeric array, got {type(x).__name__} of Python objects.')
  return np.dtype(dtype)


def _conditional(nets: Networks, params: Any, images: jax.Array, masks: jax.Array,
                 key: jax.Array) -> jax.Array:
  """The T-step conditional sampler; x0' is composited with the known pixels every step."""
  cond = losses.inpaint_condition(images, masks, nets.cond_fill)

  def denoise(x: jax.Array, t: jax.Array, z: jax.Array) -> jax.Array:
    return losses.composite(nets.apply_g(params, x, t, z, cond), images, masks)

  return diffusion.sample(nets.schedule, denoise, key, images.shape, nets.nz)


def _repaint(nets: Networks, params: Any, images: jax.Array, masks: jax.Array,
             key: jax.Array, resample: int) -> jax.Array:
  """RePaint with jump length 1: T * resample generator calls in one fori_loop."""
  schedule, shape = nets.schedule, images.shape
  num_steps, batch = nets.num_timesteps, shape[0]
  cond = None
  if nets.inpaint:  # Unconditional use of a mask-conditional generator: all-ones mask.
    cond = losses.inpaint_condition(images, jnp.ones_like(masks))
  k_init, k_loop = jax.random.split(key)

  def body(i: jax.Array, x_tp1: jax.Array) -> jax.Array:
    t = jnp.full((batch,), num_steps - 1 - i // resample, jnp.int32)
    last_round = i % resample == resample - 1
    k_known, k_z, k_post, k_renoise = jax.random.split(jax.random.fold_in(k_loop, i), 4)
    known = diffusion.q_sample(schedule, images, t + 1, jax.random.normal(k_known, shape))
    x_tp1 = jnp.where(masks > 0.5, x_tp1, known)
    z = jax.random.normal(k_z, (batch, nets.nz))
    x0_pred = nets.apply_g(params, x_tp1, t, z, cond)
    x_t = diffusion.posterior_sample(schedule, x0_pred, x_tp1, t, jax.random.normal(k_post, shape))
    renoised = diffusion.q_step(schedule, x_t, t, jax.random.normal(k_renoise, shape))
    return jnp.where(last_round, x_t, renoised)

  x_init = jax.random.normal(k_init, shape)
  return jax.lax.fori_loop(0, num_steps * resample, body, x_init)


@functools.partial(jax.jit, static_argnames=('nets', 'mode', 'resample'))
def _inpaint_jit(nets: Networks, params: Any, images: jax.Array, masks: jax.Array,
                 key: jax.Array, *, mode: str, resample: int) -> jax.Array:
  chex.assert_rank(images, 4)
  chex.assert_shape(masks, images.shape[:3] + (1,))
  images = images.astype(jnp.float32)
  masks = (masks >= 0.5).astype(jnp.float32)
  if mode == 'conditional':
    x0 = _conditional(nets, params, images, masks, key)
  else:
    x0 = _repaint(nets, params, images, masks, key, resample)
  return jnp.where(masks > 0.5, x0, images)


def inpaint(nets: Networks, params: Any, images: Any, masks: Any, key: jax.Array, *,
            mode: str = 'conditional', resample: int = 1) -> tuple[jax.Array, int]:
  """Fills the missing pixels of `images`.

  Args:
    nets: the networks and schedule (static: part of the compilation cache key).
    params: generator parameters (e.g. the EMA generator).
    images: [B, H, W, C] in [-1, 1], H = W = nets.image_size, C = nets.num_channels.
    masks: [B, H, W, 1], 1 = missing, 0 = known; binarised at 0.5.
    key: PRNG key.
    mode: 'conditional' (needs a mask-conditional model) or 'repaint' (any model).
    resample: RePaint resampling rounds per step (repaint mode only).
  Returns:
    (result [B, H, W, C] float32 whose known pixels equal `images` exactly,
     nfe: generator evaluations per image, T or T * resample).
  Raises:
    ValueError: bad mode/resample, shapes that do not fit each other or the model, dtypes
      (integer images, a non-key `key`), and for host (numpy) arrays bad values: NaN/inf
      pixels, images outside [-1, 1], NaN masks (see `check_arrays`).
  """
  check_arrays(images, masks, key)
  check_inputs(nets, tuple(np.shape(images)), tuple(np.shape(masks)), mode, resample)
  with compiling.gc_paused():  # the first call per shape traces
    result = _inpaint_jit(nets, params, images, masks, key, mode=mode, resample=int(resample))
  return result, num_function_evaluations(nets, mode, resample)


def load_inpainter(checkpoint_path: str, *, mode: str = 'conditional', resample: int = 1,
                   step: int | None = None) -> tuple[Inpainter, Networks, Any]:
  """A ready inpainter from an Orbax checkpoint (training workdir or converted checkpoint).

  Returns:
    (fn(images [B, H, W, C], masks [B, H, W, 1], key) -> (result, nfe), nets, config).
  Raises:
    FileNotFoundError: no checkpoint at `checkpoint_path`.
    ValueError: mode/resample do not fit the model (e.g. conditional with an unconditional
      one), or the stored weights do not fit the stored config.
  """
  # Fail on a mode the model cannot run before restoring the weights.
  model = networks.load_model(checkpoint_path, step=step, weights=False)
  nets = model.nets
  check_inputs(nets, nets.image_shape(1), nets.image_shape(1)[:3] + (1,), mode, resample)
  params = model.restore().params

  def inpainter(images: Any, masks: Any, key: jax.Array) -> tuple[jax.Array, int]:
    return inpaint(nets, params, images, masks, key, mode=mode, resample=resample)

  return inpainter, nets, model.config


def padded_batches(n: int, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
  """(batch index, indices [batch_size]) over range(n). The last batch repeats its last index
  up to batch_size, so every call of a jitted inpainter has one shape (one compile)."""
  for b, start in enumerate(range(0, n, batch_size)):
    idx = np.arange(start, min(start + batch_size, n))
    yield b, np.concatenate([idx, np.full(batch_size - len(idx), idx[-1])])


# ------------------------------------------------------------------ uint8 images

def uint8_to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [..., C] -> float32 in [-1, 1] (v / 127.5 - 1)."""
  return np.asarray(images, np.float32) / np.float32(127.5) - np.float32(1.0)


float_to_uint8 = visualize.to_uint8  # [-1, 1] floats -> uint8, rounded and clipped.


def inpaint_uint8(inpainter: Inpainter, images: np.ndarray, masks: np.ndarray,
                  key: jax.Array) -> tuple[np.ndarray, int]:
  """Inpaints uint8 images [B, H, W, C]; masks [B, H, W, 1] (nonzero/True = missing).

  The known pixels of the uint8 result are the input's bytes (composited in uint8 space, so
  no float round trip can touch them).
  """
  masks = np.asarray(masks).astype(bool)
  result, nfe = inpainter(uint8_to_float(images), masks.astype(np.float32), key)
  return np.where(masks, float_to_uint8(result), np.asarray(images, np.uint8)), nfe
