"""The NCSN++ generator's blocks (official score_sde/models/layerspp.py), built from `layers`:
the BigGAN residual block with AdaptiveGroupNorm, self-attention with its NIN projections, and
the FIR + strided conv of the input pyramid. NHWC, like `layers`.

Submodule and parameter names (GroupNorm_0, Conv_0, Dense_0, NIN_0, W, b, ...) follow the
official module attribute names so that checkpoint conversion is a mechanical renaming.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddgan_jax.models import layers


class NIN(nn.Module):
  """Per-pixel linear layer y = x @ W + b; W is [in, out]. [B, H, W, Cin] -> [B, H, W, out]."""
  features: int
  init_scale: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('W', layers.default_init(self.init_scale), (x.shape[-1], self.features))
    b = self.param('b', nn.initializers.zeros, (self.features,))
    return jnp.einsum('bhwc,cd->bhwd', x, w) + b


class Downsample(nn.Module):
  """FIR + strided 3x3 conv with bias (progressive_input='residual' pyramid).

  [B, H, W, Cin] -> [B, H/2, W/2, features].
  """
  features: int
  fir_kernel: layers.FirKernel = layers.DEFAULT_FIR_KERNEL

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('kernel', layers.default_init(1.0), (3, 3, x.shape[-1], self.features))
    b = self.param('bias', nn.initializers.zeros, (self.features,))
    return layers.conv_downsample_2d(x, w, self.fir_kernel, factor=2) + b


class AttnBlock(nn.Module):
  """Self-attention over all H*W positions (official AttnBlockpp). [B, H, W, C] -> same."""
  skip_rescale: bool = True
  init_scale: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, height, width, c = x.shape
    h = layers.GroupNorm(layers.num_groups_for(c), name='GroupNorm_0')(x)
    q = NIN(c, name='NIN_0')(h)
    k = NIN(c, name='NIN_1')(h)
    v = NIN(c, name='NIN_2')(h)
    w = jnp.einsum('bhwc,bijc->bhwij', q, k) * (int(c) ** (-0.5))
    w = jax.nn.softmax(w.reshape(b, height, width, height * width).astype(jnp.float32), axis=-1)
    w = w.reshape(b, height, width, height, width).astype(h.dtype)
    h = jnp.einsum('bhwij,bijc->bhwc', w, v)
    h = NIN(c, init_scale=self.init_scale, name='NIN_3')(h)
    return (x + h) / layers.SQRT2 if self.skip_rescale else x + h


class ResnetBlockBigGAN(nn.Module):
  """BigGAN-style residual block with AdaptiveGroupNorm (official ResnetBlockBigGANpp_Adagn).

  h = SiLU(AdaGN_0(x, z)); optional FIR up/down of h and x; h = Conv_0(h) + Dense_0(SiLU(temb));
  h = Conv_1(Dropout(SiLU(AdaGN_1(h, z)))); x = Conv_2(x) (1x1) when the shape changes;
  out = (x + h) / sqrt(2) with skip_rescale.

  x: [B, H, W, Cin], temb: [B, Dt] or None, zemb: [B, Dz] -> [B, H', W', out_ch].
  """
  out_ch: int | None = None
  up: bool = False
  down: bool = False
  dropout: float = 0.0
  fir: bool = True
  fir_kernel: layers.FirKernel = layers.DEFAULT_FIR_KERNEL
  skip_rescale: bool = True
  init_scale: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array | None, zemb: jax.Array,
               train: bool = False) -> jax.Array:
    in_ch = x.shape[-1]
    out_ch = self.out_ch or in_ch
    norm_0 = layers.AdaptiveGroupNorm(layers.num_groups_for(in_ch), name='GroupNorm_0')
    h = nn.silu(norm_0(x, zemb))
    if self.up:
      if self.fir:
        h = layers.upsample_2d(h, self.fir_kernel, factor=2)
        x = layers.upsample_2d(x, self.fir_kernel, factor=2)
      else:
        h = layers.naive_upsample_2d(h, factor=2)
        x = layers.naive_upsample_2d(x, factor=2)
    elif self.down:
      if self.fir:
        h = layers.downsample_2d(h, self.fir_kernel, factor=2)
        x = layers.downsample_2d(x, self.fir_kernel, factor=2)
      else:
        h = layers.naive_downsample_2d(h, factor=2)
        x = layers.naive_downsample_2d(x, factor=2)
    h = layers.conv3x3(out_ch, name='Conv_0')(h)
    if temb is not None:
      h = h + nn.Dense(out_ch, kernel_init=layers.default_init(), bias_init=nn.initializers.zeros,
                       name='Dense_0')(nn.silu(temb))[:, None, None, :]
    norm_1 = layers.AdaptiveGroupNorm(layers.num_groups_for(out_ch), name='GroupNorm_1')
    h = nn.silu(norm_1(h, zemb))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = layers.conv3x3(out_ch, init_scale=self.init_scale, name='Conv_1')(h)
    if in_ch != out_ch or self.up or self.down:
      x = layers.conv1x1(out_ch, name='Conv_2')(x)
    return (x + h) / layers.SQRT2 if self.skip_rescale else x + h
