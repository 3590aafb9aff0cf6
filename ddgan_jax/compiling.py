"""Ahead-of-time compilation of the training programs.

* `compile_once`: programs that run once (initialisation) compile with XLA's backend
  optimisation off on CPU: the same numbers, in about half the compile time.
* `StepVariants`: the train step has two programs, with and without the lazy R1 term
  (`train_lib.r1_due`). The training loop starts compiling both in a background thread, the
  one its first step needs first, before it initialises or restores the state and starts the
  input pipeline, so neither the start nor the first steps wait for all of it (with the
  persistent compilation cache both are loads).
* `STEP_CPU_OPTIONS`: the train-step programs compile with LLVM's optimisation level 2 on CPU.
* `gc_paused`: Python's garbage collector waits while JAX traces and lowers.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import threading
import time
from typing import Any, Callable

import jax

# XLA:CPU compiles each fusion to machine code through LLVM, by default at level 3. At level 2
# the R1 train-step program compiled faster (XLA compile, one device: tiny config 11.3-11.6 ->
# 9.6-10.0 s, demo config 15.8 -> 13.4 s, CIFAR-10 18.1 -> 17.3 s) and ran as fast (tiny 18.0-18.1
# vs 18.1-18.3 ms, demo 266 vs 268 ms, CIFAR-10 2,617 vs 2,626 ms), with the same roundings (the
# 1- vs 2-device check of tests/test_train.py). Level 1 saved a second more but rounded
# differently from level 3 (that check failed).
STEP_CPU_OPTIONS = {'xla_backend_optimization_level': 2}

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused():
  """Python's cyclic garbage collector off for the block (tracing and lowering a program).

  Tracing allocates millions of short-lived objects, and the collector's passes over them (and
  over every live object, in its oldest generation) took ~30% of the tracing time of the tiny
  train step (1.8 -> 1.25 s). Overlapping pauses (the background compile of `StepVariants`)
  share one; collection resumes when the last ends, as it was before the first.
  """
  global _gc_pauses, _gc_was_enabled
  with _gc_lock:
    if _gc_pauses == 0:
      _gc_was_enabled = gc.isenabled()
      gc.disable()
    _gc_pauses += 1
  try:
    yield
  finally:
    with _gc_lock:
      _gc_pauses -= 1
      if _gc_pauses == 0 and _gc_was_enabled:
        gc.enable()


def compile_program(jitted, *args, options: dict | None = None):
  """`jitted.lower(*args).compile(options)`, tracing and lowering with the collector paused."""
  with gc_paused():
    lowered = jitted.lower(*args)
  return lowered.compile(options)


def compile_once(jitted, *args):
  """The compiled program of `jitted` for `args`, for programs that run once.

  On CPU it is compiled with XLA's backend optimisation off: compilation about twice as fast
  (init_state of the tiny config 10.6 -> 4.1 s, CIFAR-10 15.1 -> 9.8 s) for a program that
  runs in milliseconds either way, with the same values.
  """
  cpu = jax.devices()[0].platform == 'cpu'
  return compile_program(jitted, *args, options={'xla_backend_optimization_level': 0} if cpu else None)


def _abstract(x: Any) -> Any:
  if isinstance(x, jax.Array):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  return x


class StepVariants:
  """Calls `jitted(*args, r1)` (r1 static, the last argument) through programs compiled ahead
  of time, one per value of r1 (see the module docstring).

  `start` compiles them in a background thread before the first call (the training loop
  initialises or restores its state meanwhile); without it, the first call starts them.

  Args:
    jitted: a jax.jit-wrapped fn whose last positional argument is static.
    both: whether both values of r1 will be asked for (False: only the first is compiled).
  """

  def __init__(self, jitted: Callable, *, both: bool = True):
    self._jitted = jitted
    self._both = both
    self._programs: dict[bool, Any] = {}
    self._specs = None
    self.ready_at: dict[bool, float] = {}  # time.perf_counter() when each was compiled

  def _compile(self, r1: bool, specs):
    program = compile_program(self._jitted, *specs, r1)
    self.ready_at[r1] = time.perf_counter()
    return program

  def start(self, *specs, r1: bool) -> None:
    """Starts compiling the `r1` variant, then the other, in one background thread, for
    arguments like `specs` (arrays or ShapeDtypeStructs with their shardings, without r1)."""
    self._specs = jax.tree.map(_abstract, specs)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    for variant in ((r1, not r1) if self._both else (r1,)):
      self._programs[variant] = pool.submit(self._compile, variant, self._specs)
    pool.shutdown(wait=False)

  def __call__(self, *args, r1: bool):
    program = self._programs.get(r1)
    if not isinstance(program, jax.stages.Compiled):  # first call of this variant
      program = self.program(r1, *args)
    return program(*args)

  def program(self, r1: bool, *args):
    """The compiled `r1` variant for `args`: waits for its background compilation (started
    here, from `args`, when `start` was not called)."""
    if self._specs is None:
      self.start(*args, r1=r1)
    program = self._programs.get(r1)
    if program is None:  # both=False and the other variant asked for after all
      program = self._compile(r1, self._specs)
    elif isinstance(program, concurrent.futures.Future):
      program = program.result()
      specs = jax.tree.map(_abstract, args)
      if specs != self._specs:  # started for other shapes or shardings than it is called with
        program = self._compile(r1, specs)
    self._programs[r1] = program
    return program
