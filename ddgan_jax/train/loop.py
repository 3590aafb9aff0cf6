"""The training loop: steps, log windows, checkpoints and samples, and the ways a run ends.

`Loop.run` runs the step from the restored (or fresh) state until the last step, the time
limit (`train.max_time_minutes`), SIGTERM (`preemption`), a non-finite stop (`nonfinite`) or a
hook's request; after each step `Loop.boundary` says what that step does besides training
(`Boundary`). A run that stops early saves a checkpoint at its last step, so the next
invocation resumes there.

Hooks are callers' callables, hook(point, step), called at two points of every run:

  'step'  after the update of step `step` (the state counts `step` steps), before the loop
          decides what the step does besides training;
  'save'  right after the checkpoint save of `step` started (it may still be running).

A hook that returns a true value asks the run to stop: at 'step', with a checkpoint of that
step, as an interrupted run would; at 'save', after that step. Every hook is called at every
point, also once one has asked to stop.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Iterator, Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import visualize
from ddgan_jax.train import d_health, nonfinite, preemption
from ddgan_jax.train.metric_writers import MetricWriter
from ddgan_jax.train.step import r1_due

Hook = Callable[[str, int], Any]  # hook(point, step) -> a true value to stop the run
STEP, SAVE = 'step', 'save'


def call_hooks(hooks: Sequence[Hook], point: str, step: int) -> bool:
  """Calls every hook at `point` of `step`; whether one of them asked the run to stop."""
  return any([bool(hook(point, step)) for hook in hooks])  # a list: every hook is called


@dataclasses.dataclass(frozen=True)
class Boundary:
  """What the loop does after a step besides training."""
  log: bool          # a log step (train.log_every)
  save: bool         # a checkpoint step (train.ckpt_every, or the last)
  last: bool         # the run ends after this step (one of the four below)
  out_of_time: bool  # train.max_time_minutes reached (checked on log steps only)
  preempted: bool    # SIGTERM arrived (on every process at the same step)
  requested: bool    # a hook asked to stop


class Clock:
  """The run's time limit (`train.max_time_minutes`, 0: none) and its progress bar."""

  def __init__(self, train_cfg: ml_collections.ConfigDict, total_steps: int, start_step: int,
               disable: bool):
    self.max_seconds = float(train_cfg.max_time_minutes) * 60.0
    self.start = time.time()
    self.pbar = _progress_bar(total_steps, start_step, self.max_seconds, disable)

  def tick(self) -> None:
    """One more step: the bar counts steps, or with a time limit seconds of it."""
    if self.max_seconds > 0:
      self.pbar.update(min(time.time() - self.start, self.max_seconds) - self.pbar.n)
    else:
      self.pbar.update(1)

  def out_of_time(self) -> bool:
    """Whether the limit is reached, the same on every process (a broadcast: call it on log
    steps only, where the metrics sync anyway)."""
    return self.max_seconds > 0 and _agree(time.time() - self.start > self.max_seconds)


class Window:
  """The metrics of the steps since the last log step, summarised and written on log steps.

  They stay on the devices until then. Summing them as they come (an eager jnp.add per metric)
  made every step wait for the previous one: XLA:CPU runs such tiny programs in the calling
  thread, once their inputs are ready.
  """

  def __init__(self, train_cfg: ml_collections.ConfigDict, writer: MetricWriter,
               learning_rates: tuple[Callable, Callable], clock: Clock, is_main: bool):
    self.writer, self.learning_rates, self.clock, self.is_main = (
        writer, learning_rates, clock, is_main)
    self.health = d_health.Monitor.from_config(train_cfg)
    self.steps: list[tuple[dict, bool]] = []  # (metrics, r1) of each step
    self.started = time.time()

  def add(self, metrics: dict, r1: bool) -> None:
    self.steps.append((metrics, r1))

  def write(self, step: int, extra: dict[str, float]) -> None:
    """Writes the window's means, D's health, speed, learning rates and `extra`; starts the next."""
    metrics = jax.device_get([m for m, _ in self.steps])
    scalars = window_means(metrics, [r for _, r in self.steps])
    scalars.update(d_health.health_scalars(scalars))
    warning = self.health.update(step, scalars)
    if warning and self.is_main:
      tqdm.write(warning)
    now = time.time()
    scalars['steps_per_sec'] = len(self.steps) / max(now - self.started, 1e-9)
    lr_g, lr_d = self.learning_rates
    scalars['lr_g'], scalars['lr_d'] = float(lr_g(step)), float(lr_d(step))
    scalars.update(extra)
    self.writer.write_scalars(step, scalars)
    postfix = dict(d=f"{scalars['d_loss']:.3f}", g=f"{scalars['g_loss']:.3f}")
    if self.clock.max_seconds > 0:  # the bar counts seconds of the limit; show the step here
      postfix = dict(step=str(step), **postfix)  # (the limit, not total_steps, ends the run)
    self.clock.pbar.set_postfix(postfix)
    self.steps, self.started = [], now


@dataclasses.dataclass
class Loop:
  """A run's loop, from what `train_lib.train_and_evaluate` built; `run` trains."""
  config: ml_collections.ConfigDict
  workdir: str
  train_step: nonfinite.Guard
  learning_rates: tuple[Callable, Callable]  # step -> G's, D's learning rate (to log)
  base_key: jax.Array
  batches: Iterator[jax.Array]  # the batch of each step from the state's, on the devices
  ckpt: checkpointing.Checkpointer
  writer: MetricWriter
  preempt: preemption.PreemptionWatcher
  sampler: Callable | None  # (ema_g, key) -> sample images; None: no sample grids
  total_steps: int
  hooks: Sequence[Hook] = ()

  def run(self, state: Any) -> Any:
    """Trains from `state` until the run ends (see the module docstring); returns the state
    and raises the non-finite stop's error, once everything is closed."""
    step = int(state.step)
    is_main = jax.process_index() == 0
    clock = Clock(self.config.train, self.total_steps, step, disable=not is_main)
    window = Window(self.config.train, self.writer, self.learning_rates, clock, is_main)
    while step < self.total_steps:
      images = next(self.batches)
      r1 = r1_due(self.config.optim, step)
      state, metrics = self.train_step(state, images, self.base_key, r1)
      step += 1
      requested = call_hooks(self.hooks, STEP, step)
      clock.tick()
      window.add(metrics, r1)
      if not self.after_step(step, state, self.boundary(step, clock, requested), window):
        break
    clock.pbar.close()
    self.writer.flush()
    self.ckpt.close()
    self.writer.close()
    self.preempt.close()
    if self.train_step.error:
      raise self.train_step.error
    return state

  def boundary(self, step: int, clock: Clock, requested: bool) -> Boundary:
    """What step `step` does besides training: the stops, log and checkpoint steps."""
    train_cfg = self.config.train
    log = step % int(train_cfg.log_every) == 0
    # The time limit is checked on log steps only: there the metrics sync anyway, and with
    # several processes the check is a broadcast that would otherwise stall every step.
    out_of_time = log and clock.out_of_time()
    preempted = self.preempt.reached(step)
    last = step == self.total_steps or out_of_time or preempted or requested
    save = step % int(train_cfg.ckpt_every) == 0 or last
    return Boundary(log=log, save=save, last=last, out_of_time=out_of_time, preempted=preempted,
                    requested=requested)

  def after_step(self, step: int, state: Any, at: Boundary, window: Window) -> bool:
    """Logs, saves and samples as `at` says; whether the run goes on."""
    # The guard's counters: a host sync, so only where the loop syncs anyway; nothing
    # non-finite is ever saved.
    nonfinite_scalars = self.train_step.poll() if at.log or at.save else {}
    if at.log or at.last:
      window.write(step, nonfinite_scalars)
    if at.save:
      if self.train_step.error:
        return False
      self.ckpt.save(step, state, state.ema_g, self.config)
      if call_hooks(self.hooks, SAVE, step):
        at = dataclasses.replace(at, last=True, requested=True)
    if self.train_step.error:
      return False
    sample_step = step % int(self.config.train.sample_every) == 0 or at.last
    if self.sampler is not None and not at.preempted and sample_step:
      self.write_samples(step, state)
    return not self.stopped(step, at)

  def stopped(self, step: int, at: Boundary) -> bool:
    """Whether the run stops after `step`, with its message (a checkpoint of it is saved)."""
    is_main = jax.process_index() == 0
    if at.preempted:
      self.ckpt.wait()
      if is_main:
        print(preemption.resume_message(step, self.workdir), flush=True)
      return True
    if at.out_of_time:
      if is_main:
        print(f'Stopping at step {step}: '
              f'train.max_time_minutes={self.config.train.max_time_minutes} reached.', flush=True)
      return True
    return at.requested

  def write_samples(self, step: int, state: Any) -> None:
    """A grid of the EMA generator's samples (the same seed every time) under samples/."""
    key = jax.random.PRNGKey(int(self.config.sample.seed))
    samples = np.asarray(jax.device_get(self.sampler(state.ema_g, key)))
    if jax.process_index() == 0:
      path = os.path.join(self.workdir, 'samples', f'step_{step:08d}.png')
      self.writer.write_image(step, 'samples_ema', visualize.save_grid(samples, path))


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


def _agree(flag: bool) -> bool:
  """The same boolean on every process (process 0 decides)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))
