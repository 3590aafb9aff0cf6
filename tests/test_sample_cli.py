"""sample.py end to end: default sampling, the `inpaint` subcommand, and its bad-input errors."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import tiny, tiny_inpaint
from ddgan_jax import checkpointing, networks, sharding, train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def test_inpaint_folder_with_mask_folder(workdir, inputs, tmp_path):
  root, images, masks = inputs
  out = tmp_path / 'out'
  res = run_cli('inpaint', f'--workdir={workdir}', f'--image={root / "images"}',
                f'--mask={root / "masks"}', f'--output_dir={out}', '--seed=1',
                cache_dir=tmp_path / 'cache')
  assert res.returncode == 0, res.stderr
  assert 'mode=conditional (4 network evaluations each)' in res.stdout
  warnings = [l for l in res.stderr.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 1 and 'b.png is not binary' in warnings[0]
  assert sorted(os.listdir(out)) == ['a.png', 'b.png', 'c.png', 'comparison.png']
  for name, image in images.items():
    result = np.asarray(Image.open(out / f'{name}.png'))
    assert result.shape == (SIZE, SIZE, 3) and result.dtype == np.uint8
    known = ~masks[name]
    np.testing.assert_array_equal(result[known], image[known])  # Byte-exact known pixels.
    assert np.any(result[~known] != image[~known])
  grid = np.asarray(Image.open(out / 'comparison.png'))
  assert grid.shape == (3 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2, 3)
  np.testing.assert_array_equal(grid[2:2 + SIZE, 2:2 + SIZE], images['a'])  # Row a, input.
  np.testing.assert_array_equal(grid[2:2 + SIZE, -SIZE - 2:-2],
                                np.asarray(Image.open(out / 'a.png')))  # Row a, result.
  assert not [d for d in os.listdir(tmp_path) if d.startswith('.inpaint-')]


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
  assert sorted(os.listdir(out)) == ['c.png', 'comparison.png', 'keep.txt']
  result = np.asarray(Image.open(out / 'c.png'))
  np.testing.assert_array_equal(result[::2, ::2], images['c'][::2, ::2])  # sr2: even rows+cols.
  assert np.any(result[1::2] != images['c'][1::2])


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
  rng = np.random.default_rng(1)
  Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)).save(root / 'rgba.png')
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
      ('alpha', lambda w, i, m, b: [f'--workdir={w}', f'--image={b / "rgba.png"}',
                                    f'--mask={m / "a.png"}'], 'alpha channel (4 channels)'),
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


def test_channel_conversions_of_read_image(tmp_path):
  """Gray models take gray or RGB (-> luma); RGB models take RGB or palette; alpha is refused."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('sample_cli', os.path.join(REPO, 'sample.py'))
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  rgb = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'rgb.png')
  Image.fromarray(rgb).convert('L').save(tmp_path / 'gray.png')
  Image.fromarray(rgb).convert('P').save(tmp_path / 'pal.png')
  Image.fromarray(rgb).convert('RGBA').save(tmp_path / 'rgba.png')
  gray = cli.read_image(str(tmp_path / 'gray.png'), 1)
  assert gray.shape == (SIZE, SIZE, 1)
  np.testing.assert_array_equal(cli.read_image(str(tmp_path / 'rgb.png'), 1), gray)
  np.testing.assert_array_equal(cli.read_image(str(tmp_path / 'rgb.png'), 3), rgb)
  assert cli.read_image(str(tmp_path / 'pal.png'), 3).shape == (SIZE, SIZE, 3)
  for path, channels in (('rgba.png', 3), ('rgba.png', 1), ('gray.png', 3)):
    with pytest.raises(cli.InputError):
      cli.read_image(str(tmp_path / path), channels)
  mask = np.zeros((SIZE, SIZE), np.uint8)
  mask[:4] = 255
  mask[4:6] = 130  # >= 0.5 after /255: missing.
  mask[6:8] = 120  # < 0.5: known.
  Image.fromarray(mask).save(tmp_path / 'mask.png')
  holes, non_binary = cli.read_mask(str(tmp_path / 'mask.png'))
  assert non_binary and holes.shape == (SIZE, SIZE, 1)
  assert holes[:6].all() and not holes[6:].any()
