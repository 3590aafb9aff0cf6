"""Samples from the EMA generator of a checkpoint, or inpaints images with it.

Unconditional samples (a PNG grid):

  python sample.py --workdir=runs/cifar10 --output=samples.png [--num_images=64 --seed=0]
  python sample.py --checkpoint=converted/ --output=samples.png

Inpainting (the `inpaint` subcommand):

  python sample.py inpaint --workdir=DIR --image=photo.png --mask=holes.png --output_dir=out/
  python sample.py inpaint --checkpoint=DIR --image=photos/ --mask_type=wide --output_dir=out/ \
      [--mode=conditional|repaint --resample=N --seed=S --batch_size=B]

The inpainting app (the `serve` subcommand; Gradio, `pip install -e '.[app]'`): paint a hole in
the browser and see the fills (ddgan_jax/app.py):

  python sample.py serve --workdir=DIR [--host=127.0.0.1 --port=7860]

--checkpoint accepts a checkpoint directory (e.g. one written by `ddgan_jax.models.convert`) or one step
directory inside it; --workdir is a training directory.

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
import sys

from absl import app, flags

from ddgan_jax import app as app_lib
from ddgan_jax.data import eval_masks
from ddgan_jax.inpainting import batch_inpaint, hires, inpaint, mask_io
from ddgan_jax.models import networks
from ddgan_jax.platform import cli, runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training directory (uses its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Checkpoint directory or step directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_OUTPUT = flags.DEFINE_string('output', None, 'PNG file to write (default: <dir>/samples.png).')
_NUM = flags.DEFINE_integer('num_images', 64, 'Number of samples.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
# `inpaint` subcommand.
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
# `serve` subcommand.
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'serve: address to listen on (0.0.0.0: all).')
_PORT = flags.DEFINE_integer('port', 7860, 'serve: port.')
# --cpu_devices (default: one per core, as many as divide the batch: sampling and inpaint split
# their batch over them) and --compilation_cache, as in train.py.
_CPU_DEVICES, _COMPILATION_CACHE = runtime.define_flags()

INPAINT_FLAGS = ('image', 'mask', 'mask_type', 'output_dir', 'mode', 'resample', 'batch_size',
                 'strategy', 'margin', 'feather', 'mask_polarity', 'dilate')


def main(argv):
  command = argv[1:]
  if command == ['serve']:
    serve_main()
  elif command == ['inpaint']:
    inpaint_main()
  elif command:
    raise app.UsageError(f'Unexpected arguments: {command} (subcommands: `inpaint`, `serve`).')
  else:
    given = [f'--{n}' for n in INPAINT_FLAGS if flags.FLAGS[n].present]
    if given:
      cli.fail(f'{", ".join(given)} belong(s) to the inpaint subcommand: '
               'python sample.py inpaint ...')
    sample_main()


def run() -> None:
  """The `ddgan-sample` command."""
  cli.run(main, __doc__)


def _source() -> str:
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    cli.fail('pass exactly one of --workdir or --checkpoint.')
  return _WORKDIR.value or _CHECKPOINT.value


def _setup(batch_size: int = 1) -> None:
  """Library logs down to warnings, the compilation cache on, and a CPU host split into devices
  for a batch of `batch_size` (`runtime.cpu_device_count`: by default one device for the app's
  single images); before JAX starts."""
  cli.quiet()
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_COMPILATION_CACHE.value,
                batch_size=batch_size)


def sample_main() -> None:
  """Unconditional samples -> one PNG grid (the default command): networks.sample_grid."""
  source = _source()
  _setup(batch_size=_NUM.value)
  try:
    output, nfe = networks.sample_grid(source, _OUTPUT.value, num_images=_NUM.value,
                                       seed=_SEED.value, step=_STEP.value)
  except cli.InputError as e:
    cli.fail(str(e))
  print(f'wrote {_NUM.value} samples ({nfe} network evaluations each) to {output}')


def serve_main() -> None:
  """The `serve` subcommand: the inpainting app (ddgan_jax/app.py) on --host:--port."""
  source = _source()
  try:
    import gradio  # noqa: F401  (optional extra [app]: is it installed?)
  except ImportError:
    cli.fail("the app needs Gradio: pip install -e '.[app]'")
  _setup()
  try:
    app_lib.serve(source, step=_STEP.value, host=_HOST.value, port=_PORT.value)
  except (FileNotFoundError, ValueError, OSError) as e:
    cli.fail(cli.first_line(e))
  except KeyboardInterrupt:
    pass


def inpaint_main() -> None:
  """The `inpaint` subcommand (see the module docstring): batch_inpaint.inpaint_files."""
  source = _source()
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
        source, _IMAGE.value, _MASK.value, _OUTPUT_DIR.value, step=_STEP.value,
        mode=_MODE.value, resample=_RESAMPLE.value, seed=_SEED.value, options=options,
        setup=lambda batch: _setup(batch_size=batch))
  except cli.InputError as e:
    cli.fail(str(e))
  print(line)
  if summary.failed:
    sys.exit(2)
