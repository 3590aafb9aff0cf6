"""Samples from the EMA generator of a checkpoint and writes a PNG grid.

  python sample.py --workdir=runs/cifar10 --output=samples.png [--num_images=64 --seed=0]
  python sample.py --checkpoint=converted/ --output=samples.png

--checkpoint accepts a checkpoint directory (e.g. one written by `ddgan_jax.convert`) or one step
directory inside it; --workdir is a training directory.
"""
import os
import sys

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training directory (uses its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Checkpoint directory or step directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_OUTPUT = flags.DEFINE_string('output', None, 'PNG file to write (default: <dir>/samples.png).')
_NUM = flags.DEFINE_integer('num_images', 64, 'Number of samples.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')


def fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    fail('pass exactly one of --workdir or --checkpoint.')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ddgan_jax import networks, visualize  # pylint: disable=g-import-not-at-top

  source = _WORKDIR.value or _CHECKPOINT.value
  try:
    nets, params, _ = networks.load_ema_generator(source, step=_STEP.value)
  except (FileNotFoundError, ValueError) as e:
    fail(str(e))
  output = _OUTPUT.value or os.path.join(os.path.abspath(source), 'samples.png')
  samples = networks.make_sampler(nets, _NUM.value)(params, jax.random.PRNGKey(_SEED.value))
  visualize.save_grid(np.asarray(samples), output)
  print(f'wrote {_NUM.value} samples ({nets.num_timesteps} network evaluations each) to {output}')


if __name__ == '__main__':
  app.run(main)
