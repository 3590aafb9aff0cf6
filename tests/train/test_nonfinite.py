"""Non-finite values: caught inside the jitted step, never applied, never checkpointed.

The guard's semantics are checked on a toy step with a real Adam (an absurd learning rate
blows the parameters up); the loop on the tiny config with a poisoned batch, in both modes.
Both loop runs use the same 1-device program (R1 off), so it is compiled once.
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import tiny
from ddgan_jax import config_checks
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import input_pipeline
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import nonfinite, train_lib
from ddgan_jax.train import step as step_lib


def _toy_step(lr):
  """A train step of the real TrainState shape on a quadratic, with Adam at learning rate lr;
  `images` is the target, so a NaN batch poisons the loss and the gradients."""
  tx = optax.adam(lr)

  def d_phase(state, images, base_key, r1):  # pylint: disable=unused-argument
    loss_fn = lambda p: jnp.mean((p['w'] - images) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params_d)
    return grads, {'d_loss': loss}, None

  def update(state, images, base_key, d_out):  # pylint: disable=unused-argument
    grads, metrics, _ = d_out
    updates, opt_state = tx.update(grads, state.opt_state_d, state.params_d)
    params = optax.apply_updates(state.params_d, updates)
    return state.replace(step=state.step + 1, params_d=params, opt_state_d=opt_state), metrics

  params = {'w': jnp.zeros(4)}
  state = train_lib.TrainState(step=jnp.zeros((), jnp.int32), params_g={'w': jnp.zeros(2)},
                               params_d=params, opt_state_g=(), opt_state_d=tx.init(params),
                               ema_g={'w': jnp.zeros(2)})
  return step_lib.TrainStep(d_phase, update), state


def _run_toy(mode, batches, lr=0.1, max_in_a_row=2):
  step, state = _toy_step(lr)
  config = tiny.get_config().train
  config.on_nonfinite, config.max_nonfinite_in_a_row = mode, max_in_a_row
  guard = nonfinite.Guard(step, sharding.make_mesh(jax.devices()[:1]), config)
  states = []
  for x in batches:
    state, _ = guard(state, jnp.full(4, x, jnp.float32), jax.random.PRNGKey(0), False)
    states.append(jax.device_get(state))
  return states, guard.poll(), guard.error


def test_guard_stop_skip_and_absurd_learning_rate():
  nan = float('nan')
  # stop: the poisoned step and every later one leave the state as it was.
  states, _, error = _run_toy('stop', [1.0, nan, 1.0])
  assert [int(s.step) for s in states] == [1, 1, 1]
  assert all(np.isfinite(s.params_d['w']).all() for s in states)
  np.testing.assert_array_equal(states[2].params_d['w'], states[0].params_d['w'])
  assert 'Non-finite d_loss at step 2' in str(error) and '\n' not in str(error)
  # skip: the update is dropped, counted, the step counter moves on, training continues.
  states, scalars, error = _run_toy('skip', [1.0, nan, 1.0])
  assert error is None and scalars == {'nonfinite_skipped': 1.0}
  assert [int(s.step) for s in states] == [1, 2, 3]
  np.testing.assert_array_equal(states[1].params_d['w'], states[0].params_d['w'])
  np.testing.assert_array_equal(states[1].opt_state_d[0].mu['w'], states[0].opt_state_d[0].mu['w'])
  assert not np.array_equal(states[2].params_d['w'], states[1].params_d['w'])
  # An absurd learning rate: the first update throws the parameters to ~3e38 (still finite),
  # the next loss is infinite. skip drops that step and the next one, then stops after
  # max_nonfinite_in_a_row = 2 in a row.
  states, scalars, error = _run_toy('skip', [1.0, 1.0, 1.0, 1.0], lr=3e38)
  assert scalars == {'nonfinite_skipped': 1.0}
  assert [int(s.step) for s in states] == [1, 2, 2, 2]
  assert np.abs(states[0].params_d['w']).min() > 1e38
  assert all(np.isfinite(s.params_d['w']).all() for s in states)
  assert ('Non-finite d_loss at step 3 after 2 non-finite steps in a row '
          '(train.max_nonfinite_in_a_row=2)') in str(error)
  with pytest.raises(config_checks.ConfigError,
                     match="unknown train.on_nonfinite='never'; expected one of: stop, skip, off"):
    _run_toy('never', [1.0])
  config = tiny.get_config()  # train.py checks the whole config before it writes anything
  config.train.max_nonfinite_in_a_row = -1
  with pytest.raises(config_checks.ConfigError, match='train.max_nonfinite_in_a_row=-1 is out of range'):
    config_checks.check_config(config)


def _config(mode):
  config = tiny.get_config()
  config.train.num_steps = 4
  config.train.ckpt_every = 1
  config.train.log_every = 2
  config.train.keep_checkpoints = 5
  config.train.num_sample_images = 0
  config.train.on_nonfinite = mode
  config.optim.r1_gamma = 0.0  # one program per run: no R1 variant to compile
  config.data.num_train_examples = 16
  return config


def _poison(monkeypatch, bad_step):
  """The batch of step `bad_step` (1-based, as logged) is all NaN."""
  real = input_pipeline.create_dataset

  def create_dataset(*args, start_step=0, **kwargs):
    for i, batch in enumerate(real(*args, start_step=start_step, **kwargs), start=start_step + 1):
      yield dict(batch, image=np.full_like(batch['image'], np.nan)) if i == bad_step else batch
  monkeypatch.setattr(input_pipeline, 'create_dataset', create_dataset)


def _checkpoints(workdir, config, mesh):
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 2, config.train.num_steps)
  abstract = jax.eval_shape(lambda k: train_lib.init_state(nets, opt, k), jax.random.PRNGKey(0))
  abstract = checkpointing.with_sharding(abstract, sharding.replicated(mesh))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  out = {s: jax.device_get(ckpt.restore_state(s, abstract)) for s in ckpt.manager.all_steps()}
  ckpt.close()
  return out


def _all_finite(tree):
  return all(np.isfinite(x).all() for x in jax.tree.leaves(tree))


@pytest.mark.slow
def test_poisoned_batch_stops_or_is_skipped(tmp_path, monkeypatch):
  mesh = sharding.make_mesh(jax.devices()[:1])
  _poison(monkeypatch, bad_step=3)
  # stop: the error names the step and the quantity; checkpoints 1 and 2 only, all finite.
  config = _config('stop')
  with pytest.raises(nonfinite.NonFiniteError, match=r'Non-finite d_\w+ at step 3 '):
    train_lib.train_and_evaluate(config, str(tmp_path / 'stop'), mesh=mesh)
  saved = _checkpoints(str(tmp_path / 'stop'), config, mesh)
  assert sorted(saved) == [1, 2] and all(_all_finite(s) for s in saved.values())
  # skip: the run completes; step 3's update is dropped (state 3 = state 2 but for the step
  # counter), counted in the logged scalars; every checkpoint is finite.
  config = _config('skip')
  final = train_lib.train_and_evaluate(config, str(tmp_path / 'skip'), mesh=mesh)
  assert int(final.step) == 4 and _all_finite(final)
  saved = _checkpoints(str(tmp_path / 'skip'), config, mesh)
  assert sorted(saved) == [1, 2, 3, 4] and all(_all_finite(s) for s in saved.values())
  assert int(saved[3].step) == 3
  for name in ('params_g', 'params_d', 'opt_state_g', 'opt_state_d', 'ema_g'):
    jax.tree.map(np.testing.assert_array_equal, getattr(saved[3], name), getattr(saved[2], name))
  assert not np.array_equal(jax.tree.leaves(saved[4].params_g)[0], jax.tree.leaves(saved[3].params_g)[0])
  lines = [json.loads(l) for l in open(tmp_path / 'skip' / 'metrics.jsonl')]
  assert [(l['step'], l['nonfinite_skipped']) for l in lines] == [(2, 0.0), (4, 1.0)]
  assert all(np.isfinite(v) for l in lines for v in l.values())
