"""Starting a training run from pretrained generator weights (`train.init_from=PATH`).

The source is any checkpoint with an EMA generator: a workdir or checkpoint of ours
(unconditional or mask-conditional) or an official checkpoint converted by `ddgan_jax.models.convert`.
Its generator is grafted onto the new run's generator:

* arrays of the same path and shape are copied;
* an array that exists in both but has more input channels in the new run (axis -2 of a conv
  kernel: the first conv and the first input-pyramid conv of a mask-conditional generator,
  whose extra inputs are the condition channels, concatenated last) gets the source's weights
  on the leading channels and zeros on the new ones.

So a conditional generator started from an unconditional one computes exactly what the
unconditional one did at step 0, whatever the condition. Anything else that differs (another
nf, ch_mult, resolution, a missing array) is refused with the first mismatching parameter.
The discriminator starts from the checkpoint's when it has one of exactly the new run's shapes
(a training checkpoint, or an inference checkpoint exported with `--with_discriminator`): a
fresh D needs hundreds of steps before it tells a trained generator's samples from real ones
(docs/discriminator.md), longer than a short fine-tuning run. Otherwise D starts fresh; both
optimizers always do.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import networks


def _by_path(tree: Any) -> dict[str, Any]:
  """{'[\'conv_in\'][\'kernel\']': leaf, ...}: a parameter tree's leaves by path."""
  return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def graft(target: Any, source: Any) -> Any:
  """`target`'s tree with `source`'s values (see the module docstring).

  Args:
    target: parameters (or ShapeDtypeStructs) of the new generator.
    source: parameters of the pretrained generator (arrays).
  Returns:
    A tree of target's structure, shapes and dtypes.
  Raises:
    ValueError: naming the first parameter that cannot be grafted.
  """
  keystr = jax.tree_util.keystr
  src = _by_path(source)
  tgt_paths = list(_by_path(target))
  extra = sorted(set(src) - set(tgt_paths))
  if extra:
    raise ValueError(f'init_from: the pretrained generator has {extra[0]} (and {len(extra) - 1} '
                     'more arrays) that the new model lacks; the model configs must match '
                     '(nf, ch_mult, num_res_blocks, attn_resolutions, nz, image size).')

  def one(path, leaf):
    name = keystr(path)
    if name not in src:
      raise ValueError(f'init_from: the pretrained generator has no {name}; the model configs '
                       'must match (nf, ch_mult, num_res_blocks, attn_resolutions, nz, image size).')
    value = jnp.asarray(src[name])
    shape, dtype = tuple(leaf.shape), leaf.dtype
    if value.shape == shape:
      return value.astype(dtype)
    grows_inputs = (value.ndim == len(shape) >= 2 and value.shape[-1] == shape[-1]
                    and value.shape[:-2] == shape[:-2] and value.shape[-2] < shape[-2])
    if not grows_inputs:
      raise ValueError(f'init_from: {name} is {tuple(value.shape)} in the pretrained generator '
                       f'but {shape} in the new model; only new input channels can be added.')
    pad = [(0, 0)] * (len(shape) - 2) + [(0, shape[-2] - value.shape[-2]), (0, 0)]
    return jnp.pad(value.astype(dtype), pad)

  return jax.tree_util.tree_map_with_path(one, target)


def load_pretrained_generator(path: str, target: Any) -> Any:
  """The EMA generator of the checkpoint at `path`, grafted onto `target` (abstract or real
  parameters of the new generator); returns arrays on the default device."""
  source = networks.load_model(path).params
  grafted = graft(target, jax.tree.map(np.asarray, source))
  return grafted


def load_pretrained_discriminator(path: str, target: Any) -> Any | None:
  """The discriminator stored with the checkpoint at `path` if it has exactly `target`'s tree
  and shapes (arrays on the default device), else None (the run's D then starts fresh)."""
  source = checkpointing.restore_discriminator(path)
  if source is None:
    return None
  src, tgt = _by_path(source), _by_path(target)
  if src.keys() != tgt.keys() or any(tuple(src[k].shape) != tuple(tgt[k].shape) for k in tgt):
    return None
  return jax.tree_util.tree_map_with_path(
      lambda p, leaf: jnp.asarray(src[jax.tree_util.keystr(p)], leaf.dtype), target)
