"""Probes of what the discriminator has to find (docs/discriminator.md), on a trained checkpoint.

  python docs/d_probe.py stats --checkpoint=pretrained/fashion_mnist_inpaint
  python docs/d_probe.py d_only --checkpoint=pretrained/fashion_mnist_inpaint --masks=train

`stats`: hole statistics of the real pair's x_t and G's fake at each t (mean, RMS, mean |discrete
Laplacian|, a sharpness measure) for 256 test images and the training masks.

`d_only`: a fresh D (the checkpoint config's) trained alone, G frozen, on clean pairs of G's x0
prediction from pure noise (t = T - 1) against real images (`losses.clean_pairs`), with all-ones
masks (`--masks=ones`, unconditional samples) or the training masks; prints the window mean of
the logit gap (real - fake) every 50 steps.
"""
import numpy as np
from absl import app, flags

_CHECKPOINT = flags.DEFINE_string('checkpoint', 'pretrained/fashion_mnist_inpaint', 'Model.')
_MASKS = flags.DEFINE_enum('masks', 'train', ['train', 'ones'], 'd_only: which masks.')
_LR = flags.DEFINE_float('lr', 1e-4, 'd_only: D learning rate (Adam, betas 0.5, 0.9).')
_STEPS = flags.DEFINE_integer('steps', 400, 'd_only: D steps (batch 16).')


def _load():
  from ddgan_jax.evaluation import evaluation  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
  model = networks.load_model(_CHECKPOINT.value)
  return model.nets, model.params, model.config, evaluation


def _training_masks(config, key, batch, size):
  from ddgan_jax.data import training_masks  # pylint: disable=g-import-not-at-top
  return training_masks.sample_training_masks(key, batch, size,
                                              dict(config.inpaint.mask_mixture), float(config.inpaint.p_uncond))


def stats() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ddgan_jax.core import diffusion, losses  # pylint: disable=g-import-not-at-top
  nets, params, config, evaluation = _load()
  x0 = jnp.asarray(evaluation.load_images(config.data, 'test', 256))
  m = _training_masks(config, jax.random.PRNGKey(1), 256, nets.image_size)
  draws = losses.draw(jax.random.PRNGKey(2), x0.shape, nets.nz, nets.num_timesteps)
  cond = losses.inpaint_condition(x0, m, nets.cond_fill)
  inner = m[:, 1:-1, 1:-1]

  def lap(x):
    return jnp.abs(4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2]
                   - x[:, 1:-1, 2:])

  print(f'hole share of the training masks: {float(m.mean()):.3f}')
  for t in range(nets.num_timesteps):
    d = draws._replace(t=jnp.full((256,), t))
    x_t, x_tp1 = diffusion.q_sample_pairs(nets.schedule, x0, d.t, d.noise_q, d.noise_step)
    _, fake = losses.fake_pair(params, nets.apply_g, nets.schedule, x_tp1, d, x0, m, cond)
    for name, x in (('real', x_t), ('fake', fake)):
      mean = float((x * m).sum() / m.sum())
      rms = float(jnp.sqrt((x ** 2 * m).sum() / m.sum()))
      sharp = float((lap(x) * inner).sum() / inner.sum())
      print(f't={t} {name}: hole mean {mean:.3f}, RMS {rms:.3f}, mean |Laplacian| {sharp:.4f}')


def d_only() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from ddgan_jax.core import losses  # pylint: disable=g-import-not-at-top
  nets, params_g, config, evaluation = _load()
  data = jnp.asarray(evaluation.load_images(config.data, 'train', 4096))
  batch, size, last = 16, nets.image_size, nets.num_timesteps - 1
  params_d = nets.init_discriminator(jax.random.PRNGKey(0))
  tx = optax.adam(_LR.value, b1=0.5, b2=0.9)
  opt_state = tx.init(params_d)

  @jax.jit
  def step(params_d, opt_state, key, x0):
    k_z, k_x, k_m, k_n = jax.random.split(key, 4)
    m = (jnp.ones((batch, size, size, 1)) if _MASKS.value == 'ones'
         else _training_masks(config, k_m, batch, size))
    cond = losses.inpaint_condition(x0, m, nets.cond_fill)
    x_T = jax.random.normal(k_x, x0.shape)
    z = jax.random.normal(k_z, (batch, nets.nz))
    fake = losses.composite(nets.apply_g(params_g, x_T, jnp.full((batch,), last), z, cond), x0, m)
    t0, x1_real, x1_fake = losses.clean_pairs(nets.schedule, x0, fake,
                                              jax.random.normal(k_n, x0.shape))

    def loss(p):
      real = nets.apply_d(p, x0, t0, x1_real, cond)
      fake_logits = nets.apply_d(p, fake, t0, x1_fake, cond)
      value = jax.nn.softplus(-real).mean() + jax.nn.softplus(fake_logits).mean()
      return value, real.mean() - fake_logits.mean()

    (_, gap), grads = jax.value_and_grad(loss, has_aux=True)(params_d)
    updates, opt_state = tx.update(grads, opt_state, params_d)
    return optax.apply_updates(params_d, updates), opt_state, gap

  rng, gaps = np.random.default_rng(0), []
  for i in range(_STEPS.value):
    x0 = data[rng.choice(len(data), batch, replace=False)]
    params_d, opt_state, gap = step(params_d, opt_state, jax.random.PRNGKey(i), x0)
    gaps.append(float(gap))
    if (i + 1) % 50 == 0:
      print(f'step {i + 1}: logit gap {np.mean(gaps[-50:]):.3f}', flush=True)


def main(argv):
  if len(argv) != 2 or argv[1] not in ('stats', 'd_only'):
    raise app.UsageError('usage: d_probe.py stats|d_only [--flags]')
  {'stats': stats, 'd_only': d_only}[argv[1]]()


if __name__ == '__main__':
  app.run(main)
