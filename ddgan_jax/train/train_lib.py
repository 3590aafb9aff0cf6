"""Training: the entry point `train_and_evaluate`, the train state and the optimizers.

`train_and_evaluate` checks the config, builds the networks, optimizers and input pipeline,
starts compiling the train step (`step`, jitted by `programs` inside `nonfinite.Guard`),
restores the latest checkpoint (`preemption`) or initialises the state, and hands over to the
training loop (`loop`), which resumes exactly: every random number of step s comes from
fold_in(base_key, s) and the data stream starts at the state's step.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ddgan_jax import config_checks
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models.networks import Networks, build_networks, make_sampler
from ddgan_jax.platform import compiling, distributed, sharding
from ddgan_jax.train import finetune, loop, nonfinite, preemption
from ddgan_jax.train import step as step_lib
from ddgan_jax.train.metric_writers import MetricWriter


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array  # int32 scalar: number of completed steps
  params_g: Any
  params_d: Any
  opt_state_g: Any
  opt_state_d: Any
  ema_g: Any


# ------------------------------------------------------------------ optimizers

def learning_rate_schedule(base_lr: float, lr_min: float, steps_per_epoch: int,
                           num_epochs: float, kind: str = 'cosine') -> Callable[[Any], Any]:
  """Official CosineAnnealingLR(T_max=num_epochs, eta_min=lr_min), stepped once per epoch."""
  if kind == 'constant':
    return lambda count: jnp.asarray(base_lr, jnp.float32)
  if kind != 'cosine':
    raise ValueError(f"optim.schedule must be 'cosine' or 'constant', got {kind!r}.")

  def schedule(count):
    epoch = (jnp.asarray(count) // steps_per_epoch).astype(jnp.float32)
    return lr_min + (base_lr - lr_min) * 0.5 * (1.0 + jnp.cos(jnp.pi * epoch / num_epochs))
  return schedule


class Optimizers(NamedTuple):
  tx_g: optax.GradientTransformation
  tx_d: optax.GradientTransformation
  lr_g: Callable[[Any], Any]  # step -> learning rate
  lr_d: Callable[[Any], Any]


def _frozen_until(steps: int, schedule: Callable[[Any], Any], count: Any) -> Any:
  return jnp.where(jnp.asarray(count) < steps, 0.0, schedule(count))


def run_length(config: ml_collections.ConfigDict | config_checks.Config,
               batch_size: int) -> tuple[int, int]:
  """(steps per epoch, total steps) of a training run: epochs of the train split (or of
  `data.num_train_examples`), and `train.num_steps`, or else `train.num_epochs` epochs."""
  from ddgan_jax.data import input_pipeline  # TensorFlow: lazy
  data = config_checks.DataConfig.from_section(config.data)
  train = config_checks.TrainConfig.from_section(config.train)
  steps_per_epoch = max(1, input_pipeline.steps_per_epoch(data, batch_size))
  total_steps = (train.num_steps if train.num_steps > 0
                 else int(train.num_epochs) * steps_per_epoch)
  return steps_per_epoch, total_steps


def make_optimizers(optim: ml_collections.ConfigDict, steps_per_epoch: int,
                    total_steps: int) -> Optimizers:
  """Adam(beta1, beta2, eps) for G and D with the per-epoch cosine schedule.

  optim.g_frozen_steps > 0 holds G's learning rate at 0 for that many steps from step 0, so D
  alone learns against the starting generator first (a fresh D needs hundreds of steps to
  tell a trained G's samples from real ones, docs/discriminator.md); 0 is the official run.
  """
  optim = config_checks.OptimConfig.from_section(optim)
  num_epochs = max(total_steps / steps_per_epoch, 1e-8)
  lr_g, lr_d = (learning_rate_schedule(lr, optim.lr_min, steps_per_epoch, num_epochs, optim.schedule)
                for lr in (optim.lr_g, optim.lr_d))
  frozen = optim.g_frozen_steps
  if frozen > 0:
    lr_g = functools.partial(_frozen_until, frozen, lr_g)
  adam = lambda lr: optax.adam(lr, b1=optim.beta1, b2=optim.beta2, eps=optim.eps)
  return Optimizers(adam(lr_g), adam(lr_d), lr_g, lr_d)


def init_state(nets: Networks, opt: Optimizers, key: jax.Array) -> TrainState:
  k_g, k_d = jax.random.split(key)
  params_g = nets.init_generator(k_g)
  params_d = nets.init_discriminator(k_d)
  return TrainState(step=jnp.zeros((), jnp.int32), params_g=params_g, params_d=params_d,
                    opt_state_g=opt.tx_g.init(params_g), opt_state_d=opt.tx_d.init(params_d),
                    ema_g=jax.tree.map(jnp.copy, params_g))  # own buffers (state is donated)


# ------------------------------------------------------------------ the run

def _check_workdir_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a run whose networks differ; writes the resolved config."""
  path = os.path.join(workdir, 'config.json')
  new = checkpointing.config_to_json_dict(config)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    for section in ('model', 'diffusion', 'data', 'inpaint'):
      keys = ('image_size', 'num_channels') if section == 'data' else None
      o, n = old.get(section, {}), new.get(section, {})
      if keys:
        o, n = {k: o.get(k) for k in keys}, {k: n.get(k) for k in keys}
      if section == 'inpaint':  # cond_fill: InpaintConfig's default where a config lacks it
        o, n = ((s.get('enabled'), config_checks.InpaintConfig.stored(s, 'cond_fill'))
                for s in (o, n))
      if o != n:
        raise ValueError(f'{workdir} holds a run with a different `{section}` config; '
                         'resume with the same config or use a new --workdir.')
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(path + '.tmp', 'w') as f:
      json.dump(new, f, indent=2)
    os.replace(path + '.tmp', path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       mesh: jax.sharding.Mesh | None = None,
                       hooks: Sequence[loop.Hook] = ()) -> TrainState:
  """Trains (resuming from the latest checkpoint in `workdir`) and returns the final state.

  Args:
    config: the full config (see configs/default.py).
    workdir: checkpoints, config.json, metrics.jsonl, tensorboard/ and samples/ go here.
    mesh: device mesh (default: a `data` axis over all devices).
    hooks: callables hook(point, step) that the loop calls after each step (point 'step') and
      right after each checkpoint save started ('save'); one that returns a true value stops
      the run at that step, with a checkpoint, as an interrupted run would (see `loop`).
  """
  typed = config_checks.check_config(config)  # Before anything is written into the workdir.
  workdir = os.path.abspath(workdir)
  mesh = mesh or sharding.make_mesh()
  nets, opt, total_steps = _prepare(config, typed, workdir, mesh)
  state, train_step, base_key, ckpt = _start(config, typed, workdir, nets, opt, mesh)
  start_step = int(state.step)

  preempt = preemption.PreemptionWatcher()
  num_samples = typed.train.num_sample_images
  sampler = make_sampler(nets, num_samples) if num_samples > 0 else None
  writer = MetricWriter(workdir)
  batches = _device_batches(typed, mesh, start_step)
  if jax.process_count() > 1:
    # Every process's step programs are compiled before any process runs one. On CPU the first
    # collective between processes sets up gloo, which waits only 30 s for the others: a loaded
    # machine compiled one process's programs more than that after the other's, and the run
    # failed ("Gloo context initialization failed: ... GetKeyValue() timed out").
    train_step.wait()
    distributed.barrier('ddgan_jax_step_programs_compiled')
  if jax.process_index() == 0 and start_step:
    print(f'Resuming from step {start_step} in {workdir}', flush=True)
  return loop.Loop(config=config, workdir=workdir, train_step=train_step,
                   learning_rates=(opt.lr_g, opt.lr_d), base_key=base_key, batches=batches,
                   ckpt=ckpt, writer=writer, preempt=preempt, sampler=sampler,
                   total_steps=total_steps, hooks=tuple(hooks)).run(state)


def _prepare(config: ml_collections.ConfigDict, typed: config_checks.Config, workdir: str,
             mesh: jax.sharding.Mesh) -> tuple[Networks, Optimizers, int]:
  """(networks, optimizers, total steps) of a checked config; writes the workdir's config.json
  once the dataset opened (none: no new workdir) and the networks match a run already there."""
  from ddgan_jax.data import input_pipeline  # TensorFlow: lazy
  batch_size = typed.train.batch_size
  sharding.check_batch_size(batch_size, mesh)
  init_from = typed.train.init_from
  if init_from and not os.path.exists(os.path.join(workdir, 'config.json')):
    checkpointing.resolve_checkpoint(init_from)  # A missing one: no workdir.
  nets = build_networks(config)
  input_pipeline.prepare(typed.data)  # on process 0
  steps_per_epoch, total_steps = run_length(typed, batch_size)
  opt = make_optimizers(typed.optim, steps_per_epoch, total_steps)
  _check_workdir_config(workdir, config)  # After the dataset was opened: none, no new workdir.
  return nets, opt, total_steps


def _start(config: ml_collections.ConfigDict, typed: config_checks.Config, workdir: str,
           nets: Networks, opt: Optimizers, mesh: jax.sharding.Mesh
           ) -> tuple[TrainState, nonfinite.Guard, jax.Array, checkpointing.Checkpointer]:
  """(state, train step, base key, checkpointer): the state restored from the latest
  checkpoint of `workdir`, or initialised (from `train.init_from` where given), while the
  step's programs compile."""
  repl = sharding.replicated(mesh)
  base_key, init_key = jax.random.split(jax.random.PRNGKey(typed.train.seed))
  base_key = jax.device_put(base_key, repl)
  init_fn = jax.jit(lambda k: init_state(nets, opt, k), out_shardings=repl)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, checkpointing.CHECKPOINT_SUBDIR),
                                    max_to_keep=typed.train.keep_checkpoints)
  abstract_state = checkpointing.with_sharding(jax.eval_shape(init_fn, init_key), repl)
  train_step = nonfinite.Guard(
      step_lib.make_train_step(nets, opt, config), mesh, typed.train,
      both_variants=step_lib.r1_due(config.optim, 0) != step_lib.r1_due(config.optim, 1))
  # The step programs compile in the background from here on, the first step's one first,
  # while the state is restored or initialised and the input pipeline starts.
  images_spec = jax.ShapeDtypeStruct(nets.image_shape(typed.train.batch_size), jnp.float32,
                                     sharding=sharding.data_sharding(mesh))
  train_step.start(abstract_state, images_spec, base_key,
                   r1=step_lib.r1_due(config.optim, ckpt.latest_step() or 0))
  state = preemption.restore_latest(ckpt, abstract_state)
  if state is None:
    state = compiling.compile_once(init_fn, init_key)(init_key)
    if typed.train.init_from:
      state = _start_from_pretrained(state, typed.train.init_from, repl)
  return state, train_step, base_key, ckpt


def _device_batches(typed: config_checks.Config, mesh: jax.sharding.Mesh,
                    start_step: int) -> Iterator[jax.Array]:
  """This process's training batches from step `start_step` on, each put on its devices while
  the previous step runs."""
  from ddgan_jax.data import input_pipeline  # TensorFlow: lazy
  host_batches = input_pipeline.create_dataset(
      typed.data, global_batch_size=typed.train.batch_size,
      split=typed.data.train_split, train=True, seed=typed.train.seed,
      start_step=start_step)
  return input_pipeline.device_batches((b['image'] for b in host_batches),
                                       sharding.data_sharding(mesh))


def _start_from_pretrained(state: TrainState, path: str, repl: jax.sharding.Sharding
                           ) -> TrainState:
  """A fresh state whose generator (and its EMA) come from the checkpoint at `path`
  (`finetune.graft`), and D too when the checkpoint has one that fits; the optimizer states
  stay as initialised."""
  params_g = jax.device_put(finetune.load_pretrained_generator(path, state.params_g), repl)
  params_d = finetune.load_pretrained_discriminator(path, state.params_d)
  if jax.process_index() == 0:
    what = ('Generator and discriminator' if params_d is not None
            else 'Generator (discriminator fresh: the checkpoint has none that fits)')
    print(f'{what} initialised from {path}; optimizers fresh.', flush=True)
  state = state.replace(params_g=params_g, ema_g=jax.tree.map(jnp.copy, params_g))
  return state if params_d is None else state.replace(params_d=jax.device_put(params_d, repl))

