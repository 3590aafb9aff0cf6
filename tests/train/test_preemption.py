"""Preemption and crashes: SIGKILL at several points (one during an asynchronous save), SIGTERM,
and a half-written checkpoint directory; every resume ends where an uninterrupted run ends.

The signals are real ones, delivered by the training process to itself at exact points of the
loop: tests/train/fault_runner.py is train.py with a loop hook that sends the signal named by
DDGAN_JAX_FAULT. Every run is the same program on 2 CPU devices, compiled once and shared
through the persistent compilation cache.
"""
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import preemption, train_lib

FAULT_ENV = 'DDGAN_JAX_FAULT'  # read by fault_runner.py
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ['--config=configs/tiny.py', '--cpu_devices=2', '--config.train.num_steps=6',
         '--config.train.ckpt_every=2', '--config.train.log_every=2',
         '--config.train.num_sample_images=0', '--config.optim.r1_gamma=0',
         '--config.data.num_train_examples=16']


def _train(workdir, fault=None):
  """train.py, or with `fault` (e.g. 'SIGKILL@save:2') fault_runner.py, which sends it."""
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)  # --cpu_devices decides
  env.pop(FAULT_ENV, None)
  script = 'train.py'
  if fault:
    env[FAULT_ENV] = fault
    script = os.path.join('tests', 'train', 'fault_runner.py')
  return subprocess.run([sys.executable, script, f'--workdir={workdir}'] + FLAGS, cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600)


def _steps(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'checkpoints')))


def _restore(workdir, step=None):
  config = tiny.get_config()
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 2, 6)
  abstract = jax.eval_shape(lambda k: train_lib.init_state(nets, opt, k), jax.random.PRNGKey(0))
  abstract = checkpointing.with_sharding(abstract, sharding.replicated(sharding.make_mesh(jax.devices()[:2])))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  state = (preemption.restore_latest(ckpt, abstract) if step is None
           else ckpt.restore_state(step, abstract))
  ckpt.close()
  return jax.device_get(state)


@pytest.mark.slow
def test_sigkill_sigterm_and_half_written_checkpoints_resume_exactly(tmp_path, capfd):
  straight, run = str(tmp_path / 'straight'), str(tmp_path / 'run')
  proc = _train(straight)
  assert proc.returncode == 0, proc.stderr[-3000:]

  # 1. SIGKILL right after the save of step 2 started: the save never finished, nothing else
  #    is on disk, and the next run starts over with a one-line warning.
  proc = _train(run, 'SIGKILL@save:2')
  assert proc.returncode == -signal.SIGKILL
  assert _steps(run) == ['2' + preemption.TMP_SUFFIX]
  # 2. ... and that run gets SIGTERM during step 3: it saves step 3 and exits cleanly.
  proc = _train(run, 'SIGTERM@step:3')
  assert proc.returncode == 0, proc.stderr[-3000:]
  warnings = [l for l in proc.stderr.splitlines() if 'interrupted' in l]
  assert len(warnings) == 1 and warnings[0].startswith('WARNING: ignoring ') and '2.orbax' in warnings[0]
  assert f'Preempted (SIGTERM): saved a checkpoint at step 3 in {run}/checkpoints; run the same command again' in proc.stdout
  assert _steps(run) == ['2', '3']
  assert int(_restore(run, 3).step) == 3
  # 3. Resumes from 3; SIGKILL after step 5 (the save of step 4 may still be running).
  proc = _train(run, 'SIGKILL@step:5')
  assert proc.returncode == -signal.SIGKILL
  assert 'Resuming from step 3' in proc.stdout
  # 4. Resumes from the newest complete checkpoint and finishes.
  proc = _train(run)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Resuming from step 4' in proc.stdout or 'Resuming from step 3' in proc.stdout
  a, b = _restore(straight, 6), _restore(run, 6)
  assert int(b.step) == 6
  for name in ('params_g', 'params_d', 'ema_g', 'opt_state_g', 'opt_state_d'):
    jax.tree.map(np.testing.assert_array_equal, getattr(a, name), getattr(b, name))

  # 5. A step directory that does not restore (here: step 6 copied as 8 with its state item
  #    truncated) is moved aside with a one-line warning; the newest good one is used.
  ckdir = os.path.join(run, 'checkpoints')
  shutil.copytree(os.path.join(ckdir, '6'), os.path.join(ckdir, '8'))
  shutil.rmtree(os.path.join(ckdir, '8', 'state', 'd'))
  capfd.readouterr()
  state = _restore(run)
  err = capfd.readouterr().err
  assert int(state.step) == 6
  jax.tree.map(np.testing.assert_array_equal, state.params_g, a.params_g)
  lines = [l for l in err.splitlines() if l.startswith('WARNING: ignoring checkpoint')]
  assert len(lines) == 1 and 'moved to 8.incomplete' in lines[0], err
  assert '8.incomplete' in _steps(run) and '8' not in _steps(run)
