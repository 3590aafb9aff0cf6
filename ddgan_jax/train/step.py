"""One train step: the official iteration (SPEC section 3) as two pure functions of the state.

`d_phase` draws the step's masks and noise and takes D's gradients (real + fake, plus R1 on
`r1_due` steps); `update` applies D's Adam step, then G's whole step against the
updated D, then the generator EMA. Every random number of step s comes from
fold_in(base_key, s), so a resumed run draws exactly what an uninterrupted run would have drawn.
`make_train_step` binds them to the networks, the optimizers and the config (`StepParts`);
`programs.jit_train_step` jits them.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ddgan_jax import config_checks
from ddgan_jax.core import augment, losses
from ddgan_jax.data import training_masks
from ddgan_jax.models import perceptual
from ddgan_jax.models.networks import Networks

if TYPE_CHECKING:
  from ddgan_jax.train.train_lib import Optimizers, TrainState

_AUGMENT_STREAM = 7  # fold_in(phase key, this): the D-input augmentation's draws


@dataclasses.dataclass(frozen=True)
class TrainStep:
  """One train step as two pure functions; calling it runs both.

    d_phase(state, images, base_key, r1) -> d_out = (grads_d, d_metrics, masks)
    update(state, images, base_key, d_out) -> (state, metrics)

  d_phase draws the step's inpainting masks ([B, H, W, 1], None without inpainting) and
  computes D's gradients, with R1 when `r1` (static under jit). update applies D's Adam step,
  then the whole G step against the updated D and the EMA. Only d_phase has an R1 variant, so
  XLA compiles update once for both (`programs.StepPrograms`). Called as one function,
  fn(state, images, base_key, r1) -> (state, metrics), it is the plain step, one program under jit.
  """
  d_phase: Callable
  update: Callable

  def __call__(self, state, images, base_key, r1):
    return self.update(state, images, base_key, self.d_phase(state, images, base_key, r1))


@dataclasses.dataclass(frozen=True)
class StepParts:
  """What the step's functions read besides their arguments: built once by `make_train_step`."""
  nets: Networks
  opt: Optimizers
  loss_kw: dict[str, Any]  # the keywords D's and G's losses share
  aux: losses.AuxWeights
  perceptual_fn: Callable[[jax.Array, jax.Array], jax.Array] | None
  d_augment: augment.Augment | None
  mask_sampler: Callable[[jax.Array, int], jax.Array] | None  # (key, batch) -> masks
  r1_gamma: float
  ema_decay: float

  def draw(self, key: jax.Array, images: jax.Array) -> losses.Draws:
    return losses.draw(key, images.shape, self.nets.nz, self.nets.num_timesteps)

  def aug_kw(self, key: jax.Array) -> dict[str, Any]:
    """The D-input augmentation of a phase draws from its own stream of the phase's key, so the
    official draws (losses.draw splits the key) are the same with and without it."""
    return dict(augment=self.d_augment, aug_key=jax.random.fold_in(key, _AUGMENT_STREAM))


def step_keys(base_key: jax.Array, step: jax.Array) -> jax.Array:
  """The keys of step `step`: D's phase, G's phase, the masks."""
  return jax.random.split(jax.random.fold_in(base_key, step), 3)


def d_phase(parts: StepParts, state: TrainState, images: jax.Array, base_key: jax.Array,
            r1: bool):
  """D's gradients: real + fake, plus R1 on the real pair every lazy_reg steps."""
  k_d, _, k_mask = step_keys(base_key, state.step)
  mask = parts.mask_sampler(k_mask, images.shape[0]) if parts.mask_sampler else None
  draws_d = parts.draw(k_d, images)
  (_, d_aux), grads_d = jax.value_and_grad(losses.discriminator_loss, has_aux=True)(
      state.params_d, state.params_g, images, draws_d, mask=mask, **parts.loss_kw,
      **parts.aug_kw(k_d))
  r1_value = jnp.zeros(())
  if r1 and parts.r1_gamma > 0:
    nets = parts.nets
    r1_value, grads_r1 = jax.value_and_grad(lambda p: losses.r1_penalty(
        p, images, draws_d, apply_d=nets.apply_d, schedule=nets.schedule,
        r1_gamma=parts.r1_gamma, mask=mask, cond_fill=nets.cond_fill,
        **parts.aug_kw(k_d)))(state.params_d)
    grads_d = jax.tree.map(jnp.add, grads_d, grads_r1)
  metrics = dict(d_loss=d_aux['d_real'] + d_aux['d_fake'], r1=r1_value, **d_aux)
  return grads_d, metrics, mask


def generator_gradients(parts: StepParts, params_g: Any, params_d: Any, images: jax.Array,
                        k_g: jax.Array, mask: jax.Array | None) -> tuple[Any, dict]:
  """(G's gradients, G's metrics): fresh t, pair and z against the discriminator `params_d`.

  The probes' gradients are what the adversarial and the reconstruction terms ask of G's
  output: their norms say how much of G's signal comes from D (d_health).
  """
  g_loss = lambda params_g, probes: losses.generator_loss(
      params_g, params_d, images, parts.draw(k_g, images), mask=mask, aux=parts.aux,
      perceptual_fn=parts.perceptual_fn, probes=probes, **parts.loss_kw, **parts.aug_kw(k_g))
  probes = (jnp.zeros_like(images), jnp.zeros_like(images))
  (_, g_aux), (grads_g, (grad_adv, grad_rec)) = jax.value_and_grad(
      g_loss, argnums=(0, 1), has_aux=True)(params_g, probes)
  g_aux['g_grad_adv'] = jnp.sqrt(jnp.sum(grad_adv ** 2))
  if 'rec_l1' in g_aux or 'perceptual' in g_aux:
    g_aux['g_grad_rec'] = jnp.sqrt(jnp.sum(grad_rec ** 2))
  return grads_g, g_aux


def ema(ema_g: Any, params_g: Any, decay: float, first: jax.Array) -> Any:
  """The generator EMA; the official EMA starts from the parameters after the first update."""
  return jax.tree.map(lambda e, p: jnp.where(first, p, decay * e + (1.0 - decay) * p),
                      ema_g, params_g)


def update(parts: StepParts, state: TrainState, images: jax.Array, base_key: jax.Array, d_out):
  """D's Adam step, then G's step against the updated D, then the EMA."""
  grads_d, d_metrics, mask = d_out
  opt = parts.opt
  updates_d, opt_state_d = opt.tx_d.update(grads_d, state.opt_state_d, state.params_d)
  params_d = optax.apply_updates(state.params_d, updates_d)
  _, k_g, _ = step_keys(base_key, state.step)
  grads_g, g_aux = generator_gradients(parts, state.params_g, params_d, images, k_g, mask)
  updates_g, opt_state_g = opt.tx_g.update(grads_g, state.opt_state_g, state.params_g)
  params_g = optax.apply_updates(state.params_g, updates_g)
  ema_g = ema(state.ema_g, params_g, parts.ema_decay, first=state.step == 0)
  new_state = state.replace(step=state.step + 1, params_g=params_g, params_d=params_d,
                            opt_state_g=opt_state_g, opt_state_d=opt_state_d, ema_g=ema_g)
  return new_state, dict(d_metrics, **g_aux)


def make_train_step(nets: Networks, opt: Optimizers, config: ml_collections.ConfigDict
                    ) -> TrainStep:
  """The train step (see `TrainStep`): called as fn(state, images [B, H, W, C], base_key, r1)
  -> (state, metrics).

  `r1` is a Python bool (static under jit): whether this step adds the R1 penalty, i.e.
  `r1_due(config.optim, step)`. The two variants are compiled separately rather than chosen by
  `lax.cond` on the step counter: on XLA:CPU the R1 branch inside a conditional ran ~19x slower
  than the same computation outside one (1.73 s vs 92 ms for the Fashion-MNIST D, batch 8).
  """
  optim = config_checks.OptimConfig.from_section(config.optim)
  aux, perceptual_fn = aux_terms(config, nets)
  parts = StepParts(
      nets=nets, opt=opt,
      loss_kw=dict(apply_g=nets.apply_g, apply_d=nets.apply_d, schedule=nets.schedule,
                   cond_fill=nets.cond_fill, clean_weight=optim.clean_weight,
                   clean_uncond=optim.clean_uncond),
      aux=aux, perceptual_fn=perceptual_fn,
      d_augment=augment.make_augment(augment.parse_policy(str(optim.d_augment))),
      mask_sampler=_mask_sampler(config, nets), r1_gamma=float(optim.r1_gamma),
      ema_decay=float(optim.ema_decay))
  return TrainStep(functools.partial(d_phase, parts), functools.partial(update, parts))


def _mask_sampler(config: ml_collections.ConfigDict, nets: Networks
                  ) -> Callable[[jax.Array, int], jax.Array] | None:
  """(key, batch) -> the step's training masks of `config.inpaint`; None without inpainting."""
  if not nets.inpaint:
    return None
  mixture = dict(config.inpaint.mask_mixture)  # checked by config_checks (and the sampler)
  p_uncond = float(config.inpaint.p_uncond)
  return lambda key, batch: training_masks.sample_training_masks(
      key, batch, nets.image_size, mixture, p_uncond)


def aux_terms(config: ml_collections.ConfigDict, nets: Networks
              ) -> tuple[losses.AuxWeights, Callable[[jax.Array, jax.Array], jax.Array] | None]:
  """G's loss weights of `config.inpaint` (the official ones unless inpainting; their range is
  config_checks') and the perceptual distance fn when its weight is nonzero."""
  if not nets.inpaint:
    return losses.AuxWeights(), None
  inp = config_checks.InpaintConfig.from_section(config.inpaint)
  aux = losses.AuxWeights(rec=float(inp.rec_weight), perceptual=float(inp.perceptual_weight),
                          adv=float(inp.adv_weight))
  perceptual_fn = None
  if aux.perceptual > 0:
    perceptual_fn = perceptual.lpips_distance_fn()
  return aux, perceptual_fn


def r1_due(optim: ml_collections.ConfigDict, step: int) -> bool:
  """Whether the step that starts from `step` adds R1: every optim.lazy_reg steps (0: every
  step), from step 0, as the official `global_step % lazy_reg == 0`; never when r1_gamma = 0."""
  lazy_reg = int(optim['lazy_reg'])
  return float(optim['r1_gamma']) > 0 and (lazy_reg <= 0 or step % lazy_reg == 0)
