"""The generator/discriminator pair and diffusion schedule a config describes, and their apply fns.

Shared by training, sampling, inpainting and checkpoint conversion so every entry point builds
exactly the same networks from a config. `load_model` is the one way to load a checkpoint's
model (its config, networks and EMA generator); `sample_grid` is the work of `sample.py`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ddgan_jax import config_checks, models
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.core import diffusion
from ddgan_jax.data import visualize
from ddgan_jax.platform import cli, sharding as sharding_lib


@dataclasses.dataclass(frozen=True, eq=False)
class Networks:
  """Networks plus the static facts the train step and samplers need."""
  generator: nn.Module
  discriminator: nn.Module
  schedule: diffusion.Schedule
  image_size: int
  num_channels: int
  nz: int
  inpaint: bool  # mask-conditional: both networks get concat((1 - m) x0, m)
  cond_fill: str = 'zeros'  # what the condition holds in the hole: zeros | smooth (losses)
  compute_dtype: str = 'float32'  # float32 | bfloat16 (see `_cast`)

  @property
  def cond_channels(self) -> int:
    return self.num_channels + 1 if self.inpaint else 0

  @property
  def num_timesteps(self) -> int:
    return self.schedule.num_timesteps

  def unconditional_cond(self, batch: int) -> jax.Array | None:
    """The condition of a whole-image hole (zeros, all-ones mask): how a mask-conditional
    generator samples unconditionally; None for an unconditional one."""
    if not self.inpaint:
      return None
    shape = self.image_shape(batch)
    return jnp.concatenate([jnp.zeros(shape), jnp.ones(shape[:3] + (1,))], axis=-1)

  def image_shape(self, batch: int) -> tuple[int, int, int, int]:
    return (batch, self.image_size, self.image_size, self.num_channels)

  def _cast(self, tree: Any) -> Any:
    """Floating leaves of `tree` in the compute dtype (a no-op for float32).

    Mixed precision: the float32 parameters are cast on the way in, so gradients, optimizer
    state and the EMA stay float32; the networks' outputs are cast back to float32.
    """
    if self.compute_dtype == 'float32':
      return tree
    dtype = jnp.dtype(self.compute_dtype)
    return jax.tree.map(
        lambda a: a.astype(dtype) if a is not None and jnp.issubdtype(a.dtype, jnp.floating) else a,
        tree)

  def apply_g(self, params: Any, x: jax.Array, t: jax.Array, z: jax.Array,
              cond: jax.Array | None = None) -> jax.Array:
    """x0_pred [B, H, W, C] = G(x_{t+1} [B, H, W, C], t [B], z [B, nz], cond)."""
    params, x, z, cond = self._cast((params, x, z, cond))
    return self.generator.apply({'params': params}, x, t, z, cond).astype(jnp.float32)

  def apply_d(self, params: Any, x: jax.Array, t: jax.Array, x_tp1: jax.Array,
              cond: jax.Array | None = None) -> jax.Array:
    """Logits [B] = D(x_t, t, x_{t+1}, cond)."""
    params, x, x_tp1, cond = self._cast((params, x, x_tp1, cond))
    logits = self.discriminator.apply({'params': params}, x, t, x_tp1, cond)
    return logits.reshape(-1).astype(jnp.float32)

  def init_generator(self, key: jax.Array) -> Any:
    x = jnp.zeros(self.image_shape(1))
    cond = jnp.zeros((1, self.image_size, self.image_size, self.cond_channels)) if self.inpaint else None
    return self.generator.init(key, x, jnp.zeros((1,), jnp.int32), jnp.zeros((1, self.nz)), cond)['params']

  def init_discriminator(self, key: jax.Array) -> Any:
    x = jnp.zeros(self.image_shape(1))
    cond = jnp.zeros((1, self.image_size, self.image_size, self.cond_channels)) if self.inpaint else None
    return self.discriminator.init(key, x, jnp.zeros((1,), jnp.int32), x, cond)['params']

  def abstract_generator_params(self, sharding: jax.sharding.Sharding | None = None) -> Any:
    """ShapeDtypeStructs of the generator parameters (no allocation)."""
    abstract = jax.eval_shape(self.init_generator, jax.random.PRNGKey(0))
    return abstract if sharding is None else checkpointing.with_sharding(abstract, sharding)


def build_networks(config: ml_collections.ConfigDict) -> Networks:
  """Builds the networks and schedule of `config` (sections data, model, diffusion, inpaint).

  Raises config_checks.ConfigError (one line) for a config that cannot work.
  """
  typed = config_checks.check_config(config)
  inpaint = typed.inpaint.enabled
  channels = typed.data.num_channels
  cond_channels = channels + 1 if inpaint else 0
  dif = typed.diffusion
  return Networks(
      generator=models.create_generator(typed.model, image_size=typed.data.image_size,
                                        num_channels=channels, cond_channels=cond_channels),
      discriminator=models.create_discriminator(typed.model),
      schedule=diffusion.make_schedule(dif.num_timesteps, dif.beta_min, dif.beta_max,
                                       bool(dif.use_geometric)),
      image_size=typed.data.image_size,
      num_channels=channels,
      nz=typed.model.nz,
      inpaint=inpaint,
      cond_fill=typed.inpaint.cond_fill if inpaint else 'zeros',
      compute_dtype=typed.model.compute_dtype)


@dataclasses.dataclass(frozen=True)
class Model:
  """A checkpoint's model: its step, the config stored with it, the networks that config
  builds and, once restored, the EMA generator's parameters (`params`; None before)."""
  path: str  # as given to `load_model`: a workdir, a checkpoints dir or a step dir
  step: int
  config: ml_collections.ConfigDict
  nets: Networks
  params: Any = None

  def restore(self, sharding: jax.sharding.Sharding | None = None) -> Model:
    """This model with its EMA generator, replicated on `sharding` (default: the first local
    device) whatever the device layout the checkpoint was written with.

    Checks first that the stored arrays fit `nets` (ValueError, one clear message, instead of
    a failed restore).
    """
    check_checkpoint_fits(self.path, self.nets, self.step)
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    params = checkpointing.restore_ema_generator(
        self.path, self.nets.abstract_generator_params(sharding), self.step)
    return dataclasses.replace(self, params=params)


def load_model(path: str, *, step: int | None = None,
               sharding: jax.sharding.Sharding | None = None, weights: bool = True) -> Model:
  """The one way to load a checkpoint's model (a workdir, a checkpoints dir or a step dir).

  Finds the step (default: the latest), reads the config stored with it, builds its networks
  (`build_networks` checks the config) and restores the EMA generator on `sharding` (see
  `Model.restore`). With `weights=False` it stops before the weights: a caller validates its
  inputs against `model.nets` first, then calls `model.restore(sharding)`.

  Raises:
    FileNotFoundError: no checkpoint (at that step) at `path`.
    checkpointing.CheckpointError, config_checks.ConfigError (ValueErrors): a damaged
      checkpoint or a stored config that cannot work; ValueError: weights that do not fit it.
  """
  step = checkpointing.resolve_checkpoint(path, step)[1]  # config and weights of one step
  config = checkpointing.load_config(path, step)
  model = Model(path, step, config, build_networks(config))
  return model.restore(sharding) if weights else model


def check_checkpoint_fits(path: str, nets: Networks, step: int | None = None) -> None:
  """Raises ValueError unless the stored EMA generator has exactly the arrays `nets` builds.

  Reads only the checkpoint's metadata, so a checkpoint whose config does not describe its
  weights is refused with one clear message instead of a failed restore.
  """
  stored_tree = checkpointing.ema_metadata(path, step)
  leaves = jax.tree_util.tree_leaves_with_path
  stored = {jax.tree_util.keystr(p): tuple(m.shape) for p, m in leaves(stored_tree)}
  wanted = {jax.tree_util.keystr(p): tuple(s.shape)
            for p, s in leaves(nets.abstract_generator_params())}
  bad = sorted(k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k))
  if bad:
    k = bad[0]
    raise ValueError(f'the generator weights in {path} do not match the config stored with '
                     f'them ({len(bad)} array(s) differ; e.g. {k}: stored '
                     f'{stored.get(k, "missing")}, config builds {wanted.get(k, "nothing")}).')


def make_sampler(nets: Networks, num_images: int,
                 sharding: jax.sharding.Sharding | None = None):
  """A jitted fn(params_g, key) -> unconditional samples [N, H, W, C] in [-1, 1] (NFE = T).

  A mask-conditional generator samples unconditionally with an all-ones mask. With `sharding`
  (a batch sharding, e.g. `sharding.local_batch_shardings`'s; the params replicated on its
  devices) the samples, and the work, are split over its devices: the same samples, since
  JAX's random draws do not depend on how they are sharded.
  """
  shape = nets.image_shape(num_images)

  def sample_fn(params, key):
    cond = nets.unconditional_cond(num_images)
    denoise = lambda x, t, z: nets.apply_g(params, x, t, z, cond)
    return diffusion.sample(nets.schedule, denoise, key, shape, nets.nz)

  return jax.jit(sample_fn, out_shardings=sharding)


def sample_grid(path: str, output: str | None = None, *, num_images: int = 64, seed: int = 0,
                step: int | None = None) -> tuple[str, int]:
  """`sample.py`: a PNG grid of `num_images` unconditional samples of a checkpoint's EMA
  generator, split over this process's devices (`sharding.local_batch_shardings`).

  Writes to `output` (default: <path>/samples.png); returns (that file, the network
  evaluations per sample). Raises cli.InputError (the one `error:` line of sample.py) when the
  model cannot be loaded.
  """
  params_sharding, batch_sharding = sharding_lib.local_batch_shardings(num_images)
  try:
    model = load_model(path, step=step, sharding=params_sharding)
  except (FileNotFoundError, ValueError) as e:
    raise cli.InputError(str(e)) from e
  output = output or os.path.join(os.path.abspath(path), 'samples.png')
  sampler = make_sampler(model.nets, num_images, batch_sharding)
  samples = sampler(model.params, jax.random.PRNGKey(seed))
  visualize.save_grid(np.asarray(samples), output)
  return output, model.nets.num_timesteps
