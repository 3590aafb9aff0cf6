"""Held-out mask families: binary, deterministic per (key, index), sized sensibly, and none of
them a training generator or one of RePaint's six."""
import jax
import numpy as np
import pytest

from ddgan_jax.data import eval_masks as E, heldout_masks as H, masks as M
from ddgan_jax.evaluation import families

KEY = jax.random.PRNGKey(0)
RATIOS = {'columns': (0.5, 0.5), 'grid': (0.4375, 0.4375), 'checker': (0.5, 0.5),
          'ellipses': (0.01, 0.9), 'ring': (0.05, 0.5), 'corner': (0.25, 0.25)}


HELDOUT_JIT = jax.jit(H.heldout_masks, static_argnums=(0, 2, 3))


@pytest.fixture(scope='module')
def repaint_masks():
  """RePaint's six families' masks of KEY (16 at 32 px), drawn once for every held-out family."""
  return {name: np.asarray(E.eval_masks(name, KEY, 16, 32)) for name in M.EVAL_FAMILIES}


@pytest.mark.parametrize('family', H.HELDOUT_FAMILIES)
def test_heldout_family(family, repaint_masks):
  m = np.asarray(HELDOUT_JIT(family, KEY, 16, 32))
  assert m.shape == (16, 32, 32, 1) and m.dtype == np.float32
  assert np.all((m == 0) | (m == 1))
  r = m.mean(axis=(1, 2, 3))
  lo, hi = RATIOS[family]
  assert np.all(r >= lo - 1e-6) and np.all(r <= hi + 1e-6), (family, r.min(), r.max())
  tail = np.asarray(HELDOUT_JIT(family, KEY, 8, 32, index_offset=8))
  np.testing.assert_array_equal(m[8:], tail)
  for name, theirs in repaint_masks.items():  # none of RePaint's six
    assert not any(np.array_equal(a, b) for a in m for b in theirs), name


def test_unknown_family_and_evaluation_names():
  with pytest.raises(ValueError, match='held-out mask family'):
    H.heldout_masks('wide', KEY, 2, 32)
  assert families.ALL_FAMILIES[:6] == M.EVAL_FAMILIES
  assert set(H.HELDOUT_FAMILIES).isdisjoint(M.TRAIN_GENERATORS + M.EVAL_FAMILIES)
  masks64 = families.seeded_masks('ring', 0, 70, 32)
  assert masks64.shape == (70, 32, 32, 1)
  np.testing.assert_array_equal(masks64[:64], families.seeded_masks('ring', 0, 64, 32))
