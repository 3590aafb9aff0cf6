"""A convolution's weight gradient: XLA's own rule against `conv.weight_grad_by_matmuls`.

  python bench/conv_grad.py   # one JSON line per shape

The two are timed in alternation in one process (this machine's speed drifts), median of
--reps each; the shapes are the 3x3 convolutions of the CIFAR-10 config at batch 8 and a few
around `conv.MIN_ROWS` and `conv.MIN_CHANNEL_PRODUCT`, the thresholds `conv.conv2d_same` uses.
"""
import json
import os
import sys
import time

from absl import app, flags, logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_REPS = flags.DEFINE_integer('reps', 10, 'Timed calls of each rule per shape.')

SHAPES = [  # (batch, height, width, in, out)
    (8, 32, 32, 128, 128), (8, 32, 32, 128, 256), (8, 32, 32, 256, 256), (8, 16, 16, 256, 256),
    (8, 8, 8, 256, 256), (8, 32, 32, 64, 64), (8, 32, 32, 64, 128), (2, 32, 32, 128, 128),
    (2, 64, 64, 128, 128)]


def main(_):
  logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top
  from ddgan_jax.models import conv  # pylint: disable=g-import-not-at-top

  for b, h, w, cin, cout in SHAPES:
    kx, kg = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (b, h, w, cin))
    g = jax.random.normal(kg, (b, h, w, cout))
    kernel = jax.numpy.zeros((3, 3, cin, cout))
    rules = {
        'xla': jax.jit(lambda x_, g_: jax.vjp(lambda k_: conv.xla_conv(x_, k_), kernel)[1](g_)[0]),
        'matmuls': jax.jit(lambda x_, g_: conv.weight_grad_by_matmuls(x_, g_, 3)),
    }
    for fn in rules.values():
      jax.block_until_ready(fn(x, g))
    times = {name: [] for name in rules}
    peak = machine.matmul_gflops()  # and again after: describe(peak_before)
    for rep in range(_REPS.value):
      for name in (list(rules) if rep % 2 == 0 else list(rules)[::-1]):
        start = time.perf_counter()
        jax.block_until_ready(rules[name](x, g))
        times[name].append(time.perf_counter() - start)
    gflop = 2 * b * h * w * cin * cout * 9 / 1e9
    ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    print(json.dumps(dict(
        bench='conv_weight_grad', shape=[b, h, w, cin, cout],
        takes_matmuls=conv.matmul_weight_grad_pays((b, h, w, cin), (3, 3, cin, cout)),
        xla_ms=round(ms['xla'], 2), matmuls_ms=round(ms['matmuls'], 2),
        speedup=round(ms['xla'] / ms['matmuls'], 2),
        **_shares(machine.describe(peak_before=peak), gflop, ms))), flush=True)


def _shares(described: dict, gflop: float, ms: dict) -> dict:
  """Each rule's achieved GFLOP/s as a share of the matmul peak measured around it."""
  peak = described['matmul_gflops']
  return dict(xla_share=round(gflop / ms['xla'] * 1e3 / peak, 3),
              matmuls_share=round(gflop / ms['matmuls'] * 1e3 / peak, 3), **described)


if __name__ == '__main__':
  app.run(main)
