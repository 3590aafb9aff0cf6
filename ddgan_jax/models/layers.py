"""Layers and ops shared by the DDGAN generator (NCSN++) and discriminators: initializers,
FIR up/down-sampling, the time embedding, (adaptive) group norm and the 3x3 / 1x1 convs. The
generator's composite blocks built from them are in `blocks`.

Everything is NHWC: images are [B, H, W, C]. The numerics follow the official PyTorch
code (NVlabs/denoising-diffusion-gan, score_sde/models), which is NCHW; see
tests/reference/DDGAN_REFERENCE_NOTES.md for the facts reproduced here.

Parameter names here and in `blocks` (GroupNorm_0, Conv_0, Dense_0, NIN_0, style, W, b, ...)
follow the official module attribute names so that checkpoint conversion is a mechanical
renaming.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddgan_jax.models import conv

Initializer = Callable[..., jax.Array]
FirKernel = Sequence[int]

DEFAULT_FIR_KERNEL = (1, 3, 3, 1)


# ----------------------------------------------------------------------------- initializers

def default_init(scale: float = 1.0) -> Initializer:
  """DDPM / score_sde initializer: uniform with variance scale / fan_avg.

  Fans are JAX-style (receptive field included): for a conv kernel [kh, kw, in, out]
  fan_in = in*kh*kw and fan_out = out*kh*kw. A scale of 0 becomes 1e-10 (tiny, not zero).
  Being symmetric in the fans, it also fits the NIN weight W [in, out].
  """
  scale = 1e-10 if scale == 0 else scale
  return nn.initializers.variance_scaling(scale, 'fan_avg', 'uniform')


def dense_init(scale: float = 1.0) -> Initializer:
  """Initializer of the official `dense_layer.dense/conv2d` (D, z mapping, AdaGN style).

  The official code asks for 'fan_avg' but its helper returns fan_out for every mode other
  than 'fan_in', so the bound is sqrt(3 * scale / fan_out), fan_out = out * kh * kw.
  """
  scale = 1e-10 if scale == 0 else scale
  return nn.initializers.variance_scaling(scale, 'fan_out', 'uniform')


# ----------------------------------------------------------------------------- FIR resampling

# A Python float (weakly typed), so bfloat16 activations stay bfloat16 (np.sqrt(2.0) is a
# float64 scalar, which would promote them to float32); same float32 value as before.
SQRT2 = math.sqrt(2.0)


def setup_kernel(k: FirKernel) -> np.ndarray:
  """1-D FIR taps -> normalised 2-D kernel (outer product divided by its sum). [K, K] float32."""
  k = np.asarray(k, dtype=np.float32)
  if k.ndim == 1:
    k = np.outer(k, k)
  k = k / np.sum(k)
  if k.ndim != 2 or k.shape[0] != k.shape[1]:
    raise ValueError(f'FIR kernel must be square, got shape {k.shape}.')
  return k.astype(np.float32)


def upfirdn2d(x: jax.Array, kernel: np.ndarray, *, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> jax.Array:
  """Upsample (zero insertion), pad, FIR filter and downsample, per channel.

  Same as the official `upfirdn2d_native` with identical x/y factors and pads: every input
  sample is followed by up-1 zeros, the result is padded by pad[0] before and pad[1] after,
  convolved with the (flipped) kernel and subsampled with stride `down`.

  Args:
    x: [B, H, W, C].
    kernel: [K, K] numpy array.
    up, down: integer factors.
    pad: (before, after) padding, >= 0, applied to both spatial axes.
  Returns:
    [B, (H*up + pad0 + pad1 - K)//down + 1, (same for W), C].

  Its gradient is the adjoint FIR (flipped kernel, up and down swapped, as the official
  upfirdn2d's backward computes it), built from slices like the forward. Left to autodiff,
  every strided slice became a padded full-size copy: 16 per call, ~15% of a CIFAR-10 step.
  """
  if min(pad) < 0:
    raise ValueError(f'Negative FIR padding is not supported: {pad}.')
  taps = tuple(map(tuple, np.asarray(kernel, dtype=np.float32).tolist()))  # hashable, exact
  return _upfirdn2d_vjp(x, taps, up, down, tuple(pad))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _upfirdn2d_vjp(x, taps: tuple, up: int, down: int, pad: tuple[int, int]):
  return _upfirdn2d(x, np.asarray(taps, np.float32), up, down, pad)


def _upfirdn2d_fwd(x, taps, up, down, pad):
  return _upfirdn2d_vjp(x, taps, up, down, pad), x.shape


def _upfirdn2d_bwd(taps, up, down, pad, in_shape, g):
  # The official upfirdn2d backward's pads. A negative one becomes a crop: at the end, 0;
  # at the front, whole output rows more (q of them, dropped after).
  _, h, w, _ = in_shape
  pad0 = len(taps) - pad[0] - 1
  pad1 = max(0, *(n * up - g.shape[axis] * down + pad[0] - up + 1
                  for axis, n in ((1, h), (2, w))))
  q = -(pad0 // up) if pad0 < 0 else 0
  flipped = tuple(row[::-1] for row in taps[::-1])
  grad = _upfirdn2d_vjp(g, flipped, down, up, (pad0 + q * up, pad1))
  return (grad[:, q:q + h, q:q + w],)


_upfirdn2d_vjp.defvjp(_upfirdn2d_fwd, _upfirdn2d_bwd)


def _upfirdn2d(x: jax.Array, kernel: np.ndarray, up: int, down: int,
               pad: tuple[int, int]) -> jax.Array:
  """upfirdn2d's forward computation (no gradient rule of its own)."""
  # True convolution = cross-correlation with the flipped kernel. Both paths below are sums
  # of shifted (strided) slices, which XLA fuses into one elementwise loop; a depthwise
  # lax.conv with lhs_dilation was ~100x slower on CPU.
  taps = np.asarray(kernel, dtype=np.float64)[::-1, ::-1]
  b, h, w, c = x.shape
  k = taps.shape[0]
  out_h, out_w = (h * up + pad[0] + pad[1] - k) // down + 1, (w * up + pad[0] + pad[1] - k) // down + 1
  if up > 1 and down == 1 and out_h % up == 0 and out_w % up == 0:
    return _upfir_polyphase(x, taps, up, pad[0], out_h // up, out_w // up)
  if up > 1:  # every sample followed by up-1 zeros
    x = x.reshape(b, h, 1, w, 1, c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, up - 1), (0, 0), (0, up - 1), (0, 0)))
    x = x.reshape(b, h * up, w * up, c)
  x = jnp.pad(x, ((0, 0), tuple(pad), tuple(pad), (0, 0)))
  return _weighted_slices(x, [((i, j), taps[i, j]) for i in range(k) for j in range(k)],
                          out_h, out_w, down)


def _weighted_slices(x: jax.Array, terms, out_h: int, out_w: int, stride: int) -> jax.Array:
  """sum_t weight_t * x[:, i_t + stride * r, j_t + stride * s, :] over r < out_h, s < out_w."""
  b, _, _, c = x.shape
  out = None
  for (i, j), weight in terms:
    if weight == 0:
      continue
    window = jax.lax.slice(x, (0, i, j, 0),
                           (b, i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1, c),
                           (1, stride, stride, 1))
    term = window * jnp.asarray(weight, x.dtype)
    out = term if out is None else out + term
  if out is None:
    return jnp.zeros((b, out_h, out_w, c), x.dtype)
  return out


def _upfir_polyphase(x: jax.Array, taps: np.ndarray, up: int, pad0: int, m_h: int,
                     m_w: int) -> jax.Array:
  """Zero insertion + FIR without the zeros: output phase (r, s) only sees taps i with
  (r + i - pad0) % up == 0, applied to x at offset (r + i - pad0) // up. [B, m*up, m*up, C]."""
  b, h, w, c = x.shape
  k = taps.shape[0]
  offsets = {r: [(i, (r + i - pad0) // up) for i in range(k) if (r + i - pad0) % up == 0]
             for r in range(up)}
  all_d = [d for r in offsets for _, d in offsets[r]]
  lo = max(0, -min(all_d))
  x = jnp.pad(x, ((0, 0), (lo, max(0, max(all_d) + m_h - h)), (lo, max(0, max(all_d) + m_w - w)),
                  (0, 0)))
  rows = []
  for r in range(up):
    cols = []
    for s in range(up):
      terms = [((di + lo, dj + lo), taps[i, j]) for i, di in offsets[r] for j, dj in offsets[s]]
      cols.append(_weighted_slices(x, terms, m_h, m_w, 1))
    rows.append(jnp.stack(cols, axis=3))  # [B, m_h, m_w, up(s), C]
  out = jnp.stack(rows, axis=2)  # [B, m_h, up(r), m_w, up(s), C]
  return out.reshape(b, m_h * up, m_w * up, c)


def upsample_2d(x: jax.Array, k: FirKernel = DEFAULT_FIR_KERNEL, factor: int = 2) -> jax.Array:
  """FIR upsampling [B, H, W, C] -> [B, H*factor, W*factor, C] (kernel gain factor**2)."""
  kernel = setup_kernel(k) * (factor ** 2)
  p = kernel.shape[0] - factor
  return upfirdn2d(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x: jax.Array, k: FirKernel = DEFAULT_FIR_KERNEL, factor: int = 2) -> jax.Array:
  """FIR downsampling [B, H, W, C] -> [B, H//factor, W//factor, C]."""
  kernel = setup_kernel(k)
  p = kernel.shape[0] - factor
  return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))


def conv_downsample_2d(x: jax.Array, w: jax.Array, k: FirKernel = DEFAULT_FIR_KERNEL,
                       factor: int = 2) -> jax.Array:
  """FIR filter then strided conv (the official fused `conv_downsample_2d`), no bias.

  Args:
    x: [B, H, W, Cin].
    w: conv kernel [kh, kw, Cin, Cout] (HWIO), kh == kw.
  Returns:
    [B, H//factor, W//factor, Cout].
  """
  conv_k = w.shape[0]
  kernel = setup_kernel(k)
  p = (kernel.shape[0] - factor) + (conv_k - 1)
  x = upfirdn2d(x, kernel, pad=((p + 1) // 2, p // 2))
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(factor, factor), padding='VALID',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def naive_upsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling [B, H, W, C] -> [B, H*factor, W*factor, C]."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def naive_downsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
  """Average pooling [B, H, W, C] -> [B, H//factor, W//factor, C]."""
  b, h, w, c = x.shape
  return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


# ----------------------------------------------------------------------------- embeddings

def timestep_embedding(timesteps: jax.Array, embedding_dim: int,
                       max_positions: int = 10000) -> jax.Array:
  """Sinusoidal embedding of raw (unscaled) time indices, [sin | cos] layout.

  Args:
    timesteps: [B] integer or float time indices.
    embedding_dim: output width D.
  Returns:
    [B, D] float32 (zero padded in the last column when D is odd).
  """
  if timesteps.ndim != 1:
    raise ValueError(f'timesteps must be [B], got shape {timesteps.shape}.')
  half_dim = embedding_dim // 2
  scale = math.log(max_positions) / (half_dim - 1)
  freqs = jnp.exp(jnp.arange(half_dim, dtype=jnp.float32) * -scale)
  args = timesteps.astype(jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=1)
  if embedding_dim % 2 == 1:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


# ----------------------------------------------------------------------------- normalisation

def group_norm(x: jax.Array, num_groups: int, eps: float = 1e-6, *,
               scale: jax.Array | None = None, bias: jax.Array | None = None) -> jax.Array:
  """Group normalisation, groups being contiguous channel blocks, then `* scale + bias`.

  Uses the two-pass (biased) variance like torch.nn.GroupNorm. x: [B, H, W, C] -> same;
  scale, bias: [C] or [B, C] (per example, as AdaGN's style gives them), or None.
  Statistics are computed in float32 also for bfloat16 x (the result has x's dtype).

  Written for XLA:CPU, where these loops cost as much as the convolutions on small configs:
  * each statistic is a mean over the spatial axes per channel (contiguous rows), then a mean
    over the channels of a group, not a reduction of a [B, H, W, G, C/G] view (3.5x slower);
  * group values return to channels through a 0/1 matrix product, so the per-pixel loops read
    a contiguous [B, C] row instead of computing a channel's group per element (which kept
    the loop from vectorising: 2 ns against 0.4 ns per element);
  * normalisation and affine terms fold into one per-channel multiply-add, x * a + b, so the
    centred x feeds only the variance and is not written out.
  """
  b, h, w, c = x.shape
  if c % num_groups:
    raise ValueError(f'{c} channels are not divisible into {num_groups} groups.')
  size = c // num_groups
  expand = np.kron(np.eye(num_groups, dtype=np.float32), np.ones((1, size), np.float32))

  def group_mean(v: jax.Array) -> jax.Array:  # [B, H, W, C] -> [B, C], each group's mean
    means = v.mean(axis=(1, 2)).reshape(b, num_groups, size).mean(axis=2)
    return jnp.dot(means, expand, precision=jax.lax.Precision.HIGHEST)  # exact: one 1.0 each

  xf = x.astype(jnp.float32)
  mean = group_mean(xf)
  a = jax.lax.rsqrt(group_mean(jnp.square(xf - mean[:, None, None, :])) + eps)
  if scale is not None:
    a = a * scale
  shift = -mean * a if bias is None else bias - mean * a
  return (xf * a[:, None, None, :] + shift[:, None, None, :]).astype(x.dtype)


def num_groups_for(channels: int) -> int:
  """Group count used throughout NCSN++: min(C // 4, 32)."""
  return min(channels // 4, 32)


class GroupNorm(nn.Module):
  """GroupNorm with affine scale/bias (torch defaults 1 and 0). [B, H, W, C] -> same."""
  num_groups: int
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    return group_norm(x, self.num_groups, self.eps, scale=scale, bias=bias)


class PixelNorm(nn.Module):
  """z / sqrt(mean(z^2) + 1e-8) over the feature axis. [B, D] -> [B, D]."""

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=1, keepdims=True) + 1e-8)


def _style_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """Bias of the AdaGN style layer: 1 for the gamma half, 0 for the beta half."""
  del key
  half = shape[0] // 2
  return jnp.concatenate([jnp.ones((half,), dtype), jnp.zeros((shape[0] - half,), dtype)])


class AdaptiveGroupNorm(nn.Module):
  """GroupNorm (no affine, eps 1e-6) modulated by a style vector.

  [gamma | beta] = style(z_emb) (Dense to 2C); out = gamma * norm(x) + beta.
  x: [B, H, W, C], style: [B, S] -> [B, H, W, C].
  """
  num_groups: int
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, style: jax.Array) -> jax.Array:
    c = x.shape[-1]
    s = nn.Dense(2 * c, kernel_init=dense_init(1.0), bias_init=_style_bias_init,
                 name='style')(style)
    return group_norm(x, self.num_groups, self.eps, scale=s[:, :c], bias=s[:, c:])


# ----------------------------------------------------------------------------- convolutions

def conv3x3(features: int, init_scale: float = 1.0, name: str | None = None) -> nn.Conv:
  """3x3 conv, stride 1, zero padding 1, DDPM init, zero bias."""
  return conv.same_conv(features, 3, kernel_init=default_init(init_scale),
                        bias_init=nn.initializers.zeros, name=name)


class Conv1x1(nn.Module):
  """A 1x1 convolution computed as a matrix product over the channel axis.

  Same parameters as nn.Conv(features, (1, 1)) ('kernel' [1, 1, in, out], 'bias' [out]), so
  checkpoints and converted weights are unchanged; XLA:CPU ran the product at twice the speed
  of the 1x1 convolution (e.g. 470 against 207 GFLOP/s at [8, 32, 32, 256] -> 256).
  x: [B, H, W, Cin] -> [B, H, W, features].
  """
  features: int
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init, (1, 1, x.shape[-1], self.features))
    y = jnp.einsum('bhwc,cd->bhwd', x, kernel[0, 0])
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y


def conv1x1(features: int, init_scale: float = 1.0, name: str | None = None) -> Conv1x1:
  """1x1 conv with DDPM init and zero bias."""
  return Conv1x1(features, kernel_init=default_init(init_scale), name=name)
