"""Config validation: one pass over a config before any network, file or device is touched.

`check_config(config)` raises a one-line `ConfigError` (a ValueError) naming the first bad
value and how to fix it. `networks.build_networks` calls it, so training, sampling,
inpainting, evaluation and fine-tuning all refuse the same bad configs (also those read back
from a checkpoint); `train_lib.train_and_evaluate` calls it before it writes anything into
the workdir. Keys added after a checkpoint was written are optional (read with defaults).
"""
from __future__ import annotations

import math
from typing import Any

from ddgan_jax.core import augment, losses
from ddgan_jax.data import names, training_masks

SCHEDULES = ('cosine', 'constant')
COMPUTE_DTYPES = ('float32', 'bfloat16')  # networks.Networks.compute_dtype
NONFINITE_MODES = ('stop', 'skip', 'off')  # train.on_nonfinite (ddgan_jax/train/nonfinite.py)
# model.disc -> number of 2x downsamplings of its input (ddgan_jax/models/discriminator.py).
DISC_DOWNSAMPLINGS = {'small': 3, 'large': 6}
MAX_TIMESTEPS = 1000  # DDGAN uses 1-8; the schedule is only tested up to this.


class ConfigError(ValueError):
  """A config value that cannot work; the message is one line."""


def _get(config: Any, dotted: str, default: Any = ...) -> Any:
  node = config
  for part in dotted.split('.'):
    try:
      node = node[part]
    except (KeyError, TypeError, AttributeError):
      if default is not ...:
        return default
      raise ConfigError(f'the config has no `{dotted}`; start from configs/default.py '
                        'or one of the configs/ files.') from None
  return node


def _int(config: Any, key: str, lo: int | None = None, hi: int | None = None,
         default: Any = ...) -> int:
  value = _get(config, key, default)
  if isinstance(value, bool) or not isinstance(value, int):
    if isinstance(value, float) and value.is_integer():
      value = int(value)
    else:
      raise ConfigError(f'{key} must be an integer, got {value!r}.')
  if (lo is not None and value < lo) or (hi is not None and value > hi):
    bound = (f'between {lo} and {hi}' if hi is not None else f'>= {lo}')
    raise ConfigError(f'{key}={value} is out of range: it must be {bound}.')
  return value


def _float(config: Any, key: str, lo: float | None = None, hi: float | None = None,
           default: Any = ..., strict_lo: bool = False) -> float:
  value = _get(config, key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    raise ConfigError(f'{key} must be a finite number, got {value!r}.')
  if lo is not None and (value < lo or (strict_lo and value == lo)):
    raise ConfigError(f'{key}={value} is out of range: it must be {">" if strict_lo else ">="} {lo}.')
  if hi is not None and value > hi:
    raise ConfigError(f'{key}={value} is out of range: it must be <= {hi}.')
  return float(value)


def _choice(config: Any, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
  value = _get(config, key, default)
  if value not in choices:
    raise ConfigError(f'unknown {key}={value!r}; expected one of: {", ".join(choices)}.')
  return value


def check_nonfinite(train: Any) -> tuple[str, int]:
  """(train.on_nonfinite, train.max_nonfinite_in_a_row) of a `config.train`, or a ConfigError."""
  config = {'train': train}
  return (_choice(config, 'train.on_nonfinite', NONFINITE_MODES, default='stop'),
          _int(config, 'train.max_nonfinite_in_a_row', 0, default=10))


def check_config(config: Any) -> None:
  """Raises a one-line ConfigError unless `config` describes networks and data that can work.

  Checks names (dataset, crop, discriminator, condition fill, schedule, mask mixture), ranges
  (T, betas, sizes, rates, weights) and the fits between values (resolution vs the depth of
  `model.ch_mult` and of the discriminator). Batch vs devices needs the mesh:
  `sharding.check_batch_size`. One checker per section, in this order; the first bad value
  raises.
  """
  size = _check_data(config)
  _check_model(config, size)
  _check_diffusion(config)
  if 'optim' in config:  # optim and train are optional in inference checkpoints' configs
    _check_optim(config)
  if 'train' in config:
    _check_train(config)
  if _get(config, 'inpaint.enabled', False):
    _check_inpaint(config)


def _check_data(config: Any) -> int:
  """The `data` section; returns data.image_size."""
  _choice(config, 'data.dataset', names.DATASET_NAMES)
  if _get(config, 'data.dataset') == 'folder' and not _get(config, 'data.folder', ''):
    raise ConfigError("data.dataset='folder' needs data.folder=<a folder of images>.")
  size = _int(config, 'data.image_size', 1)
  _int(config, 'data.num_channels', 1)
  _choice(config, 'data.crop', names.CROP_MODES, default='resize')
  return size


def _check_model(config: Any, size: int) -> None:
  """The `model` section, and its fit with data.image_size (`size`): the generator halves the
  resolution len(ch_mult) - 1 times, the discriminator DISC_DOWNSAMPLINGS[disc] times."""
  _choice(config, 'model.compute_dtype', COMPUTE_DTYPES, default='float32')
  _int(config, 'model.nf', 1)
  ch_mult = _get(config, 'model.ch_mult')
  if (not isinstance(ch_mult, (tuple, list)) or not ch_mult
      or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in ch_mult)):
    raise ConfigError(f'model.ch_mult must be a non-empty tuple of positive integers, got {ch_mult!r}.')
  depth = len(ch_mult) - 1
  if size % (2 ** depth):
    raise ConfigError(f'data.image_size={size} does not fit model.ch_mult={tuple(ch_mult)}: '
                      f'{len(ch_mult)} levels halve the resolution {depth} times, so the size '
                      f'must be a multiple of {2 ** depth}; drop levels from ch_mult.')
  _int(config, 'model.num_res_blocks', 1)
  _int(config, 'model.nz', 1)
  _int(config, 'model.z_emb_dim', 1)
  _int(config, 'model.n_mlp', 1)
  _float(config, 'model.dropout', 0.0, 1.0, default=0.0)
  disc = _choice(config, 'model.disc', tuple(DISC_DOWNSAMPLINGS))
  downs = DISC_DOWNSAMPLINGS[disc]
  if size % (2 ** downs):
    raise ConfigError(f"data.image_size={size} does not fit model.disc='{disc}': it halves the "
                      f'resolution {downs} times, so the size must be a multiple of {2 ** downs}.')
  _int(config, 'model.ngf', 1)
  _int(config, 'model.t_emb_dim', 1)


def _check_diffusion(config: Any) -> None:
  _int(config, 'diffusion.num_timesteps', 1, MAX_TIMESTEPS)
  beta_min = _float(config, 'diffusion.beta_min', 0.0, strict_lo=True)
  beta_max = _float(config, 'diffusion.beta_max', 0.0, strict_lo=True)
  if beta_max < beta_min:
    raise ConfigError(f'diffusion.beta_max={beta_max} must be >= diffusion.beta_min={beta_min}.')


def _check_optim(config: Any) -> None:
  _float(config, 'optim.lr_g', 0.0, strict_lo=True)
  _float(config, 'optim.lr_d', 0.0, strict_lo=True)
  _float(config, 'optim.ema_decay', 0.0, 1.0)
  _float(config, 'optim.r1_gamma', 0.0)
  _int(config, 'optim.lazy_reg', 0)
  _choice(config, 'optim.schedule', SCHEDULES, default='cosine')
  _int(config, 'optim.g_frozen_steps', 0, default=0)
  _float(config, 'optim.clean_weight', 0.0, default=0.0)
  d_augment = _get(config, 'optim.d_augment', '')
  try:
    augment.parse_policy(str(d_augment))
  except ValueError as e:
    raise ConfigError(f'optim.d_augment={d_augment!r}: {e}') from None


def _check_train(config: Any) -> None:
  _int(config, 'train.batch_size', 1)
  if _int(config, 'train.num_steps', default=-1) <= 0:
    _float(config, 'train.num_epochs', 0.0, strict_lo=True)
  _int(config, 'train.log_every', 1, default=1)
  _int(config, 'train.ckpt_every', 1, default=1)
  check_nonfinite(config['train'])
  _float(config, 'train.d_health.min_logit_gap', default=0.1)
  _int(config, 'train.d_health.windows', 0, default=3)
  _float(config, 'train.d_health.min_r1', 0.0, default=1e-5)


def _check_inpaint(config: Any) -> None:
  """The `inpaint` section of a mask-conditional model (inpaint.enabled)."""
  _choice(config, 'inpaint.cond_fill', losses.COND_FILLS, default='zeros')
  _float(config, 'inpaint.p_uncond', 0.0, 1.0, default=0.0)
  _float(config, 'inpaint.rec_weight', 0.0, default=0.0)
  _float(config, 'inpaint.perceptual_weight', 0.0, default=0.0)
  _float(config, 'inpaint.adv_weight', 0.0, default=1.0)
  mixture = _get(config, 'inpaint.mask_mixture', None)
  if mixture is not None:
    try:
      training_masks.validate_train_mixture(dict(mixture))
    except ValueError as e:
      raise ConfigError(f"inpaint.mask_mixture: {str(e).removeprefix('mask mixture: ')}") from None
