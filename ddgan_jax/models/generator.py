"""NCSN++ generator of DDGAN (official score_sde/models/ncsnpp_generator_adagn.py), NHWC.

Only the configuration used by the official README commands is implemented: BigGAN residual
blocks with AdaptiveGroupNorm, FIR resampling with conv, progressive='none',
progressive_input='residual', progressive_combine='sum', positional time embedding,
conditional=True. Anything else raises a ValueError.

The network is built from a *plan*: an ordered list of `PlanEntry`, one per entry of the
official `all_modules` list, in the same order. The forward pass consumes the plan and the
checkpoint converter uses it to map `all_modules.<index>` onto our readable submodule names.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddgan_jax.models import blocks, layers


@dataclasses.dataclass(frozen=True)
class PlanEntry:
  """One official `all_modules` entry.

  index: position in the official all_modules list.
  name: our submodule name.
  kind: 'dense' | 'conv' | 'resblock' | 'attn' | 'pyramid_down' | 'groupnorm'.
  in_ch / out_ch: channel widths (for dense: features).
  up / down: resblock resampling flags.
  """
  index: int
  name: str
  kind: str
  in_ch: int
  out_ch: int
  up: bool = False
  down: bool = False


def build_plan(*, image_size: int, in_channels: int, out_channels: int, nf: int,
               ch_mult: Sequence[int], num_res_blocks: int,
               attn_resolutions: Sequence[int]) -> list[PlanEntry]:
  """The official module list of NCSNpp (README configuration) with our names.

  Args:
    image_size: input resolution (square).
    in_channels: channels of the network input (image channels + conditioning channels).
    out_channels: channels of the prediction.
    nf, ch_mult, num_res_blocks, attn_resolutions: as in the official config.
  Returns:
    Entries in official all_modules order.
  """
  plan: list[PlanEntry] = []

  def add(name: str, kind: str, in_ch: int, out_ch: int, **kw) -> None:
    plan.append(PlanEntry(len(plan), name, kind, in_ch, out_ch, **kw))

  num_res = len(ch_mult)
  resolutions = [image_size // (2 ** i) for i in range(num_res)]
  add('temb_dense_0', 'dense', nf, 4 * nf)
  add('temb_dense_1', 'dense', 4 * nf, 4 * nf)
  add('conv_in', 'conv', in_channels, nf)
  hs_c = [nf]
  in_ch = nf
  pyramid_ch = in_channels
  for i in range(num_res):
    for j in range(num_res_blocks):
      out_ch = nf * ch_mult[i]
      add(f'down{i}_res{j}', 'resblock', in_ch, out_ch)
      in_ch = out_ch
      if resolutions[i] in attn_resolutions:
        add(f'down{i}_attn{j}', 'attn', in_ch, in_ch)
      hs_c.append(in_ch)
    if i != num_res - 1:
      add(f'down{i}_downsample', 'resblock', in_ch, in_ch, down=True)
      add(f'down{i}_pyramid', 'pyramid_down', pyramid_ch, in_ch)
      pyramid_ch = in_ch
      hs_c.append(in_ch)
  in_ch = hs_c[-1]
  add('mid_res0', 'resblock', in_ch, in_ch)
  add('mid_attn', 'attn', in_ch, in_ch)
  add('mid_res1', 'resblock', in_ch, in_ch)
  for i in reversed(range(num_res)):
    for j in range(num_res_blocks + 1):
      out_ch = nf * ch_mult[i]
      add(f'up{i}_res{j}', 'resblock', in_ch + hs_c.pop(), out_ch)
      in_ch = out_ch
    if resolutions[i] in attn_resolutions:
      add(f'up{i}_attn', 'attn', in_ch, in_ch)
    if i != 0:
      add(f'up{i}_upsample', 'resblock', in_ch, in_ch, up=True)
  assert not hs_c
  add('norm_out', 'groupnorm', in_ch, in_ch)
  add('conv_out', 'conv', in_ch, out_channels)
  return plan


class ZMapping(nn.Module):
  """Latent mapping network: PixelNorm, Dense(nz->D), SiLU, n_mlp x (Dense(D->D), SiLU).

  z: [B, nz] -> [B, z_emb_dim]. Dense_k is the official z_transform.<2k+1>.
  """
  z_emb_dim: int
  n_mlp: int

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = layers.PixelNorm()(z)
    for k in range(self.n_mlp + 1):
      h = nn.Dense(self.z_emb_dim, kernel_init=layers.dense_init(1.0),
                   bias_init=nn.initializers.zeros, name=f'Dense_{k}')(h)
      h = nn.silu(h)
    return h


class NCSNppGenerator(nn.Module):
  """DDGAN generator: predicts x_0 from (x_{t+1}, t, z) [+ conditioning channels].

  Fields mirror the official arguments (nf = num_channels_dae). `cond_channels` extra input
  channels (e.g. masked image + mask for inpainting) are concatenated to x; the output still
  has `num_channels` channels.
  """
  num_channels: int = 3
  image_size: int = 32
  cond_channels: int = 0
  nf: int = 128
  ch_mult: Sequence[int] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.0
  fir: bool = True
  fir_kernel: Sequence[int] = (1, 3, 3, 1)
  skip_rescale: bool = True
  resamp_with_conv: bool = True
  centered: bool = True
  not_use_tanh: bool = False
  nz: int = 100
  z_emb_dim: int = 256
  n_mlp: int = 4
  # Only the official README choices; kept as fields so unsupported requests fail loudly.
  resblock_type: str = 'biggan'
  progressive: str = 'none'
  progressive_input: str = 'residual'
  progressive_combine: str = 'sum'
  embedding_type: str = 'positional'
  conditional: bool = True
  # Rematerialise each ResNet and attention block in the backward pass (saves activation
  # memory for 256 px at the cost of recomputing the forward; same numbers).
  remat: bool = False

  def _check_supported(self) -> None:
    wanted = dict(resblock_type='biggan', progressive='none', progressive_input='residual',
                  progressive_combine='sum', embedding_type='positional', conditional=True,
                  resamp_with_conv=True, fir=True)
    for field, value in wanted.items():
      got = getattr(self, field)
      if (got.lower() if isinstance(got, str) else got) != value:
        raise ValueError(
            f'NCSNppGenerator supports only the official README configuration; '
            f'{field}={got!r} is not implemented (expected {value!r}).')
    if self.image_size % (2 ** (len(self.ch_mult) - 1)):
      raise ValueError(f'image_size {self.image_size} is not divisible by '
                       f'2**{len(self.ch_mult) - 1}.')

  def plan(self) -> list[PlanEntry]:
    """Official all_modules order with our submodule names (see `build_plan`)."""
    return build_plan(image_size=self.image_size,
                      in_channels=self.num_channels + self.cond_channels,
                      out_channels=self.num_channels, nf=self.nf, ch_mult=tuple(self.ch_mult),
                      num_res_blocks=self.num_res_blocks,
                      attn_resolutions=tuple(self.attn_resolutions))

  def _make(self, entry: PlanEntry) -> nn.Module:
    """Instantiates the submodule of one plan entry."""
    if entry.kind == 'dense':
      return nn.Dense(entry.out_ch, kernel_init=layers.default_init(),
                      bias_init=nn.initializers.zeros, name=entry.name)
    if entry.kind == 'conv':
      scale = 0.0 if entry.name == 'conv_out' else 1.0
      return layers.conv3x3(entry.out_ch, init_scale=scale, name=entry.name)
    if entry.kind == 'resblock':
      # static_argnums counts the module as 0: (x, temb, zemb, train) -> train is 4.
      block = nn.remat(blocks.ResnetBlockBigGAN, static_argnums=(4,)) if self.remat else \
          blocks.ResnetBlockBigGAN
      return block(
          out_ch=entry.out_ch, up=entry.up, down=entry.down, dropout=self.dropout,
          fir=self.fir, fir_kernel=tuple(self.fir_kernel), skip_rescale=self.skip_rescale,
          init_scale=0.0, name=entry.name)
    if entry.kind == 'attn':
      block = nn.remat(blocks.AttnBlock) if self.remat else blocks.AttnBlock
      return block(skip_rescale=self.skip_rescale, init_scale=0.0, name=entry.name)
    if entry.kind == 'pyramid_down':
      return blocks.Downsample(entry.out_ch, fir_kernel=tuple(self.fir_kernel), name=entry.name)
    if entry.kind == 'groupnorm':
      return layers.GroupNorm(layers.num_groups_for(entry.in_ch), name=entry.name)
    raise ValueError(f'Unknown plan entry kind {entry.kind!r}.')

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, z: jax.Array, cond: jax.Array | None = None,
               *, train: bool = False) -> jax.Array:
    """Predicts x_0.

    Args:
      x: noisy sample x_{t+1}, [B, H, W, num_channels].
      t: integer step index, [B].
      z: latent, [B, nz].
      cond: conditioning channels [B, H, W, cond_channels], required iff cond_channels > 0.
      train: enables dropout (needs a 'dropout' rng when dropout > 0).
    Returns:
      x0 prediction [B, H, W, num_channels] (tanh-squashed unless not_use_tanh).
    """
    self._check_supported()
    if x.shape[-1] != self.num_channels:
      raise ValueError(f'x has {x.shape[-1]} channels, expected {self.num_channels}.')
    if self.cond_channels:
      if cond is None or cond.shape[-1] != self.cond_channels:
        raise ValueError(f'cond with {self.cond_channels} channels is required, got '
                         f'{None if cond is None else cond.shape}.')
    elif cond is not None:
      raise ValueError('cond given but cond_channels == 0.')

    plan: Iterator[PlanEntry] = iter(self.plan())

    def module(kind: str) -> nn.Module:
      entry = next(plan)
      assert entry.kind == kind, (entry, kind)
      return self._make(entry)

    zemb = ZMapping(self.z_emb_dim, self.n_mlp, name='z_mapping')(z)
    temb = layers.timestep_embedding(t, self.nf)
    self.sow('intermediates', 'timestep_embedding', temb)
    temb = module('dense')(temb)
    temb = module('dense')(nn.silu(temb)).astype(x.dtype)  # bfloat16 compute stays bfloat16

    if not self.centered:
      x = 2.0 * x - 1.0
    if cond is not None:
      x = jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)

    num_res = len(self.ch_mult)
    resolutions = [self.image_size // (2 ** i) for i in range(num_res)]
    input_pyramid = x
    hs = [module('conv')(x)]
    for i in range(num_res):
      for _ in range(self.num_res_blocks):
        h = module('resblock')(hs[-1], temb, zemb, train)
        if resolutions[i] in self.attn_resolutions:
          h = module('attn')(h)
        hs.append(h)
      if i != num_res - 1:
        h = module('resblock')(hs[-1], temb, zemb, train)
        input_pyramid = module('pyramid_down')(input_pyramid)
        input_pyramid = input_pyramid + h
        if self.skip_rescale:
          input_pyramid = input_pyramid / layers.SQRT2
        h = input_pyramid
        hs.append(h)

    h = hs[-1]
    h = module('resblock')(h, temb, zemb, train)
    h = module('attn')(h)
    h = module('resblock')(h, temb, zemb, train)

    for i in reversed(range(num_res)):
      for _ in range(self.num_res_blocks + 1):
        h = module('resblock')(jnp.concatenate([h, hs.pop()], axis=-1), temb, zemb, train)
      if resolutions[i] in self.attn_resolutions:
        h = module('attn')(h)
      if i != 0:
        h = module('resblock')(h, temb, zemb, train)
    assert not hs

    h = nn.silu(module('groupnorm')(h))
    h = module('conv')(h)
    assert next(plan, None) is None
    return h if self.not_use_tanh else jnp.tanh(h)
