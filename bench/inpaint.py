"""Sampling and inpainting latency: one JSON line per (config, method).

  python bench/inpaint.py --config=configs/fashion_mnist_inpaint.py [--batch_size=16]

Methods: the T-step unconditional sampler, `inpaint` in conditional mode (NFE = T) and in
RePaint mode with r = 1 and r = 5 (NFE = T r), on the config's networks with random weights
(speed does not depend on the weights) and `wide` masks; and, with --classical, OpenCV
Telea / Navier-Stokes and scikit-image biharmonic on the same images. Each line has the
latency of one batched call, ms per image, images/s, NFE, ms per network evaluation, compile
time, and the speed-up in network evaluations against the full RePaint schedule. As sample.py
runs them, the batch is split over the devices (on a CPU host one per core, `--cpu_devices`)
when it divides evenly; `batch_devices` says over how many.
"""
import json
import os
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/fashion_mnist_inpaint.py',
                                          'Config file.')
_BATCH = flags.DEFINE_integer('batch_size', 16, 'Images per call.')
_REPS = flags.DEFINE_integer('reps', 5, 'Timed calls (the median is reported).')
_CLASSICAL = flags.DEFINE_bool('classical', False, 'Also time the classical baselines.')
_RESAMPLE = flags.DEFINE_list('repaint_resample', ['1', '5'], 'RePaint-mode r values.')

# RePaint's own schedule (t_T = 250, jump length 10, 10 resamplings): 2,410 denoiser calls.
REPAINT_SCHEDULE_NFE = 2410

from ddgan_jax.platform import runtime  # pylint: disable=g-import-not-at-top,wrong-import-position

# --cpu_devices (default: one per core, as many as divide the batch) and --compilation_cache, as
# in sample.py.
_CPU_DEVICES, _CACHE = runtime.define_flags()


def _median_seconds(fn, reps):
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return sorted(times)[len(times) // 2]


def main(_):
  logging.set_verbosity(logging.WARNING)
  batch = _BATCH.value
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_CACHE.value, batch_size=batch)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ddgan_jax.data import eval_masks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  from ddgan_jax.inpainting import inpaint  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.platform import sharding  # pylint: disable=g-import-not-at-top

  config = _CONFIG.value
  nets = networks.build_networks(config)
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
  images = jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(batch), minval=-1, maxval=1)
  holes = eval_masks.eval_masks('wide', jax.random.PRNGKey(2), batch, nets.image_size)
  key = jax.random.PRNGKey(3)
  info = machine.describe()
  common = dict(config=os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
                image_size=nets.image_size, batch_size=batch,
                batch_devices=batch_sharding.num_devices, **info)

  # One network evaluation on the batch (the samplers' loops would be counted once), for each
  # call's share of the matmul peak.
  gflop_per_nfe = machine.xla_gflops(jax.jit(nets.apply_g).lower(
      params, jax.numpy.zeros(nets.image_shape(batch)), jax.numpy.zeros(batch, 'int32'),
      jax.numpy.zeros((batch, nets.nz)), nets.unconditional_cond(batch)))

  # The timed calls run as sample.py's: params replicated, the batch split over the devices.
  params, images, holes = (jax.device_put(params, params_sharding),
                           *jax.device_put((images, holes), batch_sharding))
  sampler = networks.make_sampler(nets, batch, batch_sharding)
  cases = [('sampler', nets.num_timesteps, lambda: sampler(params, key))]
  if nets.inpaint:
    cases.append(('conditional', nets.num_timesteps,
                  lambda: inpaint.inpaint(nets, params, images, holes, key)[0]))
  for r in (int(r) for r in _RESAMPLE.value):
    cases.append((f'repaint_r{r}', nets.num_timesteps * r, lambda r=r: inpaint.inpaint(
        nets, params, images, holes, key, mode='repaint', resample=r)[0]))

  for method, nfe, fn in cases:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first_call = time.perf_counter() - t0
    peak_before = machine.matmul_gflops()
    seconds = _median_seconds(lambda: jax.block_until_ready(fn()), _REPS.value)
    info = machine.describe(peak_before)  # the peak around this case's timing
    print(json.dumps(dict(
        common, **info, bench='inpaint', method=method, nfe=nfe,
        ms_per_call=round(seconds * 1e3, 2), ms_per_image=round(seconds * 1e3 / batch, 3),
        images_per_s=round(batch / seconds, 1), ms_per_nfe=round(seconds * 1e3 / nfe, 2),
        first_call_s=round(first_call, 2), gflop_per_nfe=round(gflop_per_nfe, 3),
        share_of_matmul_peak=round(gflop_per_nfe * nfe / seconds / info['matmul_gflops'], 3),
        nfe_fewer_than_repaint=round(REPAINT_SCHEDULE_NFE / nfe, 1))), flush=True)

  if _CLASSICAL.value:
    from ddgan_jax.evaluation import baselines  # pylint: disable=g-import-not-at-top
    np_images = inpaint.float_to_uint8(np.asarray(images))
    np_masks = np.asarray(holes)
    for method in baselines.CLASSICAL:
      seconds = _median_seconds(
          lambda m=method: baselines.classical_inpaint(m, np_images, np_masks), _REPS.value)
      print(json.dumps(dict(common, bench='inpaint', method=method, nfe=0,
                            ms_per_call=round(seconds * 1e3, 2),
                            ms_per_image=round(seconds * 1e3 / batch, 3),
                            images_per_s=round(batch / seconds, 1))), flush=True)


if __name__ == '__main__':
  app.run(main)
