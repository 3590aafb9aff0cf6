"""Scalars and images to TensorBoard event files and a JSONL file (process 0 only)."""
from __future__ import annotations

import json
import os
from typing import Mapping

import jax
import numpy as np


class MetricWriter:
  """Writes `<workdir>/metrics.jsonl` and TensorBoard events under `<workdir>/tensorboard`."""

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    from flax.metrics import tensorboard  # TensorFlow: lazy (process 0 only)
    os.makedirs(workdir, exist_ok=True)
    self._tb = tensorboard.SummaryWriter(os.path.join(workdir, 'tensorboard'))
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self.active:
      return
    clean = {k: float(v) for k, v in scalars.items()}
    for k, v in clean.items():
      self._tb.scalar(k, v, step)
    self._jsonl.write(json.dumps({'step': int(step), **clean}) + '\n')
    self._jsonl.flush()

  def write_image(self, step: int, name: str, image_uint8: np.ndarray) -> None:
    if self.active:
      self._tb.image(name, image_uint8, step)

  def flush(self) -> None:
    if self.active:
      self._tb.flush()

  def close(self) -> None:
    if self.active:
      self._tb.close()
      self._jsonl.close()
