"""Trains DDGAN (optionally mask-conditional for inpainting) and resumes from --workdir.

  python train.py --config=configs/cifar10.py --workdir=runs/cifar10 [--config.train.batch_size=128]

A second invocation with the same --workdir continues from the latest checkpoint.
Bad input (a config that cannot work, a missing dataset, a damaged checkpoint) is reported
as one `error: ...` line on stderr with exit status 2, as in the other CLIs.
"""

from absl import app, flags
from ml_collections import config_flags

from ddgan_jax.platform import cli, runtime

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Training configuration file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and samples.')
_CPU_DEVICES, _COMPILATION_CACHE = runtime.define_flags()
_DISTRIBUTED = flags.DEFINE_bool(
    'jax_distributed', False, 'Call jax.distributed.initialize() (multi-host TPU/GPU; '
    'coordinator and process ids detected on Cloud TPU, SLURM, Open MPI, Kubernetes).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'Multi-process run elsewhere: host:port of process 0 '
    '(with --num_processes and --process_id; `python -m ddgan_jax.platform.launch` sets all three).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 0, 'Processes in the run (explicit setup).')
_PROCESS_ID = flags.DEFINE_integer('process_id', -1, 'This process, in [0, num_processes).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv, hooks=()):
  """Trains as the flags say; `hooks` go to the training loop (`train_lib.train_and_evaluate`:
  a caller that runs this `main` itself may watch, or stop, the run at each step and save)."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  cli.quiet()
  from ddgan_jax.platform import distributed  # JAX: after flag parsing (fast --help)
  from ddgan_jax.train import nonfinite  # JAX: after flag parsing (fast --help)
  try:
    config = _CONFIG.value  # a config file that fails to load raises here
    processes = max(1, _NUM_PROCESSES.value)
    runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_COMPILATION_CACHE.value,
                  batch_size=max(1, int(config.train.batch_size) // processes))
    distributed.initialize(coordinator_address=_COORDINATOR.value,
                           num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value,
                           auto=_DISTRIBUTED.value)
    from ddgan_jax.train import train_lib  # JAX: after runtime.setup (fast --help)
    train_lib.train_and_evaluate(config, _WORKDIR.value, hooks=hooks)
  except (ValueError, OSError, nonfinite.NonFiniteError) as e:
    # ConfigError, CheckpointError, SetupError, missing files, a non-finite stop: one line.
    cli.fail(cli.one_line(e))


def run() -> None:
  """The `ddgan-train` command."""
  cli.run(main, __doc__)
