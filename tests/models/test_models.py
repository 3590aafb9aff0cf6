"""Model structure: parameter counts equal the official totals, the converter covers every
official key of the real configs, conditioning channels, init scales and error paths."""
import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny as tiny_config
from ddgan_jax import models
from ddgan_jax.models import convert
from ddgan_jax.models import discriminator as disc_lib
from ddgan_jax.models import layers

GEN_ARCHS = {'arch_ncsnpp_cifar10.json': 48_432_515, 'arch_ncsnpp_celebahq256.json': 39_726_979}
DISC_ARCHS = {'arch_disc_small_cifar10.json': ('small', 12_741_633),
              'arch_disc_large_celebahq256.json': ('large', 27_737_217)}


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _arch(reference_dir, name) -> dict:
  return json.loads((reference_dir / name).read_text())


def _fake_state_dict(arch: dict) -> dict:
  """Zero tensors with the official shapes, as zero-stride views (no memory)."""
  return {key: np.broadcast_to(np.zeros((), np.float32), tuple(shape))
          for key, shape, _ in arch['state_dict']}


@pytest.mark.parametrize('name', sorted(GEN_ARCHS))
def test_generator_matches_official_architecture(reference_dir, name):
  arch = _arch(reference_dir, name)
  assert arch['total_parameters'] == GEN_ARCHS[name]
  gen = convert.generator_from_official_args(arch['constructor']['generator_relevant_args'])
  shapes = convert.generator_param_shapes(gen)
  assert _count(shapes) == arch['total_parameters']
  # Every official key is consumed and every one of our params is filled with its shape.
  params = convert.convert_generator(_fake_state_dict(arch), gen)
  assert jax.tree.map(lambda a: a.shape, params) == jax.tree.map(lambda a: a.shape, shapes)
  # The plan has one entry per official all_modules entry, with the listed classes.
  plan = gen.plan()
  official_modules = [m for m in arch['modules'] if m['index'].startswith('all_modules.')]
  assert len(plan) == len(official_modules)
  kinds = {'Linear': 'dense', 'Conv2d': 'conv', 'ResnetBlockBigGANpp_Adagn': 'resblock',
           'AttnBlockpp': 'attn', 'Downsample': 'pyramid_down', 'GroupNorm': 'groupnorm'}
  for entry, official in zip(plan, official_modules):
    assert official['index'] == f'all_modules.{entry.index}'
    assert kinds[official['class']] == entry.kind, (entry, official)
    if entry.kind == 'resblock':
      assert (official['up'], official['down']) == (entry.up, entry.down), (entry, official)


@pytest.mark.parametrize('name', sorted(DISC_ARCHS))
def test_discriminator_matches_official_architecture(reference_dir, name):
  arch = _arch(reference_dir, name)
  kind, total = DISC_ARCHS[name]
  assert arch['total_parameters'] == total
  kw = arch['constructor']['kwargs']
  cls = disc_lib.DiscriminatorSmall if kind == 'small' else disc_lib.DiscriminatorLarge
  disc = cls(ngf=kw['ngf'], t_emb_dim=kw['t_emb_dim'])
  shapes = convert.discriminator_param_shapes(disc, kw['nc'])
  assert _count(shapes) == total
  params = convert.convert_discriminator(_fake_state_dict(arch), kind)
  assert jax.tree.map(lambda a: a.shape, params) == jax.tree.map(lambda a: a.shape, shapes)


@pytest.mark.parametrize('module,g_total,d_total', [
    ('configs.default', 48_432_515, 12_741_633),
    ('configs.cifar10', 48_432_515, 12_741_633),
    ('configs.celebahq_256', 39_726_979, 27_737_217),
])
def test_dataset_configs_build_official_models(module, g_total, d_total):
  cfg = importlib.import_module(module).get_config()
  gen = models.create_generator(cfg.model, image_size=cfg.data.image_size,
                                num_channels=cfg.data.num_channels)
  assert _count(convert.generator_param_shapes(gen)) == g_total
  disc = models.create_discriminator(cfg.model)
  assert _count(convert.discriminator_param_shapes(disc, 2 * cfg.data.num_channels)) == d_total


@pytest.fixture(scope='module')
def tiny_conditional():
  """The tiny config generator with inpainting conditioning (C + 1 channels), initialised once."""
  cfg = tiny_config.get_config()
  c, size = cfg.data.num_channels, cfg.data.image_size
  gen = models.create_generator(cfg.model, image_size=size, num_channels=c, cond_channels=c + 1)
  x = jnp.ones((1, size, size, c))
  cond = jnp.ones((1, size, size, c + 1))
  variables = jax.jit(gen.init)(jax.random.PRNGKey(0), x, jnp.zeros((1,), jnp.int32),
                                jnp.ones((1, cfg.model.nz)), cond)
  return cfg, gen, variables


def test_conditioning_channels_shapes(tiny_conditional):
  cfg, gen, variables = tiny_conditional
  c, size, b = cfg.data.num_channels, cfg.data.image_size, 2
  x = jnp.ones((b, size, size, c))
  cond = jnp.ones((b, size, size, c + 1))
  t = jnp.array([0, 3])
  z = jnp.ones((b, cfg.model.nz))
  params = variables['params']
  assert params['conv_in']['kernel'].shape == (3, 3, 2 * c + 1, cfg.model.nf)
  assert params['down0_pyramid']['kernel'].shape == (3, 3, 2 * c + 1, cfg.model.nf)
  assert params['conv_out']['kernel'].shape == (3, 3, cfg.model.nf, c)
  out = jax.jit(gen.apply)(variables, x, t, z, cond)
  assert out.shape == (b, size, size, c)
  assert bool(jnp.all(jnp.isfinite(out)))
  with pytest.raises(ValueError, match='cond'):
    jax.eval_shape(gen.apply, variables, x, t, z)

  disc = models.create_discriminator(cfg.model)
  dvars = jax.eval_shape(disc.init, jax.random.PRNGKey(1), x, t, x, cond)
  assert dvars['params']['start_conv']['kernel'].shape == (1, 1, 3 * c + 1, 2 * cfg.model.ngf)
  assert jax.eval_shape(disc.apply, dvars, x, t, x, cond).shape == (b, 1)


def test_init_scales_follow_official(tiny_conditional):
  _, _, variables = tiny_conditional
  p = variables['params']
  tiny = 1e-4  # init_scale 0 -> variance 1e-10 / fan
  assert float(jnp.abs(p['conv_out']['kernel']).max()) < tiny
  assert float(jnp.abs(p['down0_res0']['Conv_1']['kernel']).max()) < tiny
  assert float(jnp.abs(p['mid_attn']['NIN_3']['W']).max()) < tiny
  assert float(jnp.abs(p['conv_in']['kernel']).max()) > 1e-2
  style = p['down0_res0']['GroupNorm_0']['style']['bias']
  c = style.shape[0] // 2
  np.testing.assert_array_equal(style[:c], 1.0)
  np.testing.assert_array_equal(style[c:], 0.0)
  # dense_layer init: bound sqrt(3 / fan_out); z mapping Dense_0 is [nz, z_emb_dim].
  k = p['z_mapping']['Dense_0']['kernel']
  assert float(jnp.abs(k).max()) <= np.sqrt(3.0 / k.shape[1]) + 1e-7
  np.testing.assert_array_equal(p['mid_attn']['GroupNorm_0']['scale'], 1.0)

  x = jnp.zeros((1, 16, 16, 3))
  t = jnp.zeros((1,), jnp.int32)
  disc = disc_lib.DiscriminatorSmall(ngf=4, t_emb_dim=32)
  pd = jax.jit(disc.init)(jax.random.PRNGKey(0), x, t, x)['params']  # jit: op-by-op init is slow
  assert float(jnp.abs(pd['conv1']['conv2']['kernel']).max()) < tiny
  assert float(jnp.abs(pd['final_conv']['kernel']).max()) < tiny
  assert 'bias' not in pd['conv1']['skip']
  x64 = jnp.zeros((1, 64, 64, 3))
  pl = jax.jit(disc_lib.DiscriminatorLarge(ngf=4, t_emb_dim=16).init)(
      jax.random.PRNGKey(0), x64, t, x64)['params']
  assert float(jnp.abs(pl['final_conv']['kernel']).max()) > 1e-3


def test_unsupported_generator_options_raise():
  cfg = tiny_config.get_config()
  gen = models.create_generator(cfg.model, image_size=16, num_channels=3)
  x = jnp.zeros((1, 16, 16, 3))
  args = (jax.random.PRNGKey(0), x, jnp.zeros((1,), jnp.int32), jnp.zeros((1, 8)))
  for change in (dict(progressive='residual'), dict(resblock_type='ddpm'),
                 dict(embedding_type='fourier'), dict(resamp_with_conv=False)):
    with pytest.raises(ValueError, match='not implemented'):
      jax.eval_shape(gen.clone(**change).init, *args)


def test_minibatch_stddev_needs_divisible_batch():
  with pytest.raises(ValueError, match='divisible'):
    disc_lib.minibatch_stddev(jnp.zeros((6, 2, 2, 3)))
  assert disc_lib.minibatch_stddev(jnp.zeros((3, 2, 2, 3))).shape == (3, 2, 2, 4)


def test_converter_reports_missing_and_unused_keys(reference_dir):
  arch = _arch(reference_dir, 'arch_disc_small_cifar10.json')
  sd = _fake_state_dict(arch)
  sd['module_extra.weight'] = np.zeros((2,), np.float32)
  del sd['conv2.skip.0.weight']
  with pytest.raises(ValueError) as err:
    convert.convert_discriminator(sd, 'small')
  assert "missing official key 'conv2.skip.0.weight'" in str(err.value)
  assert "'module_extra.weight' (2,) was not consumed" in str(err.value)


def test_load_state_dict_npz_strips_ddp_prefix(tmp_path):
  path = str(tmp_path / 'sd.npz')
  np.savez(path, **{'module.a.weight': np.ones((2, 3), np.float32),
                    'module.b': np.zeros((4,), np.float32)})
  sd = convert.load_state_dict(path)
  assert sorted(sd) == ['a.weight', 'b']
  assert sd['a.weight'].shape == (2, 3)


def test_layers_shapes():
  x = jnp.ones((2, 8, 8, 4))
  assert layers.upsample_2d(x).shape == (2, 16, 16, 4)
  assert layers.downsample_2d(x).shape == (2, 4, 4, 4)
  assert layers.conv_downsample_2d(x, jnp.ones((3, 3, 4, 5))).shape == (2, 4, 4, 5)
  # The FIR kernel is normalised: constants stay constant away from the border.
  np.testing.assert_allclose(layers.upsample_2d(x)[:, 2:-2, 2:-2], 1.0, rtol=1e-6)
  np.testing.assert_allclose(layers.downsample_2d(x)[:, 1:-1, 1:-1], 1.0, rtol=1e-6)
  assert layers.timestep_embedding(jnp.arange(3), 7).shape == (3, 7)


@pytest.mark.parametrize('k', [2, 3, 4, 5])
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize('pad', [(0, 0), (1, 2), (2, 1), (3, 3)])
def test_upfirdn2d_matches_numpy(k, up, down, pad):
  """Both code paths (polyphase upsampling and strided slices) against a direct numpy
  zero-insert / pad / convolve / subsample, for non-symmetric kernels."""
  rng = np.random.default_rng(k * 100 + up * 10 + down)
  kernel = rng.normal(size=(k, k)).astype(np.float32)
  x = rng.normal(size=(2, 7, 7, 3)).astype(np.float32)
  zeros = np.zeros((2, 7 * up, 7 * up, 3), np.float32)
  zeros[:, ::up, ::up] = x
  xp = np.pad(zeros, ((0, 0), pad, pad, (0, 0)))
  n = xp.shape[1] - k + 1
  full = np.zeros((2, n, n, 3), np.float64)
  flipped = kernel[::-1, ::-1]
  for i in range(k):
    for j in range(k):
      full += flipped[i, j] * xp[:, i:i + n, j:j + n]
  ref = full[:, ::down, ::down]
  out = np.asarray(layers.upfirdn2d(jnp.asarray(x), kernel, up=up, down=down, pad=pad))
  assert out.shape == ref.shape
  np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize('k', [3, 4])
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize('pad', [(1, 2), (3, 3)])
def test_upfirdn2d_gradient_is_the_adjoint_fir(k, up, down, pad):
  """The hand-written VJP (flipped kernel, up and down swapped, negative pads as crops)
  against autodiff of the plain computation, on a non-square input."""
  rng = np.random.default_rng(k * 100 + up * 10 + down + pad[0])
  kernel = rng.normal(size=(k, k)).astype(np.float32)
  x = jnp.asarray(rng.normal(size=(2, 7, 5, 3)).astype(np.float32))
  out, vjp = jax.vjp(lambda v: layers.upfirdn2d(v, kernel, up=up, down=down, pad=pad), x)
  out_ref, vjp_ref = jax.vjp(
      lambda v: layers._upfirdn2d(v, kernel, up, down, pad), x)  # pylint: disable=protected-access
  np.testing.assert_array_equal(out, out_ref)
  g = jnp.asarray(rng.normal(size=out.shape).astype(np.float32))
  np.testing.assert_allclose(vjp(g)[0], vjp_ref(g)[0], atol=1e-5)


def test_fir_resampling_second_order_gradients():
  """R1 differentiates D (FIR downsampling) twice; G's upsampling is checked the same way."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  kernel = layers.setup_kernel(layers.DEFAULT_FIR_KERNEL)
  plain = {  # pylint: disable=protected-access
      'down': lambda v: layers._upfirdn2d(v, kernel, 1, 2, (1, 1)),
      'up': lambda v: layers._upfirdn2d(v, kernel * 4, 2, 1, (2, 1)),
  }
  fast = {'down': layers.downsample_2d, 'up': layers.upsample_2d}
  second = lambda f: jax.grad(lambda v: jnp.sum(jax.grad(lambda u: jnp.sum(jnp.sin(f(u))))(v) ** 2))
  for name in fast:
    np.testing.assert_allclose(second(fast[name])(x), second(plain[name])(x), rtol=1e-4,
                               atol=1e-5, err_msg=name)
