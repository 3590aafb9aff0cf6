"""Compiling programs: the helpers every room that traces and compiles shares.

* `compile_once`: programs that run once (initialisation) compile with XLA's backend
  optimisation off on CPU: the same numbers, in about half the compile time.
* `lower` and `compile_program`: ahead-of-time tracing and lowering with the collector paused
  (the train step's programs, `train/programs.py`, are lowered through `lower`).
* `gc_paused`: Python's garbage collector waits while JAX traces and lowers.
"""
from __future__ import annotations

import contextlib
import gc
import threading

import jax

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused():
  """Python's cyclic garbage collector off for the block (tracing and lowering a program).

  Tracing allocates millions of short-lived objects, and the collector's passes over them (and
  over every live object, in its oldest generation) took ~30% of the tracing time of the tiny
  train step (1.8 -> 1.25 s). Overlapping pauses (the background compile of the train step's
  programs) share one; collection resumes when the last ends, as it was before the first.
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


def lower(jitted, *args) -> jax.stages.Lowered:
  """`jitted.lower(*args)`, tracing and lowering with the collector paused."""
  with gc_paused():
    return jitted.lower(*args)


def compile_program(jitted, *args, options: dict | None = None):
  """`jitted.lower(*args).compile(options)`, tracing and lowering with the collector paused."""
  return lower(jitted, *args).compile(options)


def compile_once(jitted, *args):
  """The compiled program of `jitted` for `args`, for programs that run once.

  On CPU it is compiled with XLA's backend optimisation off: compilation about twice as fast
  (init_state of the tiny config 10.6 -> 4.1 s, CIFAR-10 15.1 -> 9.8 s) for a program that
  runs in milliseconds either way, with the same values.
  """
  cpu = jax.devices()[0].platform == 'cpu'
  return compile_program(jitted, *args, options={'xla_backend_optimization_level': 0} if cpu else None)
