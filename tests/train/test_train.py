"""Training loop: exact resume, sharded execution, checkpoints, and the CLI end to end.

Every in-process test uses the same config (4 steps, 2 steps per epoch) and a 1- or 2-device
mesh, so the persistent compilation cache (tests/conftest.py) compiles each train step once.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import loop, programs, train_lib
from ddgan_jax.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config(num_steps=4, **train):
  """The tiny config with 2 steps per epoch (so the cosine schedule moves) and no samples."""
  config = tiny.get_config()
  config.train.num_steps = num_steps
  config.train.ckpt_every = 2
  config.train.log_every = 2
  config.train.num_sample_images = 0
  config.data.num_train_examples = 16  # 2 steps per epoch: the cosine schedule moves.
  for k, v in train.items():
    config.train[k] = v
  return config


def stop_at(step):
  """A loop hook that stops the run after `step`, with a checkpoint, as an interrupted run would."""
  return lambda point, at: point == 'step' and at == step


def restore_final_state(workdir, config, mesh):
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 2, config.train.num_steps)
  abstract = jax.eval_shape(lambda k: train_lib.init_state(nets, opt, k), jax.random.PRNGKey(0))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  state = ckpt.restore_state(ckpt.latest_step(),
                             checkpointing.with_sharding(abstract, sharding.replicated(mesh)))
  ckpt.close()
  return state


@pytest.mark.slow
def test_resume_equals_straight_run(tmp_path, monkeypatch):
  """N steps straight == N/2 steps, a fresh restart from the checkpoint, N/2 more (2 devices).

  Each run compiles each step program once, from the shapes it starts with before the state
  exists (programs.StepPrograms.start), those its first step runs first.
  """
  compiled = []  # the step programs in the order they are traced and lowered
  lower = programs.StepPrograms._lower
  monkeypatch.setattr(programs.StepPrograms, '_lower', lambda self, which, *a:
                      compiled.append(which) or lower(self, which, *a))
  mesh = sharding.make_mesh(jax.devices()[:2])
  config = tiny_config(num_steps=4)
  assert step_lib.r1_due(config.optim, 0) and not step_lib.r1_due(config.optim, 2)
  straight = train_lib.train_and_evaluate(config, str(tmp_path / 'a'), mesh=mesh)
  half = train_lib.train_and_evaluate(config, str(tmp_path / 'b'), mesh=mesh, hooks=[stop_at(2)])
  assert int(half.step) == 2
  assert sorted(os.listdir(tmp_path / 'b' / 'checkpoints')) == ['2']
  resumed = train_lib.train_and_evaluate(config, str(tmp_path / 'b'), mesh=mesh)
  assert int(straight.step) == int(resumed.step) == 4
  update = programs.UPDATE  # one update program for both D phases (with and without R1)
  assert compiled == [True, update, False] * 2 + [False, update, True]  # resumed: no R1 first
  for name in ('params_g', 'params_d', 'ema_g', 'opt_state_g', 'opt_state_d'):
    jax.tree.map(np.testing.assert_array_equal, getattr(straight, name), getattr(resumed, name))
  # The half run really differs from the start: parameters moved after step 2.
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                                       half.params_g, resumed.params_g))
  assert max(moved) > 0
  # What is on disk is what the loop returned.
  on_disk = restore_final_state(str(tmp_path / 'b'), config, mesh)
  jax.tree.map(np.testing.assert_array_equal, on_disk.params_g, resumed.params_g)
  # Logs: JSONL scalars at every log step, TensorBoard events.
  lines = [json.loads(l) for l in open(tmp_path / 'b' / 'metrics.jsonl')]
  assert [l['step'] for l in lines] == [2, 4]
  assert all(np.isfinite(l['d_loss']) and np.isfinite(l['g_loss']) for l in lines)
  assert os.listdir(tmp_path / 'b' / 'tensorboard')


@pytest.mark.slow
def test_sharded_step_matches_single_device():
  """The train step on a batch split over 2 devices computes what it computes on 1 device.

  Compared through the losses of two consecutive steps (the second depends on the first
  update) and the discriminator gradients of the first. Parameters themselves are not
  compared elementwise: Adam's first update is lr * g / (|g| + eps), so for the ~1e-10
  zero-initialised layers rounding-level differences in g change the update visibly.
  """
  config = tiny_config(num_steps=4)
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, steps_per_epoch=2, total_steps=4)
  state0 = train_lib.init_state(nets, opt, jax.random.PRNGKey(0))
  images = jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(8), minval=-1, maxval=1)
  results = []
  for n in (1, 2):
    mesh = sharding.make_mesh(jax.devices()[:n])
    step = programs.jit_train_step(step_lib.make_train_step(nets, opt, config), mesh)
    state = jax.tree.map(jnp.copy, state0)
    x = jax.device_put(images, sharding.data_sharding(mesh))
    assert len(x.sharding.device_set) == n
    state, m1 = step(state, x, jax.random.PRNGKey(2), r1=True)
    state, m2 = step(state, x, jax.random.PRNGKey(2), r1=False)
    results.append((jax.device_get(m1), jax.device_get(m2)))
  (a1, a2), (b1, b2) = results
  for k in a1:
    # D-phase values of step 1 come before any update: tight. Everything after an update is
    # compared with an absolute tolerance (logit means are ~5e-4 here).
    before_update = k.startswith('d_') or k == 'r1'
    np.testing.assert_allclose(a1[k], b1[k], rtol=1e-5 if before_update else 1e-3,
                               atol=1e-6 if before_update else 2e-4, err_msg=k)
    np.testing.assert_allclose(a2[k], b2[k], rtol=1e-3, atol=2e-4, err_msg=k)
  assert results[0][0]['r1'] > 0


@pytest.mark.slow
def test_ema_starts_from_first_update_and_lr_schedule():
  config = tiny_config(num_steps=4)
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, steps_per_epoch=2, total_steps=4)
  mesh = sharding.make_mesh(jax.devices()[:1])
  step = programs.jit_train_step(step_lib.make_train_step(nets, opt, config), mesh)
  state = train_lib.init_state(nets, opt, jax.random.PRNGKey(0))
  images = jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(8), minval=-1, maxval=1)
  # Lazy R1 as the official `global_step % lazy_reg == 0`: steps 0, 15, 30, ...
  assert [s for s in range(40) if step_lib.r1_due(config.optim, s)] == [0, 15, 30]
  assert not step_lib.r1_due(dict(r1_gamma=0.0, lazy_reg=15), 0)
  assert all(step_lib.r1_due(dict(r1_gamma=1.0, lazy_reg=0), s) for s in range(3))
  state, metrics = step(state, images, jax.random.PRNGKey(2), r1=step_lib.r1_due(config.optim, 0))
  jax.tree.map(np.testing.assert_array_equal, state.ema_g, state.params_g)
  assert float(metrics['r1']) > 0
  prev_ema = jax.tree.map(np.asarray, state.ema_g)  # the state is donated to the next step
  state, metrics = step(state, images, jax.random.PRNGKey(2), r1=step_lib.r1_due(config.optim, 1))
  assert float(metrics['r1']) == 0
  d = config.optim.ema_decay
  jax.tree.map(lambda e, pe, p: np.testing.assert_allclose(e, d * pe + (1 - d) * p, rtol=1e-6, atol=1e-7),
               state.ema_g, prev_ema, state.params_g)
  # Official CosineAnnealingLR stepped per epoch: constant within an epoch, eta_min reached.
  lr = [float(opt.lr_g(s)) for s in range(5)]
  assert lr[0] == lr[1] == pytest.approx(config.optim.lr_g)
  expected = 1e-5 + (config.optim.lr_g - 1e-5) * 0.5 * (1 + np.cos(np.pi * 1 / 2))
  assert lr[2] == lr[3] == pytest.approx(expected)
  assert lr[4] == pytest.approx(1e-5)


def test_every_hook_is_called_and_any_may_stop_the_run():
  calls = []
  watch = lambda point, step: calls.append(('watch', point, step))
  stop = lambda point, step: calls.append(('stop', point, step)) or step == 3
  assert not loop.call_hooks([stop, watch], loop.STEP, 2)
  assert loop.call_hooks([stop, watch], loop.STEP, 3)  # the hook after it is still called
  assert not loop.call_hooks([watch], loop.SAVE, 3) and not loop.call_hooks([], loop.STEP, 3)
  assert calls == [('stop', 'step', 2), ('watch', 'step', 2), ('stop', 'step', 3),
                   ('watch', 'step', 3), ('watch', 'save', 3)]


def test_bad_batch_size_is_a_clear_error(tmp_path):
  config = tiny_config()
  config.train.batch_size = 6
  with pytest.raises(ValueError, match='multiple of the number of devices'):
    train_lib.train_and_evaluate(config, str(tmp_path), mesh=sharding.make_mesh(jax.devices()[:4]))
  assert not os.path.exists(tmp_path / 'checkpoints')


@pytest.mark.slow
def test_refuses_to_resume_a_different_model(tmp_path):
  config = tiny_config(num_steps=4)
  mesh = sharding.make_mesh(jax.devices()[:2])
  train_lib.train_and_evaluate(config, str(tmp_path), mesh=mesh, hooks=[stop_at(1)])
  config.model.nf = 32
  with pytest.raises(ValueError, match='different `model` config'):
    train_lib.train_and_evaluate(config, str(tmp_path), mesh=mesh)


def _run(args, env_extra=None):
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)  # the CLI picks its own device count
  env.update(env_extra or {})
  proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.mark.slow
def test_cli_train_resume_and_sample(tmp_path):
  """train.py on 4 fake CPU devices, a second invocation resumes, sample.py writes a PNG."""
  workdir = str(tmp_path / 'run')
  common = ['train.py', '--config=configs/tiny.py', f'--workdir={workdir}', '--cpu_devices=4',
            '--config.train.ckpt_every=3', '--config.train.sample_every=1000',
            '--config.train.num_sample_images=4']
  _run(common + ['--config.train.num_steps=3'])
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3']
  proc = _run(common + ['--config.train.num_steps=6'])
  assert 'Resuming from step 3' in proc.stdout
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_00000006.png'))
  out = str(tmp_path / 'grid.png')
  _run(['sample.py', f'--workdir={workdir}', f'--output={out}', '--num_images=4'])
  from PIL import Image
  img = np.asarray(Image.open(out))
  assert img.shape[0] > 32 and img.std() > 0
