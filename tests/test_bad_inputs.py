"""Bad input at every public boundary (docs/bad_inputs.py holds the cases, the README its table).

Each case must give one line that names the problem (the expected part of the message), a
non-zero exit status and no traceback for CLIs, and write nothing. Plus the untrusted-file
readers on their own: the numpy-only unpickler and torch.load(weights_only=True).
"""
import importlib.util
import io
import os
import pickle
import sys
import types

import numpy as np
import pytest

from ddgan_jax import config_checks
from ddgan_jax.data import names
from ddgan_jax.models import convert
from ddgan_jax.data.datasets import numpy_pickle

_SPEC = importlib.util.spec_from_file_location(
    'bad_inputs', os.path.join(os.path.dirname(__file__), '..', 'docs', 'bad_inputs.py'))
bad_inputs = importlib.util.module_from_spec(_SPEC)
sys.modules['bad_inputs'] = bad_inputs  # (dataclasses look their module up)
_SPEC.loader.exec_module(bad_inputs)


@pytest.fixture(scope='module')
def ctx(tmp_path_factory):
  yield bad_inputs.Context(str(tmp_path_factory.mktemp('bad_inputs')))
  bad_inputs.release_flags()  # later test modules load train.py / sample.py themselves


def test_at_least_25_cases_over_every_boundary():
  cases = bad_inputs.cases()
  assert len(cases) >= 25
  assert len({c.name for c in cases}) == len(cases)
  assert {c.boundary for c in cases} == {'CLI', 'API', 'config', 'data', 'file', 'checkpoint'}


def _param(case):
  """The cases that run a real `python <cli>` subprocess are slow (interpreter and JAX start-up)."""
  return pytest.param(case, marks=pytest.mark.slow) if '(subprocess)' in case.input else case


@pytest.mark.parametrize('case', [_param(c) for c in bad_inputs.cases()], ids=lambda c: c.name)
def test_bad_input(case, ctx):
  outcome, found = bad_inputs.run_case(case, ctx)
  assert not found, (found, outcome)


def test_readme_table_lists_every_case():
  text = bad_inputs.README.read_text()
  table = text.split(bad_inputs.START, 1)[1].split(bad_inputs.END, 1)[0]
  for case in bad_inputs.cases():
    assert f'| {case.boundary} | {case.input} |' in table, case.name


def test_dataset_names_match_the_sources():
  from ddgan_jax.data.datasets import sources  # pylint: disable=g-import-not-at-top  (TensorFlow)
  assert set(names.DATASET_NAMES) == set(sources.DATASETS)


def test_every_shipped_config_passes():
  import glob  # pylint: disable=g-import-not-at-top
  for path in glob.glob(os.path.join(bad_inputs.REPO, 'configs', '*.py')):
    name = os.path.basename(path)[:-3]
    if name != '__init__':
      config_checks.check_config(importlib.import_module(f'configs.{name}').get_config())


def test_numpy_pickle_reads_arrays_and_refuses_code(tmp_path):
  arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])), [np.uint8(7)])
  for protocol in (2, 5):
    back = numpy_pickle.load(io.BytesIO(pickle.dumps(arrays, protocol=protocol)))
    np.testing.assert_array_equal(back[0][0], arrays[0][0])
    assert back[1][0] == 7
  marker = tmp_path / 'ran'

  class Evil:
    def __reduce__(self):
      return (os.system, (f'touch {marker}',))

  with pytest.raises(numpy_pickle.UnsafePickleError, match='refusing to load'):
    numpy_pickle.load(io.BytesIO(pickle.dumps([np.zeros(2), Evil()])))
  assert not marker.exists()


def test_converter_loads_pth_with_weights_only(tmp_path, monkeypatch):
  """torch is not installed here: a stand-in records how torch.load is called."""
  calls = []

  def load(path, **kwargs):
    calls.append(kwargs)
    if kwargs.get('weights_only') is not True:
      raise AssertionError('torch.load without weights_only=True')
    if 'evil' in str(path):
      raise pickle.UnpicklingError('Weights only load failed: unsupported global posix.system')
    return {'w': np.zeros(2)}

  fake = types.SimpleNamespace(load=load, serialization=types.SimpleNamespace())
  monkeypatch.setitem(sys.modules, 'torch', fake)
  state = convert._torch_load('netG.pth')  # pylint: disable=protected-access
  np.testing.assert_array_equal(state['w'], np.zeros(2))
  assert calls[-1]['weights_only'] is True
  with pytest.raises(ValueError, match='holds more than tensors'):
    convert._torch_load(str(tmp_path / 'evil.pth'))  # pylint: disable=protected-access
  fake.serialization.safe_globals = lambda classes: _Nothing()  # torch >= 2.5
  convert._torch_load('netG.pth')  # pylint: disable=protected-access
  assert calls[-1]['weights_only'] is True and len(calls) == 3


class _Nothing:
  def __enter__(self):
    return self

  def __exit__(self, *args):
    return False
