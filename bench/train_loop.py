"""Training-loop overhead: the real `train_and_evaluate` against the bare step it runs, in one
process, alternating, so the machine's drift between processes does not enter their ratio.

  python bench/train_loop.py --config=configs/fashion_mnist_inpaint.py [--blocks=2] [--cpu_devices=2]

The loop (input pipeline, logging, checkpoints, the non-finite guard) runs in chunks of
--chunk_steps steps, each a resume from the previous chunk's checkpoint (a hook passed to
train_and_evaluate stops each chunk, with its checkpoint); its first logging window (program
loads, restore) is left out, the rest give its ms/step as train.py logs it. The bare step is the same program (`nonfinite.Guard` around
`step.make_train_step`, the same optimizer schedule, so it loads from the persistent
compilation cache) called on one random batch already on the devices, over the same step
numbers (the same R1 steps). Each block runs loop, bare, bare, loop; its ratio is the bare
time over the loop time (the loop's speed as a share of the bare step's). Prints one JSON line.
"""
import json
import os
import statistics
import sys
import tempfile
import time

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/fashion_mnist_inpaint.py',
                                          'Config file.')
_BLOCKS = flags.DEFINE_integer('blocks', 2, 'Blocks of loop, bare, bare, loop.')
_CHUNK = flags.DEFINE_integer('chunk_steps', 60, 'Loop steps per chunk (a multiple of log_every).')
_LOG_EVERY = flags.DEFINE_integer('log_every', 15, 'Steps per logging window.')

from ddgan_jax.platform import runtime  # pylint: disable=g-import-not-at-top,wrong-import-position

# --cpu_devices as in train.py. The chunks need the persistent compilation cache (each resume
# loads the programs): --compilation_cache='' means a temporary folder here.
_CPU_DEVICES, _CACHE = runtime.define_flags()


def main(_):
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  log_every, chunk = _LOG_EVERY.value, _CHUNK.value
  if chunk % log_every or chunk < 2 * log_every:
    raise app.UsageError(f'--chunk_steps={chunk} must be a multiple of --log_every={log_every}, '
                         'at least two windows (the first is left out).')
  batch = int(config.train.batch_size)
  with tempfile.TemporaryDirectory() as tmp:
    runtime.setup(cpu_devices=_CPU_DEVICES.value, batch_size=batch,
                  compilation_cache=_CACHE.value or os.path.join(tmp, 'xla'))
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update('jax_enable_compilation_cache', True)  # bench/run_all.py turns it off
    record = _measure(config, os.path.join(tmp, 'workdir'), log_every, chunk, _BLOCKS.value)
  print(json.dumps(record), flush=True)


def _measure(config, workdir, log_every, chunk, blocks) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from ddgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.platform import sharding  # pylint: disable=g-import-not-at-top
  from ddgan_jax.train import nonfinite, train_lib  # pylint: disable=g-import-not-at-top
  from ddgan_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  batch = int(config.train.batch_size)
  config.train.num_steps = 2 * blocks * chunk  # the last part ends the run
  config.train.log_every = log_every
  config.train.ckpt_every = 10 ** 9  # a checkpoint at the end of each chunk only
  config.train.num_sample_images = 0
  config.train.init_from = ''

  # The bare step: the loop's program, built as train_and_evaluate builds it.
  mesh = sharding.make_mesh()
  nets = networks.build_networks(config)
  input_pipeline.prepare(config.data)
  opt = train_lib.make_optimizers(config.optim, *train_lib.run_length(config, batch))
  r1_due = lambda s: step_lib.r1_due(config.optim, s)
  bare = nonfinite.Guard(step_lib.make_train_step(nets, opt, config), mesh, config.train,
                         both_variants=r1_due(0) != r1_due(1))
  images = jax.device_put(
      jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(batch), minval=-1, maxval=1),
      sharding.data_sharding(mesh))
  key = jax.device_put(jax.random.PRNGKey(2), sharding.replicated(mesh))

  metrics_file = os.path.join(workdir, 'metrics.jsonl')

  def loop_part(start):
    """(state, ms/step) of the loop resumed at `start` for `chunk` steps, over its logging
    windows after the first (program loads, restore, the input pipeline's start)."""
    stop = lambda point, step: point == 'step' and step == start + chunk
    state = train_lib.train_and_evaluate(config, workdir, hooks=[stop])
    with open(metrics_file) as f:
      windows = [json.loads(line) for line in f]
    timed = [w for w in windows if start + log_every < w['step'] <= start + chunk]
    assert len(timed) == chunk // log_every - 1, timed
    return state, statistics.fmean(1e3 / w['steps_per_sec'] for w in timed)

  def bare_part(state, start):
    """(state, ms/step) of the bare step over the step numbers of that loop part's timed
    windows (the same R1 steps)."""
    steps = range(start + log_every, start + chunk)
    for r1 in sorted({r1_due(s) for s in steps}):  # the first part loads the programs
      state, metrics = bare(state, images, key, r1=r1)
    jax.block_until_ready((state, metrics))
    t0 = time.perf_counter()
    for s in steps:
      state, metrics = bare(state, images, key, r1=r1_due(s))
    jax.block_until_ready((state, metrics))
    return state, (time.perf_counter() - t0) * 1e3 / len(steps)

  peak_before = machine.matmul_gflops()
  loop_ms, bare_ms, ratios = [], [], []
  for block in range(blocks):
    start = 2 * block * chunk
    state, first = loop_part(start)
    state, b1 = bare_part(state, start)
    _, b2 = bare_part(state, start)
    _, second = loop_part(start + chunk)
    loop_ms += [first, second]
    bare_ms += [b1, b2]
    ratios.append((b1 + b2) / (first + second))
  loop_mean, bare_mean = statistics.fmean(loop_ms), statistics.fmean(bare_ms)
  return dict(
      bench='train_loop',
      config=os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
      batch_size=batch, devices=jax.device_count(), on_nonfinite=str(config.train.on_nonfinite),
      chunk_steps=chunk, log_every=log_every, blocks=blocks,
      ms_per_step=round(loop_mean, 1), images_per_s=round(batch * 1e3 / loop_mean, 1),
      bare_ms_per_step=round(bare_mean, 1),
      loop_ms=[round(v, 1) for v in loop_ms], bare_ms=[round(v, 1) for v in bare_ms],
      # Per block: bare time over loop time, the loop's speed as a share of the bare step's.
      ratios=[round(r, 4) for r in ratios],
      speed_share=round(statistics.geometric_mean(ratios), 4),
      **machine.describe(peak_before))


if __name__ == '__main__':
  app.run(main)
