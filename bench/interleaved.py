"""Our T-step sampler and the official `sample_from_model`, interleaved in one process.

  python bench/interleaved.py --official_repo=PATH --config=configs/cifar10.py --batch_size=8

This machine's speed drifts between processes and within one (its matmul peak read 153-365
GFLOP/s over one suite run), so two sides timed in separate processes, even back to back, can
differ by the drift. Here each window times ours, the official sampler, the official sampler
again and ours again (A B B A), so a drift that is steady over a window falls on both sides
alike, and the window's ratio is the official time over ours. One JSON line: each window's
ratio, their median and both sides' median time per call. Our sampler is the one
bench/inpaint.py times (`networks.make_sampler`, untrained weights); the official one is what
bench/official_torch.py times, on its freshly built generator.
"""
import json
import os
import statistics
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_REPO = flags.DEFINE_string('official_repo', '', 'Checkout of NVlabs/denoising-diffusion-gan.')
_CONFIG = config_flags.DEFINE_config_file('config', 'configs/tiny.py', 'Our config file.')
_BATCH = flags.DEFINE_integer('batch_size', 0, 'Batch (0: the config value).')
_WINDOWS = flags.DEFINE_integer('windows', 6, 'Windows of ours, official, official, ours.')
_THREADS = flags.DEFINE_integer('threads', 0, 'torch threads (0: one per core).')

from ddgan_jax.platform import runtime  # pylint: disable=g-import-not-at-top,wrong-import-position

# --cpu_devices (default: one per core, as many as divide the batch: our sampler splits its batch
# over them, as sample.py does) and --compilation_cache.
_CPU_DEVICES, _CACHE = runtime.define_flags()


def main(_):
  logging.set_verbosity(logging.WARNING)
  if not _REPO.value or not os.path.isfile(os.path.join(_REPO.value, 'train_ddgan.py')):
    raise app.UsageError('--official_repo must be a checkout of NVlabs/denoising-diffusion-gan')
  config = _CONFIG.value
  batch = _BATCH.value or int(config.train.batch_size)
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_CACHE.value, batch_size=batch)
  import jax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import official_code  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.platform import sharding  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(_THREADS.value or os.cpu_count())
  torch.manual_seed(0)
  tdg, NCSNpp, _, _ = official_code.import_official(_REPO.value)
  args = official_code.official_args(config, batch)
  device = torch.device('cpu')
  netG = NCSNpp(args).to(device)
  pos_coeff = tdg.Posterior_Coefficients(args, device)
  schedule = tdg.get_time_schedule(args, device)
  x_init = torch.randn(batch, args.num_channels, args.image_size, args.image_size)

  official = lambda: tdg.sample_from_model(pos_coeff, netG, args.num_timesteps, x_init,
                                           schedule, args)  # no_grad inside

  nets = networks.build_networks(config)
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch)
  params = jax.device_put(jax.jit(nets.init_generator)(jax.random.PRNGKey(0)), params_sharding)
  sampler = networks.make_sampler(nets, batch, batch_sharding)
  key = jax.random.PRNGKey(3)
  ours = lambda: jax.block_until_ready(sampler(params, key))
  ours()  # compiles
  official()

  peak_before = machine.matmul_gflops()
  ratios, ours_s, official_s = official_code.window_ratios(ours, official, _WINDOWS.value)
  ours_ms, official_ms = (statistics.median(s) * 1e3 for s in (ours_s, official_s))
  print(json.dumps(dict(
      bench='interleaved_sampler',
      config=os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
      batch_size=batch, batch_devices=batch_sharding.num_devices, nfe=nets.num_timesteps,
      windows=_WINDOWS.value,
      ratios=[round(r, 3) for r in ratios], median_ratio=round(statistics.median(ratios), 3),
      ours_ms_per_call=round(ours_ms, 2), official_ms_per_call=round(official_ms, 2),
      implementation=f'official PyTorch {torch.__version__}',
      torch_threads=torch.get_num_threads(), **machine.describe(peak_before))), flush=True)


if __name__ == '__main__':
  app.run(main)
