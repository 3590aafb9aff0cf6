"""Trains DDGAN (optionally mask-conditional for inpainting) and resumes from --workdir.

  python train.py --config=configs/cifar10.py --workdir=runs/cifar10 [--config.train.batch_size=128]

A second invocation with the same --workdir continues from the latest checkpoint.
"""
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Training configuration file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and samples.')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'On CPU, split the host into this many XLA devices (0: leave as is). '
    'On a 2-core machine 4-8 devices use both cores.')
_DISTRIBUTED = flags.DEFINE_bool(
    'jax_distributed', False, 'Call jax.distributed.initialize() (multi-host TPU/GPU; '
    'coordinator and process ids detected on Cloud TPU, SLURM, Open MPI, Kubernetes).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'Multi-process run elsewhere: host:port of process 0 '
    '(with --num_processes and --process_id; `python -m ddgan_jax.launch` sets all three).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 0, 'Processes in the run (explicit setup).')
_PROCESS_ID = flags.DEFINE_integer('process_id', -1, 'This process, in [0, num_processes).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save step at INFO.
  import jax  # pylint: disable=g-import-not-at-top
  if _CPU_DEVICES.value:
    jax.config.update('jax_num_cpu_devices', _CPU_DEVICES.value)
  from ddgan_jax import distributed, nonfinite  # pylint: disable=g-import-not-at-top
  try:
    distributed.initialize(coordinator_address=_COORDINATOR.value,
                           num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value,
                           auto=_DISTRIBUTED.value)
    from ddgan_jax import train_lib  # pylint: disable=g-import-not-at-top
    train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (nonfinite.NonFiniteError, nonfinite.ConfigError, distributed.SetupError) as e:
    raise SystemExit(f'Error: {e}') from None


if __name__ == '__main__':
  app.run(main)
