"""Non-finite losses, gradients and parameters: detected inside the jitted step, never kept.

`Guard` wraps the update of the (unjitted) train step of `step.make_train_step`. After each
step it checks, on the device, every loss metric and every leaf of the new state for NaN/Inf:

  losses (each metric)  ->  grad_d, grad_g (Adam's first moments: finite iff the gradient is)
  ->  params_d, params_g, ema_g

and keeps the previous state wherever something is not finite (a `lax.cond` select, so no
non-finite value ever reaches the parameters, the optimizer states or a checkpoint). What
happens then follows `config.train.on_nonfinite`:

  'stop'  the step and every later one leave the state as it was; the host sees it at the next
          log step or before the next checkpoint save and stops with one line naming the step
          and the quantity (`NonFiniteError`).
  'skip'  the update is dropped (the step counter still advances, so the data stream and the
          step keys of a resumed run stay aligned), counted (`nonfinite_skipped` in the logged
          scalars, since the start of this invocation) and training goes on; after
          `train.max_nonfinite_in_a_row` dropped steps in a row (0: never) it stops as above.
  'off'   no check (the plain step).

The guard's counters live on the device next to the state and are read only on log steps and
before saves: no extra host round trip per step. They are not part of the checkpoint, so a
resumed run starts counting from zero.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ddgan_jax import config_checks
from ddgan_jax.platform import sharding
from ddgan_jax.train import programs

MODES = config_checks.NONFINITE_MODES
_STATE_QUANTITIES = (('grad_d', 'opt_state_d'), ('grad_g', 'opt_state_g'),
                     ('params_d', 'params_d'), ('params_g', 'params_g'), ('ema_g', 'ema_g'))


class NonFiniteError(RuntimeError):
  """Training stopped on a non-finite value; the message is one line for the CLI."""


def _all_finite(tree: Any) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def finite_flags(metrics: dict[str, jax.Array], state: Any) -> tuple[list[str], jax.Array]:
  """(names, bool vector): whether each loss metric and each part of `state` is finite."""
  names = sorted(metrics)
  flags = [jnp.all(jnp.isfinite(metrics[k])) for k in names]
  for name, field in _STATE_QUANTITIES:
    names.append(name)
    flags.append(_all_finite(getattr(state, field)))
  return names, jnp.stack(flags)


def init_counters(mode: str, max_in_a_row: int) -> dict[str, jax.Array]:
  """The guard's device state. The mode and limit are data, so 'stop' and 'skip' share one
  compiled program."""
  i32 = lambda v: np.asarray(v, np.int32)  # numpy: every counter gets its own device buffer
  return dict(skip=np.asarray(mode == 'skip'), max_in_a_row=i32(max_in_a_row), in_a_row=i32(0),
              skipped=i32(0), stopped=np.asarray(False), stop_step=i32(0), stop_code=i32(-1),
              stop_run=i32(0))


def guarded(update: Callable) -> tuple[Callable, list[str]]:
  """The train step's update (`step.TrainStep`) as fn(state, counters, images, key, d_out)
  -> (state, counters, metrics), and the quantity names (filled in when it is first traced)."""
  names: list[str] = []

  def step(state, counters, images, base_key, d_out):
    new_state, metrics = update(state, images, base_key, d_out)
    quantity_names, finite = finite_flags(metrics, new_state)
    names[:] = quantity_names
    ok = jnp.all(finite)
    active = ~counters['stopped']
    in_a_row = jnp.where(ok, 0, counters['in_a_row'] + 1)
    limit = counters['max_in_a_row']
    stop_now = active & ~ok & (~counters['skip'] | ((limit > 0) & (in_a_row >= limit)))
    accept = active & ok
    # A conditional, not a jnp.where per leaf: XLA:CPU took minutes to compile a select of
    # every leaf on a predicate reduced from every leaf (200 s for 600 small leaves vs 7 s).
    zeros = jax.tree.map(jnp.zeros_like, metrics)  # a dropped step logs zeros, not NaN
    out, metrics = jax.lax.cond(accept, lambda: (new_state, metrics), lambda: (state, zeros))
    out = out.replace(step=jnp.where(active & ~stop_now, state.step + 1, state.step))
    dropped = active & ~ok
    counters = dict(
        counters,
        in_a_row=jnp.where(active, in_a_row, counters['in_a_row']),
        skipped=counters['skipped'] + (dropped & ~stop_now).astype(jnp.int32),
        stopped=counters['stopped'] | stop_now,
        stop_step=jnp.where(stop_now, state.step + 1, counters['stop_step']),
        stop_code=jnp.where(stop_now, jnp.argmin(finite).astype(jnp.int32), counters['stop_code']),
        stop_run=jnp.where(stop_now, in_a_row, counters['stop_run']))
    return out, counters, metrics

  return step, names


class Guard:
  """The jitted, guarded train step and the host side of its counters (see module docstring)."""

  def __init__(self, train_step, mesh: jax.sharding.Mesh,
               train_cfg: ml_collections.ConfigDict | config_checks.TrainConfig, *,
               both_variants: bool = True):
    train = config_checks.TrainConfig.from_section(train_cfg)  # or a one-line ConfigError
    self.mode, self.max_in_a_row = train.on_nonfinite, train.max_nonfinite_in_a_row
    self.error: NonFiniteError | None = None
    self._both = both_variants  # whether steps with and without R1 both come
    if self.mode == 'off':
      self._step = programs.jit_train_step(train_step, mesh)
      return
    update, self._names = guarded(train_step.update)
    self._step = programs.jit_train_step(train_step, mesh, carried=2, update=update)
    self.counters = jax.device_put(init_counters(self.mode, self.max_in_a_row),
                                   sharding.replicated(mesh))

  def start(self, state, images, base_key, r1: bool) -> None:
    """Starts compiling the step programs (`programs.StepPrograms.start`), the first step's
    first; `state` and `images` may be ShapeDtypeStructs with their shardings."""
    carried = (state,) if self.mode == 'off' else (state, self.counters)
    self._step.start(*carried, images, base_key, r1=r1, both=self._both)

  def wait(self) -> None:
    """Returns once the programs `start` began are compiled (`programs.StepPrograms.wait`)."""
    self._step.wait()

  def __call__(self, state, images, base_key, r1: bool):
    if self.mode == 'off':
      return self._step(state, images, base_key, r1=r1)
    state, self.counters, metrics = self._step(state, self.counters, images, base_key, r1=r1)
    return state, metrics

  def poll(self) -> dict[str, float]:
    """Reads the counters (a host sync: call on log steps and before saves). Returns scalars to
    log; sets `self.error` when training must stop."""
    if self.mode == 'off':
      return {}
    c = {k: int(np.asarray(v)) for k, v in jax.device_get(self.counters).items()}
    if c['stopped'] and self.error is None:
      what = self._names[c['stop_code']] if 0 <= c['stop_code'] < len(self._names) else '?'
      if self.mode == 'stop':
        why = "(train.on_nonfinite='stop')"
        fix = 'lower the learning rate, or pass --config.train.on_nonfinite=skip to drop such steps'
      else:
        why = f"after {c['stop_run']} non-finite steps in a row (train.max_nonfinite_in_a_row={self.max_in_a_row})"
        fix = 'lower the learning rate or check the data'
      self.error = NonFiniteError(
          f"Non-finite {what} at step {c['stop_step']} {why}: stopped without applying it, so "
          f'parameters and checkpoints hold only finite values; {fix}, then run again to resume '
          'from the latest checkpoint.')
    return {'nonfinite_skipped': float(c['skipped'])} if self.mode == 'skip' else {}
