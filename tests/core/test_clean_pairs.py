"""The clean pairs (optim.clean_weight): D judges G's x0 from x_T as an image, against a float64
numpy reference on a toy D and G; 0 is the official objective."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.core import diffusion, losses

B, S, C, T = 8, 4, 1, 2
W_X, W_XC = 0.7, -0.4  # the toy D: logits = W_X mean(x) + W_XC mean(x_tp1) + 0.1 t


def _apply_d(p, x, t, x_tp1, cond):
  del p, cond
  return W_X * x.mean(axis=(1, 2, 3)) + W_XC * x_tp1.mean(axis=(1, 2, 3)) + 0.1 * t


def _apply_g(p, x_tp1, t, z, cond):
  del t, z, cond
  return jnp.tanh(p['a'] * x_tp1)


@pytest.fixture(scope='module')
def setup():
  schedule = diffusion.make_schedule(T)
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  x0 = jax.random.uniform(k1, (B, S, S, C), minval=-1, maxval=1)
  draws = losses.draw(k2, x0.shape, 3, T)
  draws = draws._replace(t=jnp.array([0, 1] * (B // 2)))  # both kinds, known positions
  kw = dict(apply_g=_apply_g, apply_d=_apply_d, schedule=schedule)
  return schedule, x0, draws, kw, {'a': jnp.float32(0.8)}


def _softplus(v):
  return np.logaddexp(0.0, v)


def _clean_reference(schedule, x0, draws, params_g):
  """float64: (D's clean loss, G's clean loss) over the samples drawn at t = T - 1."""
  x0 = np.asarray(x0, np.float64)
  t = np.asarray(draws.t)
  x_t = (np.asarray(schedule.a_s_cum, np.float64)[t][:, None, None, None] * x0
         + np.asarray(schedule.sigmas_cum, np.float64)[t][:, None, None, None]
         * np.asarray(draws.noise_q, np.float64))
  a, s = np.asarray(schedule.a_s, np.float64), np.asarray(schedule.sigmas, np.float64)
  x_tp1 = a[t + 1][:, None, None, None] * x_t + s[t + 1][:, None, None, None] * np.asarray(
      draws.noise_step, np.float64)
  fake = np.tanh(float(params_g['a']) * x_tp1)
  noise = np.asarray(draws.noise_clean, np.float64)
  d = lambda x: W_X * x.mean(axis=(1, 2, 3)) + W_XC * (a[1] * x + s[1] * noise).mean(axis=(1, 2, 3))
  gen = t == T - 1
  d_loss = (_softplus(-d(x0)) + _softplus(d(fake)))[gen].mean()
  return d_loss, _softplus(-d(fake))[gen].mean()


def test_clean_pairs_match_a_float64_reference(setup):
  schedule, x0, draws, kw, params_g = setup
  want_d, want_g = _clean_reference(schedule, x0, draws, params_g)
  base_d, _ = losses.discriminator_loss({}, params_g, x0, draws, **kw)
  total_d, m = losses.discriminator_loss({}, params_g, x0, draws, clean_weight=0.5, **kw)
  assert float(m['d_clean_loss']) == pytest.approx(want_d, rel=1e-5)
  assert float(total_d - base_d) == pytest.approx(0.5 * want_d, rel=1e-5)
  base_g, _ = losses.generator_loss(params_g, {}, x0, draws, **kw)
  total_g, mg = losses.generator_loss(params_g, {}, x0, draws, clean_weight=0.5, **kw)
  assert float(mg['g_clean_loss']) == pytest.approx(want_g, rel=1e-5)
  assert float(total_g - base_g) == pytest.approx(0.5 * want_g, rel=1e-5)


def test_only_the_samples_generated_from_x_T_count(setup):
  schedule, x0, draws, kw, params_g = setup
  _, m = losses.discriminator_loss({}, params_g, x0, draws, clean_weight=1.0, **kw)
  at_t0 = (np.asarray(draws.t) == 0)[:, None, None, None]
  changed = jnp.where(at_t0, -x0, x0)  # other images where t = 0
  _, m2 = losses.discriminator_loss({}, params_g, changed, draws, clean_weight=1.0, **kw)
  assert float(m2['d_clean_loss']) == pytest.approx(float(m['d_clean_loss']), rel=1e-6)
  assert float(m2['d_real']) != float(m['d_real'])  # while the official term did change


def test_g_gets_the_clean_gradient_and_adv_weight_0_removes_it(setup):
  schedule, x0, draws, kw, params_g = setup
  grad = lambda w, adv: jax.grad(lambda p: losses.generator_loss(
      p, {}, x0, draws, clean_weight=w, aux=losses.AuxWeights(adv=adv), **kw)[0])(params_g)['a']
  assert float(grad(1.0, 1.0)) != pytest.approx(float(grad(0.0, 1.0)), rel=1e-3)
  assert float(grad(1.0, 0.0)) == 0.0


def test_off_is_the_official_objective(setup):
  schedule, x0, draws, kw, params_g = setup
  official = draws._replace(noise_clean=None)  # what a recorded official draw holds
  d0, m0 = losses.discriminator_loss({}, params_g, x0, official, **kw)
  d1, m1 = losses.discriminator_loss({}, params_g, x0, draws, clean_weight=0.0, **kw)
  assert float(d0) == float(d1) and not any(k.startswith('d_clean') for k in m1)
  g0, _ = losses.generator_loss(params_g, {}, x0, official, **kw)
  assert float(g0) == float(losses.generator_loss(params_g, {}, x0, draws, **kw)[0])
  # The official draws do not move when the clean noise is added to `Draws`.
  plain = jax.random.split(jax.random.PRNGKey(3), 5)
  d = losses.draw(jax.random.PRNGKey(3), (2, S, S, C), 3, T)
  np.testing.assert_array_equal(d.t, jax.random.randint(plain[0], (2,), 0, T))
  np.testing.assert_array_equal(d.noise_post, jax.random.normal(plain[4], (2, S, S, C)))


def test_health_counts_the_clean_gap():
  from ddgan_jax.train import d_health
  window = dict(d_real_logit=0.01, d_fake_logit=0.0, d_clean_real_logit=0.4,
                d_clean_fake_logit=-0.3, d_acc_real=0.5, d_acc_fake=0.5, d_loss=1.38, r1=1e-5)
  scalars = dict(window, **d_health.health_scalars(window))
  assert scalars['d_clean_gap'] == pytest.approx(0.7)
  monitor = d_health.Monitor(min_logit_gap=0.1, windows=1)
  assert not monitor.at_chance(scalars)
  dead = dict(scalars, d_clean_gap=0.02)
  assert monitor.at_chance(dead) and 'gap 0.0200' in monitor.update(5, dead)
  text = d_health.summarize([dict(window, step=5)])
  assert 'informative' in text and "clean pairs' logit gap 0.700" in text
  assert 'AT CHANCE' in d_health.summarize([dict(window, step=5, d_clean_real_logit=-0.3)])


def test_clean_uncond_false_leaves_the_unconditional_samples_out(setup):
  schedule, x0, draws, kw, params_g = setup
  gen = np.asarray(draws.t) == T - 1
  assert gen.sum() >= 2, 'the setup needs two samples drawn at t = T - 1'
  first = int(np.argmax(gen))
  mask = np.zeros(x0.shape[:3] + (1,), np.float32)
  mask[:, :, : S // 2] = 1.0  # half holes: conditional samples
  mask[first] = 1.0  # one unconditional sample among those at t = T - 1
  mask = jnp.asarray(mask)
  loss = lambda x, uncond, fn=losses.discriminator_loss, key='d_clean_loss': float(fn(
      *(({}, params_g) if fn is losses.discriminator_loss else (params_g, {})), x, draws,
      mask=mask, clean_weight=1.0, clean_uncond=uncond, **kw)[1][key])
  # The unconditional sample's image counts with clean_uncond=True, and not without it.
  other = x0.at[first].set(-x0[first])
  assert loss(other, True) != pytest.approx(loss(x0, True), rel=1e-6)
  assert loss(other, False) == pytest.approx(loss(x0, False), rel=1e-6)
  g = lambda x, uncond: loss(x, uncond, losses.generator_loss, 'g_clean_loss')
  assert g(other, False) == pytest.approx(g(x0, False), rel=1e-6)
  # The official terms are the same either way.
  d_true = losses.discriminator_loss({}, params_g, x0, draws, mask=mask, clean_weight=1.0, **kw)[1]
  d_false = losses.discriminator_loss({}, params_g, x0, draws, mask=mask, clean_weight=1.0,
                                      clean_uncond=False, **kw)[1]
  assert float(d_true['d_real']) == float(d_false['d_real'])
