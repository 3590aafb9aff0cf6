"""The shipped model (pretrained/fashion_mnist_inpaint): loads through load_inpainter, carries its
trained D, keeps the known pixels, fills the holes, and beats the classical baselines on held-out
test images."""
import pathlib

import jax
import numpy as np
import pytest

from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.evaluation import baselines, evaluation, families, metrics
from ddgan_jax.inpainting import inpaint

PRETRAINED = pathlib.Path(__file__).resolve().parents[2] / 'pretrained' / 'fashion_mnist_inpaint'


@pytest.fixture(scope='module')
def shipped():
  fn, nets, config = inpaint.load_inpainter(str(PRETRAINED))
  data_cfg = config.data.copy_and_resolve_references()
  images = evaluation.load_images(data_cfg, 'test', 64)
  return fn, nets, images


def test_shipped_model_is_the_documented_recipe(shipped):
  _, nets, images = shipped
  assert nets.inpaint and nets.cond_fill == 'smooth'
  assert (nets.image_size, nets.num_channels, nets.num_timesteps) == (32, 1, 2)
  assert images.shape == (64, 32, 32, 1)
  size = sum(f.stat().st_size for f in PRETRAINED.rglob('*') if f.is_file())
  assert size < 20 * 2 ** 20  # inference weights and D only (no optimizer state)


def test_shipped_model_carries_its_trained_discriminator():
  # `make demo` fine-tunes with the GAN recipe and no G warm-up: it needs the trained D.
  d = checkpointing.restore_discriminator(str(PRETRAINED))
  assert d is not None
  leaves = jax.tree_util.tree_leaves(d)
  assert sum(x.size for x in leaves) > 10_000 and all(np.isfinite(x).all() for x in leaves)


@pytest.mark.parametrize('family', ['narrow', 'half', 'ring'])
def test_shipped_model_fills_holes_better_than_the_classical_methods(shipped, family):
  fn, nets, images = shipped
  holes = families.seeded_masks(family, 0, len(images), nets.image_size)
  images_u8 = inpaint.float_to_uint8(images)
  out_u8, nfe = inpaint.inpaint_uint8(fn, images_u8, holes, jax.random.PRNGKey(0))
  assert nfe == 2
  known = np.broadcast_to(holes == 0, out_u8.shape)
  np.testing.assert_array_equal(out_u8[known], images_u8[known])
  assert np.any(out_u8[~known] != 0)
  lpips = metrics.LPIPS()
  model = lpips(inpaint.uint8_to_float(out_u8), images).mean()
  classical = {m: lpips(inpaint.uint8_to_float(baselines.classical_inpaint(m, images_u8, holes)),
                        images).mean() for m in baselines.CLASSICAL}
  print(family, f'model {model:.4f}', {k: round(v, 4) for k, v in classical.items()})
  assert model < min(classical.values()), (family, model, classical)


def test_shipped_files_name_no_path_of_the_machine_that_wrote_them():
  # Orbax writes the absolute checkpoint path into its commit markers; the export is relocatable.
  for f in PRETRAINED.rglob('commit_success.txt'):
    assert ' /' not in f.read_text(), f
