"""Any image size with a fixed-resolution model (ddgan_jax/inpainting/hires.py) and the mask conventions
(ddgan_jax/inpainting/mask_io.py): a 97x131 RGB photo through a 32 px model keeps every known byte."""
import jax
import numpy as np
import pytest
from PIL import Image

from configs import tiny_inpaint
from ddgan_jax.inpainting import hires, inpaint, mask_io
from ddgan_jax.models import networks

SIZE, H, W, BATCH = 32, 97, 131, 4


@pytest.fixture(scope='module')
def fill():
  """A randomly initialised tiny mask-conditional generator at 32 px, and its call counter."""
  config = tiny_inpaint.get_config()
  config.data.image_size = SIZE
  nets = networks.build_networks(config)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
  calls = []

  def run(x, m, key):
    calls.append(x.shape)
    return inpaint.inpaint(nets, params, x, m, key, mode='conditional')

  run.calls = calls
  return run


@pytest.fixture(scope='module')
def photo():
  """A smooth 97x131 RGB picture with texture (not the model's size, not square)."""
  y, x = np.mgrid[0:H, 0:W]
  base = np.stack([x * 255 / W, y * 255 / H, 128 + 60 * np.sin(x / 7.0)], axis=-1)
  noise = np.random.default_rng(0).integers(-20, 21, (H, W, 3))
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def two_holes():
  hole = np.zeros((H, W), bool)
  hole[8:20, 10:24] = True     # top left
  hole[70:88, 100:124] = True  # bottom right, far from the first
  return hole


def check(result, image, hole):
  assert result.shape == image.shape and result.dtype == np.uint8
  np.testing.assert_array_equal(result[~hole], image[~hole])  # every known byte
  assert np.mean(result[hole] != image[hole]) > 0.5           # the hole was filled anew


@pytest.mark.parametrize('strategy', ['crop', 'resize'])
def test_any_size_keeps_every_known_byte(fill, photo, strategy):
  hole = two_holes()
  windows = hires.plan_windows(hole, SIZE, strategy)
  assert len(windows) == (2 if strategy == 'crop' else 1)  # distant holes: a window each
  [result] = hires.inpaint_images(fill, [photo], [hole], jax.random.PRNGKey(1), size=SIZE,
                                  strategy=strategy, batch_size=BATCH)
  check(result, photo, hole)


def test_images_of_many_sizes_share_one_batch_shape(fill, photo):
  """Windows of a 97x131 photo, a 32x32 image (exact) and a 20x50 strip go through one shape."""
  small = photo[:SIZE, :SIZE]
  strip = photo[:20, :50]
  holes = [two_holes(), np.zeros((SIZE, SIZE), bool), np.zeros((20, 50), bool)]
  holes[1][5:15, 5:15] = True
  holes[2][5:12, 30:45] = True
  before = len(fill.calls)
  results = hires.inpaint_images(fill, [photo, small, strip], holes, jax.random.PRNGKey(2),
                                 size=SIZE, batch_size=BATCH)
  assert set(fill.calls[before:]) == {(BATCH, SIZE, SIZE, 3)}
  assert len(fill.calls) - before == 1  # 2 + 1 + 1 windows: one batch of 4
  for result, image, hole in zip(results, [photo, small, strip], holes):
    check(result, image, hole)


def test_exact_needs_the_model_size_and_strategy_defaults(photo):
  assert hires.default_strategy(H, W, SIZE) == 'crop'
  assert hires.default_strategy(SIZE, SIZE, SIZE) == 'exact'
  with pytest.raises(ValueError, match='needs the model\'s 32x32'):
    hires.plan_windows(two_holes(), SIZE, 'exact')
  with pytest.raises(ValueError, match='strategy must be one of'):
    hires.plan_windows(two_holes(), SIZE, 'tile')
  # Small hole, large photo: the crop window is the model's size, so no resampling at all.
  hole = np.zeros((H, W), bool)
  hole[40:44, 60:66] = True
  [win] = hires.plan_windows(hole, SIZE, 'crop')
  assert win.side == SIZE and 0 <= win.top <= 40 and win.top + SIZE >= 44


def test_feathered_seam_keeps_known_bytes(fill, photo):
  hole = two_holes()
  key = jax.random.PRNGKey(3)
  hard, soft = (hires.inpaint_images(fill, [photo], [hole], key, size=SIZE, feather=f,
                                     batch_size=BATCH)[0] for f in (0, 3))
  check(soft, photo, hole)
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  inner = ndimage.distance_transform_edt(hole) > 3
  ring = hole & ~inner
  assert np.any(soft[ring] != hard[ring])


def test_alpha_channel_is_the_mask(fill, photo, tmp_path):
  hole = two_holes()
  rgba = np.concatenate([photo, np.where(hole, 0, 255).astype(np.uint8)[..., None]], -1)
  rgba[hole, :3] = 0  # painting tools often zero what they make transparent
  Image.fromarray(rgba).save(tmp_path / 'cut.png')
  image, alpha_hole = mask_io.read_image(str(tmp_path / 'cut.png'), 3)
  np.testing.assert_array_equal(alpha_hole, hole)
  np.testing.assert_array_equal(image[~hole], photo[~hole])
  [result] = hires.inpaint_images(fill, [image], [alpha_hole], jax.random.PRNGKey(4), size=SIZE,
                                  batch_size=BATCH)
  check(result, image, hole)
  Image.fromarray(photo).save(tmp_path / 'opaque.png')
  assert mask_io.read_image(str(tmp_path / 'opaque.png'), 3)[1] is None


def test_both_polarities_threshold_at_half(tmp_path):
  hole = two_holes()
  values = np.where(hole, 255, 0).astype(np.uint8)
  values[0, :] = 140  # grey above 50%: missing when white = missing
  values[1, :] = 110  # grey below 50%
  Image.fromarray(values).save(tmp_path / 'white.png')
  Image.fromarray(255 - values).save(tmp_path / 'black.png')  # RePaint's: 255 = keep
  white, non_binary = mask_io.read_mask(str(tmp_path / 'white.png'), 'missing_white')
  black, _ = mask_io.read_mask(str(tmp_path / 'black.png'), 'missing_black')
  assert non_binary
  np.testing.assert_array_equal(white, black)
  assert white[0].all() and not white[1].any()
  np.testing.assert_array_equal(white[2:], hole[2:])
  with pytest.raises(ValueError, match='polarity must be one of'):
    mask_io.to_hole(values / 255.0, 'missing_red')


def test_dilated_mask_is_a_superset_within_n_pixels():
  hole = two_holes()
  grown = mask_io.dilate(hole, 3)
  assert np.all(grown[hole]) and grown.sum() > hole.sum()
  assert grown[8 - 3, 15] and not grown[8 - 4, 15]       # 3 px up, not 4
  assert not grown[5, 7]                                   # a disk: the corner stays out
  np.testing.assert_array_equal(mask_io.dilate(hole, 0), hole)


def test_channel_conversions_of_read_image(tmp_path):
  """Gray models take gray or RGB (-> luma); RGB models take RGB or palette; alpha is split."""
  rgb = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'rgb.png')
  Image.fromarray(rgb).convert('L').save(tmp_path / 'gray.png')
  Image.fromarray(rgb).convert('P').save(tmp_path / 'pal.png')
  Image.fromarray(rgb).convert('RGBA').save(tmp_path / 'rgba.png')
  gray, alpha = mask_io.read_image(str(tmp_path / 'gray.png'), 1)
  assert gray.shape == (16, 16, 1) and alpha is None
  np.testing.assert_array_equal(mask_io.read_image(str(tmp_path / 'rgb.png'), 1)[0], gray)
  np.testing.assert_array_equal(mask_io.read_image(str(tmp_path / 'rgb.png'), 3)[0], rgb)
  assert mask_io.read_image(str(tmp_path / 'pal.png'), 3)[0].shape == (16, 16, 3)
  image, alpha = mask_io.read_image(str(tmp_path / 'rgba.png'), 3)
  np.testing.assert_array_equal(image, rgb)
  assert alpha.shape == (16, 16) and not alpha.any()  # opaque: nothing missing
  with pytest.raises(ValueError, match='grayscale'):
    mask_io.read_image(str(tmp_path / 'gray.png'), 3)
  (tmp_path / 'bad.png').write_bytes(b'not a png')
  with pytest.raises(ValueError, match='not an image or corrupt'):
    mask_io.read_image(str(tmp_path / 'bad.png'), 3)
