"""What machine a figure came from: CPU model, device kind, and a float32 matmul peak measured
now, so timings can be read as a share of the machine rather than as absolute numbers."""
from __future__ import annotations

import platform
import time

import jax
import jax.numpy as jnp


def cpu_model() -> str:
  """The CPU's model name (from /proc/cpuinfo on Linux), else platform.processor()."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.lower().startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """Best-of-`repeats` n x n matmul throughput (float32 by default) on the default device,
  GFLOP/s. Accelerators get n = 8192 so the product is large enough to reach the peak."""
  if jax.devices()[0].platform != 'cpu':
    n = max(n, 8192)
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  f = jax.jit(jnp.matmul)
  f(a, a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2.0 * n ** 3 / best / 1e9


def xla_gflops(program) -> float:
  """XLA's FLOP count of a lowered or compiled program, in GFLOP (0 where XLA gives none).

  For a partitioned program it is the per-device count; a loop body is counted once."""
  cost = program.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0)) / 1e9 if cost else 0.0


def describe(peak_before: float | None = None) -> dict:
  """{'cpu', 'device', 'num_devices', 'matmul_gflops'} of this process's machine.

  The matmul peak is measured now. With `peak_before` (`matmul_gflops()` measured right before
  the timed work, so this call, right after it, brackets it), 'matmul_gflops' is the mean of the
  two and 'matmul_gflops_range' both, since a machine's speed can drift within a process.
  """
  dev = jax.devices()[0]
  peak = matmul_gflops()
  out = dict(cpu=cpu_model(), device=f'{dev.platform}:{dev.device_kind}',
             num_devices=jax.device_count(), matmul_gflops=round(peak, 1))
  if peak_before is not None:
    out.update(matmul_gflops=round((peak_before + peak) / 2, 1),
               matmul_gflops_range=[round(peak_before, 1), round(peak, 1)])
  return out
