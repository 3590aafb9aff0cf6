"""The README's before/after: a picture larger than the model, filled at its own size.

  python docs/before_after.py [--checkpoint=pretrained/fashion_mnist_inpaint --output=docs/images/before_after.png]

The picture is six Fashion-MNIST test images (the shipped model's test split) enlarged 3x into
a 192x288 photo, seven times the model's 32x32 pixels; two holes (a stroke across one garment,
a box over another) are filled with `hires.inpaint_images` by the `crop` and by the `resize`
strategy. Panels, left to right: the photo, the holes (grey), crop, resize. Every known pixel of
both results is the photo's byte (checked here).
"""
import argparse
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--checkpoint', default=str(REPO / 'pretrained' / 'fashion_mnist_inpaint'))
  parser.add_argument('--output', default=str(REPO / 'docs' / 'images' / 'before_after.png'))
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from ddgan_jax import config_checks  # pylint: disable=import-outside-toplevel
  from ddgan_jax.data import visualize  # pylint: disable=import-outside-toplevel
  from ddgan_jax.evaluation import evaluation  # pylint: disable=import-outside-toplevel
  from ddgan_jax.inpainting import hires, inpaint  # pylint: disable=import-outside-toplevel

  fill, nets, config = inpaint.load_inpainter(args.checkpoint)
  data = config_checks.DataConfig.from_section(config.data)
  items = inpaint.float_to_uint8(evaluation.load_images(data, data.eval_split, 6))
  big = [np.asarray(Image.fromarray(x[..., 0]).resize((96, 96), Image.Resampling.BICUBIC))
         for x in items]
  photo = np.block([big[:3], big[3:]])[..., None]  # [192, 288, 1]
  hole = np.zeros(photo.shape[:2], bool)
  for k in range(-3, 4):  # a diagonal stroke, 7 px wide, across the second garment
    idx = np.arange(20, 80)
    hole[idx + k, 96 + idx] = True
  hole[96 + 30:96 + 70, 192 + 25:192 + 70] = True  # a box over the sixth
  key = jax.random.PRNGKey(args.seed)
  results = [hires.inpaint_images(fill, [photo], [hole], key, size=nets.image_size,
                                  strategy=s, batch_size=4)[0] for s in ('crop', 'resize')]
  for r in results:
    assert np.array_equal(r[~hole], photo[~hole])
  masked = np.where(hole[..., None], np.uint8(127), photo)
  gap = np.full((photo.shape[0], 6, 1), 255, np.uint8)
  panels = [photo, gap, masked, gap, results[0], gap, results[1]]
  visualize.save_png(np.concatenate(panels, axis=1), args.output)
  print(f'wrote {args.output}: a {photo.shape[1]}x{photo.shape[0]} photo, model '
        f'{nets.image_size}x{nets.image_size}; photo | holes | crop | resize')


if __name__ == '__main__':
  main()
