"""Shared test fixtures.

Fake host devices must be configured before JAX initialises its backend, so the flag is
set here, at import time of the test session (8 CPU devices; tests that want one device
use a one-device mesh).
"""
import os
import pathlib
import sys
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Share compiled XLA programs between tests (and their subprocesses) that build the same step:
# set before JAX starts, since the cache is configured at the first compilation.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='ddgan_jax_cache_'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))


def _reference_dir() -> pathlib.Path:
  """DDGAN_REFERENCE_DIR if set (a folder with more official parity files), else tests/reference."""
  path = pathlib.Path(os.environ.get('DDGAN_REFERENCE_DIR', REPO_ROOT / 'tests' / 'reference'))
  if not path.is_dir():
    raise RuntimeError(
        f'Official reference files not found at {path}: set DDGAN_REFERENCE_DIR to the folder '
        'holding ddgan_schedule.json and parity_tiny_a.npz.')
  return path


@pytest.fixture(scope='session')
def reference_dir() -> pathlib.Path:
  """Folder with the facts read off the official PyTorch code (see tests/reference/README.md)."""
  return _reference_dir()


@pytest.fixture
def tiny_config():
  """A fresh configs/tiny.py config (the small unconditional model); a test may change it."""
  from configs import tiny  # pylint: disable=g-import-not-at-top
  return tiny.get_config()


@pytest.fixture
def tiny_inpaint_config():
  """A fresh configs/tiny_inpaint.py config (the small mask-conditional model); a test may
  change it."""
  from configs import tiny_inpaint  # pylint: disable=g-import-not-at-top
  return tiny_inpaint.get_config()
