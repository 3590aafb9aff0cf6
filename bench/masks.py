"""Training-mask throughput: prints one JSON line with masks/s at 32, 64 and 256 px.

  python bench/masks.py [--batch 64] [--reps 5] [--mixture medium=1,box=1,brush=1]

Times the jitted `sample_training_masks` after compilation (best of --reps calls, each
with a fresh key, blocking on the result); compile time is reported separately.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ddgan_jax.data import training_masks  # noqa: E402


def _parse_mixture(text: str) -> tuple[tuple[str, float], ...]:
  if not text:
    return tuple(training_masks.DEFAULT_TRAIN_MIXTURE.items())
  pairs = []
  for item in text.split(','):
    name, _, weight = item.partition('=')
    pairs.append((name.strip(), float(weight or 1.0)))
  return tuple(pairs)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--reps', type=int, default=5)
  parser.add_argument('--sizes', default='32,64,256')
  parser.add_argument('--mixture', default='', help='name=weight,... (default: DEFAULT_TRAIN_MIXTURE)')
  args = parser.parse_args()
  mixture = _parse_mixture(args.mixture)
  training_masks.validate_train_mixture(mixture)
  fn = jax.jit(training_masks.sample_training_masks, static_argnums=(1, 2, 3))
  key = jax.random.key(0)
  per_s, compile_s = {}, {}
  for size in (int(s) for s in args.sizes.split(',')):
    t0 = time.perf_counter()
    fn(key, args.batch, size, mixture, jnp.float32(0.0)).block_until_ready()
    compile_s[size] = round(time.perf_counter() - t0, 3)
    best = float('inf')
    for i in range(args.reps):
      k = jax.random.fold_in(key, i + 1)
      t0 = time.perf_counter()
      fn(k, args.batch, size, mixture, jnp.float32(0.0)).block_until_ready()
      best = min(best, time.perf_counter() - t0)
    per_s[size] = round(args.batch / best, 1)
  print(json.dumps({
      'bench': 'masks', 'backend': jax.default_backend(), 'device': str(jax.devices()[0]),
      'batch': args.batch, 'mixture': dict(mixture), 'masks_per_s': per_s,
      'first_call_s': compile_s}))


if __name__ == '__main__':
  main()
