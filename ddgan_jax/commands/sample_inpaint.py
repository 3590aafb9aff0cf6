"""The `inpaint` subcommand of sample.py: its flags and its checks of them.

Inpainting inputs (ddgan_jax/inpainting/batch_inpaint.py, hires.py, mask_io.py):
  --image    one image file or a folder of them (png, jpg, jpeg, bmp, webp, tif, tiff), of any
             size: each result has its image's size, every known pixel the input's byte.
             --strategy: crop (default unless the image has the model's size: a window with
             --margin of context around each hole region, at the model's resolution), resize
             (the whole image) or exact (the model's size only). --feather=N softens the seam
             over N pixels inside the hole. RGB models take RGB or palette images; grayscale
             models take grayscale, and RGB converted to luma (PIL 'L').
  --mask     one mask file (used for every image) or a folder with one mask per image, matched
             by file stem (photo.jpg <- photo.png), the image's size. --mask_polarity:
             missing_white (default) or missing_black (RePaint's, 255 = keep); non-binary masks
             are thresholded at 50%, with a warning. --dilate=N grows every hole by N pixels.
  --mask_type  instead of --mask: an evaluation family (wide, narrow, line, half, expand, sr2)
             a training generator (thick, medium, thin, box, brush, noise) or a held-out shape
             (columns, grid, checker, ellipses, ring, corner), drawn from --seed at the model's
             size and scaled to the image's.
  neither    the images' alpha channels are the holes (transparent = missing).
Mode: conditional (default for mask-conditional models, NFE = T) or repaint (default
otherwise, NFE = T * resample).

Outputs in --output_dir: <stem>.png per image, each written atomically as soon as it is done.
A result already there is skipped without being read or computed, so a stopped run resumes.
A bad file is one `error: ...` line and the run goes on; the run ends with a summary (done,
skipped, failed) and exits with status 2 if any file failed. Bad flags, a missing mask for an
image of a mask folder or an unusable checkpoint: one `error:` line, exit 2, nothing written.
"""
from __future__ import annotations

import sys
from typing import Callable

from absl import flags

from ddgan_jax.data import eval_masks
from ddgan_jax.inpainting import batch_inpaint, hires, inpaint, mask_io
from ddgan_jax.platform import cli

_IMAGE = flags.DEFINE_string('image', None, 'inpaint: image file or folder.')
_MASK = flags.DEFINE_string('mask', None, 'inpaint: mask file or folder (default white = missing).')
_MASK_TYPE = flags.DEFINE_enum(
    'mask_type', None,
    list(eval_masks.MASK_FAMILIES),
    'inpaint: generated masks instead of --mask.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'inpaint: folder for the results.')
_MODE = flags.DEFINE_enum('mode', None, list(inpaint.MODES),
                          'inpaint: sampler (default: conditional if the model is mask-conditional).')
_RESAMPLE = flags.DEFINE_integer('resample', 1, 'inpaint: RePaint resampling rounds per step.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'inpaint: windows per network call.')
_STRATEGY = flags.DEFINE_enum('strategy', None, list(hires.STRATEGIES),
                              "inpaint: other sizes than the model's (default: exact at its size, "
                              'else crop).')
_MARGIN = flags.DEFINE_integer('margin', None, 'inpaint: crop context around each hole, pixels '
                               "(default: half the hole's side, >= a quarter of the model's).")
_FEATHER = flags.DEFINE_integer('feather', 0, 'inpaint: soft seam over this many pixels inside '
                                'the hole.')
_POLARITY = flags.DEFINE_enum('mask_polarity', 'missing_white', list(mask_io.POLARITIES),
                              'inpaint: which mask colour marks the hole (RePaint: missing_black).')
_DILATE = flags.DEFINE_integer('dilate', 0, 'inpaint: grow every hole by this many pixels.')


def flag_names() -> list[str]:
  """The names of the flags defined here (only the `inpaint` subcommand takes them)."""
  return [f.name for f in flags.FLAGS.flags_by_module_dict().get(__name__, [])]


def inpaint_main(source: str, step: int | None, seed: int,
                 setup: Callable[[int], None]) -> None:
  """The `inpaint` subcommand (see the module docstring): batch_inpaint.inpaint_files on the
  checkpoint `source`; `setup(batch)` starts JAX for that batch size."""
  if not _IMAGE.value:
    cli.fail('pass --image (an image file or folder).')
  if _MASK.value and _MASK_TYPE.value:
    cli.fail("pass exactly one of --mask or --mask_type, or neither to read the holes from the "
             "images' alpha channels.")
  if not _OUTPUT_DIR.value:
    cli.fail('pass --output_dir.')
  if _RESAMPLE.value < 1 or _BATCH.value < 1:
    cli.fail('--resample and --batch_size must be positive.')
  if _MODE.value == 'conditional' and _RESAMPLE.value != 1:
    cli.fail('--resample applies to --mode=repaint only.')
  if flags.FLAGS['output'].present or flags.FLAGS['num_images'].present:
    cli.fail('--output and --num_images are for sampling; inpaint writes to --output_dir.')
  options = batch_inpaint.Options(
      strategy=_STRATEGY.value, margin=_MARGIN.value, feather=_FEATHER.value,
      polarity=_POLARITY.value, dilate=_DILATE.value, batch_size=_BATCH.value,
      mask_type=_MASK_TYPE.value)
  try:
    summary, line = batch_inpaint.inpaint_files(
        source, _IMAGE.value, _MASK.value, _OUTPUT_DIR.value, step=step,
        mode=_MODE.value, resample=_RESAMPLE.value, seed=seed, options=options,
        setup=setup)
  except cli.InputError as e:
    cli.fail(str(e))
  print(line)
  if summary.failed:
    sys.exit(2)
