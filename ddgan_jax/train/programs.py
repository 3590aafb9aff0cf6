"""The train step's programs: jitted, sharded and compiled ahead of time.

* `jit_train_step`: a train step (`step.TrainStep`, or the guarded update of `nonfinite.Guard`)
  as `jax.jit` programs with the mesh's shardings (`platform.sharding`): the state replicated,
  the batch and the masks split over `data`.
* `StepPrograms`: the train step runs as three programs: the discriminator phase with and
  without the lazy R1 term (`step.r1_due`), and the update (D's Adam step, the G step, the
  EMA) that both share, so it compiles once. The training loop starts compiling them in the
  background, those its first step needs first, before it initialises or restores the state
  and starts the input pipeline, so neither the start nor the first steps wait for all of it
  (with the persistent compilation cache they are loads). One thread traces and lowers them,
  another compiles them: tracing holds the GIL, XLA does not. `wait` returns once they are
  compiled (with several processes, the loop waits for every process's before a first step).
  A call returns once the previous call's programs have finished, so the host runs at most
  one step ahead of the devices. With several CPU devices and the host further ahead, XLA:CPU
  (jaxlib 0.10.2) deadlocked in the step's all-reduce and aborted the process after 40 s: one
  device waited there while the other's program waited for admission among the programs in
  flight (within ~200 tiny-config steps without a host sync; `tests/train/test_programs.py`).
* `STEP_CPU_OPTIONS`: the train-step programs compile with LLVM's optimisation level 2 on CPU.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Callable

import jax

from ddgan_jax.platform import compiling, sharding

# XLA:CPU compiles each fusion to machine code through LLVM, by default at level 3. At level 2
# the R1 train-step program compiled faster (XLA compile, one device: tiny config 11.3-11.6 ->
# 9.6-10.0 s, demo config 15.8 -> 13.4 s, CIFAR-10 18.1 -> 17.3 s) and ran as fast (tiny 18.0-18.1
# vs 18.1-18.3 ms, demo 266 vs 268 ms, CIFAR-10 2,617 vs 2,626 ms), with the same roundings (the
# 1- vs 2-device check of tests/train/test_train.py). Level 1 saved a second more but rounded
# differently from level 3 (that check failed).
STEP_CPU_OPTIONS = {'xla_backend_optimization_level': 2}


def jit_train_step(train_step, mesh: jax.sharding.Mesh, *, carried: int = 1, update=None
                   ) -> StepPrograms:
  """A train step (`step.TrainStep`) as jitted, sharded programs compiled ahead of time.

  `train_step.d_phase(state, images, key, r1)` and `update(*carried, images, key, d_out)` (by
  default `train_step.update`; nonfinite.Guard passes one that also carries its counters): the
  state and the `carried` arguments replicated (the latter donated), the batch and the masks in
  d_out split over `data`, the rest replicated, `r1` static; on CPU compiled with
  `STEP_CPU_OPTIONS`. Returns `StepPrograms`, called as
  step(*carried, images, key, r1) -> (*carried, metrics).
  """
  repl, data = sharding.replicated(mesh), sharding.data_sharding(mesh)
  d_out = (repl, repl, data)  # grads_d, metrics, masks
  options = STEP_CPU_OPTIONS if mesh.devices.flat[0].platform == 'cpu' else None
  d_phase = jax.jit(train_step.d_phase, in_shardings=(repl, data, repl), out_shardings=d_out,
                    static_argnums=3, compiler_options=options)
  update = jax.jit(update or train_step.update,
                   in_shardings=(repl,) * carried + (data, repl, d_out),
                   out_shardings=(repl,) * (carried + 1), donate_argnums=tuple(range(carried)),
                   compiler_options=options)
  return StepPrograms(d_phase, update)


def _abstract(x: Any) -> Any:
  if isinstance(x, jax.Array):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  return x


def _d_phase_args(args: tuple) -> tuple:
  """(state, images, key) of the step's arguments (*carried, images, key)."""
  return args[0], args[-2], args[-1]


UPDATE = 'update'


class StepPrograms:
  """Calls a train step, step(*carried, images, key, r1) -> (*carried, metrics), as
  d_out = d_phase(carried[0], images, key, r1); update(*carried, images, key, d_out), through
  programs compiled ahead of time: the D phase once per value of r1 (static) and one update
  (see the module docstring; `jit_train_step` builds it).

  `start` compiles them in the background before the first call (the training loop initialises
  or restores its state meanwhile); without it, a call compiles what it needs.

  Args:
    d_phase: jax.jit of fn(state, images, key, r1) -> d_out, r1 static.
    update: jax.jit of fn(*carried, images, key, d_out) -> (*carried, metrics).
  """

  def __init__(self, d_phase: Callable, update: Callable):
    self._d_phase, self._update = d_phase, update
    self._programs: dict[Any, Any] = {}  # True / False: the D phase with / without R1; UPDATE
    self._specs = None
    self._previous = None  # the metrics of the previous call (see __call__)
    self.ready_at: dict[Any, float] = {}  # time.perf_counter() when each was compiled

  def _lower(self, which, specs, d_phase=None) -> jax.stages.Lowered:
    """Traces and lowers `which` (the part that holds the GIL) for step arguments like `specs`;
    the update's d_out is shaped like the outputs of the D phase `d_phase` (lowered or compiled)."""
    if which == UPDATE:
      return compiling.lower(self._update, *specs, d_phase.out_info)
    return compiling.lower(self._d_phase, *_d_phase_args(specs), which)

  def _finish(self, which, lowered: jax.stages.Lowered) -> jax.stages.Compiled:
    """XLA's compilation of `lowered` (or its load from the persistent cache)."""
    program = lowered.compile()
    self.ready_at[which] = time.perf_counter()
    return program

  def _compile(self, which, specs, d_phase=None) -> jax.stages.Compiled:
    return self._finish(which, self._lower(which, specs, d_phase))

  def start(self, *specs, r1: bool, both: bool = True) -> None:
    """Compiles the D phase for `r1`, the update, then (`both`) the other D phase, in the
    background, for arguments like `specs` (arrays or ShapeDtypeStructs with their shardings,
    without r1).

    One thread traces and lowers them in that order (Python, under the GIL); another has XLA
    compile each (or load it from the persistent cache) in the same order, as soon as it is
    lowered, so the update is traced while the first D phase compiles. (Two compiling threads
    finished the first step's programs later: XLA's compiler already keeps ~1.7 cores busy.)
    """
    self._specs = jax.tree.map(_abstract, specs)
    order = [r1, UPDATE] + ([not r1] if both else [])
    futures = {which: concurrent.futures.Future() for which in order}
    self._programs.update(futures)
    compiler = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                     thread_name_prefix='step-programs-compile')

    def finish(which, lowered):
      try:
        futures[which].set_result(self._finish(which, lowered))
      except BaseException as e:  # pylint: disable=broad-except
        futures[which].set_exception(e)  # raised where the program is asked for

    def lower_all():
      d_phase = None
      try:
        for i, which in enumerate(order):
          lowered = self._lower(which, self._specs, d_phase)
          if d_phase is None:  # order[0], the D phase the update is lowered against
            d_phase = lowered
          compiler.submit(finish, which, lowered)
      except BaseException as e:  # pylint: disable=broad-except
        for which in order[i:]:
          futures[which].set_exception(e)
      finally:
        compiler.shutdown(wait=False)

    threading.Thread(target=lower_all, name='step-programs-lower').start()

  def __call__(self, *args, r1: bool):
    d_phase = self._programs.get(r1)
    if not isinstance(d_phase, jax.stages.Compiled):  # the first call of this variant
      d_phase = self._program(r1, args)
    update = self._programs.get(UPDATE)
    if not isinstance(update, jax.stages.Compiled):
      update = self._program(UPDATE, args, d_phase)
    out = update(*args, d_phase(*_d_phase_args(args)))
    # At most one step in flight behind this one (see the module docstring). The devices stay
    # busy: this step is queued behind the previous one, whose end is awaited here.
    previous, self._previous = self._previous, out[-1]
    jax.block_until_ready(previous)
    return out

  def _program(self, which, args, d_phase=None):
    """The compiled program `which` for `args`: waits for its background compilation, or
    compiles it here (not started, or started for other shapes or shardings)."""
    program, specs = self._programs.get(which), jax.tree.map(_abstract, args)
    if isinstance(program, concurrent.futures.Future):
      program = program.result() if specs == self._specs else None
    if program is None:
      program = self._compile(which, specs, d_phase)
    self._programs[which] = program
    return program

  def wait(self) -> None:
    """Returns once every program `start` began is compiled (raising what its compile raised)."""
    for program in list(self._programs.values()):
      if isinstance(program, concurrent.futures.Future):
        program.result()

  def programs(self, *args) -> dict[Any, jax.stages.Compiled]:
    """Both D phases and the update compiled for `args` (waits for or compiles them)."""
    out = {r1: self._program(r1, args) for r1 in (True, False)}
    out[UPDATE] = self._program(UPDATE, args, out[True])
    return out
