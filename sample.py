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

--checkpoint accepts a checkpoint directory (e.g. one written by `ddgan_jax.convert`) or one step
directory inside it; --workdir is a training directory.

Inpainting inputs:
  --image    one image file or a folder of them (png, jpg, jpeg, bmp, webp, tif, tiff). Images
             must already have the model's resolution (no silent resizing). RGB models take
             RGB (or palette) images; grayscale or alpha images are refused. Grayscale models
             take grayscale images, and RGB ones converted to luma (PIL 'L').
  --mask     one mask file (used for every image) or a folder with one mask per image, matched
             by file stem (photo.jpg <- photo.png). White (>= 0.5) = missing, black = known;
             the size must equal the image's. Non-binary masks are thresholded at 0.5, with a
             warning.
  --mask_type  instead of --mask: an evaluation family (wide, narrow, line, half, expand, sr2)
             a training generator (thick, medium, thin, box, brush, noise) or a held-out shape
             (columns, grid, checker, ellipses, ring, corner), drawn from --seed.
Mode: conditional (default for mask-conditional models, NFE = T) or repaint (default
otherwise, NFE = T * resample).

Outputs in --output_dir: <stem>.png per image (the result, known pixels byte-identical to
the input) and comparison.png (rows: images; columns: input, masked, result). Every input is
checked and every result computed before anything is written; on bad input the command
prints one `error: ...` line on stderr, exits with status 2 and writes nothing.
"""
import os
import shutil
import sys
import tempfile

from absl import app, flags, logging

from ddgan_jax import runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training directory (uses its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Checkpoint directory or step directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_OUTPUT = flags.DEFINE_string('output', None, 'PNG file to write (default: <dir>/samples.png).')
_NUM = flags.DEFINE_integer('num_images', 64, 'Number of samples.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
# `inpaint` subcommand.
_IMAGE = flags.DEFINE_string('image', None, 'inpaint: image file or folder.')
_MASK = flags.DEFINE_string('mask', None, 'inpaint: mask file or folder (white = missing).')
_MASK_TYPE = flags.DEFINE_enum(
    'mask_type', None, ['wide', 'narrow', 'line', 'half', 'expand', 'sr2', 'thick', 'medium',
                        'thin', 'box', 'brush', 'noise', 'columns', 'grid', 'checker', 'ellipses',
                        'ring', 'corner'], 'inpaint: generated masks instead of --mask.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'inpaint: folder for the results.')
_MODE = flags.DEFINE_enum('mode', None, ['conditional', 'repaint'],
                          'inpaint: sampler (default: conditional if the model is mask-conditional).')
_RESAMPLE = flags.DEFINE_integer('resample', 1, 'inpaint: RePaint resampling rounds per step.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'inpaint: images per network call.')
# `serve` subcommand.
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'serve: address to listen on (0.0.0.0: all).')
_PORT = flags.DEFINE_integer('port', 7860, 'serve: port.')
# --cpu_devices (default: one per core, as many as divide the batch: sampling and inpaint split
# their batch over them) and --compilation_cache, as in train.py.
_CPU_DEVICES, _COMPILATION_CACHE = runtime.define_flags()

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
GRID_NAME = 'comparison.png'
INPAINT_FLAGS = ('image', 'mask', 'mask_type', 'output_dir', 'mode', 'resample', 'batch_size')


class InputError(Exception):
  """Bad user input: reported as one `error:` line."""


def fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def warn(message: str) -> None:
  print(f'warning: {message}', file=sys.stderr)


def _quiet(batch_size: int = 1) -> None:
  """Library logs down to warnings, the compilation cache on, and a CPU host split into devices
  for a batch of `batch_size` (`runtime.cpu_device_count`: by default one device for the app's
  single images); before JAX starts."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_COMPILATION_CACHE.value,
                batch_size=batch_size)


def main(argv):
  command = argv[1:]
  if command == ['serve']:
    serve_main()
    return
  if command == ['inpaint']:
    try:
      inpaint_main()
    except InputError as e:
      fail(str(e))
    return
  if command:
    raise app.UsageError(f'Unexpected arguments: {command} (subcommands: `inpaint`, `serve`).')
  given = [f'--{n}' for n in INPAINT_FLAGS if flags.FLAGS[n].present]
  if given:
    fail(f'{", ".join(given)} belong(s) to the inpaint subcommand: python sample.py inpaint ...')
  sample_main()


def sample_main() -> None:
  """Unconditional samples -> one PNG grid (the default command)."""
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    fail('pass exactly one of --workdir or --checkpoint.')
  _quiet(batch_size=_NUM.value)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ddgan_jax import networks, sharding, visualize  # pylint: disable=g-import-not-at-top

  source = _WORKDIR.value or _CHECKPOINT.value
  params_sharding, batch_sharding = sharding.local_batch_shardings(_NUM.value)
  try:
    nets, params, _ = networks.load_ema_generator(source, step=_STEP.value,
                                                  sharding=params_sharding)
  except (FileNotFoundError, ValueError) as e:
    fail(str(e))
  output = _OUTPUT.value or os.path.join(os.path.abspath(source), 'samples.png')
  sampler = networks.make_sampler(nets, _NUM.value, batch_sharding)
  samples = sampler(params, jax.random.PRNGKey(_SEED.value))
  visualize.save_grid(np.asarray(samples), output)
  print(f'wrote {_NUM.value} samples ({nets.num_timesteps} network evaluations each) to {output}')


def serve_main() -> None:
  """The `serve` subcommand: the inpainting app (ddgan_jax/app.py) on --host:--port."""
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    fail('pass exactly one of --workdir or --checkpoint.')
  try:
    import gradio  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    fail("the app needs Gradio: pip install -e '.[app]'")
  _quiet()
  from ddgan_jax import app as app_lib  # pylint: disable=g-import-not-at-top
  try:
    app_lib.serve(_WORKDIR.value or _CHECKPOINT.value, step=_STEP.value, host=_HOST.value,
                  port=_PORT.value)
  except (FileNotFoundError, ValueError, OSError) as e:
    fail(_first_line(e))
  except KeyboardInterrupt:
    pass


# ------------------------------------------------------------------ inpaint: inputs

def _list_images(path: str, what: str) -> list[str]:
  """The image files of `path` (a file, or a folder's image files sorted by name)."""
  if not os.path.exists(path):
    raise InputError(f'{what} {path} does not exist.')
  if os.path.isfile(path):
    return [path]
  files = sorted(os.path.join(path, f) for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f)))
  if not files:
    raise InputError(f'{what} folder {path} holds no image files ({", ".join(IMAGE_EXTENSIONS)}).')
  return files


def _open(path: str):
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  try:
    image = Image.open(path)
    image.load()
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise InputError(f'cannot read {path}: not an image or corrupt '
                     f'({str(e).splitlines()[0] if str(e) else type(e).__name__}).') from e
  return image


def read_image(path: str, num_channels: int):
  """uint8 [H, W, C] of an image file, converted for a C-channel model (see module doc)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  image = _open(path)
  mode = image.mode
  if mode in ('LA', 'RGBA', 'PA', 'La', 'RGBa'):
    raise InputError(f'{path} has an alpha channel ({len(image.getbands())} channels); the model '
                     f'takes {"RGB" if num_channels == 3 else "grayscale"} images: save it without alpha.')
  if mode == 'P':
    image = image.convert('RGB')
  if num_channels == 3:
    if image.mode == 'L':
      raise InputError(f'{path} is grayscale (1 channel) but the model expects RGB images '
                       '(3 channels).')
    if image.mode != 'RGB':
      raise InputError(f'{path} has unsupported image mode {mode!r}; the model expects 8-bit RGB.')
  elif num_channels == 1:
    if image.mode == 'RGB':
      image = image.convert('L')
    if image.mode != 'L':
      raise InputError(f'{path} has unsupported image mode {mode!r}; the model expects 8-bit '
                       'grayscale (or RGB, converted).')
  else:
    raise InputError(f'models with {num_channels} channels are not supported.')
  array = np.asarray(image, np.uint8)
  return array[..., None] if array.ndim == 2 else array


def read_mask(path: str):
  """(bool [H, W, 1], non_binary) of a mask file: white (>= 0.5) = missing."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  image = _open(path)
  if image.mode in ('I', 'I;16', 'F'):
    values = np.asarray(image, np.float64)
    values = values / (65535.0 if values.max() > 255 else 255.0)
  else:
    values = np.asarray(image.convert('L'), np.float64) / 255.0
  non_binary = bool(np.any((values != 0.0) & (values != 1.0)))
  return (values >= 0.5)[..., None], non_binary


def _masks_for(image_paths: list[str], mask_path: str) -> list[str]:
  """One mask file per image: the file itself, or the same-stem file of a mask folder."""
  if not os.path.exists(mask_path):
    raise InputError(f'mask {mask_path} does not exist.')
  if os.path.isfile(mask_path):
    return [mask_path] * len(image_paths)
  by_stem = {}
  for f in _list_images(mask_path, 'mask'):
    by_stem.setdefault(os.path.splitext(os.path.basename(f))[0], f)
  out = []
  for p in image_paths:
    stem = os.path.splitext(os.path.basename(p))[0]
    if stem not in by_stem:
      raise InputError(f'mask folder {mask_path} has no mask for {os.path.basename(p)} '
                       f'(expected {stem}.png or another image file named {stem}).')
    out.append(by_stem[stem])
  return out


def _output_names(image_paths: list[str]) -> list[str]:
  names = [os.path.splitext(os.path.basename(p))[0] + '.png' for p in image_paths]
  seen = set()
  for name, path in zip(names, image_paths):
    if name == GRID_NAME:
      raise InputError(f'{path}: the output name {name} is reserved for the comparison grid; '
                       'rename the image.')
    if name in seen:
      raise InputError(f'two input images map to the same output {name}; rename one.')
    seen.add(name)
  return names


# ------------------------------------------------------------------ inpaint: main

def inpaint_main() -> None:
  """The `inpaint` subcommand (see the module docstring)."""
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    raise InputError('pass exactly one of --workdir or --checkpoint.')
  if not _IMAGE.value:
    raise InputError('pass --image (an image file or folder).')
  if bool(_MASK.value) == bool(_MASK_TYPE.value):
    raise InputError('pass exactly one of --mask or --mask_type.')
  if not _OUTPUT_DIR.value:
    raise InputError('pass --output_dir.')
  if _RESAMPLE.value < 1 or _BATCH.value < 1:
    raise InputError('--resample and --batch_size must be positive.')
  if _MODE.value == 'conditional' and _RESAMPLE.value != 1:
    raise InputError('--resample applies to --mode=repaint only.')
  if flags.FLAGS['output'].present or flags.FLAGS['num_images'].present:
    raise InputError('--output and --num_images are for sampling; inpaint writes to --output_dir.')
  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise InputError(f'--output_dir {output_dir} exists and is not a folder.')

  # 1. Files: list and decode everything (no JAX yet, so this fails fast).
  image_paths = _list_images(_IMAGE.value, 'image')
  names = _output_names(image_paths)
  mask_paths = _masks_for(image_paths, _MASK.value) if _MASK.value else None

  batch = min(_BATCH.value, len(image_paths))
  _quiet(batch_size=batch)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ddgan_jax import checkpointing, heldout_masks, inpaint, masks, networks, sharding, visualize  # pylint: disable=g-import-not-at-top

  # 2. The model's facts, from the checkpoint's config (weights later).
  source = _WORKDIR.value or _CHECKPOINT.value
  try:
    step = checkpointing.resolve_checkpoint(source, _STEP.value)[1]  # config and weights of one step
    nets = networks.build_networks(checkpointing.load_config(source, step))
  except FileNotFoundError as e:
    raise InputError(str(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise InputError(f'cannot read the checkpoint config in {source}: {_first_line(e)}') from e
  size, channels = nets.image_size, nets.num_channels

  images = []
  for path in image_paths:
    image = read_image(path, channels)
    if image.shape[:2] != (size, size):
      raise InputError(f'{path} is {image.shape[1]}x{image.shape[0]} but the model works at '
                       f'{size}x{size}; resize or crop it to {size}x{size} first.')
    images.append(image)
  images = np.stack(images)  # [N, S, S, C] uint8
  n = len(images)
  if mask_paths is not None:
    holes, non_binary = [], []
    for path, mask_file in zip(image_paths, mask_paths):
      mask, nb = read_mask(mask_file)
      if mask.shape[:2] != (size, size):
        raise InputError(f'mask {mask_file} is {mask.shape[1]}x{mask.shape[0]} but image '
                         f'{path} is {size}x{size}.')
      holes.append(mask)
      if nb:
        non_binary.append(mask_file)
    holes = np.stack(holes)
    for mask_file in sorted(set(non_binary)):
      warn(f'mask {mask_file} is not binary; thresholded at 0.5 (white = missing).')
  else:
    key = jax.random.PRNGKey(_SEED.value)
    if _MASK_TYPE.value in masks.EVAL_FAMILIES:
      holes = masks.eval_masks(_MASK_TYPE.value, key, n, size)
    elif _MASK_TYPE.value in heldout_masks.HELDOUT_FAMILIES:
      holes = heldout_masks.heldout_masks(_MASK_TYPE.value, key, n, size)
    else:
      holes = masks.sample_training_masks(key, n, size, ((_MASK_TYPE.value, 1.0),), 0.0)
    holes = np.asarray(holes) > 0.5
  if not holes.any():
    warn('the masks mark no pixel as missing; the results equal the inputs.')

  mode = _MODE.value or ('conditional' if nets.inpaint else 'repaint')
  try:
    inpaint.check_inputs(nets, images.shape, holes.shape, mode, _RESAMPLE.value)
  except ValueError as e:
    raise InputError(str(e)) from e

  # 3. Weights (a checkpoint whose arrays do not fit its config fails here).
  params_sharding, batch_sharding = sharding.local_batch_shardings(batch)
  try:
    params = networks.restore_ema_params(source, nets, step=step, sharding=params_sharding)
  except ValueError as e:
    raise InputError(str(e)) from e
  except Exception as e:  # pylint: disable=broad-except
    raise InputError(f'cannot restore the generator from {source}: {_first_line(e)}') from e

  # 4. Inpaint in fixed-size batches (one compile), each split over the devices, then write
  # everything at once.
  def run(x, m, key):
    return inpaint.inpaint(nets, params, jax.device_put(x, batch_sharding),
                           jax.device_put(m, batch_sharding), key, mode=mode,
                           resample=_RESAMPLE.value)

  results, nfe = [], 0
  for b, idx in inpaint.padded_batches(n, batch):
    out, nfe = inpaint.inpaint_uint8(run, images[idx], holes[idx],
                                     jax.random.fold_in(jax.random.PRNGKey(_SEED.value), b))
    results.append(out)
  results = np.concatenate(results)[:n]  # drop the padding rows (only the last batch has any)

  masked = np.where(holes, np.uint8(127), images)
  grid = visualize.make_grid(inpaint.uint8_to_float(
      np.stack([images, masked, results], axis=1).reshape((3 * n,) + images.shape[1:])), ncol=3)
  files = {name: result for name, result in zip(names, results)}
  files[GRID_NAME] = grid
  _write_all(files, output_dir)
  print(f'inpainted {n} image(s) with mode={mode} ({nfe} network evaluations each); wrote '
        f'{n} result(s) and {GRID_NAME} to {output_dir}')


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _write_all(files: dict, output_dir: str) -> None:
  """Writes uint8 arrays as PNGs into a temporary sibling folder, then moves them in."""
  from ddgan_jax import visualize  # pylint: disable=g-import-not-at-top
  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.inpaint-', dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the folder may become output_dir.
  try:
    for name, array in files.items():
      visualize.save_png(array, os.path.join(tmp, name))
    if not os.path.exists(output_dir):
      os.replace(tmp, output_dir)
      return
    for name in files:
      os.replace(os.path.join(tmp, name), os.path.join(output_dir, name))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
  app.run(main)
