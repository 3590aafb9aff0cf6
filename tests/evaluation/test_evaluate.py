"""Inpainting evaluation: metrics against references, baselines, methods, families, the runner
and its report end to end."""
import json
import os

import jax
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from configs import tiny_inpaint
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import eval_masks
from ddgan_jax.evaluation import baselines, evaluation, methods, metrics
from ddgan_jax.evaluation import families as families_lib
from ddgan_jax.evaluation import report as report_lib
from ddgan_jax.models import networks


def _images(seed, shape=(3, 24, 20, 3)):
  rng = np.random.default_rng(seed)
  smooth = np.cumsum(rng.normal(size=shape), axis=1)
  smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
  return smooth.astype(np.float32)


# ------------------------------------------------------------------ metrics

def test_psnr_matches_skimage():
  a, b = _images(0), _images(1)
  ours = metrics.psnr(a, b)
  ref = [peak_signal_noise_ratio(x.astype(np.float64), y.astype(np.float64), data_range=1.0)
         for x, y in zip(a, b)]
  np.testing.assert_allclose(ours, ref, rtol=1e-6)
  assert np.isinf(metrics.psnr(a, a)).all()


@pytest.mark.parametrize('channels', [1, 3])
def test_ssim_matches_skimage(channels):
  a = _images(2, (3, 24, 20, channels))
  b = np.clip(a + 0.1 * np.random.default_rng(3).normal(size=a.shape), 0, 1).astype(np.float32)
  ours = np.asarray(metrics.ssim(a, b))
  ref = [structural_similarity(x.astype(np.float64), y.astype(np.float64), channel_axis=-1,
                               data_range=1.0, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False) for x, y in zip(a, b)]
  np.testing.assert_allclose(ours, ref, atol=2e-5)
  assert 0.0 < ours.min() and ours.max() < 0.99  # Not trivially 1.
  np.testing.assert_allclose(np.asarray(metrics.ssim(a, a)), 1.0, atol=1e-5)


def test_lpips_is_zero_for_identical_and_positive_for_different_images():
  lpips = metrics.LPIPS()
  a = _images(4, (2, 16, 16, 3)) * 2 - 1  # Upsampled to 64 px inside.
  b = _images(5, (2, 16, 16, 3)) * 2 - 1
  same, diff = lpips(a, a), lpips(a, b)
  assert same.shape == diff.shape == (2,)
  np.testing.assert_allclose(same, 0.0, atol=1e-6)
  assert np.all(diff > 0.01)
  noisy = np.clip(a + 0.05 * np.random.default_rng(6).normal(size=a.shape), -1, 1)
  assert np.all(lpips(a, noisy) < diff)  # A small change is closer than another image.
  gray = lpips(a[..., :1], b[..., :1])  # 1 channel is tiled to RGB.
  assert gray.shape == (2,) and np.all(gray > 0)


@pytest.mark.parametrize('method', baselines.CLASSICAL)
def test_classical_baselines_fill_holes_and_keep_known_pixels(method):
  rng = np.random.default_rng(7)
  # A smooth horizontal ramp: every classical method should get the holes roughly right.
  ramp = np.linspace(0, 255, 16)[None, None, :, None] * np.ones((2, 16, 1, 3))
  images = np.clip(ramp + rng.normal(0, 1, ramp.shape), 0, 255).astype(np.uint8)
  holes = np.asarray(eval_masks.eval_masks('narrow', jax.random.PRNGKey(0), 2, 16)) > 0
  out = baselines.classical_inpaint(method, images, holes)
  assert out.dtype == np.uint8 and out.shape == images.shape
  known = np.broadcast_to(~holes, images.shape)
  np.testing.assert_array_equal(out[known], images[known])
  err = np.abs(out.astype(float) - images)[~known].mean()
  gray_err = np.abs(127.0 - images)[~known].mean()
  assert err < 0.25 * gray_err, (err, gray_err)


def test_parse_method():
  assert methods.parse_method('repaint_r5') == methods.Method('repaint_r5', 'model', 'repaint', 5)
  assert methods.parse_method('conditional').mode == 'conditional'
  for bad in ('repaint_r0', 'repaint', 'lama'):
    with pytest.raises(ValueError, match='unknown method'):
      methods.parse_method(bad)


def test_masks_do_not_depend_on_the_number_of_images():
  a = families_lib.seeded_masks('wide', 0, 5, 16, chunk=4)
  b = families_lib.seeded_masks('wide', 0, 12, 16, chunk=8)
  np.testing.assert_array_equal(a, b[:5])
  assert not np.array_equal(a, families_lib.seeded_masks('wide', 1, 5, 16))


# ------------------------------------------------------------------ end to end

@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
  """An inference checkpoint of a randomly initialised tiny mask-conditional model."""
  config = tiny_inpaint.get_config()
  nets = networks.build_networks(config)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
  path = str(tmp_path_factory.mktemp('eval') / 'ckpt')
  checkpointing.save_inference_checkpoint(path, ema_params=params, config=config)
  return path


@pytest.mark.slow
def test_evaluate_end_to_end(tiny_checkpoint, tmp_path):
  out = tmp_path / 'eval'
  families = ('wide', 'sr2')
  report = evaluation.evaluate(tiny_checkpoint, str(out), split='validation', num_images=10,
                               batch_size=8, families=families, progress=False,
                               realism_images=12, realism_cache_dir=str(tmp_path / 'cache'))
  expected_methods = list(methods.DEFAULT_METHODS)
  assert len(expected_methods) == 6
  model_methods = ['conditional', 'repaint_r1', 'repaint_r5']
  all_rows = report['results']
  assert [(r['family'], r['method']) for r in all_rows] == [
      (f, m) for f in families for m in expected_methods] + [
          ('unconditional', m) for m in model_methods]
  rows = [r for r in all_rows if r['family'] != 'unconditional']
  t = 4  # tiny config: num_timesteps
  nfe = {r['method']: r['nfe'] for r in rows}
  assert nfe == dict(conditional=t, repaint_r1=t, repaint_r5=5 * t, telea=0, navier_stokes=0,
                     biharmonic=0)
  for r in rows:
    assert r['num_images'] == 10
    assert 0 < r['lpips'] < 1 and 0 < r['ssim'] < 1 and 0 < r['psnr'] < 60, r
    assert r['ms_per_image'] > 0
  sr2 = {r['method']: r for r in rows if r['family'] == 'sr2'}
  assert sr2['telea']['hole_ratio'] == pytest.approx(0.75)
  # On sr2 (3 of 4 pixels missing, every hole next to a known pixel) classical interpolation
  # beats an untrained generator.
  assert sr2['biharmonic']['psnr'] > sr2['conditional']['psnr']

  # Realism, against the first 12 images of the split: every row, the unconditional ones too.
  uncond = {r['method']: r for r in all_rows if r['family'] == 'unconditional'}
  for r in all_rows:
    assert r['fid'] > 0 and r['kid'] is not None and r['kid_std'] is None, r  # 10 vs 12: whole sets.
    assert 0 <= r['precision'] <= 1 and 0 <= r['recall'] <= 1, r
    assert r['density'] >= 0 and 0 <= r['coverage'] <= 1, r
  for r in uncond.values():  # No ground truth: no paired metrics.
    assert r['lpips'] is None and r['psnr'] is None and r['ssim'] is None, r
    assert r['diversity'] is None and r['hole_ratio'] == 1.0, r
  # An untrained generator's samples are far from real images and nearly all alike (tiny k-NN
  # balls: no recall); sr2's classical fills (1 pixel in 4 kept, the rest interpolated) are
  # close to the real images.
  assert uncond['conditional']['fid'] > 2 * sr2['biharmonic']['fid']
  assert uncond['conditional']['kid'] > max(0.0, sr2['biharmonic']['kid'])
  assert uncond['conditional']['recall'] < sr2['biharmonic']['recall']
  realism_settings = report['settings']['realism']
  assert realism_settings['reference_images'] == 12 and report['settings']['unconditional']
  assert realism_settings['cache_file'].startswith(str(tmp_path / 'cache'))
  assert os.path.isfile(realism_settings['cache_file'])

  saved = json.loads((out / 'results.json').read_text())
  assert saved['results'] == json.loads(json.dumps(all_rows))
  assert saved['settings']['num_images'] == 10 and saved['settings']['split'] == 'validation'
  table = (out / 'results.md').read_text()
  lines = table.splitlines()
  # The full table has 15 columns; the summary above it one per model method + family + best.
  table_rows = [l for l in lines if l.startswith(('| wide', '| sr2')) and l.count('|') == 16]
  assert len(table_rows) == 12
  uncond_rows = [l for l in lines if l.startswith('| unconditional') and l.count('|') == 16]
  assert len(uncond_rows) == 3 and all('| 100.0 | DDGAN' in l and '| - | - | - | - |' in l
                                       for l in uncond_rows)
  assert 'KID×10³ ↓ | FID ↓ | precision ↑ | recall ↑ | density | coverage ↑' in table
  summary_rows = [l for l in lines if l.startswith(('| wide', '| sr2')) and l.count('|') == 6]
  assert len(summary_rows) == 2 and report_lib.format_summary(saved) in table
  for r in rows:  # Diversity: model methods only; the sampler's noise makes fills differ.
    if r['nfe']:
      assert 0 < r['diversity'] < 1, r
    else:
      assert r['diversity'] is None, r
  assert saved['settings']['machine']['matmul_gflops'] > 0
  for label in ('DDGAN conditional', 'DDGAN RePaint r=1', 'DDGAN RePaint r=5', 'OpenCV Telea',
                'OpenCV Navier-Stokes', 'skimage biharmonic'):
    assert sum(label + ' |' in l for l in table_rows) == 2, label
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for f in families:
    grid = np.asarray(Image.open(out / f'grid_{f}.png'))
    # 8 rows of 16 px (+2 padding), 2 + 6 columns.
    assert grid.shape == (8 * 18 + 2, 8 * 18 + 2, 3)
  grid = np.asarray(Image.open(out / 'grid_unconditional.png'))  # One column per model method.
  assert grid.shape == (8 * 18 + 2, 3 * 18 + 2, 3)


def test_evaluate_rejects_conditional_for_unconditional_models(tmp_path, tiny_config):
  config = tiny_config
  nets = networks.build_networks(config)
  params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), nets.abstract_generator_params())
  path = checkpointing.save_inference_checkpoint(str(tmp_path / 'u'), ema_params=params,
                                                 config=config)
  with pytest.raises(ValueError, match='mask-conditional'):
    evaluation.evaluate(path, str(tmp_path / 'out'), methods=['conditional'], num_images=2,
                        progress=False)
  assert methods.default_methods(False) == tuple(m for m in methods.DEFAULT_METHODS
                                                 if m != 'conditional')
