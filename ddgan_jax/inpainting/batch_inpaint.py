"""Inpainting files and folders of them (`sample.py inpaint`): any size, resumable, one line per
bad file.

  jobs = batch_inpaint.pair('photos/', 'masks/')          # masks matched by file stem
  summary = batch_inpaint.run(fill, jobs, 'out/', size=32, channels=3, key=key)

or, from a checkpoint, all of `sample.py inpaint` after its flags:

  summary, line = batch_inpaint.inpaint_files('runs/fm', 'photos/', 'masks/', 'out/')

For each image, in name order: if `out/<stem>.png` exists it is skipped without being read (so a
stopped run resumes where it stopped and runs no network for what it already wrote); otherwise
the image and its hole are read (`mask_io`: a mask file of either polarity, a generated mask
family, or the image's alpha channel), the hole dilated, and the image's windows (`hires`)
queued. Whenever `batch_size` windows are queued they are filled together (one compiled
program for every image size) and each finished image is written atomically (a hidden
temporary file renamed into place), so an interrupted run never leaves a partial PNG. A file
that cannot be read or does not fit is reported as one `error: ...` line and the run goes on;
a progress bar runs on a terminal. The `Summary` counts done, skipped and failed images.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable, Sequence

import jax
import numpy as np
from PIL import Image
from tqdm import tqdm

from ddgan_jax.data import eval_masks
from ddgan_jax.inpainting import hires, mask_io
from ddgan_jax.inpainting import inpaint as inpaint_lib
from ddgan_jax.models import networks
from ddgan_jax.platform import cli, sharding


@dataclasses.dataclass(frozen=True)
class Job:
  image: str              # image file
  mask: str | None        # mask file (None: a mask family or the image's alpha channel)
  name: str               # output file name (<stem>.png)


@dataclasses.dataclass(frozen=True)
class Options:
  strategy: str | None = None     # hires.STRATEGIES; None: exact at the model's size, else crop
  margin: int | None = None       # crop context in image pixels (None: hires' default)
  feather: int = 0                # seam softening inside the hole, pixels
  polarity: str = 'missing_white'  # mask_io.POLARITIES
  dilate: int = 0                 # grow every hole by this many pixels
  batch_size: int = 8             # windows per network call
  mask_type: str | None = None    # a generated mask family instead of mask files


@dataclasses.dataclass
class Summary:
  done: list[str] = dataclasses.field(default_factory=list)
  skipped: list[str] = dataclasses.field(default_factory=list)
  failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (file, message)

  def line(self, output_dir: str) -> str:
    return (f'done {len(self.done)}, skipped {len(self.skipped)} (already in {output_dir}), '
            f'failed {len(self.failed)}')


def pair(image_path: str, mask_path: str | None) -> list[Job]:
  """Jobs for an image file or folder and a mask file (for every image), a mask folder (one
  mask per image, matched by file stem: photo.jpg <- photo.png) or None."""
  images = mask_io.list_images(image_path, 'image')
  names = [os.path.splitext(os.path.basename(p))[0] + '.png' for p in images]
  seen = {}
  for name, path in zip(names, images):
    if name in seen:
      raise ValueError(f'{seen[name]} and {path} map to the same output {name}; rename one.')
    seen[name] = path
  if mask_path is None:
    return [Job(p, None, n) for p, n in zip(images, names)]
  if not os.path.exists(mask_path):
    raise FileNotFoundError(f'mask {mask_path} does not exist.')
  if os.path.isfile(mask_path):
    return [Job(p, mask_path, n) for p, n in zip(images, names)]
  by_stem = {}
  for f in mask_io.list_images(mask_path, 'mask'):
    by_stem.setdefault(os.path.splitext(os.path.basename(f))[0], f)
  missing = [os.path.basename(p) for p in images
             if os.path.splitext(os.path.basename(p))[0] not in by_stem]
  if missing:
    more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
    stem = os.path.splitext(missing[0])[0]
    raise ValueError(f'mask folder {mask_path} has no mask for {missing[0]}{more} (expected '
                     f'{stem}.png or another image file named {stem}).')
  return [Job(p, by_stem[os.path.splitext(os.path.basename(p))[0]], n)
          for p, n in zip(images, names)]


def family_hole(family: str, key: jax.Array, size: int, shape: tuple[int, int]) -> np.ndarray:
  """bool [H, W] of a generated mask family drawn at the model's size, scaled to `shape`."""
  drawn = eval_masks.family_masks(family, key, 1, size)
  hole = np.asarray(drawn[0, ..., 0]) > 0.5
  if hole.shape != tuple(shape):
    hole = np.asarray(Image.fromarray(hole).resize(shape[::-1], Image.Resampling.NEAREST))
  return hole


def _say(line: str) -> None:
  tqdm.write(line, file=sys.stderr)


def load(job: Job, index: int, *, size: int, channels: int, options: Options, key: jax.Array,
         warned: set) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 image [H, W, C], hole bool [H, W]) of one job; ValueError/OSError if unusable."""
  image, alpha = mask_io.read_image(job.image, channels)
  shape = image.shape[:2]
  if job.mask is not None:
    hole, non_binary = mask_io.read_mask(job.mask, options.polarity)
    if hole.shape != shape:
      raise ValueError(f'mask {job.mask} is {hole.shape[1]}x{hole.shape[0]} but image '
                       f'{job.image} is {shape[1]}x{shape[0]}.')
    if non_binary and job.mask not in warned:
      warned.add(job.mask)
      _say(f'warning: mask {job.mask} is not binary; thresholded at 50% ({options.polarity}).')
  elif options.mask_type:
    hole = family_hole(options.mask_type, jax.random.fold_in(key, index), size, shape)
  elif alpha is not None:
    hole = alpha
  else:
    raise ValueError(f'{job.image} has no alpha channel to read the hole from; give a mask '
                     '(--mask) or a mask family (--mask_type).')
  hole = mask_io.dilate(hole, options.dilate)
  if not hole.any():
    _say(f'warning: the mask of {job.image} marks no pixel as missing; the result equals the '
         'input.')
  return image, hole


def _write(array: np.ndarray, path: str) -> None:
  """A PNG written to a hidden temporary file beside `path`, then renamed onto it."""
  folder, name = os.path.split(path)
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f'.{name}.partial')
  try:
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(tmp, format='PNG')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


class _Queue:
  """`run`'s planned images, their windows filled `options.batch_size` at a time; each image is
  written (or reported) as soon as its windows are filled."""

  def __init__(self, fill: Any, fill_key: jax.Array, output_dir: str, options: Options,
               summary: Summary, bar: Any):
    self.fill, self.fill_key, self.output_dir = fill, fill_key, output_dir
    self.options, self.summary, self.bar = options, summary, bar
    self.items, self.flushes = [], 0

  def fail(self, path: str, e: BaseException) -> None:
    message = cli.one_line(e)
    message = message if path in message else f'{path}: {message}'
    self.summary.failed.append((path, message))
    _say(f'error: {message}')
    self.bar.update()

  def add(self, job: Job, image: np.ndarray, hole: np.ndarray, p: hires.Plan) -> None:
    self.items.append((job, image, hole, p))
    if sum(len(q[3].windows) for q in self.items) >= self.options.batch_size:
      self.flush()

  def flush(self) -> None:
    """Fills the queued windows (network batch key: fold_in(fill_key, flush index)), writes."""
    if not self.items:
      return
    xs = np.concatenate([p.images for _, _, _, p in self.items])
    ms = np.concatenate([p.masks for _, _, _, p in self.items])
    fills = hires.fill_windows(self.fill, xs, ms, jax.random.fold_in(self.fill_key, self.flushes),
                               self.options.batch_size)
    self.flushes += 1
    start = 0
    for job, image, hole, p in self.items:
      n = len(p.windows)
      result = hires.compose(image, hole, p.windows, fills[start:start + n], self.options.feather)
      start += n
      try:
        _write(result, os.path.join(self.output_dir, job.name))
      except OSError as e:
        self.fail(job.image, e)
        continue
      self.summary.done.append(job.image)
      self.bar.update()
    self.items.clear()


def run(fill: Any, jobs: Sequence[Job], output_dir: str, *, size: int, channels: int,
        key: jax.Array, options: Options = Options(),
        progress: bool | None = None) -> Summary:
  """Inpaints every job into `output_dir` (see the module doc); never overwrites a file.

  Args:
    fill: fn(images [B, size, size, C] in [-1, 1], masks [B, size, size, 1], key) ->
      (result, nfe), e.g. `inpaint.load_inpainter(...)[0]`.
    jobs: from `pair`.
    output_dir: folder for `<stem>.png` (made when the first result is written).
    size, channels: the model's resolution and channels.
    key: PRNG key (masks of image i: fold_in(key, i); network batches: fold_in(key, ~flush)).
    options: strategies and mask conventions.
    progress: show a progress bar (None: on a terminal).
  """
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise ValueError(f'output folder {output_dir} exists and is not a folder.')
  summary, warned = Summary(), set()
  mask_key, fill_key = jax.random.split(key)
  bar = tqdm(total=len(jobs), unit='image', file=sys.stderr, disable=None if progress is None
             else not progress, dynamic_ncols=True)
  queue = _Queue(fill, fill_key, output_dir, options, summary, bar)
  for index, job in enumerate(jobs):
    if os.path.exists(os.path.join(output_dir, job.name)):
      summary.skipped.append(job.image)
      bar.update()
      continue
    try:
      image, hole = load(job, index, size=size, channels=channels, options=options,
                         key=mask_key, warned=warned)
      p = hires.plan(image, hole, size, options.strategy, options.margin)
    except (ValueError, OSError) as e:
      queue.fail(job.image, e)
      continue
    queue.add(job, image, hole, p)
  queue.flush()
  bar.close()
  return summary


def check_options(options: Options) -> None:
  """One-line ValueError for options that cannot work (before any file is read)."""
  if options.strategy is not None and options.strategy not in hires.STRATEGIES:
    raise ValueError(f'strategy must be one of {", ".join(hires.STRATEGIES)}, got '
                     f'{options.strategy!r}.')
  mask_io.to_hole(np.zeros(1), options.polarity)
  for name in ('dilate', 'feather', 'margin'):
    value = getattr(options, name)
    if value is not None and value < 0:
      raise ValueError(f'{name} must be >= 0 pixels, got {value}.')
  if options.batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {options.batch_size}.')


def _checked_jobs(image: str, mask: str | None, output_dir: str, options: Options) -> list[Job]:
  """The options checked and the files paired (before JAX starts, so this fails fast)."""
  try:
    check_options(options)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
      raise ValueError(f'--output_dir {output_dir} exists and is not a folder.')
    return pair(image, mask)
  except (ValueError, OSError) as e:
    raise cli.InputError(cli.first_line(e)) from e


def _restored(source: str, step: int | None, mode: str | None, resample: int,
              batch: int) -> tuple[networks.Networks, Any, str, Any]:
  """(nets, EMA generator params, mode, batch sharding): the model's facts from the
  checkpoint's config, `mode` (default: conditional for a mask-conditional model, else repaint)
  and `resample` checked against them, then its weights."""
  try:
    model = networks.load_model(source, step=step, weights=False)  # weights once all fits
  except FileNotFoundError as e:
    raise cli.InputError(str(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise cli.InputError(f'cannot read the checkpoint config in {source}: '
                         f'{cli.first_line(e)}') from e
  nets = model.nets
  mode = mode or ('conditional' if nets.inpaint else 'repaint')
  try:
    inpaint_lib.check_inputs(nets, nets.image_shape(1), nets.image_shape(1)[:3] + (1,), mode,
                             resample)
  except ValueError as e:
    raise cli.InputError(str(e)) from e
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch)
  try:
    params = model.restore(params_sharding).params
  except ValueError as e:
    raise cli.InputError(str(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise cli.InputError(f'cannot restore the generator from {source}: '
                         f'{cli.first_line(e)}') from e
  return nets, params, mode, batch_sharding


def inpaint_files(source: str, image: str, mask: str | None, output_dir: str, *,
                  step: int | None = None, mode: str | None = None, resample: int = 1,
                  seed: int = 0, options: Options = Options(),
                  setup: Callable[[int], None] | None = None) -> tuple[Summary, str]:
  """`sample.py inpaint`: the images of `image` (a file or folder) filled by the checkpoint at
  `source` into `output_dir` (see the module doc), the masks from `mask` (a file, a folder or
  None) or `options.mask_type`.

  The options are checked and the files paired before anything starts, then `setup(batch)`
  (the command's device setup, before JAX starts) is called with the batch size it runs
  (`options.batch_size`, at most one per image); the model's config is read and `mode`
  (default: conditional for a mask-conditional model, else repaint) and `resample` checked
  against it before its weights are restored and the images filled.

  Returns:
    (the Summary, its line for the user: the counts, the mode and its network evaluations).
  Raises:
    cli.InputError: bad options or files, or an unusable checkpoint; nothing is written.
  """
  output_dir = os.path.abspath(output_dir)
  jobs = _checked_jobs(image, mask, output_dir, options)
  batch = min(options.batch_size, len(jobs))
  if setup:
    setup(batch)
  nets, params, mode, batch_sharding = _restored(source, step, mode, resample, batch)

  def fill(x, m, key):  # windows at the model's size, a fixed batch split over the devices
    return inpaint_lib.inpaint(nets, params, jax.device_put(x, batch_sharding),
                               jax.device_put(m, batch_sharding), key, mode=mode,
                               resample=resample)

  summary = run(fill, jobs, output_dir, size=nets.image_size, channels=nets.num_channels,
                key=jax.random.PRNGKey(seed),
                options=dataclasses.replace(options, batch_size=batch))
  nfe = inpaint_lib.num_function_evaluations(nets, mode, resample)
  return summary, f'{summary.line(output_dir)}; mode={mode} ({nfe} network evaluations each)'
