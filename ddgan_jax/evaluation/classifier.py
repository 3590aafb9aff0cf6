"""A small Fashion-MNIST classifier, trained by this project: the domain feature network of the
realism metrics (`realism`, `--realism_features=fmnist_classifier`).

AlexNet's ImageNet features are generic (edges, texture, object parts of natural photos); this
network's embedding sees what separates the ten Fashion-MNIST classes (shape and class-level
structure), so the two tell whether a gap in a realism metric is one of the samples or of the
features. It serves only the data it was trained on: Fashion-MNIST at 32x32x1 (28x28 padded),
in [-1, 1] (`DATASET`, `IMAGE_SIZE`, `NUM_CHANNELS`); `check_fits` refuses anything else.

Architecture (`Classifier`): three stages of conv 3x3 + GroupNorm + ReLU + 2x2 max-pool, with
32, 64 and 64 channels (32 -> 16 -> 8 -> 4 px), flattened (4 x 4 x 64: the garment's layout,
which a global average pool would lose: it reached only 86% test accuracy), a 128-d dense
ReLU embedding (the features: float64 on the host) and a 10-way dense head. No BatchNorm state and
no dropout: the features are a pure function of the params. `commands/train_classifier.py`
trains it with `train_step` (Adam, random 1 px translations and horizontal flips) and writes
`WEIGHTS` (flax.serialization msgpack, float16: half the size; `load` computes in float32)
with a README.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pathlib
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddgan_jax import config_checks
from ddgan_jax.platform import cli

DATASET, IMAGE_SIZE, NUM_CHANNELS, NUM_CLASSES = 'fashion_mnist', 32, 1, 10
CHANNELS = (32, 64, 64)
EMBED_DIM = 128
SHIFT = 1  # Training augmentation: random translations of up to this many pixels.
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parents[2] / 'pretrained' / 'fashion_mnist_classifier'
WEIGHTS = WEIGHTS_DIR / 'params.msgpack'
ARCHITECTURE = ('3 x [conv 3x3 + GroupNorm(8) + ReLU + 2x2 max-pool] with 32, 64, 64 channels '
                '(32 -> 4 px), flatten (1024), dense 128 + ReLU (the embedding: the features), '
                'dense 10 (the logits); no BatchNorm, no dropout; weights stored as float16')
TRAIN_COMMAND = 'python -m ddgan_jax.commands.train_classifier --output_dir=pretrained/fashion_mnist_classifier'


class Classifier(nn.Module):
  """images [B, 32, 32, 1] in [-1, 1] -> (logits [B, 10], embedding [B, EMBED_DIM])."""

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    for ch in CHANNELS:
      x = nn.Conv(ch, (3, 3), padding='SAME')(x)
      x = nn.relu(nn.GroupNorm(num_groups=8)(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    embedding = nn.relu(nn.Dense(EMBED_DIM)(x))
    return nn.Dense(NUM_CLASSES)(embedding), embedding


def data_config(data_dir: str = '') -> config_checks.DataConfig:
  """The data the classifier is trained and tested on (as configs/fashion_mnist.py reads it)."""
  return config_checks.DataConfig(dataset=DATASET, image_size=IMAGE_SIZE,
                                  num_channels=NUM_CHANNELS, data_dir=data_dir)


def init_params(seed: int = 0) -> Any:
  """Fresh params of `Classifier` (jitted init: one compiled program, not op by op)."""
  x = jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS), jnp.float32)
  return jax.jit(Classifier().init)(jax.random.PRNGKey(seed), x)['params']


def to_float(images: Any) -> np.ndarray:
  """uint8 images -> float32 in [-1, 1] (as the data pipeline); floats pass unchanged."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  return images.astype(np.float32)


# ------------------------------------------------------------------ training

def optimizer(learning_rate: float = 1e-3, steps: int | None = None
              ) -> optax.GradientTransformation:
  """Adam; with `steps`, its learning rate decays to 0 over them (cosine)."""
  return optax.adam(optax.cosine_decay_schedule(learning_rate, steps) if steps else learning_rate)


def augment(images: jax.Array, key: jax.Array) -> jax.Array:
  """Random translations by up to `SHIFT` px (zero = background padding) and horizontal flips."""
  b, h, w, _ = images.shape
  k_shift, k_flip = jax.random.split(key)
  shifts = jax.random.randint(k_shift, (b, 2), 0, 2 * SHIFT + 1)
  pad_value = -1.0  # Fashion-MNIST's black background.
  padded = jnp.pad(images, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT), (0, 0)),
                   constant_values=pad_value)
  crop = lambda img, s: jax.lax.dynamic_slice(img, (s[0], s[1], 0), (h, w, img.shape[-1]))
  shifted = jax.vmap(crop)(padded, shifts)
  flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
  return jnp.where(flip, shifted[:, :, ::-1], shifted)


def loss_fn(params: Any, images: jax.Array, labels: jax.Array) -> jax.Array:
  logits, _ = Classifier().apply({'params': params}, images)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@functools.partial(jax.jit, static_argnames=('tx', 'augmented'))
def train_step(params: Any, opt_state: Any, images: jax.Array, labels: jax.Array,
               key: jax.Array, tx: optax.GradientTransformation, augmented: bool = True
               ) -> tuple[Any, Any, jax.Array]:
  """One Adam step on a batch (images float32 [B, 32, 32, 1] in [-1, 1], int labels [B]):
  (params, opt_state, the batch's loss before the step)."""
  if augmented:
    images = augment(images, key)
  loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def train(images_u8: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int,
          seed: int = 0, learning_rate: float = 1e-3, log_every: int = 0) -> Any:
  """Trains `Classifier` from scratch on images [N, 32, 32, 1] (uint8) with int labels [N]:
  `steps` Adam steps (cosine decay) on batches drawn as shuffled epochs (numpy seed `seed`);
  the params."""
  tx = optimizer(learning_rate, steps)
  params = init_params(seed)
  opt_state = tx.init(params)
  rng, key = np.random.default_rng(seed), jax.random.PRNGKey(seed)
  order, pos = rng.permutation(len(images_u8)), 0
  for step in range(steps):
    if pos + batch_size > len(order):
      order, pos = rng.permutation(len(images_u8)), 0
    idx = order[pos:pos + batch_size]
    pos += batch_size
    params, opt_state, loss = train_step(
        params, opt_state, jnp.asarray(to_float(images_u8[idx])), jnp.asarray(labels[idx]),
        jax.random.fold_in(key, step), tx)
    if log_every and (step + 1) % log_every == 0:
      print(f'step {step + 1}/{steps}: loss {float(loss):.4f}', flush=True)
  return params


# ------------------------------------------------------------------ inference

@jax.jit
def _apply(params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  return Classifier().apply({'params': params}, images)


def predict(params: Any, images: Any, batch_size: int = 500) -> np.ndarray:
  """Class indices [N] of images [N, 32, 32, 1] (uint8 or floats in [-1, 1])."""
  x = to_float(images)
  return np.concatenate([np.asarray(jnp.argmax(_apply(params, jnp.asarray(x[s:s + batch_size]))[0], -1))
                         for s in range(0, len(x), batch_size)])


def features_fn(params: Any):
  """Traceable fn(images [B, 32, 32, 1] in [-1, 1]) -> float32 embeddings [B, EMBED_DIM]."""
  return lambda images: Classifier().apply({'params': params}, images)[1]


def save(params: Any, path: str | os.PathLike) -> str:
  """Writes params as flax.serialization msgpack, in float16; the file's sha256."""
  data = flax.serialization.msgpack_serialize(
      jax.tree.map(lambda p: np.asarray(p, np.float16), params))
  with open(path, 'wb') as f:
    f.write(data)
  return hashlib.sha256(data).hexdigest()


def load(path: str | os.PathLike = WEIGHTS) -> tuple[Any, str]:
  """(params, sha256 of the file) of saved weights; a missing file is a one-line
  FileNotFoundError saying how to make it."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no Fashion-MNIST classifier weights at {path}: train them with '
                            f'`{TRAIN_COMMAND}`.')
  with open(path, 'rb') as f:
    data = f.read()
  params = flax.serialization.msgpack_restore(data)
  return (jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params),
          hashlib.sha256(data).hexdigest())


def check_fits(dataset: str, image_size: int, num_channels: int) -> None:
  """Refuses (one-line `cli.InputError`) images the classifier was not trained on."""
  if (dataset, image_size, num_channels) != (DATASET, IMAGE_SIZE, NUM_CHANNELS):
    raise cli.InputError(
        f'--realism_features=fmnist_classifier needs {DATASET} images at {IMAGE_SIZE}x'
        f'{IMAGE_SIZE}x{NUM_CHANNELS} (what the classifier was trained on), got {dataset!r} at '
        f'{image_size}x{image_size}x{num_channels}: use --realism_features=alexnet for this '
        'dataset.')
