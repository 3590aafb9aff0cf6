"""Samples from the EMA generator of a checkpoint, or inpaints images with it.

Unconditional samples (a PNG grid):

  python sample.py --workdir=runs/cifar10 --output=samples.png [--num_images=64 --seed=0]
  python sample.py --checkpoint=converted/ --output=samples.png

Inpainting (the `inpaint` subcommand):

  python sample.py inpaint --workdir=DIR --image=photo.png --mask=holes.png --output_dir=out/
  python sample.py inpaint --checkpoint=DIR --image=photos/ --mask_type=wide --output_dir=out/ \\
      [--mode=conditional|repaint --resample=N --seed=S --batch_size=B]

The inpainting app (the `serve` subcommand; Gradio, `pip install -e '.[app]'`): paint a hole in
the browser and see the fills (ddgan_jax/app.py):

  python sample.py serve --workdir=DIR [--host=127.0.0.1 --port=7860]

--checkpoint accepts a checkpoint directory (e.g. one written by `ddgan_jax.models.convert`) or one step
directory inside it; --workdir is a training directory.
"""
from absl import app, flags

from ddgan_jax import app as app_lib
from ddgan_jax.commands import sample_inpaint
from ddgan_jax.models import networks
from ddgan_jax.platform import cli, runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training directory (uses its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Checkpoint directory or step directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_OUTPUT = flags.DEFINE_string('output', None, 'PNG file to write (default: <dir>/samples.png).')
_NUM = flags.DEFINE_integer('num_images', 64, 'Number of samples.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
# `serve` subcommand.
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'serve: address to listen on (0.0.0.0: all).')
_PORT = flags.DEFINE_integer('port', 7860, 'serve: port.')
# --cpu_devices (default: one per core, as many as divide the batch: sampling and inpaint split
# their batch over them) and --compilation_cache, as in train.py.
_CPU_DEVICES, _COMPILATION_CACHE = runtime.define_flags()

# --help prints this module's docstring and then the inpaint subcommand's (its inputs).
USAGE = __doc__ + '\n' + sample_inpaint.__doc__.split('\n\n', 1)[1]


def main(argv):
  command = argv[1:]
  if command == ['serve']:
    serve_main()
  elif command == ['inpaint']:
    sample_inpaint.inpaint_main(_source(), _STEP.value, _SEED.value,
                                lambda batch: _setup(batch_size=batch))
  elif command:
    raise app.UsageError(f'Unexpected arguments: {command} (subcommands: `inpaint`, `serve`).')
  else:
    given = [f'--{n}' for n in sample_inpaint.flag_names() if flags.FLAGS[n].present]
    if given:
      cli.fail(f'{", ".join(given)} belong(s) to the inpaint subcommand: '
               'python sample.py inpaint ...')
    sample_main()


def run() -> None:
  """The `ddgan-sample` command."""
  cli.run(main, USAGE, flag_modules=(sample_inpaint.__name__,))


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
