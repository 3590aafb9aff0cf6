"""Time-dependent DDGAN discriminators (official score_sde/models/discriminator.py), NHWC.

Both take the pair (x_t, x_{t+1}) (plus optional conditioning channels), the integer step t,
and return one logit per sample with shape [B, 1], exactly as the official modules.
Submodule and parameter names follow the official attribute names (t_embed, start_conv,
conv1..conv6, final_conv, end_linear; inside blocks conv1, conv2, dense_t1, skip).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddgan_jax.models import conv, layers

STDDEV_GROUP = 4


def _lrelu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.2)


def _conv(features: int, kernel: int, *, init_scale: float = 1.0, use_bias: bool = True,
          name: str | None = None) -> nn.Module:
  """Official dense_layer.conv2d: 'same' padding for odd kernels, fan_out uniform init."""
  if kernel == 1:
    return layers.Conv1x1(features, use_bias=use_bias, kernel_init=layers.dense_init(init_scale),
                          name=name)
  return conv.same_conv(features, kernel, use_bias=use_bias,
                        kernel_init=layers.dense_init(init_scale),
                        bias_init=nn.initializers.zeros, name=name)


def _dense(features: int, name: str | None = None) -> nn.Dense:
  """Official dense_layer.dense."""
  return nn.Dense(features, kernel_init=layers.dense_init(1.0),
                  bias_init=nn.initializers.zeros, name=name)


class TimestepEmbedding(nn.Module):
  """sinusoidal(t, dim) -> Dense -> LeakyReLU(0.2) -> Dense. t: [B] -> [B, dim]."""
  embedding_dim: int

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    temb = layers.timestep_embedding(t, self.embedding_dim)
    temb = _lrelu(_dense(self.embedding_dim, name='Dense_0')(temb))
    return _dense(self.embedding_dim, name='Dense_1')(temb)


class DownConvBlock(nn.Module):
  """Pre-activation residual block with time bias and optional FIR downsampling.

  out = conv1(act(x)) + dense_t1(temb); out = act(out); [FIR-downsample out and x];
  out = (conv2(out) + skip(x)) / sqrt(2).  x: [B, H, W, Cin], temb: [B, Dt] ->
  [B, H', W', out_ch] with H' = H/2 when downsample.
  """
  out_ch: int
  downsample: bool = False
  fir_kernel: Sequence[int] = layers.DEFAULT_FIR_KERNEL

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array) -> jax.Array:
    out = _conv(self.out_ch, 3, name='conv1')(_lrelu(x))
    out = out + _dense(self.out_ch, name='dense_t1')(temb)[:, None, None, :]
    out = _lrelu(out)
    if self.downsample:
      out = layers.downsample_2d(out, tuple(self.fir_kernel), factor=2)
      x = layers.downsample_2d(x, tuple(self.fir_kernel), factor=2)
    out = _conv(self.out_ch, 3, init_scale=0.0, name='conv2')(out)
    skip = _conv(self.out_ch, 1, use_bias=False, name='skip')(x)
    return (out + skip) / layers.SQRT2


def minibatch_stddev(x: jax.Array, group_size: int = STDDEV_GROUP) -> jax.Array:
  """Appends the official minibatch-stddev feature (1 channel).

  group = min(B, group_size); B must be divisible by it. As in the official
  `view(group, -1, ...)`, sample b is grouped with the samples b' where b' % (B/group) ==
  b % (B/group). The statistic is sqrt(var_biased + 1e-8) averaged over H, W, C.

  x: [B, H, W, C] -> [B, H, W, C + 1].
  """
  b, h, w, c = x.shape
  group = min(b, group_size)
  if b % group:
    raise ValueError(f'Minibatch stddev needs the (per-device) batch {b} to be divisible '
                     f'by the group size {group}.')
  y = x.reshape(group, b // group, h, w, c)
  std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)       # [B/group, H, W, C]
  std = jnp.mean(std, axis=(1, 2, 3))             # [B/group]
  std = jnp.tile(std, group)                      # [B], index b -> std[b % (B/group)]
  std = jnp.broadcast_to(std[:, None, None, None], (b, h, w, 1)).astype(x.dtype)
  return jnp.concatenate([x, std], axis=-1)


class _Discriminator(nn.Module):
  """Shared body; subclasses define the block layout."""
  ngf: int = 64
  t_emb_dim: int = 128
  fir_kernel: Sequence[int] = layers.DEFAULT_FIR_KERNEL
  remat: bool = False  # rematerialise each down block in the backward pass

  # (out_ch multiplier of ngf, downsample) per block, and final_conv init scale.
  def _blocks(self) -> list[tuple[int, bool]]:
    raise NotImplementedError

  def _final_init_scale(self) -> float:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, x_cond: jax.Array,
               cond: jax.Array | None = None) -> jax.Array:
    """Logits of the pair.

    Args:
      x: x_t (real) or the posterior sample (fake), [B, H, W, C].
      t: integer step index, [B].
      x_cond: x_{t+1}, [B, H, W, C].
      cond: optional extra conditioning channels [B, H, W, Cc] (inpainting).
    Returns:
      logits [B, 1].
    """
    t_embed = _lrelu(TimestepEmbedding(self.t_emb_dim, name='t_embed')(t)).astype(x.dtype)
    parts = [x, x_cond] + ([cond.astype(x.dtype)] if cond is not None else [])
    h = _conv(self.ngf * 2, 1, name='start_conv')(jnp.concatenate(parts, axis=-1))
    for k, (mult, down) in enumerate(self._blocks()):
      block = nn.remat(DownConvBlock) if self.remat else DownConvBlock
      h = block(self.ngf * mult, downsample=down, fir_kernel=tuple(self.fir_kernel),
                        name=f'conv{k + 1}')(h, t_embed)
    h = minibatch_stddev(h)
    h = _conv(self.ngf * 8, 3, init_scale=self._final_init_scale(), name='final_conv')(h)
    h = _lrelu(h)
    h = jnp.sum(h, axis=(1, 2))
    return _dense(1, name='end_linear')(h)


class DiscriminatorSmall(_Discriminator):
  """32 px discriminator: 1x1 conv to 2ngf, blocks 2ngf, 4ngf(down), 8ngf(down), 8ngf(down)."""

  def _blocks(self) -> list[tuple[int, bool]]:
    return [(2, False), (4, True), (8, True), (8, True)]

  def _final_init_scale(self) -> float:
    return 0.0


class DiscriminatorLarge(_Discriminator):
  """256 px discriminator: 1x1 conv to 2ngf, six down blocks 4ngf, 8ngf, 8ngf x 4."""

  def _blocks(self) -> list[tuple[int, bool]]:
    return [(4, True), (8, True), (8, True), (8, True), (8, True), (8, True)]

  def _final_init_scale(self) -> float:
    return 1.0
