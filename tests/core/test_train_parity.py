"""One official training iteration (train/* in parity_*.npz), reproduced by our loss functions.

Fed the recorded t, noises and z, our D loss (real + fake), R1 penalty and G loss must give the
official values, and their parameter gradients must equal the official `.grad` tensors taken
right before optimizer.step(). Gradients are compared per tensor relative to the tensor's
largest entry, floored at 1e-3 of the model's largest gradient entry: the attention key biases
(NIN_1.b) get gradients of ~1e-9, pure rounding noise, because softmax is invariant to them.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.core import diffusion, losses
from ddgan_jax.models import convert

REL_TOL = 1e-4


@pytest.fixture(scope='module')
def official(reference_dir):
  path = reference_dir / 'parity_tiny_a.npz'
  data = dict(np.load(path))
  with open(path.with_suffix('.json')) as f:
    meta = json.load(f)
  if meta.get('train_npz'):
    data.update(np.load(reference_dir / meta['train_npz']))
  return data, meta


def _sub(data, prefix):
  return {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}


def _nhwc(data, key):
  return jnp.asarray(data[key].transpose(0, 2, 3, 1))


def _draws(data, phase):
  return losses.Draws(
      t=jnp.asarray(data[f'train/t_{phase}'], jnp.int32),
      noise_step=_nhwc(data, f'train/noise_pair_step_{phase}'),
      noise_q=_nhwc(data, f'train/noise_q_{phase}'),
      z=jnp.asarray(data[f'train/z_{phase}']),
      noise_post=_nhwc(data, f'train/noise_post_{phase}'))


def _max_rel_error(ours, ref):
  floor = 1e-3 * max(float(jnp.max(jnp.abs(b))) for b in jax.tree.leaves(ref))
  errs = jax.tree.map(
      lambda a, b: float(jnp.max(jnp.abs(a - b)) / max(float(jnp.max(jnp.abs(b))), floor)), ours, ref)
  flat = jax.tree_util.tree_flatten_with_path(errs)[0]
  path, worst = max(flat, key=lambda kv: kv[1])
  return worst, jax.tree_util.keystr(path), len(flat)


@pytest.fixture(scope='module')
def setup(official):
  with jax.default_matmul_precision('highest'):  # only for this module's tests
    yield _setup(official)


def _setup(official):
  data, meta = official
  it = meta['training_iteration']
  gen = convert.generator_from_official_args(meta['generator']['args'])
  disc = convert.discriminator_from_state_dict(_sub(data, 'D/'), 'small')
  params_g = convert.convert_generator(_sub(data, 'G/'), gen)
  params_d = convert.convert_discriminator(_sub(data, 'D/'), disc)
  kw = dict(apply_g=lambda p, x, t, z, c: gen.apply({'params': p}, x, t, z, c),
            apply_d=lambda p, x, t, xc, c: disc.apply({'params': p}, x, t, xc, c).reshape(-1),
            schedule=diffusion.make_schedule(it['num_timesteps']))
  return data, meta, gen, disc, params_g, params_d, kw


def test_discriminator_step_matches_official(setup):
  data, meta, _, disc, params_g, params_d, kw = setup
  it = meta['training_iteration']
  assert it['global_step'] % it['lazy_reg'] == 0, 'the recorded step applies R1'
  x0 = _nhwc(data, 'train/real_data')
  draws = _draws(data, 'd')

  (_, aux), grads = jax.value_and_grad(losses.discriminator_loss, has_aux=True)(
      params_d, params_g, x0, draws, **kw)
  r1, grads_r1 = jax.value_and_grad(losses.r1_penalty)(
      params_d, x0, draws, apply_d=kw['apply_d'], schedule=kw['schedule'], r1_gamma=it['r1_gamma'])
  grads = jax.tree.map(jnp.add, grads, grads_r1)

  np.testing.assert_allclose(aux['d_real'], data['train/errD_real'], rtol=REL_TOL)
  np.testing.assert_allclose(aux['d_fake'], data['train/errD_fake'], rtol=REL_TOL)
  np.testing.assert_allclose(aux['d_real'] + aux['d_fake'], data['train/errD'], rtol=REL_TOL)
  np.testing.assert_allclose(r1, data['train/grad_penalty'], rtol=REL_TOL)

  ref = convert.convert_discriminator(_sub(data, 'grad_D_step/'), disc)
  worst, where, n = _max_rel_error(grads, ref)
  assert n == len(_sub(data, 'grad_D_step/'))
  assert worst < REL_TOL, f'D gradient {where}: relative error {worst:.2e}'


def test_discriminator_intermediates_of_the_iteration(setup):
  """x0' and x_pos of the D phase, and the per-sample logits on real and fake pairs."""
  data, _, _, _, params_g, params_d, kw = setup
  x0 = _nhwc(data, 'train/real_data')
  draws = _draws(data, 'd')
  x_t, x_tp1 = diffusion.q_sample_pairs(kw['schedule'], x0, draws.t, draws.noise_q, draws.noise_step)
  x0_pred, x_pos = losses.fake_pair(params_g, kw['apply_g'], kw['schedule'], x_tp1, draws, x0,
                                    None, None)
  np.testing.assert_allclose(x0_pred, _nhwc(data, 'train/d_x_0_predict'), atol=1e-4)
  np.testing.assert_allclose(x_pos, _nhwc(data, 'train/d_x_pos_sample'), atol=1e-4)
  np.testing.assert_allclose(kw['apply_d'](params_d, x_t, draws.t, x_tp1, None),
                             data['train/D_real'], atol=1e-4)
  np.testing.assert_allclose(kw['apply_d'](params_d, x_pos, draws.t, x_tp1, None),
                             data['train/D_fake'], atol=1e-4)


def test_generator_step_matches_official(setup):
  data, _, gen, _, params_g, params_d, kw = setup
  x0 = _nhwc(data, 'train/real_data')
  draws = _draws(data, 'g')
  (loss, _), grads = jax.value_and_grad(losses.generator_loss, has_aux=True)(
      params_g, params_d, x0, draws, **kw)
  np.testing.assert_allclose(loss, data['train/errG'], rtol=REL_TOL)

  _, x_tp1 = diffusion.q_sample_pairs(kw['schedule'], x0, draws.t, draws.noise_q, draws.noise_step)
  x0_pred, x_pos = losses.fake_pair(params_g, kw['apply_g'], kw['schedule'], x_tp1, draws, x0,
                                    None, None)
  np.testing.assert_allclose(x0_pred, _nhwc(data, 'train/g_x_0_predict'), atol=1e-4)
  np.testing.assert_allclose(x_pos, _nhwc(data, 'train/g_x_pos_sample'), atol=1e-4)
  np.testing.assert_allclose(kw['apply_d'](params_d, x_pos, draws.t, x_tp1, None),
                             data['train/G_out'], atol=1e-4)

  ref = convert.convert_generator(_sub(data, 'grad_G_step/'), gen)
  worst, where, n = _max_rel_error(grads, ref)
  assert n == len(_sub(data, 'grad_G_step/'))
  assert worst < REL_TOL, f'G gradient {where}: relative error {worst:.2e}'
