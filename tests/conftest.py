"""Shared test fixtures.

Fake host devices must be configured before JAX initialises its backend, so the flag is
set here, at import time of the test session (8 CPU devices; tests that want one device
use a one-device mesh).
"""
import os
import pathlib
import sys

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))


def _reference_dir() -> pathlib.Path:
  """DDGAN_REFERENCE_DIR if set, else ../shared/reference if present, else the copy in tests/."""
  if 'DDGAN_REFERENCE_DIR' in os.environ:
    path = pathlib.Path(os.environ['DDGAN_REFERENCE_DIR'])
  else:
    shared = REPO_ROOT.parent / 'shared' / 'reference'
    path = shared if (shared / 'parity_tiny_a.npz').is_file() else REPO_ROOT / 'tests' / 'reference'
  if not path.is_dir():
    raise RuntimeError(
        f'Official reference files not found at {path}: set DDGAN_REFERENCE_DIR to the folder '
        'holding ddgan_schedule.json and parity_tiny_a.npz.')
  return path


@pytest.fixture(scope='session')
def reference_dir() -> pathlib.Path:
  """Folder with the facts read off the official PyTorch code (see tests/reference/README.md)."""
  return _reference_dir()


@pytest.fixture(autouse=True, scope='session')
def _compilation_cache(tmp_path_factory):
  """Share compiled XLA programs between tests that build the same step (faster on 2 cores)."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', str(tmp_path_factory.mktemp('jax_cache')))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  yield
