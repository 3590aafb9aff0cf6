"""Dataset sources of the input pipeline: offline TFDS builders, image folders, synthetic images.

Importing this package hides every accelerator from TensorFlow first (TF is only used
for tf.data on the host and must never take GPU/TPU memory from JAX), then registers the
offline tfds builders ``fashion_mnist_offline`` and ``mnist_offline`` (no network access).
"""
from __future__ import annotations

import logging
import os

# TF only feeds data here: its oneDNN kernels are not needed, and turning them off also
# silences the start-up log that TF_CPP_MIN_LOG_LEVEL does not reach.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position


def hide_accelerators_from_tf() -> None:
  """Makes GPUs and TPUs invisible to TensorFlow (idempotent; warns if TF already started)."""
  for device_type in ('GPU', 'TPU'):
    try:
      tf.config.set_visible_devices([], device_type)
    except (RuntimeError, ValueError) as e:  # RuntimeError: TF runtime already initialised.
      if tf.config.get_visible_devices(device_type):
        logging.warning('Could not hide %s devices from TensorFlow: %s', device_type, e)


hide_accelerators_from_tf()

# pylint: disable=g-import-not-at-top,wrong-import-position
from ddgan_jax.data.datasets.offline_mnist import FashionMnistOffline  # noqa: E402
from ddgan_jax.data.datasets.offline_mnist import MnistOffline  # noqa: E402
from ddgan_jax.data.datasets.offline_mnist import OfflineDataNotFoundError  # noqa: E402

__all__ = ['FashionMnistOffline', 'MnistOffline', 'OfflineDataNotFoundError',
           'hide_accelerators_from_tf']
