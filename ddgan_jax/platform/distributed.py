"""Multi-process (multi-host) start-up over JAX's own runtime, `jax.distributed`.

`initialize` is called by the CLIs before any JAX computation:

* explicit: coordinator address, process count and process id (a cluster JAX does not detect,
  or several processes on one machine, as `python -m ddgan_jax.platform.launch` starts them);
* auto: `jax.distributed.initialize()` with everything detected (Cloud TPU, SLURM, Open MPI,
  Kubernetes);
* neither: a single process, nothing to do.

On CPU the collectives between processes go through gloo, so a multi-process run works (and is
tested) on one machine. `barrier` waits for every process, through the coordination service
rather than a device collective, so it can wait as long as e.g. preparing a dataset takes.
"""
from __future__ import annotations

import jax
from jax._src import distributed as jax_distributed
from jax.experimental import multihost_utils

BARRIER_TIMEOUT_MS = 24 * 3600 * 1000


class SetupError(ValueError):
  """Inconsistent multi-process flags; the message is one line for the CLI."""


def initialize(*, coordinator_address: str = '', num_processes: int = 0, process_id: int = -1,
               auto: bool = False) -> None:
  """Joins the multi-process run described by the arguments (see module docstring)."""
  explicit = [bool(coordinator_address), num_processes > 0, process_id >= 0]
  if any(explicit) and not all(explicit):
    raise SetupError('pass --coordinator_address, --num_processes and --process_id together '
                     '(or --jax_distributed alone to detect them on TPU / SLURM).')
  if not any(explicit) and not auto:
    return
  if any(explicit) and not 0 <= process_id < num_processes:
    raise SetupError(f'--process_id={process_id} must be in [0, --num_processes={num_processes}).')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if all(explicit):
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  else:
    jax.distributed.initialize()


def barrier(name: str) -> None:
  """Returns once every process has called barrier(name); a no-op in a single process."""
  if jax.process_count() == 1:
    return
  client = jax_distributed.global_state.client
  if client is None:  # several processes without the coordination service: use a collective
    multihost_utils.sync_global_devices(name)
  else:
    client.wait_at_barrier(name, BARRIER_TIMEOUT_MS)
