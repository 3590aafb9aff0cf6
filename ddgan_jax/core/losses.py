"""The DDGAN objective: non-saturating softplus losses, R1 on real pairs, optional inpainting condition.

Every random draw of one phase (D or G) is an explicit `Draws` value, so the losses are pure
functions of (params, data, draws) and can be fed the official run's recorded noise.

Inpainting (SPEC section 4): with a mask [B, H, W, 1] (1 = missing), both networks receive the
condition concat((1 - mask) * x_0, mask) (or, with cond_fill='smooth', concat(fill, mask) where
the hole holds `fill.smooth_fill` of the known pixels), and the predicted x_0 is composited
mask * x0_pred + (1 - mask) * x_0 before the posterior step.

Auxiliary generator terms for inpainting (`AuxWeights`, all 0 by default, which is the pure
DDGAN objective): an L1 reconstruction of the composited x_0 prediction inside the hole and a
perceptual (LPIPS) distance of it to x_0. Unconditional samples (all-ones masks) are left to
the adversarial term alone, whose weight `AuxWeights.adv` is 1 (0 = the L1-only regressor, an
ablation).

The clean pairs (`clean_weight` > 0, not in the official objective): for the samples drawn at
t = T - 1, where G predicts x0 from x_T (nearly pure noise), as the sampler's first step does,
D also judges that prediction as an image: (x_0, q(x_1 | x_0)) real against (x0', q(x_1 | x0'))
fake, t = 0 pairs whose x_1 is noised from the image itself. The official pairs judge G's
generation only through the posterior sample x_{T-1}, mostly noise; at t = 0 G only denoises a
real x_1, which it does well. Both G and D get the term, weighted by `clean_weight`; it costs two
(D) and one (G) extra D passes and no extra G pass. `clean_uncond=False` leaves the
unconditional samples (all-ones masks) out of them: judged as images, G's one-step samples from
pure noise narrow (a plain GAN objective, lower recall), while a fill is judged in context.

D's inputs may pass through a differentiable augmentation (`augment.make_augment`, DiffAugment)
drawn from an explicit key: real, fake and G's fake pairs each get their own draw; None (the
default) is the official D input.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from ddgan_jax.core import augment as augment_lib
from ddgan_jax.core import diffusion, fill

# apply_g(params_g, x_tp1, t, z, cond) -> x0_pred; apply_d(params_d, x, t, x_tp1, cond) -> logits [B].
GeneratorApply = Callable[..., jax.Array]
DiscriminatorApply = Callable[..., jax.Array]


class Draws(NamedTuple):
  """The random numbers of one phase, in the official draw order."""
  t: jax.Array           # int [B], U{0..T-1}
  noise_step: jax.Array  # [B, H, W, C], x_t -> x_{t+1}
  noise_q: jax.Array     # [B, H, W, C], x_0 -> x_t
  z: jax.Array           # [B, nz]
  noise_post: jax.Array  # [B, H, W, C], posterior sample
  noise_clean: jax.Array | None = None  # [B, H, W, C], the clean pairs' x_1 (not official)


def draw(key: jax.Array, image_shape, nz: int, num_timesteps: int) -> Draws:
  """Draws t, the pair noises, z and the posterior noise for a batch of `image_shape`."""
  k_t, k_step, k_q, k_z, k_post = jax.random.split(key, 5)
  batch = image_shape[0]
  return Draws(
      t=jax.random.randint(k_t, (batch,), 0, num_timesteps),
      noise_step=jax.random.normal(k_step, image_shape),
      noise_q=jax.random.normal(k_q, image_shape),
      z=jax.random.normal(k_z, (batch, nz)),
      noise_post=jax.random.normal(k_post, image_shape),
      # Its own stream, so the official five draws are the same with or without it.
      noise_clean=jax.random.normal(jax.random.fold_in(key, CLEAN_STREAM), image_shape))


CLEAN_STREAM = 8


COND_FILLS = ('zeros', 'smooth')


class AuxWeights(NamedTuple):
  """Weights of G's loss terms (defaults = the official objective)."""
  rec: float = 0.0         # L1 of the composited x0 prediction in the hole
  perceptual: float = 0.0  # LPIPS(x0 prediction, x0); needs `perceptual_fn`
  adv: float = 1.0         # the adversarial term (0: an L1 / perceptual regressor)


def inpaint_condition(x0: jax.Array, mask: jax.Array | None,
                      cond_fill: str = 'zeros') -> jax.Array | None:
  """concat(known, mask) [B, H, W, C + 1], or None without a mask.

  known = (1 - mask) * x0 with cond_fill='zeros' (SPEC section 4), or the known pixels with
  the hole filled by `fill.smooth_fill` with cond_fill='smooth'.
  """
  if mask is None:
    return None
  if cond_fill == 'zeros':
    known = (1.0 - mask) * x0
  elif cond_fill == 'smooth':
    known = fill.smooth_fill(x0, mask)
  else:
    raise ValueError(f'cond_fill must be one of {COND_FILLS}, got {cond_fill!r}.')
  return jnp.concatenate([known, mask], axis=-1)


def composite(x0_pred: jax.Array, x0: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Known pixels (mask == 0) taken from x0, missing ones from the prediction."""
  if mask is None:
    return x0_pred
  return mask * x0_pred + (1.0 - mask) * x0


def fake_pair(params_g: Any, apply_g: GeneratorApply, schedule: diffusion.Schedule,
              x_tp1: jax.Array, draws: Draws, x0: jax.Array, mask: jax.Array | None,
              cond: jax.Array | None, probe: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
  """x0' = G(x_{t+1}, t, z) (composited) and x_pos ~ q(x_t | x_{t+1}, x0' + probe)."""
  x0_pred = composite(apply_g(params_g, x_tp1, draws.t, draws.z, cond), x0, mask)
  x0_post = x0_pred if probe is None else x0_pred + probe
  return x0_pred, diffusion.posterior_sample(schedule, x0_post, x_tp1, draws.t, draws.noise_post)


def judge(params_d: Any, apply_d: DiscriminatorApply, x: jax.Array, t: jax.Array,
          x_tp1: jax.Array, cond: jax.Array | None, augment: augment_lib.Augment | None,
          key: jax.Array | None) -> jax.Array:
  """D's logits [B] of the pair (x, x_tp1) given cond, through `augment` (drawn from `key`)."""
  if augment is not None:
    x, x_tp1, cond = augment(key, x, x_tp1, cond)
  return apply_d(params_d, x, t, x_tp1, cond)


def clean_pairs(schedule: diffusion.Schedule, x0: jax.Array, x0_fake: jax.Array,
                noise: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """t = 0 and the x_1 of the clean real and fake pairs, both noised with the same draw."""
  t0 = jnp.zeros((x0.shape[0],), jnp.int32)
  return t0, diffusion.q_step(schedule, x0, t0, noise), diffusion.q_step(schedule, x0_fake, t0, noise)


def _generated(schedule: diffusion.Schedule, t: jax.Array) -> jax.Array:
  """[B] 1.0 for the samples drawn at t = T - 1 (G's x0 from x_T), else 0."""
  return (t == schedule.num_timesteps - 1).astype(jnp.float32)


def _conditional(mask: jax.Array) -> jax.Array:
  """[B] bool: the samples with known pixels (not an all-ones, unconditional mask)."""
  return jnp.min(mask, axis=(1, 2, 3)) < 0.5


def _clean_samples(schedule: diffusion.Schedule, t: jax.Array, mask: jax.Array | None,
                   clean_uncond: bool) -> jax.Array:
  """[B] weights of the clean pairs: the samples drawn at t = T - 1, without those with
  all-ones masks (unconditional) unless `clean_uncond`."""
  w = _generated(schedule, t)
  if clean_uncond or mask is None:
    return w
  return w * _conditional(mask).astype(jnp.float32)


def _batch_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


# The augmentation draws of the clean pairs: fold_in(aug_key, CLEAN_REAL or CLEAN_FAKE).
CLEAN_REAL, CLEAN_FAKE = 2, 3


# The augmentation draws of one phase's D inputs: fold_in(aug_key, REAL or FAKE).
REAL, FAKE = 0, 1


def _side_key(augment: augment_lib.Augment | None, aug_key: jax.Array | None,
              side: int) -> jax.Array | None:
  return jax.random.fold_in(aug_key, side) if augment is not None else None


def discriminator_loss(params_d: Any, params_g: Any, x0: jax.Array, draws: Draws, *,
                       apply_g: GeneratorApply, apply_d: DiscriminatorApply,
                       schedule: diffusion.Schedule, mask: jax.Array | None = None,
                       cond_fill: str = 'zeros', augment: augment_lib.Augment | None = None,
                       aug_key: jax.Array | None = None, clean_weight: float = 0.0,
                       clean_uncond: bool = True) -> tuple[jax.Array, dict]:
  """softplus(-D(real)) + softplus(D(fake)), means over the batch; G is held fixed.

  The metrics also hold D's accuracy on each side (the share of real pairs with a positive
  logit, of fake pairs with a negative one): 0.5 on both sides is a D at chance. With
  clean_weight > 0, adds clean_weight * the same loss on the clean pairs (`d_clean_*`; without
  the unconditional samples unless `clean_uncond`).
  """
  x_t, x_tp1 = diffusion.q_sample_pairs(schedule, x0, draws.t, draws.noise_q, draws.noise_step)
  cond = inpaint_condition(x0, mask, cond_fill)
  d_real = judge(params_d, apply_d, x_t, draws.t, x_tp1, cond, augment,
                 _side_key(augment, aug_key, REAL))
  x0_fake, x_pos = fake_pair(jax.lax.stop_gradient(params_g), apply_g, schedule, x_tp1, draws, x0,
                             mask, cond)
  d_fake = judge(params_d, apply_d, x_pos, draws.t, x_tp1, cond, augment,
                 _side_key(augment, aug_key, FAKE))
  err_real = jax.nn.softplus(-d_real).mean()
  err_fake = jax.nn.softplus(d_fake).mean()
  metrics = {'d_real': err_real, 'd_fake': err_fake,
             'd_real_logit': d_real.mean(), 'd_fake_logit': d_fake.mean(),
             'd_acc_real': (d_real > 0).astype(jnp.float32).mean(),
             'd_acc_fake': (d_fake < 0).astype(jnp.float32).mean()}
  total = err_real + err_fake
  if clean_weight > 0:
    t0, x1_real, x1_fake = clean_pairs(schedule, x0, x0_fake, draws.noise_clean)
    c_real = judge(params_d, apply_d, x0, t0, x1_real, cond, augment,
                   _side_key(augment, aug_key, CLEAN_REAL))
    c_fake = judge(params_d, apply_d, x0_fake, t0, x1_fake, cond, augment,
                   _side_key(augment, aug_key, CLEAN_FAKE))
    w = _clean_samples(schedule, draws.t, mask, clean_uncond)
    clean = _batch_mean(jax.nn.softplus(-c_real) + jax.nn.softplus(c_fake), w)
    total = total + clean_weight * clean
    metrics.update(d_clean_loss=clean, d_clean_real_logit=_batch_mean(c_real, w),
                   d_clean_fake_logit=_batch_mean(c_fake, w),
                   d_clean_acc_real=_batch_mean((c_real > 0).astype(jnp.float32), w),
                   d_clean_acc_fake=_batch_mean((c_fake < 0).astype(jnp.float32), w))
  return total, metrics


def r1_penalty(params_d: Any, x0: jax.Array, draws: Draws, *, apply_d: DiscriminatorApply,
               schedule: diffusion.Schedule, r1_gamma: float, mask: jax.Array | None = None,
               cond_fill: str = 'zeros', augment: augment_lib.Augment | None = None,
               aug_key: jax.Array | None = None) -> jax.Array:
  """gamma/2 * mean_b ||d sum(D(x_t, t, x_{t+1})) / d x_t||^2 (gradient w.r.t. x_t only).

  With `augment`, D sees the real pair as `discriminator_loss` did (the same draw), and the
  gradient is taken with respect to the un-augmented x_t (as StyleGAN2-ADA does).
  """
  x_t, x_tp1 = diffusion.q_sample_pairs(schedule, x0, draws.t, draws.noise_q, draws.noise_step)
  cond = inpaint_condition(x0, mask, cond_fill)
  key = _side_key(augment, aug_key, REAL)
  grad_x = jax.grad(lambda x: judge(params_d, apply_d, x, draws.t, x_tp1, cond, augment,
                                    key).sum())(x_t)
  return 0.5 * r1_gamma * jnp.sum(grad_x.reshape(grad_x.shape[0], -1) ** 2, axis=1).mean()


def reconstruction_l1(x0_pred: jax.Array, x0: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean |x0_pred - x0| over the hole pixels of the samples that have known pixels.

  All-ones masks (unconditional samples) are excluded: there the L1 optimum is the blurry
  dataset mean, and the adversarial term alone should shape the sample.
  """
  weight = mask * _conditional(mask).astype(x0.dtype)[:, None, None, None]  # [B, H, W, 1]
  err = jnp.abs(x0_pred - x0).mean(axis=-1, keepdims=True)
  return jnp.sum(err * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def generator_loss(params_g: Any, params_d: Any, x0: jax.Array, draws: Draws, *,
                   apply_g: GeneratorApply, apply_d: DiscriminatorApply,
                   schedule: diffusion.Schedule, mask: jax.Array | None = None,
                   cond_fill: str = 'zeros', aux: AuxWeights = AuxWeights(),
                   perceptual_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                   augment: augment_lib.Augment | None = None, aug_key: jax.Array | None = None,
                   probes: tuple[jax.Array, jax.Array] | None = None,
                   clean_weight: float = 0.0, clean_uncond: bool = True
                   ) -> tuple[jax.Array, dict]:
  """aux.adv * softplus(-D(x_pos, t, x_{t+1})) with x_pos from the generator; D is held fixed.

  With clean_weight > 0, the adversarial term adds clean_weight * softplus(-D) of the clean
  fake pairs (`g_clean_loss`; without the unconditional samples unless `clean_uncond`).

  With a mask and nonzero `aux` weights, adds aux.rec * reconstruction_l1 and
  aux.perceptual * mean perceptual_fn(x0_pred, x0) (per-image distances [B], conditional
  samples only) on the composited x0 prediction.

  probes: two zero arrays shaped like x0 that are added to the composited x0 prediction where
  the adversarial term and the reconstruction terms read it. They change no value; their
  gradients are what each part of the loss asks of G's output, so one backward pass also
  measures how much of G's gradient is adversarial (`train_lib`, D's health).
  """
  x_t, x_tp1 = diffusion.q_sample_pairs(schedule, x0, draws.t, draws.noise_q, draws.noise_step)
  del x_t
  cond = inpaint_condition(x0, mask, cond_fill)
  x0_pred, x_pos = fake_pair(params_g, apply_g, schedule, x_tp1, draws, x0, mask, cond,
                             probes[0] if probes else None)
  x0_rec = x0_pred + probes[1] if probes else x0_pred
  d_out = judge(jax.lax.stop_gradient(params_d), apply_d, x_pos, draws.t, x_tp1, cond, augment,
                _side_key(augment, aug_key, FAKE))
  err = jax.nn.softplus(-d_out).mean()
  metrics = {'g_loss': err, 'g_logit': d_out.mean()}
  if clean_weight > 0:
    x0_adv = x0_pred + probes[0] if probes else x0_pred
    t0, _, x1_fake = clean_pairs(schedule, x0, x0_adv, draws.noise_clean)
    c_out = judge(jax.lax.stop_gradient(params_d), apply_d, x0_adv, t0, x1_fake, cond, augment,
                  _side_key(augment, aug_key, CLEAN_FAKE))
    metrics['g_clean_loss'] = _batch_mean(jax.nn.softplus(-c_out),
                                          _clean_samples(schedule, draws.t, mask, clean_uncond))
    err = err + clean_weight * metrics['g_clean_loss']
  total = err if aux.adv == 1.0 else aux.adv * err
  if mask is not None and aux.rec > 0:
    metrics['rec_l1'] = reconstruction_l1(x0_rec, x0, mask)
    total = total + aux.rec * metrics['rec_l1']
  if mask is not None and aux.perceptual > 0:
    if perceptual_fn is None:
      raise ValueError('aux.perceptual > 0 needs a perceptual_fn.')
    conditional = (jnp.min(mask, axis=(1, 2, 3)) < 0.5).astype(x0.dtype)  # [B]
    dist = perceptual_fn(x0_rec, x0).reshape(-1)
    metrics['perceptual'] = jnp.sum(dist * conditional) / jnp.maximum(jnp.sum(conditional), 1.0)
    total = total + aux.perceptual * metrics['perceptual']
  return total, metrics
