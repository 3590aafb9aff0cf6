"""Throughput of the host input pipeline alone (tf.data -> numpy batches), one JSON line per case.

Cases:
  fashion_mnist@32        the offline demo dataset (prepared into --data_dir on first use).
  imagenet2012_mock@64    imagenet2012 under tfds.testing.mock_data: the stock mock, whose
  imagenet2012_mock@256   examples are random 5-50 px images made and JPEG-encoded in Python.
  imagenet2012_photo@64   imagenet2012 under mock_data with an as_dataset_fn serving pre-encoded
  imagenet2012_photo@256  500x375 JPEGs (ImageNet's typical size): measures real decode + crop +
                          resize cost rather than the mock's Python generator.

Usage:
  python bench/input_pipeline.py [--batch_size 256] [--num_batches 40] [--warmup 5]
      [--cases fashion_mnist@32,imagenet2012_mock@64] [--data_dir /tmp/ddgan_bench_tfds]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from configs import default  # noqa: E402
from ddgan_jax.data import input_pipeline  # noqa: E402

ALL_CASES = ('fashion_mnist@32', 'imagenet2012_mock@64', 'imagenet2012_mock@256',
             'imagenet2012_photo@64', 'imagenet2012_photo@256')
PHOTO_POOL = 64  # Distinct pre-encoded JPEGs served in turn.


def _photo_jpegs(count: int, size=(500, 375)) -> list[bytes]:
  """Smooth photo-like JPEGs (gradients, discs, mild noise) at ImageNet's typical size."""
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
  out = []
  for _ in range(count):
    c0, c1 = rng.uniform(0, 255, (2, 3))
    t = (xx / size[0] * rng.uniform(-1, 1) + yy / size[1] * rng.uniform(-1, 1)) % 1.0
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(6):
      cy, cx, r = rng.uniform(0, size[1]), rng.uniform(0, size[0]), rng.uniform(20, 150)
      image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 6, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, 'JPEG', quality=90)
    out.append(buffer.getvalue())
  return out


def _photo_as_dataset_fn(jpegs: list[bytes]):
  pool = tf.constant(jpegs)

  def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    del split, read_config, shuffle_files
    ds = tf.data.Dataset.range(1 << 20).map(lambda i: {
        'image': pool[i % len(jpegs)], 'label': i % 1000, 'file_name': tf.constant('x.JPEG')})
    return ds.map(lambda ex: self.info.features.decode_example(ex, decoders=decoders))

  return as_dataset


def run_case(case: str, args) -> dict:
  name, size = case.split('@')
  cfg = default.get_config().data
  cfg.image_size = int(size)
  context = contextlib.nullcontext()
  if name == 'fashion_mnist':
    cfg.dataset, cfg.data_dir = 'fashion_mnist', args.data_dir
  else:
    cfg.dataset = 'imagenet2012'
    cfg.num_train_examples = args.batch_size * (args.num_batches + args.warmup)  # One epoch.
    if name.endswith('_photo'):
      context = tfds.testing.mock_data(as_dataset_fn=_photo_as_dataset_fn(_photo_jpegs(PHOTO_POOL)))
    else:
      context = tfds.testing.mock_data(num_examples=cfg.num_train_examples)
  with context:
    start = time.perf_counter()
    it = input_pipeline.create_dataset(cfg, global_batch_size=args.batch_size, split='train',
                                       train=True, seed=0, process_index=0, process_count=1)
    next(it)
    first_batch_s = time.perf_counter() - start
    for _ in range(args.warmup - 1):
      next(it)
    start = time.perf_counter()
    for _ in range(args.num_batches):
      batch = next(it)
    elapsed = time.perf_counter() - start
  return dict(case=case, dataset=cfg.dataset, image_size=cfg.image_size,
              shape=list(batch['image'].shape), batch_size=args.batch_size,
              num_batches=args.num_batches, images_per_s=round(args.num_batches * args.batch_size
                                                               / elapsed, 1),
              first_batch_s=round(first_batch_s, 2), cpu_count=os.cpu_count())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--num_batches', type=int, default=40, help='timed batches per case')
  parser.add_argument('--warmup', type=int, default=5, help='untimed batches first (>= 1)')
  parser.add_argument('--cases', default=','.join(ALL_CASES))
  parser.add_argument('--data_dir', default='/tmp/ddgan_bench_tfds',
                      help='tfds data_dir for the offline fashion_mnist builder')
  args = parser.parse_args()
  args.warmup = max(1, args.warmup)
  for case in args.cases.split(','):
    print(json.dumps(run_case(case.strip(), args)), flush=True)


if __name__ == '__main__':
  main()
