"""Host input pipeline: tf.data on the CPU, numpy batches out, global jax.Arrays on device.

Every dataset (tfds ImageNet, CIFAR-10, CelebA-HQ, LSUN, the offline Fashion-MNIST/MNIST
builders, an image folder, synthetic images) goes through the same steps:

  records of this process's slice (tfds.even_splits) -> per-epoch shuffle from (seed, epoch)
  -> [resume: skip records, undecoded] -> decode + crop -> flip -> resize -> channels
  -> scale to [-1, 1] -> batch (drop remainder) -> prefetch.

Training streams are infinite and resumable: the batches of step N depend only on (config,
seed, N), so ``create_dataset(..., start_step=N)`` yields exactly what a fresh run yields
from step N on. Augmentations use stateless random ops keyed by (seed, epoch, position).

Crop modes (``data.crop``), all ending at ``image_size x image_size``:
  resize: largest centred square, resized to image_size (= resize shorter side + centre crop).
  center: centred image_size window at native resolution (images smaller than image_size
          are upscaled first).
  random: like ``resize`` but the square is placed at random along the longer side (train);
          identical to ``resize`` when train=False.

``data_cfg`` is the ``config.data`` section with all its keys: the library passes the typed
``config_checks.DataConfig`` (which fills in the defaults of keys an old config lacks); a
ConfigDict of configs/ has them all too.
"""
from __future__ import annotations

import collections
import itertools
import os
from typing import Any, Iterable, Iterator

import jax
import ml_collections
import numpy as np
# TF only feeds data here: its oneDNN kernels are not needed, and turning them off also
# silences the start-up log that TF_CPP_MIN_LOG_LEVEL does not reach.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from ddgan_jax.data import datasets
from ddgan_jax.data.datasets import sources
from ddgan_jax.data.names import CROP_MODES
from ddgan_jax.platform import distributed

datasets.hide_accelerators_from_tf()

Batch = dict[str, np.ndarray]


def _process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  index = jax.process_index() if process_index is None else int(process_index)
  count = jax.process_count() if process_count is None else int(process_count)
  if not 0 <= index < count:
    raise ValueError(f'process_index={index} is not in [0, process_count={count}).')
  return index, count


def _local_batch_size(global_batch_size: int, process_count: int) -> int:
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(f'Global batch size {global_batch_size} is not a positive multiple of the '
                     f'{process_count} processes.')
  return global_batch_size // process_count


def _train_limit(data_cfg: ml_collections.ConfigDict, split: str) -> int | None:
  limit = int(data_cfg.num_train_examples)
  return limit if split == data_cfg.train_split and limit > 0 else None


def num_examples(data_cfg: ml_collections.ConfigDict, split: str,
                 source: sources.Source | None = None) -> int:
  """Examples in ``split``: ``data.num_train_examples`` when > 0 for the train split (the
  dataset is not opened), else the count of ``source`` (default: the config's, opened here)."""
  limit = _train_limit(data_cfg, split)
  if limit is not None:
    return limit
  size = (source or sources.make_source(data_cfg)).num_examples(split)
  if size is None:
    raise ValueError(f'Size of split {split!r} of {data_cfg.dataset!r} is unknown (dataset '
                     'mocked or not prepared): set data.num_train_examples.')
  return size


def prepare(data_cfg: ml_collections.ConfigDict) -> None:
  """Prepares a tfds dataset (if it is not yet) on process 0 while the other processes wait,
  so processes sharing a fresh data_dir never prepare it at the same time."""
  if jax.process_index() == 0:
    sources.make_source(data_cfg)
  distributed.barrier('ddgan_jax_data_prepared')


def steps_per_epoch(data_cfg: ml_collections.ConfigDict, global_batch_size: int,
                    split: str | None = None) -> int:
  """Batches per training epoch; equals what every process's create_dataset stream uses."""
  split = split or data_cfg.train_split
  return num_examples(data_cfg, split) // global_batch_size


def _epoch_seeds(seed: int, epoch: int, process_index: int) -> tuple[int, int, int]:
  """(file-order seed, shuffle-buffer seed, augmentation seed) of one epoch of one process."""
  state = np.random.SeedSequence([int(seed) % (1 << 63), epoch, process_index]).generate_state(3)
  return tuple(int(s) for s in state)


def _window_fn(image_size: int, crop: str, uniforms: tf.Tensor | None) -> sources.WindowFn:
  """Crop window [y, x, side, side] of an image of shape [h, w] (see module docstring).

  ``uniforms`` (two floats in [0, 1)) place a random window; None centres it.
  """

  def window_fn(hw: tf.Tensor) -> tf.Tensor:
    hw = tf.cast(hw, tf.int32)
    side = tf.minimum(hw[0], hw[1])
    if crop == 'center':
      side = tf.minimum(side, image_size)
    slack = hw - side  # [2]
    if uniforms is None:
      offset = slack // 2
    else:
      offset = tf.minimum(tf.cast(uniforms * tf.cast(slack + 1, tf.float32), tf.int32), slack)
    return tf.concat([offset, [side, side]], axis=0)

  return window_fn


def _to_size(image: tf.Tensor, size: int) -> tf.Tensor:
  """uint8 [h, w, C] -> float32 [size, size, C] in [0, 255] (antialiased bilinear if needed)."""
  shape = tf.shape(image)
  same = tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size))
  out = tf.cond(same, lambda: tf.cast(image, tf.float32),
                lambda: tf.image.resize(image, [size, size], 'bilinear', antialias=True))
  out.set_shape([size, size, image.shape[-1]])
  return out


def _match_channels(images: tf.Tensor, num_channels: int) -> tf.Tensor:
  """[..., C] -> [..., num_channels]: gray is repeated, RGB averaged to luma."""
  channels = images.shape[-1]
  if channels == num_channels:
    return images
  if channels == 1:
    return tf.repeat(images, num_channels, axis=-1)
  if channels == 3 and num_channels == 1:
    return tf.image.rgb_to_grayscale(images)
  raise ValueError(f'Cannot convert {channels}-channel images to {num_channels} channels.')


class _Preprocess:
  """Record -> {'image': float32 [S, S, C] in [-1, 1], ['label']}, one example at a time.

  decode + crop window -> [random flip, on the uint8 crop] -> resize -> channels -> scale.
  With a seed ([2] int64, train only) the crop offset ('random') and the flip are drawn from it.
  (Per-example work measured faster than batched flips/scaling for 256 px images.)
  """

  def __init__(self, source: sources.Source, data_cfg: ml_collections.ConfigDict, *, train: bool):
    self.source = source
    self.image_size, self.num_channels = int(data_cfg.image_size), int(data_cfg.num_channels)
    self.crop = data_cfg.crop
    if self.crop not in CROP_MODES:
      raise ValueError(f'data.crop={self.crop!r}; expected one of {CROP_MODES}.')
    self.random_crop = train and self.crop == 'random'
    self.flip = train and bool(data_cfg.random_flip)

  def __call__(self, record: dict[str, tf.Tensor], seed: tf.Tensor | None) -> dict[str, tf.Tensor]:
    uniforms = None if seed is None else tf.random.stateless_uniform([3], seed)
    window_fn = _window_fn(self.image_size, self.crop,
                           uniforms[1:] if self.random_crop and uniforms is not None else None)
    image = self.source.decode(record['raw'], window_fn)  # uint8 [side, side, C_source]
    if self.flip and uniforms is not None:
      image = tf.cond(uniforms[0] < 0.5, lambda: tf.reverse(image, axis=[1]), lambda: image)
    image = _match_channels(_to_size(image, self.image_size), self.num_channels)
    out = {'image': tf.clip_by_value(image * (1.0 / 127.5) - 1.0, -1.0, 1.0)}
    if 'label' in record:
      out['label'] = record['label']
    return out


def _epoch_dataset(source: sources.Source, data_cfg: ml_collections.ConfigDict, *, split: str,
                   train: bool, seed: int, epoch: int, skip_batches: int, num_batches: int,
                   local_batch_size: int, process_index: int,
                   process_count: int) -> tf.data.Dataset:
  """Batches [skip_batches, num_batches) of one epoch of this process's stream."""
  file_seed, buffer_seed, aug_seed = _epoch_seeds(seed, epoch, process_index)
  ds = source.records(split, limit=_train_limit(data_cfg, split), process_index=process_index,
                      process_count=process_count, drop_remainder=True,
                      shuffle_seed=file_seed if train else None)
  if train and source.needs_shuffle_buffer:
    buffer = min(int(data_cfg.shuffle_buffer), num_batches * local_batch_size)
    buffer = max(1, buffer)
    ds = ds.shuffle(buffer, seed=buffer_seed, reshuffle_each_iteration=False)
  ds = ds.enumerate()  # Position in the epoch keys the augmentations, so skipping keeps them.
  ds = ds.skip(skip_batches * local_batch_size)  # Undecoded records: cheap.
  preprocess = _Preprocess(source, data_cfg, train=train)
  base = tf.constant(aug_seed, tf.int64)
  ds = ds.map(lambda i, r: preprocess(r, tf.stack([base, i]) if train else None),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local_batch_size, drop_remainder=True).take(num_batches - skip_batches)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(sources.deterministic_options())


def create_dataset(data_cfg: ml_collections.ConfigDict, *, global_batch_size: int, split: str,
                   train: bool, seed: int, process_index: int | None = None,
                   process_count: int | None = None, start_step: int = 0) -> Iterator[Batch]:
  """This process's batches: {'image': float32 [B/P, H, W, C] in [-1, 1], ['label': int32 [B/P]]}.

  Args:
    data_cfg: the ``config.data`` section.
    global_batch_size: batch over all processes; each yields global_batch_size // process_count.
    split: tfds split (slicing allowed, e.g. 'train[:90%]') or folder sub-directory.
    train: shuffle (from seed, new order every epoch), augment, repeat forever. Otherwise one
      pass in file order without augmentation.
    seed: order and augmentation seed (all processes pass the same seed).
    process_index, process_count: default to jax.process_index() / jax.process_count().
    start_step: first batch to yield: the stream equals a fresh one from that step on.
  """
  process_index, process_count = _process(process_index, process_count)
  local_batch_size = _local_batch_size(global_batch_size, process_count)
  if start_step < 0:
    raise ValueError(f'start_step={start_step} < 0.')
  source = sources.make_source(data_cfg)
  per_process = num_examples(data_cfg, split, source) // process_count
  batches_per_epoch = per_process // local_batch_size
  if batches_per_epoch == 0:
    raise ValueError(f'Split {split!r} has {per_process} examples per process: fewer than one '
                     f'batch of {local_batch_size}.')
  kwargs = dict(split=split, train=train, seed=seed, num_batches=batches_per_epoch,
                local_batch_size=local_batch_size, process_index=process_index,
                process_count=process_count)
  epoch, skip = divmod(start_step, batches_per_epoch)
  if not train and epoch:
    raise ValueError(
        f'start_step={start_step} is past the single pass of {batches_per_epoch} batches.')
  return _stream(source, data_cfg, epoch, skip, repeat=train, **kwargs)


def _stream(source: sources.Source, data_cfg: ml_collections.ConfigDict, epoch: int, skip: int,
            *, repeat: bool, **kwargs) -> Iterator[Batch]:
  """Chains epochs (each a fresh tf.data pipeline seeded by its epoch number)."""
  while True:
    ds = _epoch_dataset(source, data_cfg, epoch=epoch, skip_batches=skip, **kwargs)
    count = 0
    for batch in ds.as_numpy_iterator():
      count += 1
      yield batch
    if not repeat:
      return
    if count == 0:
      raise RuntimeError(f'Epoch {epoch} of {data_cfg.dataset!r} produced no batch.')
    epoch, skip = epoch + 1, 0


def create_eval_dataset(data_cfg: ml_collections.ConfigDict, *, batch_size: int, split: str,
                        num_examples: int = -1, process_index: int | None = None,
                        process_count: int | None = None) -> Iterator[Batch]:
  """One deterministic pass over the first ``num_examples`` of ``split`` (all if <= 0).

  No shuffle, flip or repeat. ``batch_size`` is global; each process yields full batches of
  batch_size // process_count, all processes the same number of them. The last batches are
  padded with zero images; ``'mask'`` (float32 [B/P]) is 1 for real examples, 0 for padding.
  """
  process_index, process_count = _process(process_index, process_count)
  local_batch_size = _local_batch_size(batch_size, process_count)
  source = sources.make_source(data_cfg)
  total = source.num_examples(split)
  if num_examples > 0:
    total = num_examples if total is None else min(num_examples, total)
  if total is None:
    raise ValueError(f'Size of split {split!r} is unknown (mocked?): pass num_examples.')
  largest = -(-total // process_count)  # Process 0 holds the most examples.
  num_batches = -(-largest // local_batch_size)
  limit = total if num_examples > 0 else None
  preprocess = _Preprocess(source, data_cfg, train=False)
  ds = source.records(split, limit=limit, process_index=process_index, process_count=process_count,
                      drop_remainder=False, shuffle_seed=None)
  ds = ds.map(lambda r: {**preprocess(r, None), 'mask': tf.constant(1.0)},
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec)
  ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  ds = ds.take(num_batches * local_batch_size).batch(local_batch_size)
  ds = ds.prefetch(tf.data.AUTOTUNE).with_options(sources.deterministic_options())
  return ds.as_numpy_iterator()


def to_global_array(batch: Any, sharding: jax.sharding.Sharding) -> Any:
  """Assembles each process's local batch (pytree of [B/P, ...]) into global [B, ...] jax.Arrays.

  ``sharding`` is typically NamedSharding(mesh, PartitionSpec('data')): every process
  contributes its rows, which land on its own devices of the 'data' axis.
  """
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      batch)


def device_batches(batches: Iterable[Any], sharding: jax.sharding.Sharding, *,
                   prefetch: int = 1) -> Iterator[Any]:
  """Yields ``to_global_array`` of each batch, keeping ``prefetch`` batches already on device."""
  iterator = iter(batches)
  queue = collections.deque()

  def enqueue(n: int) -> None:
    for batch in itertools.islice(iterator, n):
      queue.append(to_global_array(batch, sharding))

  enqueue(prefetch + 1)
  while queue:
    yield queue.popleft()
    enqueue(1)
