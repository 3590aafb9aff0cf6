"""Procedural images for tests and smoke runs: coloured gradients with discs and boxes.

Example ``index`` of a split is a pure function of ``(split_seed, index)`` (TF stateless
random ops), so the "dataset" is fixed and finite like a real one; a run's seed only
changes the order in which examples are read. No files and no tfds are involved.
"""
from __future__ import annotations

import zlib

import tensorflow as tf

# Examples per split when data.num_train_examples does not say otherwise.
SPLIT_SIZES = {'train': 10_000, 'validation': 1_000, 'test': 1_000}
NUM_SHAPES = 4


def split_seed(split: str) -> int:
  """Stable (process- and run-independent) seed of a split name."""
  return zlib.crc32(split.encode('utf-8'))


def split_size(split: str) -> int:
  """Number of examples of a synthetic split (unknown names get the test size)."""
  return SPLIT_SIZES.get(split, SPLIT_SIZES['test'])


def synthetic_image(index: tf.Tensor, seed: tf.Tensor | int, image_size: int) -> tf.Tensor:
  """Returns example ``index`` as uint8 [image_size, image_size, 3].

  A linear gradient between two random colours in a random direction, overlaid with
  ``NUM_SHAPES`` random discs or boxes (each present with probability 3/4).
  """
  key = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
  keys = tf.random.experimental.stateless_split(key, num=2 + NUM_SHAPES)
  coords = (tf.range(image_size, dtype=tf.float32) + 0.5) / image_size
  yy, xx = tf.meshgrid(coords, coords, indexing='ij')  # [S, S] each.

  # Background: colours c0 -> c1 along a random direction.
  colours = tf.random.stateless_uniform([2, 3], seed=keys[0])
  angle = tf.random.stateless_uniform([], seed=keys[1], maxval=6.2831855)
  t = (xx - 0.5) * tf.cos(angle) + (yy - 0.5) * tf.sin(angle)
  t = tf.clip_by_value(t / 1.4142135 + 0.5, 0.0, 1.0)[..., None]
  image = colours[0] * (1.0 - t) + colours[1] * t  # [S, S, 3]

  for k in range(NUM_SHAPES):
    # [cy, cx, radius, aspect, kind, present, r, g, b]
    p = tf.random.stateless_uniform([9], seed=keys[2 + k])
    cy, cx = p[0], p[1]
    radius = 0.08 + 0.25 * p[2]
    aspect = 0.5 + p[3]
    disc = tf.square((yy - cy) / aspect) + tf.square(xx - cx) < tf.square(radius)
    box = tf.logical_and(tf.abs(yy - cy) < radius * aspect, tf.abs(xx - cx) < radius)
    inside = tf.logical_and(tf.where(p[4] < 0.5, disc, box), p[5] < 0.75)
    image = tf.where(inside[..., None], p[6:9], image)
  return tf.cast(tf.round(image * 255.0), tf.uint8)
