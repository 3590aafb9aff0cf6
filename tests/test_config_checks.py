"""The typed config sections (ddgan_jax/config_checks.py) against configs/default.py: the same
keys and defaults, defaults for what old checkpoints' configs lack, frozen, one-line errors."""
import dataclasses
import re

import pytest

from configs import default, tiny, tiny_inpaint
from ddgan_jax import config_checks

SECTIONS = {'data': config_checks.DataConfig, 'model': config_checks.ModelConfig,
            'diffusion': config_checks.DiffusionConfig, 'optim': config_checks.OptimConfig,
            'train': config_checks.TrainConfig, 'inpaint': config_checks.InpaintConfig}


def _default(spec: dataclasses.Field):
  if spec.default_factory is not dataclasses.MISSING:
    return spec.default_factory()
  return spec.default


def _same_value(ours, theirs) -> bool:
  """A dataclass default vs the ConfigDict value (a subsection: field by field; a mixture:
  (name, weight) pairs vs a mapping)."""
  if dataclasses.is_dataclass(ours):
    return set(theirs.keys()) == {f.name for f in dataclasses.fields(ours)} and all(
        _same_value(getattr(ours, k), v) for k, v in theirs.items())
  if hasattr(theirs, 'items'):
    return dict(ours) == dict(theirs)
  return type(ours) is type(theirs) and ours == theirs


@pytest.mark.parametrize('name', SECTIONS)
def test_every_default_key_is_a_field_with_the_same_default(name):
  cls, section = SECTIONS[name], default.get_config()[name]
  fields = {f.name: f for f in dataclasses.fields(cls)}
  assert set(section.keys()) == set(fields), (name, set(section.keys()) ^ set(fields))
  for key, spec in fields.items():
    if _default(spec) is not dataclasses.MISSING:
      assert _same_value(_default(spec), section[key]), (name, key, _default(spec), section[key])


def test_every_section_that_the_library_reads_is_typed():
  assert set(default.get_config().keys()) - set(SECTIONS) == {'sample'}
  assert [f.name for f in dataclasses.fields(config_checks.Config)] == list(SECTIONS)


def test_a_config_without_optional_keys_gets_the_defaults():
  """What a config written before these keys existed (a checkpoint's config.json) reads."""
  config = tiny_inpaint.get_config()
  for section, key in (('data', 'crop'), ('data', 'num_train_examples'), ('model', 'remat'),
                       ('model', 'compute_dtype'), ('optim', 'clean_weight'),
                       ('optim', 'd_augment'), ('train', 'd_health'), ('train', 'init_from'),
                       ('inpaint', 'cond_fill'), ('inpaint', 'mask_mixture')):
    del config[section][key]
  typed = config_checks.check_config(config)
  assert (typed.data.crop, typed.data.num_train_examples) == ('resize', -1)
  assert (typed.model.remat, typed.model.compute_dtype) == (False, 'float32')
  assert (typed.optim.clean_weight, typed.optim.d_augment) == (0.0, '')
  assert typed.train.d_health == config_checks.DHealthConfig(0.1, 3, 1e-5)
  assert typed.train.init_from == ''
  assert typed.inpaint.cond_fill == 'zeros'
  assert typed.inpaint.mask_mixture == config_checks.DEFAULT_MASK_MIXTURE
  # An inference checkpoint's config: no optim, no train; nor an inpaint section.
  for section in ('optim', 'train', 'inpaint'):
    del config[section]
  typed = config_checks.check_config(config)
  assert typed.optim is None and typed.train is None
  assert typed.inpaint == config_checks.InpaintConfig()
  # A stored config.json's train section, or none at all.
  assert config_checks.DHealthConfig.from_train({'d_health': {'windows': 0}}).windows == 0
  assert config_checks.DHealthConfig.from_train({}) == config_checks.DHealthConfig()
  # A stored section's value, unchecked, for comparing an old config.json with a new config.
  assert config_checks.InpaintConfig.stored({}, 'cond_fill') == 'zeros'
  assert config_checks.InpaintConfig.stored({'cond_fill': 'blur'}, 'cond_fill') == 'blur'


def test_sections_keep_the_values_and_are_frozen():
  config = tiny.get_config()
  typed = config_checks.check_config(config)
  assert typed.data.image_size == config.data.image_size == 16
  assert typed.model.ch_mult == tuple(config.model.ch_mult)
  assert config_checks.DataConfig.from_section(typed.data) is typed.data
  with pytest.raises(dataclasses.FrozenInstanceError):
    typed.data.crop = 'center'
  with pytest.raises(dataclasses.FrozenInstanceError):
    typed.train.d_health.windows = 0
  with pytest.raises(dataclasses.FrozenInstanceError):
    typed.optim = None


@pytest.mark.parametrize('section, key, value, message', [
    ('data', 'crop', 'zoom', "unknown data.crop='zoom'; expected one of: resize, center, random."),
    ('data', 'image_size', 0, 'data.image_size=0 is out of range: it must be >= 1.'),
    ('model', 'nf', 'wide', "model.nf must be an integer, got 'wide'."),
    ('diffusion', 'beta_min', float('nan'), 'diffusion.beta_min must be a finite number, got nan.'),
    ('optim', 'ema_decay', 2.0, 'optim.ema_decay=2.0 is out of range: it must be <= 1.0.'),
    ('train', 'on_nonfinite', 'never',
     "unknown train.on_nonfinite='never'; expected one of: stop, skip, off."),
    ('inpaint', 'p_uncond', -0.5, 'inpaint.p_uncond=-0.5 is out of range: it must be >= 0.0.'),
])
def test_a_bad_value_is_one_line(section, key, value, message):
  config = tiny_inpaint.get_config()
  del config[section][key]  # (a ConfigDict keeps each field's type)
  config[section][key] = value
  with pytest.raises(config_checks.ConfigError) as raised:
    config_checks.check_config(config)
  assert str(raised.value) == message
  assert '\n' not in message
  with pytest.raises(config_checks.ConfigError, match=f'^{re.escape(message)}$'):
    SECTIONS[section].from_section(config[section])  # a section alone says the same


def test_a_missing_required_key_and_a_bad_subsection_value():
  config = tiny.get_config()
  del config.model['nz']
  with pytest.raises(config_checks.ConfigError, match='^the config has no `model.nz`; start'):
    config_checks.check_config(config)
  config = tiny.get_config()
  config.train.d_health.min_r1 = -1.0
  with pytest.raises(config_checks.ConfigError,
                     match=r'^train\.d_health\.min_r1=-1\.0 is out of range: it must be >= 0\.0\.$'):
    config_checks.check_config(config)
  config = tiny.get_config()
  config.train.num_steps = -1  # then num_epochs counts, and is required
  del config.train['num_epochs']
  with pytest.raises(config_checks.ConfigError, match='has no `train.num_epochs`'):
    config_checks.check_config(config)
  config.train.num_steps = 5
  assert config_checks.check_config(config).train.num_epochs == 1800
  with pytest.raises(config_checks.ConfigError, match="unknown model.disc='huge'"):
    config_checks.ModelConfig(**{**dataclasses.asdict(config_checks.check_config(config).model),
                                 'disc': 'huge'})


def test_the_gan_recipe_phases_differ_only_in_the_clean_pairs_and_the_run_length():
  # The shipped model's second phase resumes the first's workdir: everything but whether the
  # unconditional samples get clean pairs, G's warm-up and the step count must stay the same.
  from configs import fashion_mnist_inpaint_gan as gan
  flat = lambda c: {(s, k): v for s, sec in c.to_dict().items() for k, v in sec.items()}
  warmup, main = flat(gan.get_config()), flat(gan.get_config('main'))
  changed = {k for k in warmup if warmup[k] != main[k]}
  assert changed == {('optim', 'clean_uncond'), ('optim', 'g_frozen_steps'),
                     ('train', 'num_steps')}
  assert warmup[('optim', 'clean_uncond')] and not main[('optim', 'clean_uncond')]
  assert main[('train', 'num_steps')] > warmup[('train', 'num_steps')]
  config_checks.check_config(gan.get_config('main'))
  with pytest.raises(ValueError, match='unknown phase'):
    gan.get_config('fast')
