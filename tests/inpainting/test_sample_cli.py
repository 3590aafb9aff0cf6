"""sample.py end to end: default sampling, the `inpaint` subcommand, and its bad-input errors."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import tiny, tiny_inpaint
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import networks
from ddgan_jax.platform import sharding
from ddgan_jax.train import train_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 16


def run_cli(*args, cache_dir=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('XLA_FLAGS', None)  # One CPU device, as a user's run.
  if cache_dir:
    env['JAX_COMPILATION_CACHE_DIR'] = str(cache_dir)
  return subprocess.run([sys.executable, os.path.join(REPO, 'sample.py'), *map(str, args)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A tiny mask-conditional model trained for 2 steps (a real training workdir)."""
  config = tiny_inpaint.get_config()
  config.train.num_steps = 2
  config.train.ckpt_every = 2
  config.train.num_sample_images = 0
  config.data.num_train_examples = 16
  path = tmp_path_factory.mktemp('cli') / 'workdir'
  # One device: compiles faster than the 8-device program and is all 2 steps need.
  train_lib.train_and_evaluate(config, str(path), mesh=sharding.make_mesh(jax.devices()[:1]))
  return path


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """Three 16 px RGB images and a mask folder (one mask non-binary)."""
  root = tmp_path_factory.mktemp('inputs')
  (root / 'images').mkdir()
  (root / 'masks').mkdir()
  rng = np.random.default_rng(0)
  images, masks = {}, {}
  for i, name in enumerate(['a', 'b', 'c']):
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[2 + i:9 + i, 3:12] = 255
    if name == 'b':
      mask[12:, :] = 100  # Grey below 0.5: known after thresholding.
      mask[:2, :] = 200   # Grey above 0.5: missing.
    Image.fromarray(image).save(root / 'images' / f'{name}.png')
    Image.fromarray(mask).save(root / 'masks' / f'{name}.png')
    images[name], masks[name] = image, mask >= 128
  return root, images, masks


# Runs sample.py with inpaint.inpaint wrapped by a counter (the test's, not the library's):
# how many network calls a run made.
COUNTING_RUNNER = """
import atexit, runpy, sys
from ddgan_jax.inpainting import inpaint
calls, _inpaint = [], inpaint.inpaint
def counted(*args, **kwargs):
  calls.append(1)
  return _inpaint(*args, **kwargs)
inpaint.inpaint = counted
atexit.register(lambda: print(f'inpaint calls: {len(calls)}', flush=True))
sys.argv = ['sample.py'] + sys.argv[1:]
runpy.run_path('sample.py', run_name='__main__')
"""


def run_counted(*args, cache_dir):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', JAX_COMPILATION_CACHE_DIR=str(cache_dir))
  env.pop('XLA_FLAGS', None)
  res = subprocess.run([sys.executable, '-c', COUNTING_RUNNER, *map(str, args)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)
  calls = [int(l.split(': ')[1]) for l in res.stdout.splitlines() if l.startswith('inpaint calls')]
  return res, calls[0]


@pytest.mark.slow
def test_folder_of_20_with_2_corrupt_files_resumes_without_network_calls(workdir, tmp_path):
  """20 images of several sizes (2 corrupt) and a mask folder: 18 results at their own sizes,
  one error line per corrupt file, exit 2; run again: the 18 are skipped with no network call."""
  images_dir, masks_dir, out = tmp_path / 'images', tmp_path / 'masks', tmp_path / 'out'
  images_dir.mkdir()
  masks_dir.mkdir()
  rng = np.random.default_rng(0)
  sizes = [(SIZE, SIZE), (24, 40), (13, 21), (50, 37)]
  images, holes = {}, {}
  for i in range(20):
    name = f'img{i:02d}'
    h, w = sizes[i % len(sizes)]
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4:h // 2, w // 4:w // 2 + 2] = 255
    if i == 1:
      mask[-2:, :] = 200  # grey above 50%: missing (a warning says it was thresholded)
    if i in (5, 12):
      (images_dir / f'{name}.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'cut short' * 3)
    else:
      Image.fromarray(image).save(images_dir / f'{name}.png')
      images[name], holes[name] = image, mask >= 128
    Image.fromarray(mask).save(masks_dir / f'{name}.png')
  args = ('inpaint', f'--workdir={workdir}', f'--image={images_dir}', f'--mask={masks_dir}',
          f'--output_dir={out}', '--seed=1', '--batch_size=4')
  res, calls = run_counted(*args, cache_dir=tmp_path / 'cache')
  assert res.returncode == 2, res.stderr
  errors = [l for l in res.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 2 and 'img05.png' in errors[0] and 'img12.png' in errors[1], res.stderr
  assert all('not an image or corrupt' in e for e in errors)
  assert 'Traceback' not in res.stderr
  warnings = [l for l in res.stderr.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 1 and 'img01.png is not binary' in warnings[0]
  assert 'done 18, skipped 0' in res.stdout and 'failed 2' in res.stdout
  assert 'mode=conditional (4 network evaluations each)' in res.stdout
  assert calls >= 18 / 4
  assert sorted(os.listdir(out)) == sorted(f'{n}.png' for n in images)  # no temporary files
  written = {}
  for name, image in images.items():
    result = np.asarray(Image.open(out / f'{name}.png'))
    assert result.shape == image.shape and result.dtype == np.uint8
    hole = holes[name]
    np.testing.assert_array_equal(result[~hole], image[~hole])  # byte-exact known pixels
    assert np.any(result[hole] != image[hole])
    written[name] = (out / f'{name}.png').read_bytes()

  res, calls = run_counted(*args, cache_dir=tmp_path / 'cache')
  assert res.returncode == 2 and calls == 0, (res.stdout, res.stderr)
  assert 'done 0, skipped 18' in res.stdout and 'failed 2' in res.stdout
  assert len([l for l in res.stderr.splitlines() if l.startswith('error:')]) == 2
  assert {n: (out / f'{n}.png').read_bytes() for n in images} == written


@pytest.mark.slow
def test_inpaint_repaint_with_generated_masks(workdir, inputs, tmp_path):
  root, images, _ = inputs
  out = tmp_path / 'out'
  out.mkdir()
  (out / 'keep.txt').write_text('unrelated')
  res = run_cli('inpaint', f'--checkpoint={workdir / "checkpoints"}',
                f'--image={root / "images" / "c.png"}', '--mask_type=sr2', '--mode=repaint',
                '--resample=2', f'--output_dir={out}')
  assert res.returncode == 0, res.stderr
  assert 'mode=repaint (8 network evaluations each)' in res.stdout
  assert sorted(os.listdir(out)) == ['c.png', 'keep.txt']
  result = np.asarray(Image.open(out / 'c.png'))
  np.testing.assert_array_equal(result[::2, ::2], images['c'][::2, ::2])  # sr2: even rows+cols.
  assert np.any(result[1::2] != images['c'][1::2])


@pytest.mark.slow
def test_default_command_still_samples(workdir, tmp_path):
  res = run_cli(f'--workdir={workdir}', f'--output={tmp_path / "s.png"}', '--num_images=4')
  assert res.returncode == 0, res.stderr
  grid = np.asarray(Image.open(tmp_path / 's.png'))
  assert grid.shape == (2 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2, 3)


# ------------------------------------------------------------------ bad input

@pytest.fixture(scope='module')
def bad_inputs(inputs, tmp_path_factory):
  """Files for the error cases."""
  root = tmp_path_factory.mktemp('bad')
  (root / 'partial_masks').mkdir()
  Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(root / 'partial_masks' / 'a.png')
  zeros = lambda n: jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), n.abstract_generator_params())
  uncond = tiny.get_config()
  checkpointing.save_inference_checkpoint(str(root / 'uncond'), ema_params=zeros(
      networks.build_networks(uncond)), config=uncond)
  return root


def _bad_cases():
  """(id, args builder(workdir, images dir, masks dir, bad dir), expected message part).

  Run as real processes (exit status, no traceback, no temporary folder left). Corrupt, wrongly
  sized or grayscale images, a mask of the wrong size and a checkpoint whose config does not
  match its weights are in the bad-input catalogue (tests/test_bad_inputs.py)."""
  return [
      ('missing_image', lambda w, i, m, b: [f'--workdir={w}', f'--image={b / "nope.png"}',
                                            f'--mask={m / "a.png"}'], 'does not exist'),
      ('rgb_without_a_mask', lambda w, i, m, b: [f'--workdir={w}', f'--image={i / "a.png"}'],
       'no alpha channel to read the hole from'),
      ('missing_mask_in_folder', lambda w, i, m, b: [
          f'--workdir={w}', f'--image={i}', f'--mask={b / "partial_masks"}'], 'has no mask for b.png'),
      ('mask_and_mask_type', lambda w, i, m, b: [
          f'--workdir={w}', f'--image={i}', f'--mask={m}', '--mask_type=wide'], 'exactly one of'),
      ('not_a_checkpoint', lambda w, i, m, b: [f'--workdir={b}', f'--image={i}',
                                               '--mask_type=wide'], 'No finished checkpoint'),
      ('conditional_needs_conditional_model', lambda w, i, m, b: [
          f'--checkpoint={b / "uncond"}', f'--image={i}', '--mask_type=wide',
          '--mode=conditional'], 'mask-conditional'),
  ]


@pytest.mark.slow
@pytest.mark.parametrize('case', _bad_cases(), ids=lambda c: c[0])
def test_bad_input_gives_one_error_line_and_writes_nothing(workdir, inputs, bad_inputs, case,
                                                           tmp_path):
  _, build, expected = case
  root = inputs[0]
  out = tmp_path / 'out'
  res = run_cli('inpaint', *build(workdir, root / 'images', root / 'masks', bad_inputs),
                f'--output_dir={out}')
  assert res.returncode != 0
  errors = [l for l in res.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1, res.stderr
  assert expected in errors[0], errors[0]
  assert 'Traceback' not in res.stderr
  assert not out.exists()
  assert os.listdir(tmp_path) == []  # No temporary folder left behind either.
