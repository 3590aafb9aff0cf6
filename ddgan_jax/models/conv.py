"""Stride-1 'same' convolutions whose weight gradient XLA:CPU gets as matrix products.

XLA:CPU computes a convolution's weight gradient (a contraction over batch and pixels) several
times slower than the forward convolution or the input gradient once batch x pixels is large:
50-75 GFLOP/s against 250-290 at [8, 32, 32, 128] -> 128 on a 2-core Xeon whose float32 matmul
peak read ~300. Written as k*k matrix products of the transposed output gradient with shifted
views of the input, it ran 1.5-2.1x faster at those shapes (`bench/conv_grad.py` times both).
Where it did not pay (few pixels or channels) and on other platforms, XLA's own rule stays. The
forward and the input gradient are XLA's in every case; only the summation order of the weight
gradient differs.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# The matrix products pay from this many rows (batch x height x width) and in x out channels.
MIN_ROWS = 4096
MIN_CHANNEL_PRODUCT = 64 * 128


def xla_conv(x: jax.Array, w: jax.Array) -> jax.Array:
  """Stride 1, zero 'same' padding. x [B, H, W, Cin], w [k, k, Cin, Cout] (odd k)."""
  p = w.shape[0] // 2
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((p, p), (p, p)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def matmul_weight_grad_pays(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> bool:
  b, h, w, _ = x_shape
  return b * h * w >= MIN_ROWS and w_shape[2] * w_shape[3] >= MIN_CHANNEL_PRODUCT


def conv2d_same(x: jax.Array, w: jax.Array) -> jax.Array:
  """`xla_conv(x, w)`, with the weight gradient as matrix products on CPU where that pays."""
  if w.shape[0] != w.shape[1] or w.shape[0] % 2 != 1:
    raise ValueError(f'conv2d_same takes square odd kernels, got {w.shape[:2]}')
  if matmul_weight_grad_pays(x.shape, w.shape):
    return _conv_matmul_weight_grad(x, w)
  return xla_conv(x, w)


def weight_grad_by_matmuls(x: jax.Array, g: jax.Array, k: int) -> jax.Array:
  """d(sum(g * xla_conv(x, w)))/dw, [k, k, Cin, Cout], as k*k products [Cout, N] @ [N, Cin]."""
  b, h, w, cin = x.shape
  cout = g.shape[-1]
  p = k // 2
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  g_t = g.reshape(-1, cout).T  # transposed once, so each product is a plain row-major one
  taps = [g_t @ xp[:, i:i + h, j:j + w].reshape(-1, cin) for i in range(k) for j in range(k)]
  return jnp.stack(taps).reshape(k, k, cout, cin).transpose(0, 1, 3, 2)


@jax.custom_vjp
def _conv_matmul_weight_grad(x: jax.Array, w: jax.Array) -> jax.Array:
  return xla_conv(x, w)


def _fwd(x, w):
  return xla_conv(x, w), (x, w)


def _bwd(res, g):
  x, w = res
  dx = jax.vjp(lambda x_: xla_conv(x_, w), x)[1](g)[0]

  def xla_rule(x_, g_):
    return jax.vjp(lambda w_: xla_conv(x_, w_), w)[1](g_)[0]

  def matmuls(x_, g_):
    return weight_grad_by_matmuls(x_, g_, w.shape[0]).astype(w.dtype)

  dw = jax.lax.platform_dependent(x, g, cpu=matmuls, default=xla_rule)
  return dx, dw


_conv_matmul_weight_grad.defvjp(_fwd, _bwd)


_NHWC = ('NHWC', 'HWIO', 'NHWC')


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None):
  """`lax.conv_general_dilated` for nn.Conv's `conv_general_dilated` hook: a stride-1, 'same',
  undilated, ungrouped NHWC convolution with a square odd kernel goes through `conv2d_same`,
  anything else to lax unchanged."""
  k = rhs.shape[0]
  same = (rhs.ndim == 4 and k == rhs.shape[1] and k % 2 == 1
          and tuple(map(tuple, padding)) == ((k // 2, k // 2),) * 2)
  plain = (tuple(window_strides) == (1, 1) and feature_group_count == 1 and precision is None
           and all(d is None or tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation)))
  if same and plain and jax.lax.conv_dimension_numbers(
      lhs.shape, rhs.shape, dimension_numbers) == jax.lax.conv_dimension_numbers(
          lhs.shape, rhs.shape, _NHWC):
    return conv2d_same(lhs, rhs)
  return jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
      precision=precision)


def same_conv(features: int, kernel: int = 3, **kwargs) -> nn.Conv:
  """nn.Conv(features, (kernel, kernel)), stride 1, zero 'same' padding, on `conv2d_same`."""
  p = kernel // 2
  return nn.Conv(features, (kernel, kernel), padding=((p, p), (p, p)),
                 conv_general_dilated=conv_general_dilated, **kwargs)
