"""Performance options: bfloat16 compute and rematerialisation leave the numbers in place.

model.compute_dtype='bfloat16' runs G's and D's convolutions and matmuls in bfloat16 while
parameters, optimizer state and losses stay float32; model.remat=True recomputes each block
in the backward pass. One bfloat16 train step (D, then G) on the tiny config is compared with the
float32 default on the same state, batch and key; remat with the gradients of G and D.
"""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import programs, train_lib
from ddgan_jax.train import step as step_lib

# bfloat16 keeps 8 bits of mantissa (relative rounding ~4e-3): after a whole step the losses
# agree to ~1e-2 and the parameter updates point the same way.
BF16_LOSS_ATOL = 2e-2


def _one_step(**model):
  config = tiny.get_config()
  config.optim.lr_g = config.optim.lr_d = 1e-3
  for k, v in model.items():
    config.model[k] = v
  nets = networks.build_networks(config)
  opt = train_lib.make_optimizers(config.optim, 10, 100)
  mesh = sharding.make_mesh(jax.devices()[:1])
  state = train_lib.init_state(nets, opt, jax.random.PRNGKey(0))
  start = jax.tree.map(np.asarray, state)
  images = jax.random.uniform(jax.random.PRNGKey(1), nets.image_shape(8), minval=-1, maxval=1)
  step = programs.jit_train_step(step_lib.make_train_step(nets, opt, config), mesh)
  new, metrics = step(state, images, jax.random.PRNGKey(2), r1=False)
  return nets, start, jax.tree.map(np.asarray, new), {k: float(v) for k, v in metrics.items()}


@pytest.fixture(scope='module')
def float32_step():
  return _one_step()


HIGHEST = jax.lax.Precision.HIGHEST


def _conv_dtypes(nets):
  """Counts of (primitive, output dtype) of the convolutions/matmuls in one G forward."""
  params = nets.init_generator(jax.random.PRNGKey(0))
  x = jnp.zeros(nets.image_shape(2))
  jaxpr = jax.make_jaxpr(lambda p: nets.apply_g(p, x, jnp.zeros((2,), jnp.int32),
                                                jnp.zeros((2, nets.nz))))(params)
  counts = collections.Counter()

  def visit(inner):  # into nested jaxprs too (jitted einsums, custom VJPs, remat)
    for eqn in inner.eqns:
      if eqn.primitive.name in ('conv_general_dilated', 'dot_general'):
        if eqn.params.get('precision') != (HIGHEST, HIGHEST):  # GroupNorm statistics are
          counts[str(eqn.outvars[0].aval.dtype)] += 1  # float32 by design (layers.group_norm)
      for value in eqn.params.values():
        for sub in value if isinstance(value, (tuple, list)) else (value,):
          if hasattr(sub, 'eqns'):
            visit(sub)
          elif hasattr(sub, 'jaxpr') and hasattr(sub.jaxpr, 'eqns'):
            visit(sub.jaxpr)

  visit(jaxpr.jaxpr)
  return counts


def _value_and_grads(remat):
  """A scalar of G's and D's outputs and its gradients w.r.t. both parameter trees."""
  config = tiny.get_config()
  config.model.remat = remat
  nets = networks.build_networks(config)
  params = (nets.init_generator(jax.random.PRNGKey(0)), nets.init_discriminator(jax.random.PRNGKey(1)))
  x = jax.random.normal(jax.random.PRNGKey(2), nets.image_shape(4))
  t = jnp.arange(4) % nets.num_timesteps
  z = jax.random.normal(jax.random.PRNGKey(3), (4, nets.nz))

  def fn(p):
    x0 = nets.apply_g(p[0], x, t, z)
    return jnp.sum(x0 ** 2) + jnp.sum(jax.nn.softplus(nets.apply_d(p[1], x0, t, x)))
  return params, jax.jit(jax.value_and_grad(fn))(params)


@pytest.mark.slow
def test_remat_gives_the_same_values_and_gradients():
  params, (value, grads) = _value_and_grads(remat=False)
  params_remat, (value_remat, grads_remat) = _value_and_grads(remat=True)
  # Same parameter tree (names, shapes, initial values): checkpoints move freely between the two.
  assert jax.tree.structure(params_remat) == jax.tree.structure(params)
  jax.tree.map(np.testing.assert_array_equal, params_remat, params)
  np.testing.assert_allclose(value_remat, value, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
               grads_remat, grads)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 0


@pytest.mark.slow
def test_bfloat16_compute_float32_state(float32_step):
  ref_nets, start, ref, ref_metrics = float32_step
  nets, _, new, metrics = _one_step(compute_dtype='bfloat16')
  # The networks really compute in bfloat16 (all but the two time-embedding matmuls) ...
  counts = _conv_dtypes(nets)
  assert counts['bfloat16'] >= 10 * counts['float32'] > 0, counts
  assert set(_conv_dtypes(ref_nets)) == {'float32'}
  # ... while parameters, optimizer state and EMA stay float32.
  for leaf in jax.tree.leaves((new.params_g, new.params_d, new.opt_state_g, new.opt_state_d,
                               new.ema_g)):
    if np.issubdtype(leaf.dtype, np.floating):
      assert leaf.dtype == np.float32
  for k in ('d_loss', 'd_real', 'd_fake', 'g_loss'):
    assert np.isfinite(metrics[k])
    np.testing.assert_allclose(metrics[k], ref_metrics[k], atol=BF16_LOSS_ATOL, err_msg=k)
  # The update is the float32 one up to bfloat16 rounding: same direction for G and D.
  for name in ('params_g', 'params_d'):
    d_ref = np.concatenate([(b - a).ravel() for a, b in zip(
        jax.tree.leaves(getattr(start, name)), jax.tree.leaves(getattr(ref, name)))])
    d_new = np.concatenate([(b - a).ravel() for a, b in zip(
        jax.tree.leaves(getattr(start, name)), jax.tree.leaves(getattr(new, name)))])
    cosine = d_ref @ d_new / (np.linalg.norm(d_ref) * np.linalg.norm(d_new))
    assert cosine > 0.9, (name, cosine)


def test_unknown_compute_dtype_is_refused(tiny_config):
  config = tiny_config
  config.model.compute_dtype = 'float16'
  with pytest.raises(ValueError, match='compute_dtype'):
    networks.build_networks(config)
