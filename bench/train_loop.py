"""Training-loop throughput: the real `train_and_evaluate` (input pipeline, masks, logging,
checkpoints) in steps/s, to set beside the bare step of bench/train_step.py.

  python bench/train_loop.py --config=configs/fashion_mnist_inpaint.py --steps=60 [--cpu_devices=2]

Prints one JSON line. The first logging window (compilation) is left out: steps/s is the
mean over the later windows of `log_every` steps, as train.py logs it.
"""
import json
import os
import sys
import tempfile

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/fashion_mnist_inpaint.py',
                                          'Config file.')
_STEPS = flags.DEFINE_integer('steps', 60, 'Steps to train (4 logging windows by default).')
_LOG_EVERY = flags.DEFINE_integer('log_every', 15, 'Steps per logging window.')

from ddgan_jax import runtime  # pylint: disable=g-import-not-at-top,wrong-import-position

_CPU_DEVICES, _CACHE = runtime.define_flags()  # as train.py


def main(_):
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_CACHE.value,
                batch_size=int(config.train.batch_size))
  import jax  # pylint: disable=g-import-not-at-top
  from ddgan_jax import machine, train_lib  # pylint: disable=g-import-not-at-top

  config.train.num_steps = _STEPS.value
  config.train.log_every = _LOG_EVERY.value
  config.train.ckpt_every = 10 ** 9  # one checkpoint, at the end
  config.train.num_sample_images = 0
  config.train.init_from = ''
  with tempfile.TemporaryDirectory() as workdir:
    train_lib.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      windows = [json.loads(line) for line in f]
  later = [w['steps_per_sec'] for w in windows[1:] if w['step'] % _LOG_EVERY.value == 0]
  steps_per_s = sum(later) / len(later)
  print(json.dumps(dict(
      bench='train_loop',
      config=os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
      batch_size=int(config.train.batch_size), devices=jax.device_count(),
      steps_per_s=round(steps_per_s, 3), ms_per_step=round(1e3 / steps_per_s, 1),
      images_per_s=round(steps_per_s * int(config.train.batch_size), 1),
      windows=len(later), **machine.describe())), flush=True)


if __name__ == '__main__':
  app.run(main)
