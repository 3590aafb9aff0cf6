"""Auxiliary inpainting terms: float64 references, weight 0 = the official objective, and off
for every unconditional config."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny_inpaint
from ddgan_jax.core import losses
from ddgan_jax.data import training_masks
from ddgan_jax.models import networks
from ddgan_jax.train import step as step_lib

UNCONDITIONAL_CONFIGS = ('default', 'cifar10', 'celebahq_256', 'lsun_church', 'fashion_mnist', 'tiny')


@pytest.mark.parametrize('name', UNCONDITIONAL_CONFIGS)
def test_unconditional_configs_have_no_auxiliary_terms(name):
  config = importlib.import_module(f'configs.{name}').get_config()
  assert not config.inpaint.enabled
  nets = networks.build_networks(config)
  aux, fn = step_lib.aux_terms(config, nets)
  assert aux == losses.AuxWeights(0.0, 0.0) and fn is None
  assert nets.cond_fill == 'zeros'


def test_reconstruction_l1_matches_float64_and_skips_unconditional_samples():
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  x0 = np.asarray(jax.random.uniform(k1, (4, 8, 8, 3), minval=-1, maxval=1), np.float64)
  pred = np.asarray(jax.random.uniform(k2, (4, 8, 8, 3), minval=-1, maxval=1), np.float64)
  m = np.asarray(training_masks.sample_training_masks(k3, 4, 8, (('box', 1.0),)), np.float64)
  m[3] = 1.0  # an unconditional sample
  w = m[:3]
  want = (np.abs(pred[:3] - x0[:3]).mean(-1, keepdims=True) * w).sum() / w.sum()
  got = losses.reconstruction_l1(jnp.asarray(pred, jnp.float32), jnp.asarray(x0, jnp.float32),
                                 jnp.asarray(m, jnp.float32))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  # Only unconditional samples: no term at all.
  assert float(losses.reconstruction_l1(jnp.asarray(pred), jnp.asarray(x0), jnp.ones_like(jnp.asarray(m)))) == 0.0


@pytest.fixture(scope='module')
def tiny_setup():
  config = tiny_inpaint.get_config()
  nets = networks.build_networks(config)
  kg, kd, kx, km, kdr = jax.random.split(jax.random.PRNGKey(1), 5)
  params_g, params_d = jax.jit(nets.init_generator)(kg), jax.jit(nets.init_discriminator)(kd)
  x0 = jax.random.uniform(kx, nets.image_shape(4), minval=-1, maxval=1)
  m = training_masks.sample_training_masks(km, 4, nets.image_size, (('medium', 1.0),))
  draws = losses.draw(kdr, x0.shape, nets.nz, nets.num_timesteps)
  kw = dict(apply_g=nets.apply_g, apply_d=nets.apply_d, schedule=nets.schedule, mask=m)
  return params_g, params_d, x0, draws, kw


def test_weights_add_exactly_their_terms(tiny_setup):
  params_g, params_d, x0, draws, kw = tiny_setup
  base, base_m = losses.generator_loss(params_g, params_d, x0, draws, **kw)
  assert set(base_m) == {'g_loss', 'g_logit'}
  fake_lpips = lambda a, b: jnp.mean((a - b) ** 2, axis=(1, 2, 3))
  total, m = losses.generator_loss(params_g, params_d, x0, draws, aux=losses.AuxWeights(2.0, 3.0),
                                   perceptual_fn=fake_lpips, **kw)
  np.testing.assert_allclose(float(m['g_loss']), float(base), rtol=1e-6)
  np.testing.assert_allclose(float(total), float(base) + 2.0 * float(m['rec_l1'])
                             + 3.0 * float(m['perceptual']), rtol=1e-6)
  assert float(m['rec_l1']) > 0 and float(m['perceptual']) > 0
  with pytest.raises(ValueError, match='perceptual_fn'):
    losses.generator_loss(params_g, params_d, x0, draws, aux=losses.AuxWeights(0.0, 1.0), **kw)


def test_unknown_cond_fill_is_refused():
  with pytest.raises(ValueError, match='cond_fill must be one of'):
    losses.inpaint_condition(jnp.zeros((1, 4, 4, 1)), jnp.ones((1, 4, 4, 1)), 'blur')
