"""The inpainter as a StableHLO artefact (`jax.export`) that a serving system loads with jax alone.

  python -m ddgan_jax.inpainting.export --format=stablehlo --workdir=runs/fm --output_dir=fm_hlo \
      [--batch_size=8 --mode=conditional --platforms=cpu,cuda]

writes into --output_dir:

* `inpaint.jax_export`: `jax.export.Exported.serialize()` of the jitted `inpaint.inpaint` for a
  fixed batch and the model's resolution: fn(params, images, masks, key) -> result, with
  params the list of generator arrays, images float32 [B, S, S, C] in [-1, 1], masks float32
  [B, S, S, 1] (1 = missing), key a raw uint32 [2] key (jax.random.PRNGKey(seed)); the result's
  known pixels are the images' (as the library's).
* `params.npz`: the EMA generator's arrays p0000, p0001, ... in the order the function takes.
* `inpaint.json`: batch, size, channels, mode, NFE and the platforms it was lowered for.

Loading needs neither flax nor this project:

  import jax, numpy as np
  fn = jax.export.deserialize(open('fm_hlo/inpaint.jax_export', 'rb').read())
  params = list(np.load('fm_hlo/params.npz').values())
  result = fn.call(params, images, masks, jax.random.PRNGKey(0))
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import numpy as np

from ddgan_jax.inpainting import inpaint
from ddgan_jax.models import networks

FUNCTION_FILE, PARAMS_FILE, META_FILE = 'inpaint.jax_export', 'params.npz', 'inpaint.json'


def export(source: str, output_dir: str, *, batch_size: int = 1, mode: str | None = None,
           step: int | None = None, platforms: Sequence[str] = ('cpu',)) -> str:
  """Writes the artefact (see the module doc); returns `output_dir`. Refuses to overwrite."""
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}.')
  output_dir = os.path.abspath(output_dir)
  taken = [f for f in (FUNCTION_FILE, PARAMS_FILE, META_FILE)
           if os.path.exists(os.path.join(output_dir, f))]
  if taken:
    raise ValueError(f'{output_dir} already holds {", ".join(taken)}; choose another --output_dir.')
  model = networks.load_model(source, step=step)
  nets, params = model.nets, model.params
  mode = mode or ('conditional' if nets.inpaint else 'repaint')
  images_shape = nets.image_shape(batch_size)
  inpaint.check_inputs(nets, images_shape, images_shape[:3] + (1,), mode, 1)
  leaves, treedef = jax.tree.flatten(jax.tree.map(np.asarray, params))

  def fn(flat, images, masks, key):
    return inpaint.inpaint(nets, jax.tree.unflatten(treedef, flat), images, masks, key,
                           mode=mode)[0]

  spec = lambda shape: jax.ShapeDtypeStruct(shape, np.float32)
  exported = jax.export.export(jax.jit(fn), platforms=tuple(platforms))(
      [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves], spec(images_shape),
      spec(images_shape[:3] + (1,)), jax.ShapeDtypeStruct((2,), np.uint32))
  os.makedirs(output_dir, exist_ok=True)
  meta = dict(batch_size=batch_size, image_size=nets.image_size, channels=nets.num_channels,
              mode=mode, nfe=inpaint.num_function_evaluations(nets, mode), masks='1 = missing',
              images='float32 in [-1, 1]', key='uint32 [2], jax.random.PRNGKey(seed)',
              platforms=list(platforms), source=source, jax=jax.__version__)
  # Each file is written under a temporary name and renamed, the function last.
  _atomic(os.path.join(output_dir, PARAMS_FILE),
          lambda f: np.savez(f, **{f'p{i:04d}': x for i, x in enumerate(leaves)}))
  _atomic(os.path.join(output_dir, META_FILE), lambda f: f.write(json.dumps(meta, indent=2).encode()))
  _atomic(os.path.join(output_dir, FUNCTION_FILE), lambda f: f.write(exported.serialize()))
  return output_dir


def _atomic(path: str, write) -> None:
  tmp = os.path.join(os.path.dirname(path), f'.{os.path.basename(path)}.partial')
  try:
    with open(tmp, 'wb') as f:
      write(f)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
