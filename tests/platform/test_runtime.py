"""Process set-up of the CLIs: the persistent compilation cache and the CPU device count."""
import json
import os
import subprocess
import sys

import pytest

from ddgan_jax.platform import runtime

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One process: set up as the CLIs do, then init + sample the tiny generator, counting JAX's
# compilation-cache events.
PROBE = """
import collections, json, sys, time
from ddgan_jax.platform import runtime
runtime.setup(cpu_devices=0, compilation_cache=sys.argv[1])
import jax
events = collections.Counter()
jax.monitoring.register_event_listener(lambda name, **kw: events.update([name]))
from configs import tiny
from ddgan_jax.models import networks
nets = networks.build_networks(tiny.get_config())
t0 = time.perf_counter()
params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
out = networks.make_sampler(nets, 4)(params, jax.random.PRNGKey(1))
print(json.dumps(dict(hits=events['/jax/compilation_cache/cache_hits'],
                      misses=events['/jax/compilation_cache/cache_misses'],
                      seconds=time.perf_counter() - t0, total=float(out.sum()))))
"""


def _probe(cache_dir):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  out = subprocess.run([sys.executable, '-c', PROBE, cache_dir], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=600, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_loads_instead_of_compiling(tmp_path):
  cache = str(tmp_path / 'xla')
  first, second = _probe(cache), _probe(cache)
  assert first['misses'] >= 2 and first['hits'] == 0, first  # init and sampler compiled
  assert os.listdir(cache)
  assert second['misses'] == 0 and second['hits'] == first['misses'], second
  assert second['total'] == first['total']  # the loaded programs compute the same samples
  print(f"compile + run: {first['seconds']:.2f} s cold, {second['seconds']:.2f} s from the cache")
  off = _probe('')  # --compilation_cache='' turns it off: no cache lookups at all
  assert off['hits'] == off['misses'] == 0, off


def test_cpu_device_count(monkeypatch):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  monkeypatch.setattr(runtime, 'num_cores', lambda: 8)
  assert runtime.cpu_device_count(3) == 3       # explicit
  assert runtime.cpu_device_count(0) == 0       # JAX's default
  assert runtime.cpu_device_count(-1) == 8      # one per core
  assert runtime.cpu_device_count(-1, batch_size=12) == 6  # largest count dividing the batch
  assert runtime.cpu_device_count(-1, batch_size=11) == 0  # 1 device: leave JAX alone
  monkeypatch.setattr(runtime, 'num_cores', lambda: 1)
  assert runtime.cpu_device_count(-1, batch_size=64) == 0
  # An explicit XLA flag wins over the automatic choice.
  monkeypatch.setattr(runtime, 'num_cores', lambda: 8)
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
  assert runtime.cpu_device_count(-1, batch_size=64) == 0


@pytest.mark.parametrize('env,expected', [
    ({'JAX_COMPILATION_CACHE_DIR': '/x/cache'}, '/x/cache'),
    ({'XDG_CACHE_HOME': '/x/home'}, '/x/home/ddgan_jax/xla'),
])
def test_default_cache_dir(monkeypatch, env, expected):
  for k in ('JAX_COMPILATION_CACHE_DIR', 'XDG_CACHE_HOME'):
    monkeypatch.delenv(k, raising=False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert runtime.default_cache_dir() == expected
