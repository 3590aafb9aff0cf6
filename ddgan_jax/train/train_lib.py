"""Training: state, optimizers and the loop with resume.

The train step (`step`) is the official iteration (SPEC section 3). Every random number of
step s comes from fold_in(base_key, s), so a resumed run draws exactly what an uninterrupted
run would have drawn.
"""
from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm.auto import tqdm

from ddgan_jax import config_checks
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import visualize
from ddgan_jax.models.networks import Networks, build_networks, make_sampler
from ddgan_jax.platform import compiling, distributed, sharding
from ddgan_jax.train import d_health, nonfinite, preemption
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


def run_length(config: ml_collections.ConfigDict, batch_size: int) -> tuple[int, int]:
  """(steps per epoch, total steps) of a training run: epochs of the train split (or of
  `data.num_train_examples`), and `train.num_steps`, or else `train.num_epochs` epochs."""
  from ddgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (imports TF)
  steps_per_epoch = max(1, input_pipeline.steps_per_epoch(config.data, batch_size))
  total_steps = (int(config.train.num_steps) if config.train.num_steps > 0
                 else int(config.train.num_epochs) * steps_per_epoch)
  return steps_per_epoch, total_steps


def make_optimizers(optim: ml_collections.ConfigDict, steps_per_epoch: int,
                    total_steps: int) -> Optimizers:
  """Adam(beta1, beta2, eps) for G and D with the per-epoch cosine schedule.

  optim.g_frozen_steps > 0 holds G's learning rate at 0 for that many steps from step 0, so D
  alone learns against the starting generator first (a fresh D needs hundreds of steps to
  tell a trained G's samples from real ones, docs/discriminator.md); 0 is the official run.
  """
  num_epochs = max(total_steps / steps_per_epoch, 1e-8)
  lr_g, lr_d = (learning_rate_schedule(lr, optim.lr_min, steps_per_epoch, num_epochs, optim.schedule)
                for lr in (optim.lr_g, optim.lr_d))
  frozen = int(optim.get('g_frozen_steps', 0))
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


# ------------------------------------------------------------------ the loop

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
      if section == 'inpaint':
        o = (o.get('enabled'), o.get('cond_fill', 'zeros'))
        n = (n.get('enabled'), n.get('cond_fill', 'zeros'))
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
                       stop_at_step: int | None = None) -> TrainState:
  """Trains (resuming from the latest checkpoint in `workdir`) and returns the final state.

  Args:
    config: the full config (see configs/default.py).
    workdir: checkpoints, config.json, metrics.jsonl, tensorboard/ and samples/ go here.
    mesh: device mesh (default: a `data` axis over all devices).
    stop_at_step: stop early at this step, with a checkpoint, as an interrupted run would.
  """
  from ddgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top  (imports TF)

  config_checks.check_config(config)  # Before anything is written into the workdir.
  workdir = os.path.abspath(workdir)
  mesh = mesh or sharding.make_mesh()
  batch_size = int(config.train.batch_size)
  sharding.check_batch_size(batch_size, mesh)
  if config.train.get('init_from') and not os.path.exists(os.path.join(workdir, 'config.json')):
    checkpointing.resolve_checkpoint(str(config.train.init_from))  # A missing one: no workdir.
  nets = build_networks(config)

  input_pipeline.prepare(config.data)  # on process 0; the others wait
  steps_per_epoch, total_steps = run_length(config, batch_size)
  opt = make_optimizers(config.optim, steps_per_epoch, total_steps)
  _check_workdir_config(workdir, config)  # After the dataset was opened: none, no new workdir.

  repl = sharding.replicated(mesh)
  base_key, init_key = jax.random.split(jax.random.PRNGKey(int(config.train.seed)))
  base_key = jax.device_put(base_key, repl)
  init_fn = jax.jit(lambda k: init_state(nets, opt, k), out_shardings=repl)

  ckpt = checkpointing.Checkpointer(os.path.join(workdir, checkpointing.CHECKPOINT_SUBDIR),
                                    max_to_keep=int(config.train.keep_checkpoints))
  abstract_state = checkpointing.with_sharding(jax.eval_shape(init_fn, init_key), repl)
  data_shard = sharding.data_sharding(mesh)
  train_step = nonfinite.Guard(
      step_lib.make_train_step(nets, opt, config), mesh, config.train,
      both_variants=step_lib.r1_due(config.optim, 0) != step_lib.r1_due(config.optim, 1))
  # The step programs compile in the background from here on, the first step's one first,
  # while the state is restored or initialised and the input pipeline starts.
  images_spec = jax.ShapeDtypeStruct(nets.image_shape(batch_size), jnp.float32, sharding=data_shard)
  train_step.start(abstract_state, images_spec, base_key,
                   r1=step_lib.r1_due(config.optim, ckpt.latest_step() or 0))
  state = preemption.restore_latest(ckpt, abstract_state)
  if state is None:
    state = compiling.compile_once(init_fn, init_key)(init_key)
    if config.train.get('init_from'):
      state = _start_from_pretrained(state, str(config.train.init_from), repl)
  start_step = int(state.step)

  preempt = preemption.PreemptionWatcher()
  num_samples = int(config.train.num_sample_images)
  sampler = make_sampler(nets, num_samples) if num_samples > 0 else None
  writer = MetricWriter(workdir)
  host_batches = input_pipeline.create_dataset(
      config.data, global_batch_size=batch_size, split=config.data.train_split, train=True,
      seed=int(config.train.seed), start_step=start_step)
  # One batch already on its devices while the previous step runs.
  batches = input_pipeline.device_batches((b['image'] for b in host_batches), data_shard)

  if jax.process_count() > 1:
    # Every process's step programs are compiled before any process runs one. On CPU the first
    # collective between processes sets up gloo, which waits only 30 s for the others: a loaded
    # machine compiled one process's programs more than that after the other's, and the run
    # failed ("Gloo context initialization failed: ... GetKeyValue() timed out").
    train_step.wait()
    distributed.barrier('ddgan_jax_step_programs_compiled')

  is_main = jax.process_index() == 0
  if is_main and start_step:
    print(f'Resuming from step {start_step} in {workdir}', flush=True)
  max_seconds = float(config.train.max_time_minutes) * 60.0
  t_start = time.time()
  # The window's metrics stay on the devices until its log step. Summing them as they come
  # (an eager jnp.add per metric) made every step wait for the previous one: XLA:CPU runs such
  # tiny programs in the calling thread, once their inputs are ready.
  window, t_log = [], time.time()
  health = d_health.Monitor.from_config(config.train)
  pbar = _progress_bar(total_steps, start_step, max_seconds, disable=not is_main)
  step = start_step
  while step < total_steps:
    images = next(batches)
    r1 = step_lib.r1_due(config.optim, step)
    state, metrics = train_step(state, images, base_key, r1)
    step += 1
    preemption.fault_point('step', step)
    pbar.update(min(time.time() - t_start, max_seconds) - pbar.n if max_seconds > 0 else 1)
    window.append((metrics, r1))
    log_step = step % int(config.train.log_every) == 0
    # The time limit is checked on log steps only: there the metrics sync anyway, and with
    # several processes the check is a broadcast that would otherwise stall every step.
    out_of_time = max_seconds > 0 and log_step and _agree(time.time() - t_start > max_seconds)
    out_of_time = out_of_time or step == stop_at_step
    preempted = preempt.reached(step)
    last = step == total_steps or out_of_time or preempted
    save_step = step % int(config.train.ckpt_every) == 0 or last
    # The guard's counters: a host sync, so only where the loop syncs anyway; nothing
    # non-finite is ever saved.
    nonfinite_scalars = train_step.poll() if log_step or save_step else {}

    if log_step or last:
      scalars = window_means(jax.device_get([m for m, _ in window]), [r for _, r in window])
      scalars.update(d_health.health_scalars(scalars))
      warning = health.update(step, scalars)
      if warning and is_main:
        tqdm.write(warning)
      now = time.time()
      scalars['steps_per_sec'] = len(window) / max(now - t_log, 1e-9)
      scalars['lr_g'], scalars['lr_d'] = float(opt.lr_g(step)), float(opt.lr_d(step))
      scalars.update(nonfinite_scalars)
      writer.write_scalars(step, scalars)
      postfix = dict(d=f"{scalars['d_loss']:.3f}", g=f"{scalars['g_loss']:.3f}")
      if max_seconds > 0:  # the bar counts seconds of the limit; show the step reached here
        postfix = dict(step=str(step), **postfix)  # (the limit, not total_steps, ends the run)
      pbar.set_postfix(postfix)
      window, t_log = [], now
    if save_step:
      if train_step.error:
        break
      ckpt.save(step, state, state.ema_g, config)
      preemption.fault_point('save', step)
    if train_step.error:
      break
    if sampler is not None and not preempted and (step % int(config.train.sample_every) == 0 or last):
      samples = np.asarray(jax.device_get(sampler(state.ema_g, jax.random.PRNGKey(int(config.sample.seed)))))
      if is_main:
        grid = visualize.save_grid(samples, os.path.join(workdir, 'samples', f'step_{step:08d}.png'))
        writer.write_image(step, 'samples_ema', grid)
    if preempted:
      ckpt.wait()
      if is_main:
        print(preemption.resume_message(step, workdir), flush=True)
      break
    if out_of_time:
      if is_main and step != stop_at_step:
        print(f'Stopping at step {step}: train.max_time_minutes={config.train.max_time_minutes} reached.',
              flush=True)
      break
  pbar.close()
  writer.flush()
  ckpt.close()
  writer.close()
  preempt.close()
  if train_step.error:
    raise train_step.error
  return state


def window_means(metrics: list[dict], r1_steps: list[bool]) -> dict[str, float]:
  """The mean of each metric over a log window (host values, float64). R1 is averaged over
  the window's R1 steps only (the step reports 0 on the others) and left out when it had none."""
  means = {k: float(np.mean([m[k] for m in metrics], dtype=np.float64)) for k in metrics[0]}
  r1_values = [m['r1'] for m, due in zip(metrics, r1_steps) if due and 'r1' in m]
  means.pop('r1', None)
  if r1_values:
    means['r1'] = float(np.mean(r1_values, dtype=np.float64))
  return means


def _progress_bar(total_steps: int, start_step: int, max_seconds: float, disable: bool) -> tqdm:
  """Steps towards total_steps; with a time limit, seconds towards the limit (which ends the
  run first unless total_steps comes sooner), so elapsed and remaining are the real ones."""
  if max_seconds <= 0:
    return tqdm(total=total_steps, initial=start_step, disable=disable, desc='train',
                dynamic_ncols=True)
  return tqdm(total=round(max_seconds), disable=disable, desc='train (time limit)',
              dynamic_ncols=True, unit='s',
              bar_format='{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} of '
                         f'{max_seconds / 60:g} min{{postfix}}')


def _start_from_pretrained(state: TrainState, path: str, repl: jax.sharding.Sharding
                           ) -> TrainState:
  """A fresh state whose generator (and its EMA) come from the checkpoint at `path`
  (`finetune.graft`), and D too when the checkpoint has one that fits; the optimizer states
  stay as initialised."""
  from ddgan_jax.train import finetune  # pylint: disable=g-import-not-at-top
  params_g = jax.device_put(finetune.load_pretrained_generator(path, state.params_g), repl)
  params_d = finetune.load_pretrained_discriminator(path, state.params_d)
  if jax.process_index() == 0:
    what = ('Generator and discriminator' if params_d is not None
            else 'Generator (discriminator fresh: the checkpoint has none that fits)')
    print(f'{what} initialised from {path}; optimizers fresh.', flush=True)
  state = state.replace(params_g=params_g, ema_g=jax.tree.map(jnp.copy, params_g))
  return state if params_d is None else state.replace(params_d=jax.device_put(params_d, repl))


def _agree(flag: bool) -> bool:
  """The same boolean on every process (process 0 decides)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))
