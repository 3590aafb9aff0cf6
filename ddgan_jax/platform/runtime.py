"""Process set-up shared by the CLIs, done before JAX starts its backends.

* CPU devices. XLA:CPU runs one device's convolutions on few threads, so on a CPU host the
  batch is split over several XLA devices to use every core (`cpu_device_count`).
* JAX's persistent compilation cache, on by default in `default_cache_dir()`: a second run, a
  resume, `sample.py` or `evaluate.py` on the same shapes loads the compiled programs instead
  of compiling them again. `--compilation_cache=''` turns it off.
"""
from __future__ import annotations

import os

from absl import flags

# Programs that compile faster than this are not worth a disk round trip.
MIN_COMPILE_SECONDS = 0.5


def default_cache_dir() -> str:
  """$JAX_COMPILATION_CACHE_DIR if set, else $XDG_CACHE_HOME/ddgan_jax/xla (~/.cache/...)."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return os.environ['JAX_COMPILATION_CACHE_DIR']
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'ddgan_jax', 'xla')


def num_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    return os.cpu_count() or 1


def cpu_device_count(requested: int, batch_size: int | None = None) -> int:
  """How many XLA devices to split a CPU host into.

  Args:
    requested: > 0 that many; 0 JAX's default (one device); < 0 automatic: one per core,
      lowered to the largest count that divides `batch_size` (when given).
    batch_size: the per-process batch that will be split over the devices.
  Returns:
    The device count, or 0 to leave JAX's setting alone (also when XLA_FLAGS already sets
    --xla_force_host_platform_device_count: the user's explicit choice wins).
  """
  if requested >= 0:
    return requested
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return 0
  n = num_cores()
  if batch_size:
    n = max(d for d in range(1, n + 1) if batch_size % d == 0)
  return n if n > 1 else 0


def enable_compilation_cache(path: str | None) -> str | None:
  """Turns on JAX's persistent compilation cache in `path` (None or '': leave it off).

  Returns the absolute path used, or None.
  """
  import jax  # lazy: the commands import runtime before parsing flags (fast --help)
  if not path:
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  path = os.path.abspath(os.path.expanduser(path))
  os.makedirs(path, exist_ok=True)
  jax.config.update('jax_compilation_cache_dir', path)
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_SECONDS)
  return path


def define_flags(cpu_devices: bool = True) -> tuple:
  """Defines --compilation_cache (and --cpu_devices) for a CLI; returns their holders
  (cpu_devices, compilation_cache), the first None when not defined."""
  devices = flags.DEFINE_integer(
      'cpu_devices', -1, 'On a CPU host, split it into this many XLA devices (-1: one per core, '
      'as many as divide the batch; 0: a single device). Ignored on accelerators.'
  ) if cpu_devices else None
  cache = flags.DEFINE_string(
      'compilation_cache', default_cache_dir(),
      "JAX's persistent compilation cache: compiled programs are kept here and reused by the "
      "next run on the same shapes ('' turns it off).")
  return devices, cache


def setup(*, cpu_devices: int = -1, compilation_cache: str | None = '',
          batch_size: int | None = None) -> None:
  """CPU device count (see `cpu_device_count`) and compilation cache for this process.

  Call before anything asks JAX for its devices.
  """
  import jax  # lazy: the commands import runtime before parsing flags (fast --help)
  n = cpu_device_count(cpu_devices, batch_size)
  if n:
    jax.config.update('jax_num_cpu_devices', n)
  enable_compilation_cache(compilation_cache)
