"""train.init_from: a conditional generator started from an unconditional checkpoint computes
exactly what the unconditional one did at step 0."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.core import losses
from ddgan_jax.data import eval_masks
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import finetune, train_lib


@pytest.fixture(scope='module')
def uncond_checkpoint(tmp_path_factory):
  """An inference checkpoint (EMA generator + config) of a random tiny unconditional model."""
  config = tiny.get_config()
  nets = networks.build_networks(config)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(7))
  # A fresh NCSN++ outputs ~0 (its last conv starts near zero): perturb every weight so the
  # source computes something the comparison can see.
  # (numpy draws: one jax.random.normal per leaf shape would compile a program for each)
  rng = np.random.default_rng(8)
  params = jax.tree.map(lambda p: p + 0.05 * rng.standard_normal(p.shape, np.float32), params)
  path = str(tmp_path_factory.mktemp('uncond'))
  checkpointing.save_inference_checkpoint(path, ema_params=params, config=config)
  return path, nets, params


@pytest.mark.parametrize('cond_fill', ['zeros', 'smooth'])
def test_conditional_start_equals_the_unconditional_generator(uncond_checkpoint, cond_fill,
                                                              tiny_inpaint_config):
  path, u_nets, u_params = uncond_checkpoint
  config = tiny_inpaint_config
  config.inpaint.cond_fill = cond_fill
  c_nets = networks.build_networks(config)
  fresh = jax.jit(c_nets.init_generator)(jax.random.PRNGKey(0))
  grafted = finetune.load_pretrained_generator(path, fresh)
  # The condition channels are the only new inputs: zero weights there.
  assert grafted['conv_in']['kernel'].shape[-2] == 3 + 4
  np.testing.assert_array_equal(grafted['conv_in']['kernel'][..., 3:, :], 0.0)

  k = jax.random.split(jax.random.PRNGKey(1), 4)
  x = jax.random.normal(k[0], u_nets.image_shape(4))
  t = jnp.array([0, 1, 2, 3])
  z = jax.random.normal(k[1], (4, u_nets.nz))
  images = jax.random.uniform(k[2], x.shape, minval=-1, maxval=1)
  m = eval_masks.eval_masks('wide', k[3], 4, u_nets.image_size)
  cond = losses.inpaint_condition(images, m, cond_fill)
  apply_c = jax.jit(c_nets.apply_g)  # one program for both conditional calls below
  want = jax.jit(u_nets.apply_g)(u_params, x, t, z)
  got = apply_c(grafted, x, t, z, cond)
  assert np.abs(np.asarray(want)).mean() > 0.05
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5)
  # Nonzero condition weights would change the output (the check can fail).
  bumped = dict(grafted, conv_in=dict(grafted['conv_in'],
                                      kernel=grafted['conv_in']['kernel'].at[..., 3:, :].set(0.1)))
  assert np.abs(np.asarray(apply_c(bumped, x, t, z, cond)) - np.asarray(want)).max() > 1e-2


@pytest.mark.slow
def test_train_state_starts_from_the_checkpoint(uncond_checkpoint, tiny_inpaint_config):
  path, _, u_params = uncond_checkpoint
  config = tiny_inpaint_config
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 10, 100)
  mesh = sharding.make_mesh()
  repl = sharding.replicated(mesh)
  state = jax.jit(lambda key: train_lib.init_state(nets, opt, key), out_shardings=repl)(
      jax.random.PRNGKey(0))
  d_before = jax.tree.map(np.asarray, state.params_d)
  state = train_lib._start_from_pretrained(state, path, repl)  # pylint: disable=protected-access
  flat = lambda tree: {jax.tree_util.keystr(p): np.asarray(v)
                       for p, v in jax.tree_util.tree_leaves_with_path(tree)}
  got, want = flat(state.params_g), flat(u_params)
  assert got.keys() == want.keys()
  grown = [k for k in want if got[k].shape != want[k].shape]
  assert len(grown) == 2, grown  # conv_in and the first input-pyramid conv
  for k in want:
    np.testing.assert_array_equal(got[k][..., :want[k].shape[-2], :] if k in grown else got[k],
                                  want[k])
  for a, b in zip(jax.tree.leaves(state.ema_g), jax.tree.leaves(state.params_g)):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(state.params_d), jax.tree.leaves(d_before)):
    np.testing.assert_array_equal(a, b)


def test_mismatching_model_is_refused_naming_the_parameter(uncond_checkpoint, tiny_inpaint_config):
  path = uncond_checkpoint[0]
  config = tiny_inpaint_config
  config.model.nf = 2 * config.model.nf
  nets = networks.build_networks(config)
  target = nets.abstract_generator_params()
  with pytest.raises(ValueError, match=r"init_from: .*\['.*'\].* is \("):
    finetune.load_pretrained_generator(path, target)


@pytest.mark.slow
def test_a_shipped_discriminator_starts_the_run_when_it_fits(tmp_path, tiny_inpaint_config,
                                                             tiny_config):
  config = tiny_inpaint_config
  nets = networks.build_networks(config)
  params_g = jax.jit(nets.init_generator)(jax.random.PRNGKey(1))
  params_d = jax.tree.map(lambda p: p + 0.01, jax.jit(nets.init_discriminator)(jax.random.PRNGKey(2)))
  checkpointing.save_inference_checkpoint(str(tmp_path / 'with_d'), ema_params=params_g,
                                          config=config, disc_params=params_d)
  opt = train_lib.make_optimizers(config.optim, 10, 100)
  repl = sharding.replicated(sharding.make_mesh())
  state = jax.jit(lambda key: train_lib.init_state(nets, opt, key), out_shardings=repl)(
      jax.random.PRNGKey(0))
  started = train_lib._start_from_pretrained(state, str(tmp_path / 'with_d'), repl)  # pylint: disable=protected-access
  for a, b in zip(jax.tree.leaves(started.params_d), jax.tree.leaves(params_d)):
    np.testing.assert_array_equal(a, b)
  # A D of other shapes (the unconditional model's: fewer input channels) is not used.
  u_config = tiny_config
  u_nets = networks.build_networks(u_config)
  checkpointing.save_inference_checkpoint(
      str(tmp_path / 'other_d'), ema_params=jax.jit(u_nets.init_generator)(jax.random.PRNGKey(1)),
      config=u_config, disc_params=jax.jit(u_nets.init_discriminator)(jax.random.PRNGKey(2)))
  assert finetune.load_pretrained_discriminator(str(tmp_path / 'other_d'), state.params_d) is None


@pytest.mark.slow
def test_export_with_discriminator_takes_d_from_the_training_state(tmp_path, tiny_inpaint_config):
  from ddgan_jax.inpainting import export
  config = tiny_inpaint_config
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 10, 100)
  state = jax.jit(lambda key: train_lib.init_state(nets, opt, key))(jax.random.PRNGKey(3))
  state = state.replace(params_d=jax.tree.map(lambda p: p + 0.02, state.params_d))
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'run' / 'checkpoints'), async_save=False)
  ckpt.save(5, state, state.ema_g, config)
  ckpt.close()
  out = export.export(str(tmp_path / 'run'), str(tmp_path / 'exported'), with_discriminator=True)
  got = finetune.load_pretrained_discriminator(out, state.params_d)
  markers = list(pathlib.Path(out).rglob('commit_success.txt'))  # relocatable: no tmp_path
  assert markers and not any(str(tmp_path) in m.read_text() for m in markers)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(state.params_d)):
    np.testing.assert_array_equal(a, b)
  no_d = checkpointing.save_inference_checkpoint(str(tmp_path / 'no_d'), ema_params=state.ema_g,
                                                 config=config)
  assert finetune.load_pretrained_discriminator(no_d, state.params_d) is None
  with pytest.raises(ValueError, match='holds no discriminator'):
    export.export(no_d, str(tmp_path / 'again'), with_discriminator=True)
