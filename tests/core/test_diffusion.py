"""Diffusion math against float64 numpy and the official values in ddgan_schedule.json."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.core import diffusion

RTOL = 1e-6


@pytest.fixture(scope='module')
def official(reference_dir):
  with open(reference_dir / 'ddgan_schedule.json') as f:
    return json.load(f)


def nhwc(x):
  return jnp.asarray(np.asarray(x, np.float32).transpose(0, 2, 3, 1))


def assert_close_nchw(ours, ref, rtol=RTOL, atol=1e-6):
  np.testing.assert_allclose(np.asarray(ours).transpose(0, 3, 1, 2), np.asarray(ref, np.float32),
                             rtol=rtol, atol=atol)


def test_reference_covers_several_T(official):
  assert sorted(int(k) for k in official['schedules']) == [1, 2, 4, 8]


@pytest.mark.parametrize('T', [1, 2, 4, 8])
def test_schedule_arrays_match_official(official, T):
  ref = official['schedules'][str(T)]
  sched = diffusion.make_schedule(T)
  np.testing.assert_allclose(diffusion.time_schedule(T), ref['get_time_schedule']['t'], rtol=1e-12)
  np.testing.assert_allclose(diffusion.betas_schedule(T), ref['get_sigma_schedule']['betas'], rtol=RTOL)
  dc = ref['Diffusion_Coefficients']
  for name in ('sigmas', 'a_s', 'a_s_cum', 'sigmas_cum'):
    np.testing.assert_allclose(getattr(sched, name), dc[name], rtol=RTOL, atol=1e-7, err_msg=name)
  pc = ref['Posterior_Coefficients']
  for name in ('posterior_variance', 'posterior_log_variance_clipped', 'posterior_mean_coef1',
               'posterior_mean_coef2'):
    np.testing.assert_allclose(getattr(sched, name), pc[name], rtol=RTOL, atol=1e-7, err_msg=name)
  assert sched.num_timesteps == T
  assert sched.a_s.shape == (T + 1,) and sched.posterior_variance.shape == (T,)


def test_betas_T4_published_values():
  betas = diffusion.betas_schedule(4)
  np.testing.assert_allclose(betas[1:], [0.478, 0.849, 0.956, 0.987], atol=5e-4)
  assert betas[0] == np.float32(1e-8)


@pytest.mark.parametrize('T', [1, 2, 4, 8])
def test_schedule_against_float64_numpy(T):
  """Independent float64 derivation of every coefficient (abar_t posterior formulas).

  Like the official code, betas are rounded to float32 once; everything after that is float64.
  """
  t = np.arange(T + 1) / T * (1 - 1e-3) + 1e-3
  abar = np.exp(-0.5 * t**2 * (20.0 - 0.1) - t * 0.1)
  betas = np.concatenate([[1e-8], 1 - abar[1:] / abar[:-1]]).astype(np.float32).astype(np.float64)
  a_cum = np.cumprod(np.sqrt(1 - betas))
  sched = diffusion.make_schedule(T)
  np.testing.assert_allclose(sched.a_s_cum, a_cum, rtol=1e-5)
  np.testing.assert_allclose(sched.sigmas_cum[1:], np.sqrt(1 - a_cum**2)[1:], rtol=1e-5)
  pb = betas[1:]
  ac = np.cumprod(1 - pb)
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  var = pb * (1 - ac_prev) / (1 - ac)
  np.testing.assert_allclose(sched.posterior_variance, var, rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(sched.posterior_mean_coef1, pb * np.sqrt(ac_prev) / (1 - ac), rtol=1e-5)
  np.testing.assert_allclose(sched.posterior_mean_coef2, (1 - ac_prev) * np.sqrt(1 - pb) / (1 - ac),
                             rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize('T', [1, 2, 4, 8])
def test_worked_examples_match_official(official, T):
  ex = official['schedules'][str(T)]['worked_example']
  inp = {k: nhwc(v) for k, v in ex['inputs'].items()}
  sched = diffusion.make_schedule(T)
  for case in ex['per_t']:
    t = jnp.asarray(case['t'], jnp.int32)
    x_t = diffusion.q_sample(sched, inp['x0'], t, inp['noise_q'])
    assert_close_nchw(x_t, case['q_sample(coeff, x0, t, noise=noise_q)'])
    pair_t, pair_tp1 = diffusion.q_sample_pairs(sched, inp['x0'], t, inp['noise_q'],
                                                inp['noise_pair_step'])
    assert_close_nchw(pair_t, case['q_sample_pairs(coeff, x0, t) -> x_t'])
    assert_close_nchw(pair_tp1, case['q_sample_pairs(coeff, x0, t) -> x_t_plus_one'])
    post = diffusion.posterior_sample(sched, inp['x0'], inp['x_t'], t, inp['noise_post'])
    assert_close_nchw(post, case['sample_posterior(pos_coeff, x_0=x0, x_t=x_t, t) with noise_post'])


@pytest.mark.parametrize('T', [1, 2, 4, 8])
def test_sampler_matches_official_toy_run(official, T):
  run = official['schedules'][str(T)]['worked_example']['sample_from_model']

  def toy_generator(x, t, z):  # the toy network the reference was recorded with
    return jnp.tanh(0.5 * x + 0.1 * (t + 1)[:, None, None, None] + z.mean(axis=1)[:, None, None, None])

  noise = np.asarray(run['posterior_noise_per_step'], np.float32).transpose(0, 1, 3, 4, 2)
  out = jax.jit(diffusion.sample_loop, static_argnums=1)(
      diffusion.make_schedule(T), toy_generator, nhwc(run['x_init']),
      jnp.asarray(run['z_per_step'], jnp.float32), jnp.asarray(noise))
  assert_close_nchw(out, run['output'], rtol=1e-5, atol=1e-6)


def test_no_noise_on_last_step_and_noise_elsewhere():
  sched = diffusion.make_schedule(4)
  x0 = jnp.zeros((4, 2, 2, 1))
  x_tp1 = jnp.ones((4, 2, 2, 1))
  noise = jnp.full((4, 2, 2, 1), 3.0)
  t = jnp.arange(4)
  with_noise = diffusion.posterior_sample(sched, x0, x_tp1, t, noise)
  without = diffusion.posterior_sample(sched, x0, x_tp1, t, jnp.zeros_like(noise))
  diff = np.asarray(with_noise - without)[:, 0, 0, 0]
  assert diff[0] == 0.0
  assert np.all(diff[1:] > 0.0)


def test_q_sample_at_t0_is_data():
  sched = diffusion.make_schedule(4)
  x0 = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4, 2))
  x_t = diffusion.q_sample(sched, x0, jnp.zeros(3, jnp.int32), jnp.ones_like(x0))
  np.testing.assert_array_equal(x_t, x0)


def test_sample_draws_shapes_and_determinism():
  sched = diffusion.make_schedule(2)
  calls = []

  def gen(x, t, z):
    calls.append(1)
    return jnp.tanh(x)

  a = diffusion.sample(sched, gen, jax.random.PRNGKey(1), (2, 4, 4, 3), nz=5)
  b = diffusion.sample(sched, gen, jax.random.PRNGKey(1), (2, 4, 4, 3), nz=5)
  assert a.shape == (2, 4, 4, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, diffusion.sample(sched, gen, jax.random.PRNGKey(2), (2, 4, 4, 3), nz=5))
