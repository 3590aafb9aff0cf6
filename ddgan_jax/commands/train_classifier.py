r"""Trains the Fashion-MNIST classifier whose embedding is the domain feature network of the
realism metrics (evaluate.py --realism_features=fmnist_classifier; ddgan_jax/evaluation/classifier.py).

  python -m ddgan_jax.commands.train_classifier --output_dir=pretrained/fashion_mnist_classifier \
    [--steps=3000 --batch_size=128 --seed=0]

Reads the train split through the project's input pipeline (the data `make data` prepares),
trains with Adam, random 1 px translations and horizontal flips, reports the accuracy on the
whole test split, and writes <output_dir>/params.msgpack (flax.serialization) and a README.md
with the command, the accuracy, the file's sha256 and the architecture.
"""
import os
import sys
import time

from absl import app, flags

from ddgan_jax.platform import cli

_OUTPUT = flags.DEFINE_string('output_dir', None, 'Where to write params.msgpack and README.md.')
_STEPS = flags.DEFINE_integer('steps', 3000, 'Adam steps.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Images per step.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the init, the batch order and the augmentation.')
_LR = flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', "tfds data_dir ('' = tfds default).")
flags.mark_flags_as_required(['output_dir'])

_README = """# fashion_mnist_classifier: the domain feature network of the realism metrics

A small CNN trained by this project's own code on the Fashion-MNIST train split (60,000
images, 32x32x1 in [-1, 1], 28x28 padded), used by
`evaluate.py --realism_features=fmnist_classifier`: its 128-d embedding (the penultimate layer)
is the feature vector of KID, FID, precision/recall and density/coverage
(`ddgan_jax/evaluation/classifier.py`, `realism.py`).

* Test accuracy: **{accuracy:.4f}** on the whole test split (10,000 images), with the
  weights as saved (float16, computed in float32).
* `params.msgpack` (flax.serialization msgpack of the params): {size:,} bytes,
  sha256 `{sha256}`.
* Architecture: {arch}
* Training: {steps} Adam steps (learning rate {lr}, cosine decay to 0), batch {batch}, seed {seed}; random
  translations by up to 1 px and horizontal flips; {minutes:.1f} minutes on {machine}.

Made with:

```bash
{command}
```
"""


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _STEPS.value < 1 or _BATCH.value < 1:
    cli.fail('--steps and --batch_size must be positive.')
  cli.quiet()
  from ddgan_jax.evaluation import classifier, evaluation, machine  # JAX: after the flags (fast --help)

  data_cfg = classifier.data_config(_DATA_DIR.value)
  start = time.perf_counter()
  try:
    train_u8, train_labels = evaluation.load_labeled_images(data_cfg, 'train', -1)
    test_u8, test_labels = evaluation.load_labeled_images(data_cfg, 'test', -1)
  except (FileNotFoundError, ValueError) as e:
    cli.fail(f'{cli.first_line(e)} (prepare the data with `make data`)')
  print(f'data: {len(train_u8)} train, {len(test_u8)} test images '
        f'({time.perf_counter() - start:.0f} s)', flush=True)
  params = classifier.train(train_u8, train_labels, steps=_STEPS.value, batch_size=_BATCH.value,
                            seed=_SEED.value, learning_rate=_LR.value, log_every=250)
  minutes = (time.perf_counter() - start) / 60
  os.makedirs(_OUTPUT.value, exist_ok=True)
  path = os.path.join(_OUTPUT.value, classifier.WEIGHTS.name)
  sha256 = classifier.save(params, path)
  accuracy = float((classifier.predict(classifier.load(path)[0], test_u8) == test_labels).mean())
  flags_text = ' '.join(sys.argv[1:])
  readme = _README.format(
      accuracy=accuracy, size=os.path.getsize(path), sha256=sha256, arch=classifier.ARCHITECTURE,
      steps=_STEPS.value, lr=_LR.value, batch=_BATCH.value, seed=_SEED.value, minutes=minutes,
      machine=machine.cpu_model(), command=f'python -m ddgan_jax.commands.train_classifier {flags_text}')
  with open(os.path.join(_OUTPUT.value, 'README.md'), 'w') as f:
    f.write(readme)
  print(f'test accuracy {accuracy:.4f}; wrote {path} (sha256 {sha256}) in {minutes:.1f} min')


def run() -> None:
  """`python -m ddgan_jax.commands.train_classifier`."""
  cli.run(main, __doc__)


if __name__ == '__main__':
  run()
