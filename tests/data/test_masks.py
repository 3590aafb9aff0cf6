"""Inpainting masks: training generators (training_masks), evaluation families (eval_masks),
hole-ratio buckets (masks)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddgan_jax.data import eval_masks as E, heldout_masks as H, masks as M
from ddgan_jax.data import training_masks as T

# One jitted entry point per function so repeated static arguments hit the cache.
_train_jit = jax.jit(T.sample_training_masks, static_argnums=(1, 2, 3))


def _train(key, batch, size, mixture, p_uncond=0.0, index_offset=0):
  """All arguments passed explicitly (p_uncond, index_offset traced): one compile per shape."""
  return _train_jit(key, batch, size, mixture, jnp.float32(p_uncond), jnp.int32(index_offset))


_eval = jax.jit(E.eval_masks, static_argnums=(0, 2, 3))

KEY = jax.random.key(0)
KEY2 = jax.random.key(1)


def _single(name):
  return ((name, 1.0),)


def _check_binary(m, batch, size):
  m = np.asarray(m)
  assert m.shape == (batch, size, size, 1)
  assert m.dtype == np.float32
  assert np.all((m == 0) | (m == 1))


# ------------------------------------------------------------------ training generators
DEFAULT = tuple(T.DEFAULT_TRAIN_MIXTURE.items())


@pytest.fixture(scope='module')
def batches_64():
  """128 masks per generator at 64 px for keys 0 and 1 (one compile per generator)."""
  return {n: (np.asarray(_train(KEY, 128, 64, _single(n))),
              np.asarray(_train(KEY2, 128, 64, _single(n)))) for n in M.TRAIN_GENERATORS}


@pytest.fixture(scope='module')
def default_vmapped():
  """The default mixture, B = 64 at 64 px, vmapped over 4 keys under jit -> [4, 64, 64, 64, 1]."""
  keys = jnp.stack([KEY, KEY2, jax.random.key(2), jax.random.key(3)])
  return np.asarray(jax.jit(jax.vmap(lambda k: T.sample_training_masks(k, 64, 64, DEFAULT)))(keys))


@pytest.fixture(scope='module')
def helpers_32():
  """Single-mask helpers vmapped under jit over fold_in(KEY, i), i < 3, at 32 px."""
  fns = {p: (lambda k, p=p: T.lama_stroke_mask(k, 32, p)) for p in T.STROKE_PRESETS}
  fns.update(box=lambda k: T.box_mask(k, 32), brush=lambda k: T.brush_mask(k, 32),
             noise=lambda k: T.noise_mask(k, 32))
  keys = jax.vmap(lambda i: jax.random.fold_in(KEY, i))(jnp.arange(3))
  out = jax.jit(lambda ks: {n: jax.vmap(f)(ks) for n, f in fns.items()})(keys)
  return {n: np.asarray(v) for n, v in out.items()}


@pytest.mark.parametrize('name', M.TRAIN_GENERATORS)
def test_training_generator_basic_properties(name, batches_64):
  a, b = batches_64[name]
  _check_binary(a, 128, 64)
  np.testing.assert_array_equal(a, _train(KEY, 128, 64, _single(name)))  # deterministic
  assert not np.array_equal(a, b)  # key-dependent
  # Masks are neither empty nor full, and all differ within a batch.
  r = np.asarray(M.hole_ratio(a))
  assert np.all((r > 0) & (r < 1)), (r.min(), r.max())
  assert len({m.tobytes() for m in a}) == len(a)


def test_jit_vmap_over_keys_matches_unbatched(default_vmapped):
  assert default_vmapped.shape == (4, 64, 64, 64, 1)
  np.testing.assert_array_equal(default_vmapped[0], _train(KEY, 64, 64, DEFAULT))
  np.testing.assert_array_equal(default_vmapped[1], _train(KEY2, 64, 64, DEFAULT))


@pytest.mark.parametrize('name', M.TRAIN_GENERATORS)
def test_single_mask_helpers_jit_vmap(name, helpers_32):
  out = helpers_32[name]
  _check_binary(out, 3, 32)
  assert not np.array_equal(out[0], out[1])


def test_sample_index_determinism():
  """Mask b depends only on (key, index_offset + b): batches can be drawn in chunks."""
  full = _train(KEY, 64, 64, DEFAULT, 0.0, 0)
  tail = _train(KEY, 64, 64, DEFAULT, 0.0, 32)
  np.testing.assert_array_equal(full[32:], tail[:32])
  assert not np.array_equal(full[:32], tail[:32])


def test_raw_uint32_keys_work():
  raw = jax.random.PRNGKey(0)
  _check_binary(_train(raw, 4, 16, _single('box')), 4, 16)


# ---------------------------------------------------------------------- hole ratios
@pytest.fixture(scope='module')
def ratios_64(batches_64, default_vmapped):
  """Hole ratios at 64 px: 256 masks per generator, 256 of the default mixture."""
  out = {n: np.asarray(M.hole_ratio(np.concatenate(batches_64[n])))
         for n in M.TRAIN_GENERATORS}
  out['default'] = np.asarray(M.hole_ratio(default_vmapped.reshape(-1, 64, 64, 1)))
  return out


def test_hole_ratio_coverage(ratios_64):
  # Measured (key 0, 64 px): the default mixture fills buckets 0-4; medium/thin/box
  # live mostly in (0, .6], thick and brush reach (.8, 1].
  buckets = np.asarray(M.hole_ratio_bucket(ratios_64['default']))
  assert len(set(buckets.tolist())) >= 3, np.bincount(buckets + 1)
  assert buckets.min() >= 0  # no empty mask
  for name in ('thick', 'brush'):
    assert ratios_64[name].max() > 0.8, name
  for name in ('medium', 'thin', 'box'):
    assert ratios_64[name].max() < 0.8, name


def test_hole_ratio_means_ordered(ratios_64):
  # Measured means at 64 px: thick .43, brush .42, medium .29, thin .27, box .24.
  mean = {k: float(v.mean()) for k, v in ratios_64.items()}
  assert mean['thick'] > mean['medium'] + 0.05, mean
  assert mean['thick'] > mean['thin'] + 0.05, mean
  assert mean['brush'] > mean['box'] + 0.05, mean
  for v in mean.values():
    assert 0.1 < v < 0.7, mean


def test_hole_ratio_matches_numpy(batches_64):
  m = batches_64['brush'][0]
  np.testing.assert_allclose(M.hole_ratio(m), m.mean(axis=(1, 2, 3)), rtol=1e-6)


def test_hole_ratio_bucket_against_numpy():
  f32 = np.float32
  edges = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], f32)
  special = [0.0, 1e-7, 0.2, np.nextafter(f32(0.2), f32(1)), 0.4, 0.41, 0.6,
             np.nextafter(f32(0.6), f32(0)), 0.8, 0.8000001, 0.99, 1.0]
  r = np.concatenate([np.array(special, f32),
                      np.random.default_rng(0).uniform(0, 1, 1000).astype(f32),
                      (np.arange(0, 4097) / 4096).astype(f32)])
  ref = np.digitize(r, edges, right=True) - 1  # (e[i-1], e[i]] -> i - 1; 0 -> -1
  got = np.asarray(M.hole_ratio_bucket(jnp.asarray(r)))
  np.testing.assert_array_equal(got, ref)
  assert got.dtype == np.int32
  assert got[0] == -1 and got[2] == 0 and got[3] == 1 and got[-1] == 4
  assert len(M.HOLE_RATIO_BUCKETS) == 5


# ---------------------------------------------------------------- evaluation families
@pytest.fixture(scope='module')
def eval_vmapped():
  """Every family, B = 6 at 32 px, vmapped over keys (0, 1) under one jit."""
  fn = jax.jit(jax.vmap(lambda k: {f: E.eval_masks(f, k, 6, 32) for f in M.EVAL_FAMILIES}))
  keys = jnp.stack([KEY, KEY2])
  return fn, keys, {f: np.asarray(v) for f, v in fn(keys).items()}


@pytest.mark.parametrize('family', M.EVAL_FAMILIES)
def test_eval_family_basic_properties(family, eval_vmapped):
  fn, keys, out = eval_vmapped
  a, b = out[family]
  _check_binary(a, 6, 32)
  np.testing.assert_array_equal(out[family], fn(keys)[family])  # deterministic
  if family in ('wide', 'narrow', 'half'):
    assert not np.array_equal(a, b)
  else:  # fixed patterns ignore the key
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('family,preset', [('wide', 'thick'), ('narrow', 'thin')])
def test_wide_narrow_are_lama_presets(family, preset, eval_vmapped, helpers_32):
  """Eval mask i = the LaMa preset generator at fold_in(key, i); also checks jit without vmap."""
  got = np.asarray(_eval(family, KEY, 3, 32))
  np.testing.assert_array_equal(got, helpers_32[preset])
  np.testing.assert_array_equal(got, eval_vmapped[2][family][0, :3])


@pytest.mark.parametrize('size', [16, 64])
def test_fixed_families_exact(size):
  rows, cols = np.mgrid[:size, :size]
  line = np.asarray(_eval('line', KEY, 2, size))[..., 0]
  np.testing.assert_array_equal(line, np.broadcast_to(rows % 2 == 1, line.shape))
  sr2 = np.asarray(_eval('sr2', KEY, 2, size))[..., 0]
  known = (rows % 2 == 0) & (cols % 2 == 0)
  np.testing.assert_array_equal(sr2, np.broadcast_to(~known, sr2.shape))
  np.testing.assert_allclose(M.hole_ratio(sr2[..., None]), 0.75)
  expand = np.asarray(_eval('expand', KEY, 2, size))[..., 0]
  side = size // 4
  lo = (size - side) // 2  # 64 px: rows/cols 24..39 known
  centre = np.zeros((size, size), bool)
  centre[lo:lo + side, lo:lo + side] = True
  np.testing.assert_array_equal(expand, np.broadcast_to(~centre, expand.shape))
  assert (1 - expand[0]).sum() == side * side


def test_expand_256_is_central_64_square():
  m = np.asarray(E.expand_mask(256))[..., 0]
  assert (m == 0).sum() == 64 * 64
  assert np.all(m[96:160, 96:160] == 0)


def test_half_exact():
  size = 16
  h = size // 2
  sides = {0: np.s_[:, :h], 1: np.s_[:, h:], 2: np.s_[:h, :], 3: np.s_[h:, :]}
  patterns = []
  for side, sl in sides.items():
    ref = np.zeros((size, size), np.float32)
    ref[sl] = 1
    np.testing.assert_array_equal(np.asarray(E.half_mask(side, size))[..., 0], ref)
    patterns.append(ref)
  got = np.asarray(_eval('half', KEY, 16, size))[..., 0]
  np.testing.assert_allclose(M.hole_ratio(got[..., None]), 0.5)
  seen = set()
  for m in got:
    matches = [i for i, p in enumerate(patterns) if np.array_equal(m, p)]
    assert len(matches) == 1
    seen.add(matches[0])
  assert len(seen) >= 3, seen  # the key picks the side


def test_family_masks_draws_every_family_by_name():
  """The one dispatcher by name: a RePaint family, a training generator alone (a one-name
  mixture, no unconditional masks) and a held-out shape; an unknown name lists them all."""
  assert E.MASK_FAMILIES == M.EVAL_FAMILIES + M.TRAIN_GENERATORS + H.HELDOUT_FAMILIES
  offset = jnp.int32(3)
  for name, want in (('line', E.eval_masks('line', KEY, 2, 16, index_offset=offset)),
                     ('box', T.sample_training_masks(KEY, 2, 16, (('box', 1.0),), 0.0, offset)),
                     ('ring', H.heldout_masks('ring', KEY, 2, 16, index_offset=offset))):
    np.testing.assert_array_equal(E.family_masks(name, KEY, 2, 16, index_offset=offset), want)
  with pytest.raises(ValueError, match="unknown mask family 'stars'; allowed: wide, .*, corner$"):
    E.family_masks('stars', KEY, 2, 16)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize('bad', list(M.EVAL_FAMILIES) + ['foo', 'Thick'])
def test_mixture_rejects_eval_and_unknown_names(bad):
  with pytest.raises(ValueError, match='allowed training names: thick, medium, thin, box, brush'):
    T.validate_train_mixture({'medium': 1.0, bad: 1.0})
  with pytest.raises(ValueError):
    T.sample_training_masks(KEY, 2, 16, {bad: 1.0})


def test_mixture_rejects_bad_weights():
  for bad in ({'box': -1.0}, {'box': 0.0}, {}, {'box': float('nan')}):
    with pytest.raises(ValueError):
      T.validate_train_mixture(bad)
  with pytest.raises(ValueError):
    T.sample_training_masks(KEY, 2, 16, {'box': 1.0}, p_uncond=1.5)
  with pytest.raises(ValueError):
    E.eval_masks('box', KEY, 2, 16)


def test_mixture_accepts_mapping_pairs_and_configdict():
  names, probs = T.validate_train_mixture({'medium': 1, 'box': 3, 'thin': 0})
  assert names == ('medium', 'box') and probs == (0.25, 0.75)
  assert T.validate_train_mixture((('medium', 1), ('box', 3))) == (names, probs)
  ml_collections = pytest.importorskip('ml_collections')
  cd = ml_collections.ConfigDict(dict(medium=1.0, box=3.0))
  assert dict(zip(*T.validate_train_mixture(cd))) == dict(zip(names, probs))


def test_default_mixture_keeps_eval_families_unseen():
  names, _ = T.validate_train_mixture(T.DEFAULT_TRAIN_MIXTURE)
  assert set(names) <= set(M.TRAIN_GENERATORS)
  assert not set(names) & set(M.EVAL_EQUIVALENT)
  assert not set(names) & set(M.EVAL_FAMILIES)
  assert set(M.EVAL_EQUIVALENT.values()) <= set(M.EVAL_FAMILIES)


# ------------------------------------------------------------------------ p_uncond
def test_p_uncond(default_vmapped):
  full = _train(KEY, 64, 64, DEFAULT, 1.0)
  assert np.all(np.asarray(full) == 1)
  # p_uncond = 0 (the default): no all-ones mask among 256.
  assert np.all(M.hole_ratio(default_vmapped.reshape(-1, 64, 64, 1)) < 1)
  half = np.asarray(M.hole_ratio(_train(KEY, 64, 64, DEFAULT, 0.5)))
  assert 16 <= int(np.sum(half == 1)) <= 48


def test_make_training_mask_sampler():
  sampler = T.make_training_mask_sampler(4, 16, {'box': 1.0}, p_uncond=0.0)
  a = sampler(KEY)
  _check_binary(a, 4, 16)
  np.testing.assert_array_equal(a, sampler(KEY))
  with pytest.raises(ValueError):
    T.make_training_mask_sampler(4, 32, {'half': 1.0})


def test_noise_masks_cells_and_hole_ratios():
  """Pixel-noise holes: NOISE_CELL-px cells at 256 px (1 px at 32), ratios in [min_p, max_p]."""
  m256 = np.asarray(_train(KEY, 8, 256, _single('noise')))
  cells = m256.reshape(8, 32, 8, 32, 8, 1)
  assert np.all(cells.min(axis=(2, 4)) == cells.max(axis=(2, 4)))  # constant on 8x8 cells
  m32 = np.asarray(_train(KEY, 256, 32, _single('noise')))
  r = np.asarray(M.hole_ratio(m32))
  assert r.min() > T.NOISE_MIN_P - 0.08 and r.max() < T.NOISE_MAX_P + 0.08, (r.min(), r.max())
  assert r.max() - r.min() > 0.4  # p varies per mask
  # In a mixture, noise masks appear with their weight; the other generators keep their masks.
  mixed = np.asarray(_train(KEY, 64, 32, (('box', 1.0), ('noise', 1.0))))
  boxes = np.asarray(_train(KEY, 64, 32, _single('box')))
  same = np.array([np.array_equal(a, b) for a, b in zip(mixed, boxes)])
  assert 16 < same.sum() < 48
