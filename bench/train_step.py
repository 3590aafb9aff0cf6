"""Train-step throughput: one JSON line with ms/step, images/s, achieved GFLOP/s, compile time, RSS.

  python bench/train_step.py --config=configs/tiny.py --batch_size=64 [--cpu_devices=8]

The step is the real jitted, sharded train step (D with lazy R1, G, EMA) on random images, so
the figures exclude the input pipeline (see bench/input_pipeline.py for that). Both compiled
variants run, with R1 on the steps `step.r1_due` picks (1 in optim.lazy_reg). FLOPs come
from XLA's cost analysis of each compiled per-device program, times the device count, averaged
over the timed steps.
"""
import functools
import json
import os
import resource
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/tiny.py', 'Config file.')
_BATCH = flags.DEFINE_integer('batch_size', 0, 'Global batch (0: the config value).')
_STEPS = flags.DEFINE_integer(
    'steps', 30, 'Timed steps; a multiple of optim.lazy_reg (15) keeps the share of R1 steps exact.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps after compilation (2 run every program).')
_XLA_WGRAD = flags.DEFINE_bool(
    'xla_conv_weight_grad', False, "XLA's own convolution weight gradient at every shape, to time "
    'what the matrix products of ddgan_jax/models/conv.py save.')

from ddgan_jax.platform import runtime  # pylint: disable=g-import-not-at-top,wrong-import-position

# --cpu_devices (default: one per core) and --compilation_cache, as in train.py; bench/run_all.py
# turns the cache off for cold figures and points it at a fresh folder for warm ones.
_CPU_DEVICES, _CACHE = runtime.define_flags()


def main(_):
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  batch = _BATCH.value or int(config.train.batch_size)
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_CACHE.value, batch_size=batch)
  import jax  # pylint: disable=g-import-not-at-top
  from ddgan_jax.checkpoints import checkpointing  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.platform import compiling, sharding  # pylint: disable=g-import-not-at-top
  from ddgan_jax.train import programs, train_lib  # pylint: disable=g-import-not-at-top
  from ddgan_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  parts = _CompileParts(jax)
  if _XLA_WGRAD.value:
    from ddgan_jax.models import conv  # pylint: disable=g-import-not-at-top
    conv.MIN_ROWS = float('inf')  # read when the step is traced
  mesh = sharding.make_mesh()
  sharding.check_batch_size(batch, mesh)
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, steps_per_epoch=1000, total_steps=100_000)
  repl = sharding.replicated(mesh)
  step = programs.jit_train_step(step_lib.make_train_step(nets, opt, config), mesh)
  # As the training loop does it (train_lib.train_and_evaluate): the step programs (the D phase
  # with and without the lazy R1 term, and the update both share) start compiling in the
  # background from the abstract state, step 0's (R1) first, while init compiles (backend
  # optimiser off) and runs.
  start = time.perf_counter()
  init_fn = jax.jit(functools.partial(train_lib.init_state, nets, opt), out_shardings=repl)
  abstract = checkpointing.with_sharding(jax.eval_shape(init_fn, jax.random.PRNGKey(0)), repl)
  images_spec = jax.ShapeDtypeStruct(nets.image_shape(batch), jax.numpy.float32,
                                     sharding=sharding.data_sharding(mesh))
  key = jax.device_put(jax.random.PRNGKey(2), repl)
  step.start(abstract, images_spec, key, r1=True)
  init = compiling.compile_once(init_fn, jax.random.PRNGKey(0))
  init_ready = time.perf_counter()
  state = init(jax.random.PRNGKey(0))
  images = jax.device_put(
      jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(batch), minval=-1, maxval=1),
      sharding.data_sharding(mesh))
  compiled = step.programs(state, images, key)
  compile_parts = parts.summary()
  ready_at = step.ready_at
  first_ready = max(init_ready, ready_at[True], ready_at[programs.UPDATE]) - start
  all_ready = max(init_ready, *ready_at.values()) - start

  # XLA counts the partitioned (per-device) program; every device runs the same one.
  gflops = {k: machine.xla_gflops(p) * mesh.devices.size for k, p in compiled.items()}
  due = [step_lib.r1_due(config.optim, s) for s in range(_WARMUP.value + _STEPS.value)]
  for s in range(_WARMUP.value):
    state, metrics = step(state, images, key, r1=due[s])
  jax.block_until_ready(state)
  peak_before = machine.matmul_gflops()
  t0 = time.perf_counter()
  for s in range(_WARMUP.value, _WARMUP.value + _STEPS.value):
    state, metrics = step(state, images, key, r1=due[s])
  jax.block_until_ready((state, metrics))
  seconds = (time.perf_counter() - t0) / _STEPS.value
  # A step runs its D phase and the update.
  flops = sum(gflops[r1] + gflops[programs.UPDATE] for r1 in due[_WARMUP.value:]) * 1e9 / _STEPS.value

  info = machine.describe(peak_before)
  achieved = flops / seconds / 1e9
  peak = info['matmul_gflops']
  if nets.compute_dtype == 'bfloat16' and info['device'].split(':')[0] != 'cpu':
    peak = info['matmul_gflops_bf16'] = round(machine.matmul_gflops(dtype=jax.numpy.bfloat16), 1)
  print(json.dumps({
      'bench': 'train_step',
      'config': os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
      'compute_dtype': nets.compute_dtype,
      'remat': bool(config.model.remat),
      'conv_weight_grad': 'xla' if _XLA_WGRAD.value else 'auto',
      'image_size': nets.image_size,
      'batch_size': batch,
      'devices': mesh.devices.size,
      'platform': jax.devices()[0].platform,
      'ms_per_step': round(seconds * 1e3, 2),
      'images_per_s': round(batch / seconds, 1),
      'gflop_per_step': round(flops / 1e9, 3),
      'achieved_gflop_per_s': round(achieved, 1),
      'share_of_matmul_peak': round(achieved / peak, 3),
      # Wall seconds from the start, as the loop sees them: all programs ready, the first step's
      # (init, the R1 D phase and the update) ready, and when each step program and init were
      # ready (the step programs compile in the background, init in the main thread).
      'compile_s': round(all_ready, 1),
      'first_step_ready_s': round(first_ready, 1),
      'ready_r1_s': round(ready_at[True] - start, 1),
      'ready_update_s': round(ready_at[programs.UPDATE] - start, 1),
      'ready_no_r1_s': round(ready_at[False] - start, 1),
      'init_compile_s': round(init_ready - start, 1),
      # Where each program's compile went (seconds of its own thread, so they overlap): tracing,
      # lowering to StableHLO, and XLA (a compile, or a load from the persistent cache).
      'compile_parts_s': compile_parts,
      'compilation_cache': bool(_CACHE.value) and jax.config.jax_enable_compilation_cache,
      'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      'peak_device_mib': _peak_device_mib(jax),
      **info,
  }), flush=True)


class _CompileParts:
  """Collects JAX's compile-time events per program (jax.monitoring): trace, lower, XLA."""
  EVENTS = {'/jax/core/compile/jaxpr_trace_duration': 'trace',
            '/jax/core/compile/jaxpr_to_mlir_module_duration': 'lower',
            '/jax/core/compile/backend_compile_duration': 'xla'}
  # The programs by function name. Each part of the D phase's two programs happens in the
  # order they compile in (programs.StepPrograms: one thread traces and lowers, one compiles):
  # with R1 first (step 0), then without.
  NAMES = {'d_phase': ('d_phase_r1', 'd_phase_no_r1'), 'update': ('update',), 'init_state': ('init',)}

  def __init__(self, jax):
    self.events = []
    jax.monitoring.register_event_duration_secs_listener(self._record)

  def _record(self, event, seconds, fun_name='', **_):
    if event in self.EVENTS:
      fun = fun_name[4:-1] if fun_name.startswith('jit(') else fun_name
      self.events.append((self.EVENTS[event], fun, seconds))

  def summary(self) -> dict:
    out, count = {}, {}
    for part, fun, seconds in self.events:
      names = self.NAMES.get(fun)
      i = count[part, fun] = count.get((part, fun), -1) + 1
      if names and i < len(names):
        out.setdefault(names[i], {})[part] = round(seconds, 2)
    return out


def _peak_device_mib(jax):
  """Peak bytes in use on the first device (accelerators report it; XLA:CPU does not)."""
  stats = getattr(jax.devices()[0], 'memory_stats', lambda: None)() or {}
  peak = stats.get('peak_bytes_in_use')
  return round(peak / 2 ** 20, 1) if peak else None


if __name__ == '__main__':
  app.run(main)
