"""D's health: accuracies and logit gap on toy discriminators, the at-chance warning, the
gradient probes of G's loss, the adversarial weight, and the D-input augmentation (off = the
official D input)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny_inpaint
from ddgan_jax.core import augment, diffusion, losses
from ddgan_jax.data import training_masks
from ddgan_jax.models import networks
from ddgan_jax.train import d_health, loop, train_lib

SIZE, C = 8, 1


def _toy(apply_d):
  """Real images near +0.9, a toy G that predicts -0.9 everywhere, T = 1 (so t = 0)."""
  schedule = diffusion.make_schedule(1)
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  x0 = 0.9 + 0.05 * jax.random.normal(k1, (8, SIZE, SIZE, C))
  draws = losses.draw(k2, x0.shape, 4, 1)
  apply_g = lambda p, x, t, z, cond: -0.9 * jnp.ones_like(x)
  return losses.discriminator_loss({}, {}, x0, draws, apply_g=apply_g, apply_d=apply_d,
                                   schedule=schedule)[1]


def _windows(metrics, n):
  scalars = {k: float(v) for k, v in metrics.items()}
  scalars.update(d_health.health_scalars(scalars))
  return [scalars] * n


def test_a_constant_discriminator_is_flagged_once_per_streak():
  metrics = _toy(lambda p, x, t, x_tp1, cond: jnp.full((x.shape[0],), 0.3))
  monitor = d_health.Monitor(min_logit_gap=0.1, windows=3)
  lines = [monitor.update(100 * (i + 1), s) for i, s in enumerate(_windows(metrics, 5))]
  assert lines[:2] == [None, None] and lines[3:] == [None, None]
  assert lines[2].startswith('warning: at step 300') and 'at chance for 3 log windows' in lines[2]
  s = _windows(metrics, 1)[0]
  assert s['d_logit_gap'] == 0.0 and s['d_accuracy'] == 0.5  # 1 on real, 0 on fake


def test_a_separating_discriminator_is_not_flagged():
  metrics = _toy(lambda p, x, t, x_tp1, cond: 10.0 * jnp.mean(x, axis=(1, 2, 3)))
  s = _windows(metrics, 1)[0]
  assert s['d_logit_gap'] > 5 and s['d_accuracy'] == 1.0
  monitor = d_health.Monitor(min_logit_gap=0.1, windows=2)
  assert all(monitor.update(i, w) is None for i, w in enumerate(_windows(metrics, 4)))
  assert monitor.streak == 0


def test_summary_names_the_verdict():
  rec = dict(step=10, d_real_logit=0.0, d_fake_logit=0.0, d_acc_real=1.0, d_acc_fake=0.0,
             d_loss=1.386, r1=1e-9)
  assert 'AT CHANCE' in d_health.summarize([rec])
  good = dict(rec, d_real_logit=0.8, d_fake_logit=-0.7, g_adv_share=0.3, r1=1e-4)
  text = d_health.summarize([rec, good, good], last=2)
  assert 'informative' in text and 'logit gap (real - fake) 1.500' in text and '0.30' in text
  # A D that separates but is flat (R1 ~ 0) gives G no gradient: at chance too.
  assert 'informative' in d_health.summarize([good], min_r1=1e-5)
  assert 'AT CHANCE (R1 < 0.001' in d_health.summarize([good], min_r1=1e-3)


def test_a_flat_discriminator_is_flagged_by_r1():
  window = dict(d_real_logit=0.8, d_fake_logit=-0.7)
  window.update(d_health.health_scalars(window))
  monitor = d_health.Monitor(min_logit_gap=0.1, windows=1, min_r1=1e-5)
  assert not monitor.at_chance(window)  # no R1 logged in the window: the gap decides
  assert not monitor.at_chance(dict(window, r1=2e-5))
  line = monitor.update(7, dict(window, r1=3e-8))
  assert line.startswith('warning: at step 7') and 'R1 3.0e-08, threshold 1e-05' in line


def test_window_means_average_r1_over_r1_steps_only():
  metrics = [dict(d_loss=1.0, r1=0.4), dict(d_loss=2.0, r1=0.0), dict(d_loss=3.0, r1=0.0)]
  got = loop.window_means(metrics, [True, False, False])
  assert got == dict(d_loss=2.0, r1=0.4)
  assert 'r1' not in loop.window_means(metrics[1:], [False, False])


@pytest.fixture(scope='module')
def tiny():
  config = tiny_inpaint.get_config()
  nets = networks.build_networks(config)
  kg, kd, kx, km, kdr = jax.random.split(jax.random.PRNGKey(1), 5)
  x0 = jax.random.uniform(kx, nets.image_shape(4), minval=-1, maxval=1)
  m = training_masks.sample_training_masks(km, 4, nets.image_size, (('medium', 1.0),))
  kw = dict(apply_g=nets.apply_g, apply_d=nets.apply_d, schedule=nets.schedule, mask=m)
  return (jax.jit(nets.init_generator)(kg), jax.jit(nets.init_discriminator)(kd), x0,
          losses.draw(kdr, x0.shape, nets.nz, nets.num_timesteps), kw)


@pytest.mark.slow
def test_probes_change_nothing_and_split_the_gradient(tiny):
  params_g, params_d, x0, draws, kw = tiny
  zeros = (jnp.zeros_like(x0), jnp.zeros_like(x0))

  @functools.partial(jax.jit, static_argnums=0)
  def grads(adv, params_g):
    loss = lambda p, probes: losses.generator_loss(
        p, params_d, x0, draws, aux=losses.AuxWeights(rec=1.0, adv=adv), probes=probes, **kw)[0]
    plain = jax.value_and_grad(lambda p: loss(p, None))(params_g) if adv else None
    return plain, jax.value_and_grad(loss, argnums=(0, 1))(params_g, zeros)

  (want_value, want_grads), (value, (g, (g_adv, g_rec))) = grads(1.0, params_g)
  assert float(value) == float(want_value)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), g, want_grads)
  # The L1 term's gradient w.r.t. the x0 prediction: sign(pred - x0) / #hole pixels, in the hole.
  hole = np.asarray(kw['mask'])
  assert np.all(np.asarray(g_rec)[np.broadcast_to(hole, g_rec.shape) == 0] == 0)
  assert float(jnp.abs(g_rec).max()) == pytest.approx(1.0 / (hole.sum() * x0.shape[-1]), rel=1e-4)
  assert float(jnp.abs(g_adv).sum()) > 0
  # adv_weight 0: the regressor ablation, no adversarial gradient at all.
  _, (_, (_, (g_adv0, g_rec0))) = grads(0.0, params_g)
  assert float(jnp.abs(g_adv0).max()) == 0.0
  np.testing.assert_allclose(g_rec0, g_rec)


def test_augmentation_keeps_the_pair_and_condition_aligned():
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 16, 16, 2))
  cond = jnp.concatenate([x[..., :1], jnp.ones_like(x[..., :1])], axis=-1)
  fn = augment.make_augment(augment.parse_policy('translation, cutout'))
  a, b, c = fn(jax.random.PRNGKey(1), x, x, cond)
  np.testing.assert_array_equal(a, b)  # the same draw moves x_t and x_{t+1} alike
  np.testing.assert_array_equal(c[..., :1], a[..., :1])
  zeroed = np.asarray(c[..., 1] == 0)  # where the ones channel was shifted out or cut
  assert zeroed.any(axis=(1, 2)).all() and not zeroed.all(axis=(1, 2)).any()
  assert augment.make_augment(augment.parse_policy('')) is None
  with pytest.raises(ValueError, match='unknown augmentation'):
    augment.parse_policy('translation,colour')


def test_translation_moves_content_without_losing_it():
  x = jnp.zeros((8, 16, 16, 1)).at[:, 6:10, 6:10].set(1.0)  # 2 px further than the max shift
  y = augment.translate(jax.random.PRNGKey(3), x)
  np.testing.assert_array_equal(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)))
  assert not np.array_equal(y, x)
  # Differentiable: the gradient of the moved sum is the indicator of what stays inside.
  g = jax.grad(lambda v: augment.translate(jax.random.PRNGKey(3), v).sum())(x)
  np.testing.assert_array_equal(g[:, 6:10, 6:10], 1.0)


def test_g_frozen_steps_hold_only_g_still(tiny_inpaint_config):
  config = tiny_inpaint_config
  config.optim.g_frozen_steps = 3
  opt = train_lib.make_optimizers(config.optim, 10, 100)
  assert [float(opt.lr_g(s)) for s in (0, 2)] == [0.0, 0.0]
  assert float(opt.lr_g(3)) == pytest.approx(config.optim.lr_g, rel=1e-3)  # cosine, epoch 0
  assert float(opt.lr_d(0)) == pytest.approx(config.optim.lr_d, rel=1e-3)
  config.optim.g_frozen_steps = 0
  assert float(train_lib.make_optimizers(config.optim, 10, 100).lr_g(0)) > 0


def test_monitor_reads_the_config_and_defaults_for_older_ones(tiny_inpaint_config):
  config = tiny_inpaint_config
  config.train.d_health.min_logit_gap = 0.3
  config.train.d_health.windows = 5
  config.train.d_health.min_r1 = 1e-6
  assert d_health.Monitor.from_config(config.train) == d_health.Monitor(0.3, 5, 1e-6)
  del config.train['d_health']
  assert d_health.Monitor.from_config(config.train) == d_health.Monitor(0.1, 3, 1e-5)
