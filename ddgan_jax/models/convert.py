"""Convert official DDGAN PyTorch checkpoints (NVlabs/denoising-diffusion-gan) to Flax params.

Layouts: torch Conv2d weight [out, in, kh, kw] -> Flax kernel [kh, kw, in, out];
nn.Linear weight [out, in] -> Dense kernel [in, out]; NIN `W` is [in, out] in both;
GroupNorm weight/bias -> scale/bias.

The mapping is systematic: we take the shapes of our own parameters (jax.eval_shape of init,
nothing allocated), translate every parameter path to its official key (the generator's
`all_modules.<i>` indices come from the same plan that builds the network, see
`generator.build_plan`), transform the tensor, and check that every one of our parameters is
filled with the right shape and that every official key was consumed.

CLI (writes an inference checkpoint: EMA generator + config):

  python -m ddgan_jax.models.convert --config=configs/cifar10.py --checkpoint=netG_1200.pth \
      --output_dir=DIR
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import zipfile
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import traverse_util
from ml_collections import config_flags

from ddgan_jax import models
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import discriminator as disc_lib
from ddgan_jax.models import generator as gen_lib
from ddgan_jax.platform import cli

StateDict = dict[str, np.ndarray]
Params = dict[str, Any]
Path = tuple[str, ...]

DDP_PREFIX = 'module.'


# ----------------------------------------------------------------------------- loading

def _to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, 'detach'):  # torch.Tensor
    value = value.detach().cpu()
    if str(value.dtype) == 'torch.bfloat16':
      value = value.float()
    value = value.numpy()
  return np.asarray(value)


def _torch_load(path: str) -> Any:
  """torch.load with weights_only=True: tensors and plain containers only, never arbitrary
  pickled objects (an official file is untrusted input)."""
  try:
    import torch  # optional extra [torch]
  except ImportError as e:
    raise ImportError(f'Reading {path} needs PyTorch (pip install torch), or convert the '
                      'state_dict to .npz first (np.savez(path, **{k: v.numpy()})).') from e
  # content.pth stores the training args as an argparse.Namespace; allow just that class
  # (torch >= 2.5 has safe_globals; older versions still load netG_<epoch>.pth safely).
  safe = getattr(torch.serialization, 'safe_globals', None)
  try:
    if safe is not None:
      with safe([argparse.Namespace]):
        return torch.load(path, map_location='cpu', weights_only=True)
    return torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError as e:
    raise ValueError(f'{path} holds more than tensors (refused by torch.load(weights_only=True): '
                     f"{' '.join(str(e).split())[:200]}).") from None


def strip_ddp_prefix(state_dict: Mapping[str, Any]) -> StateDict:
  """Removes the DistributedDataParallel 'module.' prefix (when every key has it)."""
  keys = list(state_dict)
  if keys and all(k.startswith(DDP_PREFIX) for k in keys):
    return {k[len(DDP_PREFIX):]: _to_numpy(v) for k, v in state_dict.items()}
  return {k: _to_numpy(v) for k, v in state_dict.items()}


def load_state_dict(path: str, *, part: str = 'netG_dict', prefix: str = '') -> StateDict:
  """Reads an official state_dict as numpy arrays.

  Args:
    path: a .pth/.pt file (torch.load on CPU; torch is imported only here) or an .npz with
      the state_dict keys. A checkpoint dict holding 'netG_dict' / 'netD_dict' (the
      official content.pth) is accepted: `part` selects which one. Note that content.pth
      holds the raw generator weights, while netG_<epoch>.pth holds the EMA weights.
    part: sub-dict to use when the file is a training-content dict.
    prefix: keep only keys starting with it and strip it (e.g. 'G/' in parity npz files).
  Returns:
    {official key without 'module.': array}.
  """
  if path.endswith('.npz'):
    try:
      with np.load(path, allow_pickle=False) as data:
        raw: Mapping[str, Any] = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError) as e:
      raise ValueError(f'{path} is not a readable .npz file ({e}); is it complete?') from None
  else:
    raw = _torch_load(path)
  if isinstance(raw, Mapping) and part in raw and isinstance(raw[part], Mapping):
    raw = raw[part]
  elif isinstance(raw, Mapping) and ('netG_dict' in raw or 'netD_dict' in raw):
    raise KeyError(f'{path} is a training-content dict without {part!r}; '
                   f'available: {sorted(raw)}.')
  if not isinstance(raw, Mapping):
    raise TypeError(f'{path} does not hold a state_dict (got {type(raw).__name__}).')
  if prefix:
    raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
    if not raw:
      raise KeyError(f'No key of {path} starts with {prefix!r}.')
  return strip_ddp_prefix(raw)


# ----------------------------------------------------------------------------- generic mapping

def _transform(leaf: str, value: np.ndarray) -> np.ndarray:
  """Official tensor -> our layout, decided by our leaf name and the tensor rank."""
  if leaf == 'kernel':
    if value.ndim == 4:
      return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if value.ndim == 2:
      return value.T                      # Linear [out, in] -> [in, out]
    raise ValueError(f'Unexpected kernel rank {value.ndim}.')
  return value                            # biases, GroupNorm weight, NIN W / b


def _leaf_key(leaf: str) -> str:
  return {'kernel': 'weight', 'scale': 'weight'}.get(leaf, leaf)


def convert_params(state_dict: Mapping[str, np.ndarray], target: Any,
                   key_of: Callable[[Path], str], what: str = 'model') -> Params:
  """Fills the pytree `target` (arrays or ShapeDtypeStructs) from `state_dict`.

  Args:
    state_dict: official key -> array (no 'module.' prefix).
    target: our parameter tree; only shapes and dtypes are used.
    key_of: our parameter path -> official key.
    what: name used in error messages.
  Returns:
    A nested dict of numpy arrays with the structure of `target`.
  Raises:
    ValueError: listing missing keys, shape mismatches and unused official keys.
  """
  flat = traverse_util.flatten_dict(target)
  out: dict[Path, np.ndarray] = {}
  used: set[str] = set()
  problems: list[str] = []
  for path, spec in flat.items():
    key = key_of(path)
    if key not in state_dict:
      problems.append(f'missing official key {key!r} for our param {"/".join(path)} '
                      f'{tuple(spec.shape)}')
      continue
    used.add(key)
    value = _transform(path[-1], np.asarray(state_dict[key]))
    if tuple(value.shape) != tuple(spec.shape):
      problems.append(f'shape mismatch for {key!r} -> {"/".join(path)}: official (converted) '
                      f'{tuple(value.shape)} vs ours {tuple(spec.shape)}')
      continue
    out[path] = np.asarray(value, dtype=spec.dtype)  # no copy when the dtype already matches
  unused = [k for k in state_dict if k not in used]
  problems += [f'official key {k!r} {tuple(np.shape(state_dict[k]))} was not consumed'
               for k in unused]
  if problems:
    head = '\n  '.join(problems[:40])
    more = f'\n  ... and {len(problems) - 40} more' if len(problems) > 40 else ''
    raise ValueError(f'Cannot convert the {what} state_dict ({len(problems)} problems):\n  '
                     f'{head}{more}')
  return traverse_util.unflatten_dict(out)


# ----------------------------------------------------------------------------- generator

def generator_key_fn(generator: gen_lib.NCSNppGenerator) -> Callable[[Path], str]:
  """Our generator param path -> official NCSNpp state_dict key."""
  plan = {e.name: e for e in generator.plan()}

  def key_of(path: Path) -> str:
    top, *rest = path
    *mods, leaf = rest
    if top == 'z_mapping':
      # Dense_k -> z_transform.<2k+1> (PixelNorm is 0, SiLUs are the even entries).
      k = int(mods[0].split('_')[1])
      parts = ['z_transform', str(2 * k + 1)] + mods[1:]
    else:
      entry = plan[top]
      parts = ['all_modules', str(entry.index)]
      if entry.kind == 'pyramid_down':
        parts.append('Conv2d_0')
      parts += mods
    return '.'.join(parts + [_leaf_key(leaf)])

  return key_of


def generator_from_official_args(args: Mapping[str, Any] | Any,
                                 cond_channels: int = 0) -> gen_lib.NCSNppGenerator:
  """NCSNppGenerator from the official NCSNpp arguments (a dict or the argparse Namespace
  stored in content.pth). Unsupported official options raise a ValueError at first use."""
  a = dict(args) if isinstance(args, Mapping) else vars(args)
  kwargs = dict(
      num_channels=int(a['num_channels']), image_size=int(a['image_size']),
      cond_channels=int(cond_channels), nf=int(a['num_channels_dae']),
      ch_mult=tuple(int(m) for m in a['ch_mult']), num_res_blocks=int(a['num_res_blocks']),
      attn_resolutions=tuple(int(r) for r in a['attn_resolutions']),
      dropout=float(a['dropout']), fir=bool(a['fir']),
      fir_kernel=tuple(int(k) for k in a['fir_kernel']),
      skip_rescale=bool(a['skip_rescale']), resamp_with_conv=bool(a['resamp_with_conv']),
      centered=bool(a['centered']), not_use_tanh=bool(a['not_use_tanh']), nz=int(a['nz']),
      z_emb_dim=int(a['z_emb_dim']), n_mlp=int(a['n_mlp']),
      resblock_type=str(a['resblock_type']), progressive=str(a['progressive']),
      progressive_input=str(a['progressive_input']),
      progressive_combine=str(a['progressive_combine']),
      embedding_type=str(a['embedding_type']), conditional=bool(a['conditional']))
  return gen_lib.NCSNppGenerator(**kwargs)


def generator_param_shapes(generator: gen_lib.NCSNppGenerator) -> Any:
  """ShapeDtypeStructs of the generator params (nothing allocated)."""
  size, c = generator.image_size, generator.num_channels
  x = jnp.zeros((1, size, size, c))
  t = jnp.zeros((1,), jnp.int32)
  z = jnp.zeros((1, generator.nz))
  cond = (jnp.zeros((1, size, size, generator.cond_channels))
          if generator.cond_channels else None)
  return jax.eval_shape(generator.init, jax.random.PRNGKey(0), x, t, z, cond)['params']


def convert_generator(state_dict: Mapping[str, np.ndarray],
                      generator: gen_lib.NCSNppGenerator) -> Params:
  """Official NCSNpp state_dict -> params of `generator` (use as {'params': result})."""
  state_dict = strip_ddp_prefix(state_dict)
  return convert_params(state_dict, generator_param_shapes(generator),
                        generator_key_fn(generator), what='generator')


# ----------------------------------------------------------------------------- discriminator

def discriminator_key_of(path: Path) -> str:
  """Our discriminator param path -> official Discriminator_small/large key."""
  top, *rest = path
  *mods, leaf = rest
  parts = [top]
  if top == 't_embed':
    # TimestepEmbedding.main = Sequential(dense, act, dense).
    parts += ['main', {'Dense_0': '0', 'Dense_1': '2'}[mods[0]]] + mods[1:]
  elif mods and mods[0] in ('conv1', 'conv2', 'skip'):
    parts += [mods[0], '0'] + mods[1:]  # nn.Sequential wrappers inside DownConvBlock
  else:
    parts += mods
  return '.'.join(parts + [_leaf_key(leaf)])


def discriminator_from_state_dict(state_dict: Mapping[str, np.ndarray], kind: str,
                                  fir_kernel: Sequence[int] = (1, 3, 3, 1)) -> nn.Module:
  """Builds DiscriminatorSmall/Large with ngf and t_emb_dim read off the state_dict."""
  state_dict = strip_ddp_prefix(state_dict)
  ngf = int(state_dict['start_conv.weight'].shape[0]) // 2
  t_emb_dim = int(state_dict['t_embed.main.0.weight'].shape[1])
  cls = {'small': disc_lib.DiscriminatorSmall, 'large': disc_lib.DiscriminatorLarge}[kind]
  return cls(ngf=ngf, t_emb_dim=t_emb_dim, fir_kernel=tuple(fir_kernel))


def discriminator_param_shapes(disc: nn.Module, in_channels: int) -> Any:
  """ShapeDtypeStructs of the discriminator params for `in_channels` total input channels."""
  size = 64 if isinstance(disc, disc_lib.DiscriminatorLarge) else 32
  c_x = in_channels // 2
  c_cond = in_channels - 2 * c_x
  x = jnp.zeros((1, size, size, c_x))
  cond = jnp.zeros((1, size, size, c_cond)) if c_cond else None
  return jax.eval_shape(disc.init, jax.random.PRNGKey(0), x, jnp.zeros((1,), jnp.int32), x,
                        cond)['params']


def convert_discriminator(state_dict: Mapping[str, np.ndarray],
                          kind: str | nn.Module) -> Params:
  """Official Discriminator_small/large state_dict -> our params.

  Args:
    state_dict: official keys (a 'module.' prefix is stripped).
    kind: 'small' | 'large' (ngf and t_emb_dim are read off the state_dict), or a
      DiscriminatorSmall/DiscriminatorLarge module to convert for.
  """
  state_dict = strip_ddp_prefix(state_dict)
  disc = kind if isinstance(kind, nn.Module) else discriminator_from_state_dict(state_dict, kind)
  in_channels = int(state_dict['start_conv.weight'].shape[1])
  return convert_params(state_dict, discriminator_param_shapes(disc, in_channels),
                        discriminator_key_of, what=type(disc).__name__)


# ----------------------------------------------------------------------------- CLI

def _define_flags():
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file(
      'config', None, 'Config file describing the generator (e.g. configs/cifar10.py).',
      flag_values=fv, lock_config=True)
  flags.DEFINE_string('checkpoint', None, 'Official netG_<epoch>.pth, content.pth or .npz.',
                      flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where to write the inference checkpoint.',
                      flag_values=fv)
  flags.DEFINE_string('part', 'netG_dict',
                      "Sub-dict to read when --checkpoint is a content.pth ('netG_dict').",
                      flag_values=fv)
  flags.mark_flags_as_required(['config', 'checkpoint', 'output_dir'], flag_values=fv)
  return fv


def main(argv: Sequence[str] | None = None) -> None:
  """Converts an official generator checkpoint and writes an inference checkpoint."""
  fv = _define_flags()
  usage = ('Converts an official DDGAN generator checkpoint into an inference checkpoint.\n\n'
           'usage: python -m ddgan_jax.models.convert --config=configs/cifar10.py '
           '--checkpoint=netG_1200.pth --output_dir=O')
  if not cli.parse_own_flags(fv, sys.argv if argv is None else argv, usage):
    return
  config = fv.config
  try:
    if config.inpaint.enabled:
      raise ValueError('official checkpoints are unconditional generators: run with '
                       '--config.inpaint.enabled=False (RePaint mode works with them).')
    generator = models.create_generator(config.model, image_size=config.data.image_size,
                                        num_channels=config.data.num_channels, cond_channels=0)
    state_dict = load_state_dict(fv.checkpoint, part=fv.part)
    params = convert_generator(state_dict, generator)
    n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    params = jax.tree.map(jnp.asarray, params)
    out = checkpointing.save_inference_checkpoint(os.path.abspath(fv.output_dir),
                                                  ema_params=params, config=config)
  except (OSError, ValueError, KeyError, ImportError) as e:
    cli.fail(cli.one_line(e))  # one line, even for the converter's key listings
  print(f'Converted {len(state_dict)} tensors ({n:,} parameters) from {fv.checkpoint}; '
        f'wrote {out}')


if __name__ == '__main__':
  main()
