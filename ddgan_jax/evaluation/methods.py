"""The methods an evaluation compares, by name (`METHODS` in evaluation.py's docstring), and
how each fills a batch.

`conditional` (mask-conditional models only, NFE = T), `repaint_r<N>` (RePaint mode with N
resampling rounds, NFE = T N; any model), and the classical `baselines` (`telea`,
`navier_stokes`, `biharmonic`).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import jax
import numpy as np

from ddgan_jax.evaluation import baselines
from ddgan_jax.inpainting import inpaint as inpaint_lib

DEFAULT_METHODS = ('conditional', 'repaint_r1', 'repaint_r5', 'telea', 'navier_stokes',
                   'biharmonic')
LABELS = {'conditional': 'DDGAN conditional', 'telea': 'OpenCV Telea',
          'navier_stokes': 'OpenCV Navier-Stokes', 'biharmonic': 'skimage biharmonic'}

# fn(images uint8 [B, H, W, C], masks [B, H, W, 1], key) -> (uint8 result, nfe).
Runner = Callable[[np.ndarray, np.ndarray, jax.Array], tuple[np.ndarray, int]]


@dataclasses.dataclass(frozen=True)
class Method:
  """One evaluated method: `kind` is 'model' (mode, resample) or 'classical'."""
  name: str
  kind: str
  mode: str = ''
  resample: int = 1

  @property
  def label(self) -> str:
    if self.mode == 'repaint':
      return f'DDGAN RePaint r={self.resample}'
    return LABELS[self.name]


def parse_method(name: str) -> Method:
  """'conditional' | 'repaint_r<N>' | 'telea' | 'navier_stokes' | 'biharmonic' -> Method."""
  if name == 'conditional':
    return Method(name, 'model', 'conditional', 1)
  match = re.fullmatch(r'repaint_r(\d+)', name)
  if match and int(match.group(1)) >= 1:
    return Method(name, 'model', 'repaint', int(match.group(1)))
  if name in baselines.CLASSICAL:
    return Method(name, 'classical')
  raise ValueError(f'unknown method {name!r}; use conditional, repaint_r<N> (N >= 1), '
                   + ', '.join(baselines.CLASSICAL) + '.')


def default_methods(mask_conditional: bool) -> tuple[str, ...]:
  """DEFAULT_METHODS, without `conditional` for an unconditional model."""
  return tuple(m for m in DEFAULT_METHODS if mask_conditional or m != 'conditional')


def make_runner(method: Method, nets: Any, params: Any,
                batch_sharding: jax.sharding.Sharding) -> Runner:
  """fn(images uint8 [B, H, W, C], masks [B, H, W, 1], key) -> (uint8 result, nfe)."""
  if method.kind == 'classical':
    return lambda images, masks, key: (baselines.classical_inpaint(method.name, images, masks), 0)

  def inpainter(images: Any, masks: Any, key: jax.Array) -> tuple[jax.Array, int]:
    result, nfe = inpaint_lib.inpaint(nets, params, jax.device_put(images, batch_sharding),
                                      jax.device_put(masks, batch_sharding), key,
                                      mode=method.mode, resample=method.resample)
    return result.block_until_ready(), nfe

  return lambda images, masks, key: inpaint_lib.inpaint_uint8(inpainter, images, masks, key)
