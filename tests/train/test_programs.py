"""programs.StepPrograms on a toy step: what it runs, and how it fails, when started in the
background."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.platform import sharding
from ddgan_jax.train import programs as programs_lib


class ToyStep:
  """d_phase(state, images, key, r1) -> (grads, metrics, masks); update applies the grads."""

  def d_phase(self, state, images, key, r1):
    grads = jnp.mean(images) + (2.0 if r1 else 0.0) + jax.random.uniform(key)
    return grads, {'d': grads}, images > 0

  def update(self, state, images, key, d_out):
    grads, metrics, masks = d_out
    return state - grads, {**metrics, 'masked': jnp.sum(masks)}


def _args(mesh):
  state = jax.device_put(jnp.float32(1.0), sharding.replicated(mesh))
  images = jax.device_put(jnp.linspace(-1, 1, 8).reshape(8, 1), sharding.data_sharding(mesh))
  return state, images, jax.device_put(jax.random.PRNGKey(0), sharding.replicated(mesh))


@pytest.mark.parametrize('r1', [True, False])
def test_started_programs_compute_the_step(r1):
  mesh = sharding.make_mesh(jax.devices()[:2])
  step = programs_lib.jit_train_step(ToyStep(), mesh)
  state, images, key = _args(mesh)
  step.start(state, images, key, r1=r1)
  programs = step.programs(state, images, key)
  assert set(programs) == {True, False, programs_lib.UPDATE} == set(step.ready_at)
  for flag in (r1, not r1):
    new_state, metrics = step(jnp.copy(state), images, key, r1=flag)
    grads = 0.0 + (2.0 if flag else 0.0) + float(jax.random.uniform(jax.random.PRNGKey(0)))
    np.testing.assert_allclose(float(new_state), 1.0 - grads, atol=1e-6)
    assert int(metrics['masked']) == 4


def test_wait_returns_once_the_started_programs_are_compiled():
  mesh = sharding.make_mesh(jax.devices()[:2])
  step = programs_lib.jit_train_step(ToyStep(), mesh)
  state, images, key = _args(mesh)
  step.start(state, images, key, r1=False, both=False)
  step.wait()
  assert set(step.ready_at) == {False, programs_lib.UPDATE}  # those started, not the R1 variant
  new_state, _ = step(state, images, key, r1=False)
  np.testing.assert_allclose(float(new_state),
                             1.0 - float(jax.random.uniform(jax.random.PRNGKey(0))), atol=1e-6)


def test_a_background_failure_is_raised_by_the_call():
  class Broken(ToyStep):
    def d_phase(self, state, images, key, r1):
      if r1:
        raise ValueError('no R1 here')
      return super().d_phase(state, images, key, r1)

  mesh = sharding.make_mesh(jax.devices()[:1])
  step = programs_lib.jit_train_step(Broken(), mesh)
  state, images, key = _args(mesh)
  step.start(state, images, key, r1=True)
  with pytest.raises(ValueError, match='no R1 here'):
    step.wait()
  with pytest.raises(ValueError, match='no R1 here'):
    step(state, images, key, r1=True)
  # The update lowers from the failed D phase, so it fails the same way.
  with pytest.raises(ValueError, match='no R1 here'):
    step.programs(state, images, key)


_MANY_STEPS = r'''
import sys
from ddgan_jax.platform import runtime
runtime.setup(cpu_devices=2)  # 2 CPU devices, the compilation cache off
import jax
sys.path.insert(0, sys.argv[1])
from test_programs import ToyStep, _args
from ddgan_jax.platform import sharding
from ddgan_jax.train import programs
mesh = sharding.make_mesh()
step = programs.jit_train_step(ToyStep(), mesh)
state, images, key = _args(mesh)
for i in range(int(sys.argv[2])):
  state, metrics = step(state, images, key, r1=i % 2 == 0)  # no host sync in between
print('steps done', float(jax.device_get(state)))
'''


@pytest.mark.slow
def test_many_steps_without_a_host_sync_do_not_deadlock():
  """Thousands of step calls with nothing read back, as the training loop runs between log
  steps, on 2 CPU devices. Without StepPrograms' bound on how far the host runs ahead, XLA:CPU
  (jaxlib 0.10.2) deadlocked in the D phase's all-reduce within a second of this loop and
  aborted the process after 40 s."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}  # not conftest's 8 devices
  proc = subprocess.run([sys.executable, '-c', _MANY_STEPS, os.path.dirname(__file__), '4000'],
                        capture_output=True, text=True, timeout=300, env=env,
                        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  assert proc.returncode == 0 and 'steps done' in proc.stdout, proc.stderr[-2000:]
