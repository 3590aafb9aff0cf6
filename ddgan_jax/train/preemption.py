"""Preemption and crashes: SIGTERM saves and exits, half-written checkpoints are passed over.

* SIGTERM (what TPU VMs and SLURM send before they take a machine away) is turned into a stop
  at a step boundary: the loop saves a checkpoint at that step, waits for it to be finalised
  and returns with a message saying how to resume. With `jax.distributed` initialised, JAX's
  own preemption service catches the signal and `reached_preemption_sync_point` makes every
  process stop at the same step; in a single process a Python handler sets a flag.
* SIGKILL cannot be caught: Orbax writes each checkpoint into `<step>.orbax-checkpoint-tmp`
  and renames it when complete, so a kill leaves the previous checkpoint intact and a
  temporary directory that Orbax ignores (and replaces when it saves that step again).
  `restore_latest` warns about it in one line; a `<step>` directory that does not restore
  (copied or truncated by hand, a full disk) is moved aside to `<step>.incomplete` with a
  one-line warning and the next older checkpoint is used.

The tests deliver real signals at exact points of the loop through its hooks (`loop`,
tests/train/fault_runner.py).
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

import jax
from jax._src import distributed as jax_distributed
from jax.experimental import multihost_utils

TMP_SUFFIX = '.orbax-checkpoint-tmp'
INCOMPLETE_SUFFIX = '.incomplete'


def _distributed_client() -> Any:
  try:
    return jax_distributed.global_state.client
  except AttributeError:
    return None


class PreemptionWatcher:
  """`reached(step)` is True, on every process at the same step, once SIGTERM has arrived."""

  def __init__(self):
    self.signal_name = 'SIGTERM'
    self._received = False
    self._previous = None
    self._jax_service = _distributed_client() is not None
    if not self._jax_service:
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)

  def _on_signal(self, signum, frame):  # pylint: disable=unused-argument
    self._received = True

  def reached(self, step: int) -> bool:
    if self._jax_service:
      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # the preemption service is turned off
        return False
    return self._received

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None


def resume_message(step: int, workdir: str) -> str:
  return (f'Preempted (SIGTERM): saved a checkpoint at step {step} in {workdir}/checkpoints; '
          'run the same command again to resume from it.')


def _warn(message: str) -> None:
  if jax.process_index() == 0:
    print(f'WARNING: {message}', file=sys.stderr, flush=True)


def restore_latest(ckpt: Any, abstract_state: Any) -> Any | None:
  """The state of the newest checkpoint of `ckpt` (a `checkpointing.Checkpointer`) that
  restores, or None when there is none. Interrupted saves are ignored and broken step
  directories moved aside, each with a one-line warning."""
  directory = ckpt.directory
  if os.path.isdir(directory):
    for name in sorted(os.listdir(directory)):
      if name.endswith(TMP_SUFFIX):
        _warn(f'ignoring {os.path.join(directory, name)}: a checkpoint save that was interrupted '
              'before it finished (the older checkpoints are intact).')
  while (step := ckpt.latest_step()) is not None:
    try:
      return ckpt.restore_state(step, abstract_state)
    except Exception as e:  # pylint: disable=broad-except  (any unreadable checkpoint)
      path = os.path.join(directory, str(step))
      aside = _free_name(path + INCOMPLETE_SUFFIX)
      _warn(f'ignoring checkpoint {path}: it does not restore ({type(e).__name__}); moved to '
            f'{os.path.basename(aside)}, resuming from the previous one.')
      if jax.process_index() == 0:
        os.rename(path, aside)
      _barrier(f'ddgan_jax_incomplete_{step}')
      ckpt.manager.reload()
  return None


def _free_name(path: str) -> str:
  candidate, n = path, 1
  while os.path.exists(candidate):
    candidate, n = f'{path}{n}', n + 1
  return candidate


def _barrier(name: str) -> None:
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)

