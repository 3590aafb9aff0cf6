"""Configs typed at the boundary: one frozen dataclass per config section, which checks itself.

The ml_collections files in configs/ stay the user interface (`--config.x=y`); the library
turns each section into its dataclass once (`DataConfig.from_section(config.data)`, or
`check_config(config)` for all of them) and reads its fields. A dataclass holds the defaults of
the keys that a config may lack (those added after old checkpoints' `config.json` were written:
configs are read back from checkpoints) and the allowed values, and raises a one-line
`ConfigError` (a ValueError) naming the first bad value and how to fix it. Keys that nothing
checks are kept as given.

`networks.build_networks` calls `check_config`, so training, sampling, inpainting, evaluation
and fine-tuning all refuse the same bad configs (also those read back from a checkpoint);
`train_lib.train_and_evaluate` calls it before it writes anything into the workdir.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from ddgan_jax.core import augment, losses
from ddgan_jax.data import names, training_masks

SCHEDULES = ('cosine', 'constant')
COMPUTE_DTYPES = ('float32', 'bfloat16')  # networks.Networks.compute_dtype
NONFINITE_MODES = ('stop', 'skip', 'off')  # train.on_nonfinite (ddgan_jax/train/nonfinite.py)
# model.disc -> number of 2x downsamplings of its input (ddgan_jax/models/discriminator.py).
DISC_DOWNSAMPLINGS = {'small': 3, 'large': 6}
MAX_TIMESTEPS = 1000  # DDGAN uses 1-8; the schedule is only tested up to this.
# inpaint.mask_mixture of configs/default.py: (name, weight) pairs, in order.
DEFAULT_MASK_MIXTURE = (('thick', 0.0), ('medium', 1.0), ('thin', 0.0), ('box', 1.0),
                        ('brush', 1.0), ('noise', 0.0))


class ConfigError(ValueError):
  """A config value that cannot work; the message is one line."""


class _Absent:
  """A key the section does not have (`from_section` passes it; the section fills it in)."""

  def __repr__(self) -> str:
    return '<absent>'


ABSENT = _Absent()


def _read(section: Any, key: str) -> Any:
  """section[key] of a ConfigDict, a dict (a stored config.json) or ABSENT, else ABSENT."""
  try:
    return section[key]
  except (KeyError, TypeError, AttributeError):
    return ABSENT


@dataclasses.dataclass(frozen=True)
class _Section:
  """A config section's fields; its `__post_init__` checks them in order, the first bad value
  raising, and replaces each ABSENT field by its default (a field without one is required)."""
  NAME: ClassVar[str] = ''

  @classmethod
  def from_section(cls, section: Any, **init_vars: Any):
    """The typed section of a ConfigDict or dict section (one already typed as it is)."""
    if isinstance(section, cls):
      return section
    return cls(**{f.name: _read(section, f.name) for f in dataclasses.fields(cls)}, **init_vars)

  @classmethod
  def stored(cls, section: Any, field: str) -> Any:
    """`field` of a stored section (a config.json's) as it is, unchecked, or its default
    where the section lacks it: for comparing old configs with new ones."""
    value = _read(section, field)
    return cls._default(field) if value is ABSENT else value

  @classmethod
  def _default(cls, field: str) -> Any:
    """The field's default, or ABSENT where it has none (a required key)."""
    spec = cls.__dataclass_fields__[field]
    if spec.default_factory is not dataclasses.MISSING:
      return spec.default_factory()
    return ABSENT if spec.default is dataclasses.MISSING else spec.default

  def _key(self, field: str) -> str:
    return f'{self.NAME}.{field}'

  def _value(self, field: str, required: bool = False) -> Any:
    """The field's value; an ABSENT one becomes its default, or raises when it has none."""
    value = getattr(self, field)
    if value is ABSENT:
      value = self._default(field)
      if required or value is ABSENT:
        raise ConfigError(f'the config has no `{self._key(field)}`; start from '
                          'configs/default.py or one of the configs/ files.')
      object.__setattr__(self, field, value)
    return value

  def _fill(self) -> None:
    """Defaults for the fields that the checks did not reach."""
    for spec in dataclasses.fields(self):
      self._value(spec.name)

  def _int(self, field: str, lo: int | None = None, hi: int | None = None,
           required: bool = False) -> int:
    key, value = self._key(field), self._value(field, required)
    if isinstance(value, bool) or not isinstance(value, int):
      if isinstance(value, float) and value.is_integer():
        value = int(value)
      else:
        raise ConfigError(f'{key} must be an integer, got {value!r}.')
    if (lo is not None and value < lo) or (hi is not None and value > hi):
      bound = (f'between {lo} and {hi}' if hi is not None else f'>= {lo}')
      raise ConfigError(f'{key}={value} is out of range: it must be {bound}.')
    object.__setattr__(self, field, value)
    return value

  def _float(self, field: str, lo: float | None = None, hi: float | None = None,
             strict_lo: bool = False, required: bool = False) -> float:
    key, value = self._key(field), self._value(field, required)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
        or not math.isfinite(value)):
      raise ConfigError(f'{key} must be a finite number, got {value!r}.')
    if lo is not None and (value < lo or (strict_lo and value == lo)):
      raise ConfigError(f'{key}={value} is out of range: it must be '
                        f'{">" if strict_lo else ">="} {lo}.')
    if hi is not None and value > hi:
      raise ConfigError(f'{key}={value} is out of range: it must be <= {hi}.')
    object.__setattr__(self, field, float(value))
    return float(value)

  def _choice(self, field: str, choices: tuple[str, ...]) -> str:
    value = self._value(field)
    if value not in choices:
      raise ConfigError(f'unknown {self._key(field)}={value!r}; expected one of: '
                        f'{", ".join(choices)}.')
    return value


@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
  """`config.data`: the dataset and how its images are read."""
  NAME: ClassVar[str] = 'data'
  dataset: str
  image_size: int
  num_channels: int
  data_dir: str = ''          # tfds data_dir ('' = tfds default)
  manual_dir: str = ''        # tfds manual_dir (imagenet2012 tars)
  folder: str = ''            # the image folder of dataset='folder'
  crop: str = 'resize'
  random_flip: bool = True
  train_split: str = 'train'
  eval_split: str = 'test'
  shuffle_buffer: int = 10_000
  num_train_examples: int = -1  # -1: the dataset's own count

  def __post_init__(self) -> None:
    if self._choice('dataset', names.DATASET_NAMES) == 'folder' and not self._value('folder'):
      raise ConfigError("data.dataset='folder' needs data.folder=<a folder of images>.")
    self._int('image_size', 1)
    self._int('num_channels', 1)
    self._choice('crop', names.CROP_MODES)
    self._fill()


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Section):
  """`config.model`, and (given `image_size`, data.image_size) its fit with the resolution:
  the generator halves it len(ch_mult) - 1 times, the discriminator DISC_DOWNSAMPLINGS[disc]
  times."""
  NAME: ClassVar[str] = 'model'
  nf: int
  ch_mult: tuple[int, ...]
  num_res_blocks: int
  nz: int
  z_emb_dim: int
  n_mlp: int
  disc: str
  ngf: int
  t_emb_dim: int
  attn_resolutions: tuple[int, ...] = (16,)
  dropout: float = 0.0
  fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
  skip_rescale: bool = True
  resamp_with_conv: bool = True
  centered: bool = True
  not_use_tanh: bool = False
  compute_dtype: str = 'float32'
  remat: bool = False
  image_size: dataclasses.InitVar[int | None] = None

  def __post_init__(self, image_size: int | None) -> None:
    self._choice('compute_dtype', COMPUTE_DTYPES)
    self._int('nf', 1)
    ch_mult = self._value('ch_mult')
    if (not isinstance(ch_mult, (tuple, list)) or not ch_mult
        or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in ch_mult)):
      raise ConfigError('model.ch_mult must be a non-empty tuple of positive integers, '
                        f'got {ch_mult!r}.')
    object.__setattr__(self, 'ch_mult', tuple(ch_mult))
    depth = len(ch_mult) - 1
    if image_size is not None and image_size % (2 ** depth):
      raise ConfigError(f'data.image_size={image_size} does not fit model.ch_mult='
                        f'{tuple(ch_mult)}: {len(ch_mult)} levels halve the resolution {depth} '
                        f'times, so the size must be a multiple of {2 ** depth}; drop levels '
                        'from ch_mult.')
    for field in ('num_res_blocks', 'nz', 'z_emb_dim', 'n_mlp'):
      self._int(field, 1)
    self._float('dropout', 0.0, 1.0)
    disc = self._choice('disc', tuple(DISC_DOWNSAMPLINGS))
    downs = DISC_DOWNSAMPLINGS[disc]
    if image_size is not None and image_size % (2 ** downs):
      raise ConfigError(f"data.image_size={image_size} does not fit model.disc='{disc}': it "
                        f'halves the resolution {downs} times, so the size must be a multiple '
                        f'of {2 ** downs}.')
    self._int('ngf', 1)
    self._int('t_emb_dim', 1)
    self._fill()


@dataclasses.dataclass(frozen=True)
class DiffusionConfig(_Section):
  """`config.diffusion`: T and the noise schedule."""
  NAME: ClassVar[str] = 'diffusion'
  num_timesteps: int
  beta_min: float
  beta_max: float
  use_geometric: bool = False

  def __post_init__(self) -> None:
    self._int('num_timesteps', 1, MAX_TIMESTEPS)
    beta_min = self._float('beta_min', 0.0, strict_lo=True)
    beta_max = self._float('beta_max', 0.0, strict_lo=True)
    if beta_max < beta_min:
      raise ConfigError(f'diffusion.beta_max={beta_max} must be >= '
                        f'diffusion.beta_min={beta_min}.')
    self._fill()


@dataclasses.dataclass(frozen=True)
class OptimConfig(_Section):
  """`config.optim`: Adam, its learning-rate schedule, R1, the EMA and D's options."""
  NAME: ClassVar[str] = 'optim'
  lr_g: float
  lr_d: float
  ema_decay: float
  r1_gamma: float
  lazy_reg: int               # R1 every lazy_reg steps (0: every step)
  beta1: float = 0.5
  beta2: float = 0.9
  eps: float = 1e-8
  lr_min: float = 1e-5        # CosineAnnealingLR eta_min
  schedule: str = 'cosine'
  d_augment: str = ''         # augment.parse_policy's policy; '' = the official D input
  g_frozen_steps: int = 0     # G's learning rate is 0 for these first steps
  clean_weight: float = 0.0   # > 0: D also judges clean t = 0 pairs (docs/discriminator.md)
  clean_uncond: bool = True   # the clean pairs include the unconditional (all-ones mask) samples

  def __post_init__(self) -> None:
    self._float('lr_g', 0.0, strict_lo=True)
    self._float('lr_d', 0.0, strict_lo=True)
    self._float('ema_decay', 0.0, 1.0)
    self._float('r1_gamma', 0.0)
    self._int('lazy_reg', 0)
    self._choice('schedule', SCHEDULES)
    self._int('g_frozen_steps', 0)
    self._float('clean_weight', 0.0)
    if not isinstance(self._value('clean_uncond'), bool):
      raise ConfigError(f'optim.clean_uncond must be True or False, got {self.clean_uncond!r}.')
    d_augment = self._value('d_augment')
    try:
      augment.parse_policy(str(d_augment))
    except ValueError as e:
      raise ConfigError(f'optim.d_augment={d_augment!r}: {e}') from None
    self._fill()


@dataclasses.dataclass(frozen=True)
class DHealthConfig(_Section):
  """`config.train.d_health` (ddgan_jax/train/d_health.py): a log window whose logit gap is
  below min_logit_gap, or whose R1 is below min_r1, counts as D at chance; `windows` such
  windows in a row print a warning (0: never)."""
  NAME: ClassVar[str] = 'train.d_health'
  min_logit_gap: float = 0.1
  windows: int = 3
  min_r1: float = 1e-5

  def __post_init__(self) -> None:
    self._float('min_logit_gap')
    self._int('windows', 0)
    self._float('min_r1', 0.0)

  @classmethod
  def from_train(cls, train: Any) -> 'DHealthConfig':
    """The `d_health` of a `config.train` section (or of a stored config.json's `train`)."""
    return cls.from_section(_read(train, 'd_health'))


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Section):
  """`config.train`: the run's length, logging, checkpoints, and what a non-finite step does
  (ddgan_jax/train/nonfinite.py). num_epochs is required unless num_steps > 0."""
  NAME: ClassVar[str] = 'train'
  batch_size: int             # the global batch, split over all devices
  num_epochs: float = 1800
  num_steps: int = -1         # > 0 overrides num_epochs
  seed: int = 0
  log_every: int = 100
  ckpt_every: int = 5000
  keep_checkpoints: int = 3
  sample_every: int = 10_000
  num_sample_images: int = 64
  max_time_minutes: float = -1.0  # > 0: stop (with a checkpoint) after this long
  init_from: str = ''         # a checkpoint whose EMA generator starts a new run
  on_nonfinite: str = 'stop'
  max_nonfinite_in_a_row: int = 10
  d_health: DHealthConfig = dataclasses.field(default_factory=DHealthConfig)

  def __post_init__(self) -> None:
    self._int('batch_size', 1)
    if self._int('num_steps') <= 0:
      self._float('num_epochs', 0.0, strict_lo=True, required=True)
    self._int('log_every', 1)
    self._int('ckpt_every', 1)
    self._choice('on_nonfinite', NONFINITE_MODES)
    self._int('max_nonfinite_in_a_row', 0)
    object.__setattr__(self, 'd_health', DHealthConfig.from_section(self.d_health))
    self._fill()


@dataclasses.dataclass(frozen=True)
class InpaintConfig(_Section):
  """`config.inpaint`: mask-conditional training (SPEC section 4). Checked only when
  `enabled`: the other keys of an unconditional model's config are kept as given."""
  NAME: ClassVar[str] = 'inpaint'
  enabled: bool = False
  p_uncond: float = 0.1       # share of all-ones masks
  cond_fill: str = 'zeros'    # losses.COND_FILLS: what the condition holds in the hole
  rec_weight: float = 0.0     # L1 inside the hole
  perceptual_weight: float = 0.0  # LPIPS
  adv_weight: float = 1.0     # the adversarial term
  mask_mixture: tuple[tuple[str, float], ...] | None = DEFAULT_MASK_MIXTURE  # (name, weight)

  def __post_init__(self) -> None:
    object.__setattr__(self, 'enabled', bool(self._value('enabled')))
    if self.enabled:
      self._choice('cond_fill', losses.COND_FILLS)
      self._float('p_uncond', 0.0, 1.0)
      for field in ('rec_weight', 'perceptual_weight', 'adv_weight'):
        self._float(field, 0.0)
      mixture = self._value('mask_mixture')
      if mixture is not None:
        try:
          training_masks.validate_train_mixture(dict(mixture))
        except ValueError as e:
          raise ConfigError('inpaint.mask_mixture: '
                            f"{str(e).removeprefix('mask mixture: ')}") from None
    mixture = self._value('mask_mixture')
    if hasattr(mixture, 'items'):
      object.__setattr__(self, 'mask_mixture', tuple(dict(mixture).items()))
    self._fill()


@dataclasses.dataclass(frozen=True)
class Config:
  """A whole config, typed: optim and train are None where the config has none (inference
  checkpoints' configs)."""
  data: DataConfig
  model: ModelConfig
  diffusion: DiffusionConfig
  optim: OptimConfig | None
  train: TrainConfig | None
  inpaint: InpaintConfig


def check_config(config: Any) -> Config:
  """The typed `config`, or a one-line ConfigError unless it describes networks and data
  that can work.

  Checks names (dataset, crop, discriminator, condition fill, schedule, mask mixture), ranges
  (T, betas, sizes, rates, weights) and the fits between values (resolution vs the depth of
  `model.ch_mult` and of the discriminator). Batch vs devices needs the mesh:
  `sharding.check_batch_size`. One section after the other, in this order; the first bad
  value raises.
  """
  data = DataConfig.from_section(_read(config, 'data'))
  return Config(
      data=data,
      model=ModelConfig.from_section(_read(config, 'model'), image_size=data.image_size),
      diffusion=DiffusionConfig.from_section(_read(config, 'diffusion')),
      # optim and train are optional in inference checkpoints' configs
      optim=OptimConfig.from_section(config['optim']) if 'optim' in config else None,
      train=TrainConfig.from_section(config['train']) if 'train' in config else None,
      inpaint=InpaintConfig.from_section(_read(config, 'inpaint')))
