"""The bad-input catalogue: every case is tried by tests/test_bad_inputs.py and tabulated here.

  python docs/bad_inputs.py    # runs every case, rewrites the table in README.md ("Bad input")

Each case feeds one bad input to a public boundary (a CLI, the `inpaint` API, a config, a
file, a checkpoint) and records what the user gets: the one-line message, and for CLIs the
exit status. CLIs run in-process (their `main` after real absl flag parsing), except the few
marked `subprocess`, which run as a real `python <cli>` to show the exit status and that no
traceback reaches stderr. Runs with 8 fake CPU devices, as the test suite.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import gzip
import importlib.util
import io
import json
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

import jax  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

README = REPO / 'README.md'
START, END = '<!-- bad-inputs:start -->', '<!-- bad-inputs:end -->'
SIZE = 16  # configs/tiny*.py


@dataclasses.dataclass
class Outcome:
  message: str            # the one line the user reads ('' if none)
  exit_code: int | None   # CLIs: the exit status; API: None
  stderr: str = ''        # CLIs: everything on stderr
  error_lines: int = 1    # CLIs: how many `error:` lines


@dataclasses.dataclass
class Case:
  name: str
  boundary: str           # CLI / API / config / data / file / checkpoint
  input: str              # what was given, for the table
  run: Callable[['Context'], Outcome]
  expect: str             # part of the message
  out: str | None = None  # a path (relative to ctx.root) that must not exist afterwards
  unchanged: str | None = None  # a folder (relative to ctx.root) whose files must not change


# ------------------------------------------------------------------ running the boundaries

def api(fn: Callable[[], Any]) -> Outcome:
  """Calls fn; the outcome is the exception it raises (no exception: an empty message)."""
  try:
    fn()
  except Exception as e:  # pylint: disable=broad-except
    return Outcome(f'{type(e).__name__}: {e}', None)
  return Outcome('', None)


_CLI_MODULES: dict[str, tuple[Any, dict]] = {}  # script -> (module, its flags)


def _activate(script: str) -> Any:
  """Loads `script` (train.py, sample.py, evaluate.py) with its absl flags registered and the
  flags of the other scripts (same names, other modules) unregistered."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FLAGS
  for other, (_, own) in _CLI_MODULES.items():
    if other != script:
      for name in own:
        if name in fv and fv[name] is own[name]:
          delattr(fv, name)
  for name in [n for n in fv if n.startswith('config.')]:
    delattr(fv, name)  # ml_collections override flags, registered again at parse time
  if script in _CLI_MODULES:
    module, own = _CLI_MODULES[script]
    for name, flag in own.items():
      if name not in fv:
        fv[name] = flag
    return module
  before = set(fv)
  # The script imports ddgan_jax/commands/<script>, which registers the flags: import it anew
  # (after `release_flags`, the flags are gone but the module would still be imported).
  sys.modules.pop(f'ddgan_jax.commands.{script[:-3]}', None)
  spec = importlib.util.spec_from_file_location(f'cli_{script[:-3]}', REPO / script)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  _CLI_MODULES[script] = (module, {n: fv[n] for n in set(fv) - before})
  return module


def release_flags() -> None:
  """Unregisters every absl flag the CLIs loaded by `cli` registered, so that other code in
  this process (another test module) can load those scripts again."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FLAGS
  for _, own in _CLI_MODULES.values():
    for name, flag in own.items():
      if name in fv and fv[name] is flag:
        delattr(fv, name)
  for name in [n for n in fv if n.startswith('config.')]:
    delattr(fv, name)
  _CLI_MODULES.clear()


def cli(script: str, *args: str) -> Outcome:
  """Runs `python <script> args` in-process: absl flag parsing, then the script's main."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  module = _activate(script)
  argv = [script, *args]
  err, old_argv = io.StringIO(), sys.argv
  code = 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      sys.argv = argv  # ml_collections reads --config.x overrides from sys.argv
      flags.FLAGS.unparse_flags()
      module.main(flags.FLAGS(argv))
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # pylint: disable=broad-except  (a gap: a real run shows a traceback)
      print(f'Traceback (uncaught in-process): {type(e).__name__}: {e}', file=sys.stderr)
      code = 1
    finally:
      sys.argv = old_argv
  return _cli_outcome(code, err.getvalue())


def module_cli(main: Callable[[list[str]], None], *args: str) -> Outcome:
  """Runs a `python -m ddgan_jax.<module>` CLI (own FlagValues) in-process."""
  err, code = io.StringIO(), 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      main(['prog', *args])
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # pylint: disable=broad-except
      print(f'Traceback (uncaught in-process): {type(e).__name__}: {e}', file=sys.stderr)
      code = 1
  return _cli_outcome(code, err.getvalue())


def subprocess_cli(script: str, *args: str) -> Outcome:
  """Runs `python <script> args` as a real process (one CPU device, as a user would)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('XLA_FLAGS', None)
  res = subprocess.run([sys.executable, str(REPO / script), *args], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
  return _cli_outcome(res.returncode, res.stderr)


def _cli_outcome(code: int, stderr: str) -> Outcome:
  lines = [l for l in stderr.splitlines() if l.startswith(('error:', 'FATAL'))]
  return Outcome(lines[0] if lines else stderr.strip()[-300:], code, stderr, len(lines))


# ------------------------------------------------------------------ the files the cases use

class Context:
  """A temporary folder with tiny checkpoints (intact and damaged), images and data files."""

  def __init__(self, root: str):
    from configs import tiny, tiny_inpaint  # pylint: disable=g-import-not-at-top
    from ddgan_jax.checkpoints import checkpointing  # pylint: disable=g-import-not-at-top
    from ddgan_jax.models import networks  # pylint: disable=g-import-not-at-top
    self.root = pathlib.Path(root)
    r = self.root
    zeros = lambda nets: jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                                      nets.abstract_generator_params())
    cond_config, uncond_config = tiny_inpaint.get_config(), tiny.get_config()
    self.nets = networks.build_networks(cond_config)
    self.params = self.nets.init_generator(jax.random.PRNGKey(0))
    self.uncond_nets = networks.build_networks(uncond_config)
    save = checkpointing.save_inference_checkpoint
    save(str(r / 'cond'), ema_params=self.params, config=cond_config)
    save(str(r / 'uncond'), ema_params=zeros(self.uncond_nets), config=uncond_config)
    wrong = tiny_inpaint.get_config()
    wrong.model.nf = 32  # weights of nf 16 under a config that claims nf 32
    save(str(r / 'mismatch'), ema_params=self.params, config=wrong)
    shutil.copytree(r / 'cond', r / 'truncated')
    for f in glob.glob(str(r / 'truncated/0/ema_generator/ocdbt.process_0/d/*')):
      os.truncate(f, os.path.getsize(f) // 2)
    shutil.copytree(r / 'cond', r / 'bad_json')
    (r / 'bad_json/0/config/metadata').write_text('{"data": {"image_size": 16,')
    shutil.copytree(r / 'cond', r / 'bad_config')
    stored = json.loads((r / 'cond/0/config/metadata').read_text())
    stored['diffusion']['num_timesteps'] = 0
    (r / 'bad_config/0/config/metadata').write_text(json.dumps(stored))

    rng = np.random.default_rng(0)
    (r / 'img').mkdir()
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(r / 'img/a.png')
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(r / 'img/big.png')
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(r / 'img/gray.png')
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[4:10, 4:10] = 255
    Image.fromarray(mask).save(r / 'img/mask.png')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(r / 'img/small_mask.png')
    Image.fromarray(np.kron(mask, np.ones((2, 2), np.uint8))).save(r / 'img/big_mask.png')
    (r / 'img/corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'not really a png' * 4)
    (r / 'img/empty').mkdir()
    (r / 'not_images').mkdir()
    (r / 'only_val').mkdir()
    (r / 'only_val/ILSVRC2012_img_val.tar').write_bytes(b'')
    (r / 'not_images/a.png').write_text('a text file, not a picture')
    # Converter inputs: an .npz holding a pickled object array, and a damaged .npz.
    np.savez(r / 'object.npz', **{'conv.weight': np.array([{'x': 1}], dtype=object)})
    np.savez(r / 'good.npz', a=np.zeros(3))
    (r / 'truncated.npz').write_bytes((r / 'good.npz').read_bytes()[:40])
    # An MNIST pickle whose unpickling would run a command.
    with gzip.open(r / 'evil.pkl', 'wb') as f:
      pickle.dump(((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)), _Evil()), f)

  def p(self, relative: str) -> str:
    return str(self.root / relative)


class _Evil:
  def __reduce__(self):
    return (os.system, ('echo this pickle ran a command',))


def _inpaint(ctx: Context, images=None, masks=None, key=None, **kw) -> Outcome:
  from ddgan_jax.inpainting import inpaint  # pylint: disable=g-import-not-at-top
  images = np.zeros((2, SIZE, SIZE, 3), np.float32) if images is None else images
  masks = np.ones((2, SIZE, SIZE, 1), np.float32) if masks is None else masks
  key = jax.random.PRNGKey(0) if key is None else key
  return api(lambda: inpaint.inpaint(ctx.nets, ctx.params, images, masks, key, **kw))


def _with_nan() -> np.ndarray:
  x = np.zeros((2, SIZE, SIZE, 3), np.float32)
  x[1, 3, 5, 0] = np.nan
  return x


def _mnist(ctx: Context) -> Outcome:
  from ddgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  from configs import fashion_mnist  # pylint: disable=g-import-not-at-top
  config = fashion_mnist.get_config().data
  config.dataset, config.data_dir = 'mnist', ctx.p('tfds')
  old = os.environ.get('DDGAN_MNIST_PKL')
  os.environ['DDGAN_MNIST_PKL'] = ctx.p('evil.pkl')
  try:
    return api(lambda: input_pipeline.num_examples(config, 'train'))
  finally:
    if old is None:
      del os.environ['DDGAN_MNIST_PKL']
    else:
      os.environ['DDGAN_MNIST_PKL'] = old


def _half_prepared_imagenet(ctx: Context) -> str:
  """A tfds data_dir whose imagenet2012 was prepared with only the validation tar (what such a
  run leaves: dataset_info.json with a 'validation' split and no 'train')."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = ctx.p('tfds_half')
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  if not builder.is_prepared():
    template = tfds.core.ShardedFileTemplate(data_dir=builder.data_dir, dataset_name=builder.name,
                                             split='validation', filetype_suffix='tfrecord')
    builder.info.set_splits(tfds.core.SplitDict([tfds.core.SplitInfo(
        name='validation', shard_lengths=[1], num_bytes=1, filename_template=template)]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)
  return data_dir


def _data(name: str, *overrides: str, data_dir: Callable[[Context], str] | None = None
          ) -> Callable[[Context], Outcome]:
  """train.py on a dataset that cannot be found; its tfds data_dir lies inside the would-be
  workdir unless given, so a folder left behind by tfds fails the case too."""
  def run(ctx: Context) -> Outcome:
    where = data_dir(ctx) if data_dir else ctx.p(f'out/{name}/tfds')
    return cli('train.py', '--config=configs/tiny.py', f'--workdir={ctx.p("out/" + name)}',
               f'--config.data.data_dir={where}', *[o.format(root=ctx.root) for o in overrides])
  return run


# ------------------------------------------------------------------ the cases

def _train(name: str, *overrides: str, config: str = 'tiny') -> Callable[[Context], Outcome]:
  return lambda ctx: cli('train.py', f'--config=configs/{config}.py',
                         f'--workdir={ctx.p("out/" + name)}', *overrides)


def _fill(name: str, checkpoint: str = 'cond', image: str = 'img/a.png',
          mask: str | None = 'img/mask.png', *extra: str) -> Callable[[Context], Outcome]:
  def run(ctx: Context) -> Outcome:
    args = ['inpaint', f'--checkpoint={ctx.p(checkpoint)}', f'--image={ctx.p(image)}',
            f'--output_dir={ctx.p("out/" + name)}', *extra]
    return cli('sample.py', *args, *([f'--mask={ctx.p(mask)}'] if mask else []))
  return run


def _case(name, boundary, what, run, expect, out=True, unchanged=None) -> Case:
  return Case(name, boundary, what, run, expect, f'out/{name}' if out else None, unchanged)


def _cases() -> list[Case]:
  from ddgan_jax.data import eval_masks  # pylint: disable=g-import-not-at-top
  from ddgan_jax.inpainting import export, inpaint  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import convert  # pylint: disable=g-import-not-at-top
  zeros = lambda *s, dtype=np.float32: np.zeros(s, dtype)
  t = lambda name, *o, **kw: _train(name, *o, **kw)
  return [
      # Configs, through train.py (nothing may be written into the new --workdir).
      _case('config_unknown_dataset', 'config', '`train.py --config.data.dataset=cifar100`',
            t('config_unknown_dataset', '--config.data.dataset=cifar100'), 'unknown data.dataset'),
      _case('config_resolution_vs_ch_mult', 'config',
            '`train.py` (16 px) `--config.model.ch_mult=(1,2,2,2,2,2)`',
            t('config_resolution_vs_ch_mult', '--config.model.ch_mult=(1,2,2,2,2,2)'),
            'does not fit model.ch_mult'),
      _case('config_resolution_vs_discriminator', 'config', '`train.py --config.data.image_size=20`',
            t('config_resolution_vs_discriminator', '--config.data.image_size=20'),
            "does not fit model.disc='small'"),
      _case('config_T_zero', 'config', '`train.py --config.diffusion.num_timesteps=0`',
            t('config_T_zero', '--config.diffusion.num_timesteps=0'), 'out of range'),
      _case('config_T_too_large', 'config', '`train.py --config.diffusion.num_timesteps=5000`',
            t('config_T_too_large', '--config.diffusion.num_timesteps=5000'), 'out of range'),
      _case('config_beta_negative', 'config', '`train.py --config.diffusion.beta_max=-1`',
            t('config_beta_negative', '--config.diffusion.beta_max=-1.0'), 'beta_max'),
      _case('config_batch_vs_devices', 'config', '`train.py --config.train.batch_size=12` on 8 devices',
            t('config_batch_vs_devices', '--config.train.batch_size=12'), 'multiple of the number of devices'),
      _case('config_unknown_discriminator', 'config', '`train.py --config.model.disc=huge`',
            t('config_unknown_discriminator', '--config.model.disc=huge'), 'unknown model.disc'),
      _case('config_unknown_cond_fill', 'config', '`train.py` (inpainting) `--config.inpaint.cond_fill=blur`',
            t('config_unknown_cond_fill', '--config.inpaint.cond_fill=blur', config='tiny_inpaint'),
            'unknown inpaint.cond_fill'),
      _case('config_negative_mask_weight', 'config',
            '`train.py` (inpainting) `--config.inpaint.mask_mixture.box=-1`',
            t('config_negative_mask_weight', '--config.inpaint.mask_mixture.box=-1.0',
              config='tiny_inpaint'), 'inpaint.mask_mixture'),
      _case('config_folder_without_path', 'config', '`train.py --config.data.dataset=folder` (no data.folder)',
            t('config_folder_without_path', '--config.data.dataset=folder'), 'needs data.folder'),
      _case('config_file_missing', 'config', '`train.py --config=configs/nope.py` (subprocess)',
            lambda ctx: subprocess_cli('train.py', '--config=configs/nope.py',
                                       f'--workdir={ctx.p("out/config_file_missing")}'),
            'configs/nope.py'),
      _case('config_T_zero_subprocess', 'config',
            '`train.py --config.diffusion.num_timesteps=0` (subprocess)',
            lambda ctx: subprocess_cli('train.py', '--config=configs/tiny.py',
                                       f'--workdir={ctx.p("out/config_T_zero_subprocess")}',
                                       '--config.diffusion.num_timesteps=0'), 'out of range'),
      # Datasets that cannot be found or prepared (nothing left behind, no workdir).
      _case('data_manual_dir_missing', 'data',
            '`train.py --config.data.dataset=imagenet2012 --config.data.manual_dir=nope/`',
            _data('data_manual_dir_missing', '--config.data.dataset=imagenet2012',
                  '--config.data.manual_dir={root}/nope'), 'does not exist; put ILSVRC2012'),
      _case('data_manual_dir_empty', 'data',
            '`train.py --config.data.dataset=imagenet2012 --config.data.manual_dir=empty/`',
            _data('data_manual_dir_empty', '--config.data.dataset=imagenet2012',
                  '--config.data.manual_dir={root}/img/empty'), 'is empty; put ILSVRC2012'),
      _case('data_manual_dir_only_val', 'data',
            '`train.py --config.data.dataset=imagenet2012` with only `ILSVRC2012_img_val.tar` in manual_dir',
            _data('data_manual_dir_only_val', '--config.data.dataset=imagenet2012',
                  '--config.data.manual_dir={root}/only_val'), 'ILSVRC2012_img_train.tar is missing'),
      _case('data_half_prepared', 'data',
            '`train.py` on an imagenet2012 prepared with only the validation tar',
            _data('data_half_prepared', '--config.data.dataset=imagenet2012',
                  data_dir=_half_prepared_imagenet), "without its 'train' split"),
      _case('data_folder_empty', 'data', '`train.py --config.data.dataset=folder` on an empty folder',
            _data('data_folder_empty', '--config.data.dataset=folder',
                  '--config.data.folder={root}/img/empty'), 'holds no .png/.jpg/.jpeg files'),
      _case('data_folder_not_images', 'data',
            '`train.py --config.data.dataset=folder` on a folder of non-images named .png',
            _data('data_folder_not_images', '--config.data.dataset=folder',
                  '--config.data.folder={root}/not_images'), 'not an image or corrupt'),
      # Image files and the sample.py inpaint CLI (nothing may be written into --output_dir).
      _case('image_corrupt_png', 'file', '`sample.py inpaint --image=corrupt.png`',
            _fill('image_corrupt_png', image='img/corrupt.png'), 'not an image or corrupt'),
      _case('image_wrong_size', 'file',
            '`sample.py inpaint --image=big.png --strategy=exact` (32 px, model 16 px)',
            _fill('image_wrong_size', 'cond', 'img/big.png', 'img/big_mask.png', '--strategy=exact'),
            'needs the model\'s 16x16'),
      _case('image_grayscale_for_rgb', 'file', '`sample.py inpaint --image=gray.png` (RGB model)',
            _fill('image_grayscale_for_rgb', image='img/gray.png'), 'grayscale (1 channel)'),
      _case('image_folder_empty', 'file', '`sample.py inpaint --image=empty/`',
            _fill('image_folder_empty', image='img/empty'), 'holds no image files'),
      _case('mask_missing', 'file', '`sample.py inpaint --mask=nope.png`',
            _fill('mask_missing', mask='img/nope.png'), 'does not exist'),
      _case('mask_size_mismatch', 'file', '`sample.py inpaint --mask=small_mask.png` (8 px)',
            _fill('mask_size_mismatch', mask='img/small_mask.png'), 'is 8x8 but image'),
      _case('mask_not_given', 'CLI', '`sample.py inpaint` without `--mask` or `--mask_type` (RGB image)',
            _fill('mask_not_given', 'cond', 'img/a.png', None), 'no alpha channel to read the hole from'),
      _case('mask_dilate_negative', 'CLI', '`sample.py inpaint --dilate=-2`',
            _fill('mask_dilate_negative', 'cond', 'img/a.png', 'img/mask.png', '--dilate=-2'),
            'dilate must be >= 0'),
      _case('resample_with_conditional', 'CLI', '`sample.py inpaint --mode=conditional --resample=3`',
            _fill('resample_with_conditional', 'cond', 'img/a.png', 'img/mask.png',
                  '--mode=conditional', '--resample=3'), 'repaint only'),
      _case('evaluate_unknown_family', 'CLI', '`evaluate.py --families=stars`',
            lambda ctx: cli('evaluate.py', f'--checkpoint={ctx.p("cond")}', '--families=stars',
                            f'--output_dir={ctx.p("out/evaluate_unknown_family")}'),
            "unknown family 'stars'"),
      # Checkpoints.
      _case('checkpoint_missing', 'checkpoint', '`sample.py inpaint --checkpoint=nowhere/`',
            _fill('checkpoint_missing', checkpoint='nowhere'), 'No checkpoint at'),
      _case('checkpoint_truncated', 'checkpoint',
            '`sample.py inpaint` on a checkpoint whose array files are cut in half (subprocess)',
            lambda ctx: subprocess_cli('sample.py', 'inpaint', f'--checkpoint={ctx.p("truncated")}',
                                       f'--image={ctx.p("img/a.png")}', f'--mask={ctx.p("img/mask.png")}',
                                       f'--output_dir={ctx.p("out/checkpoint_truncated")}'),
            'is damaged or incomplete'),
      _case('checkpoint_truncated_api', 'checkpoint', '`inpaint.load_inpainter(truncated checkpoint)`',
            lambda ctx: api(lambda: inpaint.load_inpainter(ctx.p('truncated'))),
            'is damaged or incomplete'),
      _case('checkpoint_config_not_json', 'checkpoint', '`sample.py` on a checkpoint whose config is cut off',
            lambda ctx: cli('sample.py', f'--checkpoint={ctx.p("bad_json")}',
                            f'--output={ctx.p("out/checkpoint_config_not_json")}'),
            'its `config` cannot be read'),
      _case('checkpoint_config_invalid', 'checkpoint',
            '`sample.py inpaint` on a checkpoint whose stored config has T = 0',
            _fill('checkpoint_config_invalid', checkpoint='bad_config'), 'num_timesteps=0'),
      _case('checkpoint_tree_mismatch', 'checkpoint',
            '`sample.py inpaint` on nf-16 weights stored with an nf-32 config',
            _fill('checkpoint_tree_mismatch', checkpoint='mismatch'), "e.g. ['conv_in']"),
      _case('checkpoint_init_from_missing', 'checkpoint', '`train.py --config.train.init_from=nowhere/`',
            lambda ctx: cli('train.py', '--config=configs/tiny.py',
                            f'--workdir={ctx.p("out/checkpoint_init_from_missing")}',
                            f'--config.train.init_from={ctx.p("nowhere")}'), 'No checkpoint at'),
      _case('export_over_existing', 'checkpoint', '`python -m ddgan_jax.inpainting.export` into a folder holding step 0',
            lambda ctx: module_cli(export.main, f'--workdir={ctx.p("cond")}',
                                   f'--output_dir={ctx.p("uncond")}'),
            'already holds a checkpoint', out=False, unchanged='uncond'),
      # Untrusted files.
      _case('convert_npz_with_pickle', 'file', '`python -m ddgan_jax.models.convert --checkpoint=object.npz` (object array)',
            lambda ctx: module_cli(convert.main, '--config=configs/tiny.py',
                                   f'--checkpoint={ctx.p("object.npz")}',
                                   f'--output_dir={ctx.p("out/convert_npz_with_pickle")}'),
            'allow_pickle=False'),
      _case('convert_npz_truncated', 'file', '`python -m ddgan_jax.models.convert --checkpoint=truncated.npz`',
            lambda ctx: module_cli(convert.main, '--config=configs/tiny.py',
                                   f'--checkpoint={ctx.p("truncated.npz")}',
                                   f'--output_dir={ctx.p("out/convert_npz_truncated")}'),
            'truncated.npz'),
      _case('mnist_pickle_runs_code', 'file', 'MNIST fallback pickle whose unpickling calls `os.system`',
            _mnist, 'refusing to load posix.system', out=False),
      # The inpaint API (ValueError before the jitted call).
      _case('api_uint8_images', 'API', '`inpaint(images=uint8 [0, 255])`',
            lambda ctx: _inpaint(ctx, images=zeros(2, SIZE, SIZE, 3, dtype=np.uint8)),
            'images must be floats', out=False),
      _case('api_images_out_of_range', 'API', '`inpaint(images=float [0, 255])`',
            lambda ctx: _inpaint(ctx, images=zeros(2, SIZE, SIZE, 3) + 255), 'must be in [-1, 1]',
            out=False),
      _case('api_nan_pixel', 'API', '`inpaint(images with a NaN)`',
            lambda ctx: _inpaint(ctx, images=_with_nan()), 'NaN or infinite', out=False),
      _case('api_nan_mask', 'API', '`inpaint(masks with a NaN)`',
            lambda ctx: _inpaint(ctx, masks=_with_nan()[..., :1]), 'masks hold NaN', out=False),
      _case('api_mask_image_mismatch', 'API', '`inpaint(images [2,16,16,3], masks [2,8,8,1])`',
            lambda ctx: _inpaint(ctx, masks=zeros(2, 8, 8, 1)), 'differ in batch size or spatial size',
            out=False),
      _case('api_mask_channels', 'API', '`inpaint(masks [2,16,16,3])`',
            lambda ctx: _inpaint(ctx, masks=zeros(2, SIZE, SIZE, 3)), 'masks must be [B, H, W, 1]',
            out=False),
      _case('api_wrong_resolution', 'API', '`inpaint(images [2,32,32,3])` (16 px model)',
            lambda ctx: _inpaint(ctx, images=zeros(2, 32, 32, 3), masks=zeros(2, 32, 32, 1)),
            'model works at 16x16', out=False),
      _case('api_no_batch_axis', 'API', '`inpaint(images [16,16,3])`',
            lambda ctx: _inpaint(ctx, images=zeros(SIZE, SIZE, 3), masks=zeros(SIZE, SIZE, 1)),
            'must be [B, H, W, C]', out=False),
      _case('api_key_not_a_key', 'API', '`inpaint(..., key=3)`',
            lambda ctx: _inpaint(ctx, key=3), 'key must be one PRNG key', out=False),
      _case('api_conditional_on_unconditional', 'API', '`inpaint(unconditional model, mode="conditional")`',
            lambda ctx: api(lambda: inpaint.inpaint(
                ctx.uncond_nets, None, zeros(1, SIZE, SIZE, 3), zeros(1, SIZE, SIZE, 1),
                jax.random.PRNGKey(0))), 'needs a mask-conditional model', out=False),
      _case('api_unknown_mask_family', 'API', '`eval_masks.eval_masks("stars", ...)`',
            lambda ctx: api(lambda: eval_masks.eval_masks('stars', jax.random.PRNGKey(0), 2, SIZE)),
            "unknown evaluation mask family 'stars'", out=False),
  ]


CASES: list[Case] = []  # filled by cases()


def cases() -> list[Case]:
  if not CASES:
    CASES.extend(_cases())
  return CASES


# ------------------------------------------------------------------ checks and the README

def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
  return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b'(folder)'
          for p in sorted(folder.rglob('*'))}


def problems(case: Case, outcome: Outcome, ctx: Context, before: dict | None) -> list[str]:
  """What is wrong with `outcome` (empty: the case behaves)."""
  found = []
  if case.expect not in outcome.message:
    found.append(f'expected {case.expect!r} in {outcome.message!r}')
  if '\n' in outcome.message:
    found.append('the message spans several lines')
  if outcome.exit_code is not None:
    if outcome.exit_code == 0:
      found.append('exit status 0')
    if outcome.error_lines != 1:
      found.append(f'{outcome.error_lines} error lines on stderr')
    if 'Traceback' in outcome.stderr:
      found.append('a traceback on stderr')
  if case.out and os.path.exists(ctx.p(case.out)):
    found.append(f'{case.out} was written')
  if case.unchanged and snapshot(ctx.root / case.unchanged) != before:
    found.append(f'{case.unchanged} changed')
  leftovers = [p for p in os.listdir(ctx.p('out')) if p.startswith('.')] if os.path.isdir(ctx.p('out')) else []
  if leftovers:
    found.append(f'temporary files left: {leftovers}')
  return found


def run_case(case: Case, ctx: Context) -> tuple[Outcome, list[str]]:
  before = snapshot(ctx.root / case.unchanged) if case.unchanged else None
  outcome = case.run(ctx)
  return outcome, problems(case, outcome, ctx, before)


def _cell(outcome: Outcome, ctx: Context) -> str:
  text = outcome.message.replace(str(ctx.root) + '/', '').replace(str(ctx.root), '.')
  text = re.sub(r'/tmp/[^\s/]+/', '', text).replace('|', '\\|').replace('`', "'")
  if len(text) > 300:
    text = text[:297] + '...'
  return f'`{text}`' + (f' (exit {outcome.exit_code})' if outcome.exit_code is not None else '')


def table(rows: list[tuple[Case, Outcome]], ctx: Context) -> str:
  lines = ['| boundary | input | what the user gets |', '|---|---|---|']
  lines += [f'| {c.boundary} | {c.input} | {_cell(o, ctx)} |' for c, o in rows]
  return '\n'.join(lines)


def main() -> None:
  with tempfile.TemporaryDirectory(prefix='bad_inputs_') as root:
    ctx = Context(root)
    rows, failed = [], []
    for case in cases():
      outcome, found = run_case(case, ctx)
      rows.append((case, outcome))
      if found:
        failed.append(f'{case.name}: {"; ".join(found)}')
    text = README.read_text()
    if START not in text or END not in text:
      sys.exit(f'error: {README} has no {START} ... {END} markers.')
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f'{head}{START}\n{table(rows, ctx)}\n{END}{tail}')
  print(f'{len(rows)} cases; README table rewritten.')
  if failed:
    sys.exit('error: cases that misbehave:\n' + '\n'.join(failed))


if __name__ == '__main__':
  main()
