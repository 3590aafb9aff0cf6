"""The discretised VP diffusion of DDGAN: schedule, forward process, posterior, sampler.

Pure jnp functions over a `Schedule` pytree; nothing here knows about networks or Flax.

Index convention (kept exactly as the official code, SPEC section 1):
  * the diffusion arrays have T+1 entries; entry 0 is a dummy beta of 1e-8;
  * training draws t ~ U{0..T-1} and builds the pair (x_t, x_{t+1}) with
    x_t = a_cum[t] x_0 + sigma_cum[t] eps and x_{t+1} = a[t+1] x_t + sigma[t+1] eps';
  * the posterior arrays have T entries (the dummy dropped), so posterior index t is
    the step x_{t+1} -> x_t; the networks are called with the same integer t;
  * no noise is added on the last reverse step (t == 0).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

EPS_SMALL = 1e-3


class Schedule(NamedTuple):
  """Diffusion and posterior coefficients. T = num_timesteps = len(posterior_*)."""
  # Diffusion coefficients, [T + 1] each.
  sigmas: jax.Array
  a_s: jax.Array
  a_s_cum: jax.Array
  sigmas_cum: jax.Array
  # Posterior coefficients, [T] each (index t: x_{t+1} -> x_t).
  posterior_variance: jax.Array
  posterior_log_variance_clipped: jax.Array
  posterior_mean_coef1: jax.Array  # multiplies x_0
  posterior_mean_coef2: jax.Array  # multiplies x_{t+1}

  @property
  def num_timesteps(self) -> int:
    return self.posterior_variance.shape[0]


def time_schedule(num_timesteps: int) -> np.ndarray:
  """Continuous times t_k = k/T (1 - 1e-3) + 1e-3, k = 0..T, float64 [T + 1]."""
  t = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
  return t * (1.0 - EPS_SMALL) + EPS_SMALL


def betas_schedule(num_timesteps: int, beta_min: float = 0.1, beta_max: float = 20.0,
                   use_geometric: bool = False) -> np.ndarray:
  """betas [T + 1] float32, with the dummy 1e-8 first (computed in float64, then cast)."""
  t = time_schedule(num_timesteps)
  if use_geometric:
    var = beta_min * (beta_max / beta_min) ** t
  else:
    var = 1.0 - np.exp(2.0 * (-0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min))
  alpha_bars = 1.0 - var
  betas = 1.0 - alpha_bars[1:] / alpha_bars[:-1]
  return np.concatenate([[1e-8], betas]).astype(np.float32)


def make_schedule(num_timesteps: int, beta_min: float = 0.1, beta_max: float = 20.0,
                  use_geometric: bool = False) -> Schedule:
  """Builds the schedule with the official float32 arithmetic (SPEC section 1)."""
  if num_timesteps < 1:
    raise ValueError(f'num_timesteps must be >= 1, got {num_timesteps}.')
  f32 = np.float32
  betas = betas_schedule(num_timesteps, beta_min, beta_max, use_geometric)
  sigmas = np.sqrt(betas)
  a_s = np.sqrt(f32(1) - betas)
  a_s_cum = np.cumprod(a_s, dtype=f32)
  sigmas_cum = np.sqrt(f32(1) - a_s_cum**2)

  post_betas = betas[1:]
  alphas = f32(1) - post_betas
  alphas_cumprod = np.cumprod(alphas, dtype=f32)
  alphas_cumprod_prev = np.concatenate([np.ones(1, f32), alphas_cumprod[:-1]])
  one_minus_ac = f32(1) - alphas_cumprod
  posterior_variance = post_betas * (f32(1) - alphas_cumprod_prev) / one_minus_ac
  coef1 = post_betas * np.sqrt(alphas_cumprod_prev) / one_minus_ac
  coef2 = (f32(1) - alphas_cumprod_prev) * np.sqrt(alphas) / one_minus_ac
  log_var = np.log(np.maximum(posterior_variance, f32(1e-20)))
  arrays = (sigmas, a_s, a_s_cum, sigmas_cum, posterior_variance, log_var, coef1, coef2)
  return Schedule(*(jnp.asarray(a, jnp.float32) for a in arrays))


def _extract(coef: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
  """coef[t] broadcast against x [B, ...]; t int [B]."""
  return coef[t].reshape((x.shape[0],) + (1,) * (x.ndim - 1)).astype(x.dtype)


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """Samples q(x_t | x_0) = a_cum[t] x_0 + sigma_cum[t] noise. x0, noise [B, H, W, C]; t [B]."""
  return _extract(schedule.a_s_cum, t, x0) * x0 + _extract(schedule.sigmas_cum, t, x0) * noise


def q_step(schedule: Schedule, x_t: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """One forward step x_t -> x_{t+1} = a[t+1] x_t + sigma[t+1] noise."""
  return _extract(schedule.a_s, t + 1, x_t) * x_t + _extract(schedule.sigmas, t + 1, x_t) * noise


def q_sample_pairs(schedule: Schedule, x0: jax.Array, t: jax.Array, noise_q: jax.Array,
                   noise_step: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The training pair (x_t, x_{t+1}).

  The official code draws `noise_step` first, then `noise_q`; `draw_pair_noise` keeps that order.
  """
  x_t = q_sample(schedule, x0, t, noise_q)
  return x_t, q_step(schedule, x_t, t, noise_step)


def draw_pair_noise(key: jax.Array, shape, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
  """(noise_q, noise_step) for `q_sample_pairs` from one key."""
  k_step, k_q = jax.random.split(key)
  return jax.random.normal(k_q, shape, dtype), jax.random.normal(k_step, shape, dtype)


def posterior_mean_log_variance(schedule: Schedule, x0: jax.Array, x_tp1: jax.Array,
                                t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and clipped log-variance of q(x_t | x_{t+1}, x_0)."""
  mean = (_extract(schedule.posterior_mean_coef1, t, x0) * x0
          + _extract(schedule.posterior_mean_coef2, t, x0) * x_tp1)
  return mean, _extract(schedule.posterior_log_variance_clipped, t, x0)


def posterior_sample(schedule: Schedule, x0: jax.Array, x_tp1: jax.Array, t: jax.Array,
                     noise: jax.Array) -> jax.Array:
  """Samples x_t ~ q(x_t | x_{t+1}, x_0); no noise where t == 0. All images [B, H, W, C]."""
  mean, log_var = posterior_mean_log_variance(schedule, x0, x_tp1, t)
  nonzero = _extract((jnp.arange(schedule.num_timesteps) > 0).astype(jnp.float32), t, x0)
  return mean + nonzero * jnp.exp(0.5 * log_var) * noise


# denoise_fn(x_{t+1} [B, H, W, C], t int [B], z [B, nz]) -> predicted x_0 [B, H, W, C].
DenoiseFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def sample_loop(schedule: Schedule, denoise_fn: DenoiseFn, x_init: jax.Array,
                z_per_step: jax.Array, noise_per_step: jax.Array) -> jax.Array:
  """The T-step reverse process with given draws; step k uses t = T-1-k. NFE = T.

  Args:
    x_init: x_T [B, H, W, C].
    z_per_step: [T, B, nz] latents.
    noise_per_step: [T, B, H, W, C] posterior noise.
  Returns:
    x_0 [B, H, W, C].
  """
  num_steps = schedule.num_timesteps
  batch = x_init.shape[0]

  def step(x, inputs):
    t_scalar, z, noise = inputs
    t = jnp.full((batch,), t_scalar, jnp.int32)
    x0_pred = denoise_fn(x, t, z)
    return posterior_sample(schedule, x0_pred, x, t, noise), None

  ts = jnp.arange(num_steps - 1, -1, -1, dtype=jnp.int32)
  x, _ = jax.lax.scan(step, x_init, (ts, z_per_step, noise_per_step))
  return x


def sample(schedule: Schedule, denoise_fn: DenoiseFn, key: jax.Array, shape, nz: int) -> jax.Array:
  """Draws x_T ~ N(0, I), the latents and the posterior noise, and runs `sample_loop`."""
  k_init, k_z, k_noise = jax.random.split(key, 3)
  num_steps = schedule.num_timesteps
  x_init = jax.random.normal(k_init, shape)
  z = jax.random.normal(k_z, (num_steps, shape[0], nz))
  noise = jax.random.normal(k_noise, (num_steps,) + tuple(shape))
  return sample_loop(schedule, denoise_fn, x_init, z, noise)
