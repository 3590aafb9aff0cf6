"""Numerical parity with the official PyTorch networks (reference/parity_*.npz, NCHW).

The official weights are converted with ddgan_jax.models.convert, the same inputs are fed, and the
outputs, intermediate activations, R1 gradient and unit ops must agree to 1e-4 (max abs).
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.models import convert
from ddgan_jax.models import discriminator as disc_lib
from ddgan_jax.models import layers

ATOL = 1e-4


@pytest.fixture(autouse=True)
def _highest_precision():
  with jax.default_matmul_precision('highest'):
    yield


def _cases(reference_dir: pathlib.Path) -> list[tuple[str, dict, dict]]:
  """(name, sidecar json, npz arrays) for every parity_*.npz in the reference folder."""
  paths = sorted(reference_dir.glob('parity_*.npz'))
  if not paths:
    raise FileNotFoundError(f'No parity_*.npz under {reference_dir}.')
  cases = []
  for path in paths:
    meta = json.loads(path.with_suffix('.json').read_text())
    with np.load(path) as data:
      arrays = {k: data[k] for k in data.files}
    cases.append((path.stem, meta, arrays))
  return cases


@pytest.fixture(scope='module')
def cases(reference_dir):
  return _cases(reference_dir)


def nhwc(a: np.ndarray) -> jnp.ndarray:
  return jnp.asarray(a.transpose(0, 2, 3, 1))


def nchw(a) -> np.ndarray:
  a = np.asarray(a)
  return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a


def _err(ours, ref) -> float:
  ours = np.asarray(ours)
  assert ours.shape == ref.shape, (ours.shape, ref.shape)
  return float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64))))


def _generator(meta: dict, arrays: dict):
  gen = convert.generator_from_official_args(meta['generator']['args'])
  params = convert.convert_generator(
      {k[2:]: v for k, v in arrays.items() if k.startswith('G/')}, gen)
  return gen, params


def _discriminator(arrays: dict, prefix: str, kind: str):
  sd = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
  return convert.discriminator_from_state_dict(sd, kind), convert.convert_discriminator(sd, kind)


def test_generator_output_and_intermediates(cases):
  for name, meta, a in cases:
    gen, params = _generator(meta, a)
    count = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    assert count == meta['generator']['parameters']
    out, state = gen.apply({'params': params}, nhwc(a['in/x_t']), jnp.asarray(a['in/t']),
                           jnp.asarray(a['in/z']), capture_intermediates=True)
    inter = state['intermediates']
    if 'g_inter/z_transform' in a:
      ours = {'g_inter/z_transform': inter['z_mapping']['__call__'][0],
              'g_inter/timestep_embedding': inter['timestep_embedding'][0]}
      for entry in gen.plan():
        ours[f'g_inter/all_modules.{entry.index}'] = inter[entry.name]['__call__'][0]
      order = ['g_inter/timestep_embedding'] + meta['g_inter_order']
      report = []
      for key in order:
        e = _err(nchw(ours[key]), a[key])
        report.append(f'{key}: {e:.3g}')
        assert e < ATOL, (f'{name}: first mismatch at {key} (max abs {e:.3g}); '
                          f'so far: {report}')
    e = _err(nchw(out), a['out/x0_pred'])
    assert e < ATOL, f'{name}: out/x0_pred max abs error {e:.3g}'


def test_small_discriminator(cases):
  for name, _, a in cases:
    disc, params = _discriminator(a, 'D/', 'small')
    logits, state = disc.apply({'params': params}, nhwc(a['in/d_x']), jnp.asarray(a['in/t']),
                               nhwc(a['in/d_x_cond']), capture_intermediates=True)
    inter = state['intermediates']
    for key in sorted(k for k in a if k.startswith('d_inter/')):
      e = _err(nchw(inter[key.split('/', 1)[1]]['__call__'][0]), a[key])
      assert e < ATOL, f'{name}: {key} max abs error {e:.3g}'
    e = _err(logits, a['out/d_logits'])
    assert e < ATOL, f'{name}: out/d_logits max abs error {e:.3g}'
    # Batch 8: minibatch stddev over groups of 4 with the official b % (B/4) grouping.
    logits8 = disc.apply({'params': params}, nhwc(a['in/d8_x']), jnp.asarray(a['in/d8_t']),
                         nhwc(a['in/d8_x_cond']))
    e = _err(logits8, a['out/d8_logits'])
    assert e < ATOL, f'{name}: out/d8_logits max abs error {e:.3g}'


def test_r1_gradient_and_penalty(cases):
  for name, meta, a in cases:
    disc, params = _discriminator(a, 'D/', 'small')
    t, x_cond = jnp.asarray(a['in/t']), nhwc(a['in/d_x_cond'])

    def total(x):
      return jnp.sum(disc.apply({'params': params}, x, t, x_cond))

    grad = jax.grad(total)(nhwc(a['in/d_x']))
    e = _err(nchw(grad), a['out/d_r1_grad_x'])
    assert e < ATOL, f'{name}: out/d_r1_grad_x max abs error {e:.3g}'
    gamma = meta['training_iteration']['r1_gamma']
    penalty = gamma / 2 * jnp.mean(jnp.sum(jnp.square(grad.reshape(grad.shape[0], -1)), 1))
    e = _err(penalty, a['out/d_r1_penalty'])
    assert e < ATOL, f'{name}: out/d_r1_penalty max abs error {e:.3g}'


def test_large_discriminator(cases):
  for name, _, a in cases:
    disc, params = _discriminator(a, 'DL/', 'large')
    assert isinstance(disc, disc_lib.DiscriminatorLarge)
    logits = disc.apply({'params': params}, nhwc(a['in/dl_x']), jnp.asarray(a['in/t']),
                        nhwc(a['in/dl_x_cond']))
    e = _err(logits, a['out/dl_logits'])
    assert e < ATOL, f'{name}: out/dl_logits max abs error {e:.3g}'


def test_unit_ops(cases):
  for name, _, a in cases:
    if 'unit/x' not in a:
      continue
    x = nhwc(a['unit/x'])
    w = jnp.asarray(a['unit/w'].transpose(2, 3, 1, 0))
    t = jnp.asarray(a['unit/timestep_embedding_t'])
    ours = {
        'unit/setup_kernel_1331': layers.setup_kernel((1, 3, 3, 1)),
        'unit/upsample_2d': nchw(layers.upsample_2d(x, (1, 3, 3, 1))),
        'unit/downsample_2d': nchw(layers.downsample_2d(x, (1, 3, 3, 1))),
        'unit/conv_downsample_2d': nchw(layers.conv_downsample_2d(x, w, (1, 3, 3, 1))),
        'unit/naive_upsample_2d': nchw(layers.naive_upsample_2d(x)),
        'unit/naive_downsample_2d': nchw(layers.naive_downsample_2d(x)),
        'unit/timestep_embedding_16': layers.timestep_embedding(t, 16),
        'unit/timestep_embedding_256': layers.timestep_embedding(t, 256),
    }
    adagn = layers.AdaptiveGroupNorm(num_groups=4)
    style_params = {'style': {'kernel': jnp.asarray(a['unit/adagn_style_weight'].T),
                              'bias': jnp.asarray(a['unit/adagn_style_bias'])}}
    ours['unit/adagn_out'] = nchw(adagn.apply({'params': style_params}, nhwc(a['unit/adagn_x']),
                                              jnp.asarray(a['unit/adagn_style'])))
    for key, value in ours.items():
      e = _err(value, a[key])
      assert e < ATOL, f'{name}: {key} max abs error {e:.3g}'


def test_convert_cli_writes_inference_checkpoint(cases, tmp_path):
  """The CLI on the tiny official generator (configs/tiny.py is the same architecture)."""
  from ddgan_jax.checkpoints import checkpointing  # pylint: disable=import-outside-toplevel
  name, meta, a = cases[0]
  ckpt = tmp_path / 'netG_tiny.npz'
  np.savez(ckpt, **{'module.' + k[2:]: v for k, v in a.items() if k.startswith('G/')})
  root = pathlib.Path(__file__).resolve().parents[2]
  out_dir = tmp_path / 'converted'
  convert.main(['convert', f'--config={root / "configs" / "tiny.py"}',
                f'--checkpoint={ckpt}', f'--output_dir={out_dir}'])
  gen, params = _generator(meta, a)
  abstract = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype), params)
  restored = checkpointing.restore_ema_generator(str(out_dir), abstract)
  out = gen.apply({'params': restored}, nhwc(a['in/x_t']), jnp.asarray(a['in/t']),
                  jnp.asarray(a['in/z']))
  e = _err(nchw(out), a['out/x0_pred'])
  assert e < ATOL, f'{name}: CLI-converted generator max abs error {e:.3g}'


def test_sampler_with_converted_generator_matches_official(cases):
  """train_ddgan.sample_from_model with the tiny official G, fed the recorded draws."""
  from ddgan_jax.core import diffusion  # pylint: disable=import-outside-toplevel
  for name, meta, a in cases:
    if 'out/sample' not in a:
      continue
    gen, params = _generator(meta, a)
    schedule = diffusion.make_schedule(int(meta['generator']['args']['num_timesteps']))
    noise = jnp.asarray(a['in/sample_noise'].transpose(0, 1, 3, 4, 2))  # [T, B, H, W, C]
    out = jax.jit(diffusion.sample_loop, static_argnums=1)(
        schedule, lambda x, t, z: gen.apply({'params': params}, x, t, z),
        nhwc(a['in/sample_x_init']), jnp.asarray(a['in/sample_z']), noise)
    e = _err(nchw(out), a['out/sample'])
    assert e < ATOL, f'{name}: 4-step sample max abs error {e:.3g}'
