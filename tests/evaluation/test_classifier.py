"""The Fashion-MNIST classifier of the realism metrics: its features, its training step, the
shipped weights, the feature network's cache key and its refusal of other data."""
import ast
import hashlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.evaluation import classifier, evaluation, realism
from ddgan_jax.platform import cli

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def shipped():
  params, digest = classifier.load()
  return params, digest


def test_classifier_features_shape_and_dtype():
  params = classifier.init_params(0)
  fn = realism.BatchedFeatures(classifier.features_fn(params), classifier.EMBED_DIM, batch_size=4)
  images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)
  feats = fn(images)  # Two chunks: 4, then 1 padded to 1.
  assert feats.shape == (5, classifier.EMBED_DIM) and feats.dtype == np.float64
  assert np.all(np.isfinite(feats)) and np.all(feats >= 0)  # A ReLU layer.
  np.testing.assert_allclose(fn(images[4:]), feats[4:], rtol=1e-5, atol=1e-6)
  assert fn(images[:0]).shape == (0, classifier.EMBED_DIM)


def test_a_few_training_steps_lower_the_loss():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, classifier.NUM_CLASSES, 16)
  # Separable synthetic classes: a bright square whose position is the label.
  images = -np.ones((16, 32, 32, 1), np.float32)
  for i, c in enumerate(labels):
    r, q = divmod(int(c), 5)
    images[i, 4 + 12 * r:12 + 12 * r, 2 + 6 * q:7 + 6 * q] = 1.0
  x, y = jnp.asarray(images), jnp.asarray(labels)
  tx = classifier.optimizer(3e-3)
  params = classifier.init_params(0)
  opt_state = tx.init(params)
  before = float(classifier.loss_fn(params, x, y))
  for step in range(6):
    params, opt_state, _ = classifier.train_step(params, opt_state, x, y,
                                                 jax.random.PRNGKey(step), tx, augmented=False)
  assert float(classifier.loss_fn(params, x, y)) < 0.8 * before


def test_augment_translates_and_flips_within_the_image():
  x = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (6, 8, 8, 1)).astype(np.float32))
  out = classifier.augment(x, jax.random.PRNGKey(0))
  assert out.shape == x.shape and float(out.min()) >= -1.0 and float(out.max()) <= 1.0


def test_shipped_weights_classify_fashion_mnist_test_images(shipped):
  params, digest = shipped
  with open(classifier.WEIGHTS, 'rb') as f:
    assert hashlib.sha256(f.read()).hexdigest() == digest
  assert classifier.WEIGHTS.stat().st_size < 600_000  # A few hundred KB.
  assert digest in (classifier.WEIGHTS_DIR / 'README.md').read_text()
  images, labels = evaluation.load_labeled_images(classifier.data_config(), 'test', 200)
  assert images.shape == (200, 32, 32, 1) and images.dtype == np.uint8
  accuracy = float((classifier.predict(params, images) == labels).mean())
  assert accuracy >= 0.85, accuracy


def test_the_cache_key_differs_by_feature_network(shipped, tmp_path):
  _, digest = shipped
  fn, version = realism.feature_network('fmnist_classifier', 'fashion_mnist', 32, 1)
  assert version != realism.FEATURE_VERSION and digest[:12] in version
  data_cfg = classifier.data_config()
  images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
  fake_alexnet = (lambda x: np.zeros((len(x), 3)), realism.FEATURE_VERSION)
  ours = evaluation._realism_reference(images, data_cfg, 'test', 32, str(tmp_path), (fn, version))
  theirs = evaluation._realism_reference(images, data_cfg, 'test', 32, str(tmp_path),
                                         fake_alexnet)
  assert ours.cache_file != theirs.cache_file and ours.version == version
  assert ours.ref_feats.shape == (4, classifier.EMBED_DIM)
  settings = realism.settings(4, ours.cache_file, 3, ours.version)
  assert settings['features'] == version


@pytest.mark.parametrize('dataset, size, channels', [
    ('cifar10', 32, 3), ('fashion_mnist', 16, 1), ('mnist', 32, 1), ('folder', 32, 1)])
def test_the_classifier_refuses_other_data_in_one_line(dataset, size, channels):
  with pytest.raises(cli.InputError) as e:
    realism.feature_network('fmnist_classifier', dataset, size, channels)
  message = str(e.value)
  assert '\n' not in message and repr(dataset) in message
  assert f'{size}x{size}x{channels}' in message and '--realism_features=alexnet' in message
  with pytest.raises(cli.InputError, match='unknown realism features'):
    realism.feature_network('inception', 'fashion_mnist', 32, 1)


def test_the_evaluate_flag_offers_every_feature_network():
  # Read off the command's source: importing it would define its absl flags in this process.
  tree = ast.parse((REPO / 'ddgan_jax' / 'commands' / 'evaluate.py').read_text())
  calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args
           and isinstance(n.args[0], ast.Constant) and n.args[0].value == 'realism_features']
  assert len(calls) == 1 and calls[0].args[1].value == 'alexnet'  # Today's default.
  assert tuple(ast.literal_eval(calls[0].args[2])) == realism.FEATURE_NETWORKS
