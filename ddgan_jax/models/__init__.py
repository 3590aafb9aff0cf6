"""DDGAN networks and factories that build them from the `model` config section.

Modules never see a ConfigDict: the factories read the fields and pass explicit keyword
arguments (see configs/default.py for the fields).

The room of the networks: the Flax modules (`layers`, the NCSN++ `blocks` built from them,
`conv`, `generator`, `discriminator`, which import nothing outside this package), the
generator/discriminator pair and schedule a config describes, restored from a checkpoint or
not (`networks`), the official PyTorch weights mapped onto ours (`convert`,
`python -m ddgan_jax.models.convert`) and LPIPS as a distance (`perceptual`, the `eval`
extra). It may import core/, checkpoints/ and config_checks (and so data/ and platform/ below
them); training, inference and evaluation sit above it.
"""
from __future__ import annotations

from typing import Any, Union

from ddgan_jax.models.discriminator import DiscriminatorLarge, DiscriminatorSmall
from ddgan_jax.models.generator import NCSNppGenerator

Discriminator = Union[DiscriminatorSmall, DiscriminatorLarge]

__all__ = [
    'NCSNppGenerator', 'DiscriminatorSmall', 'DiscriminatorLarge', 'create_generator',
    'create_discriminator',
]


def create_generator(model_cfg: Any, *, image_size: int, num_channels: int,
                     cond_channels: int = 0) -> NCSNppGenerator:
  """NCSN++ generator from a `config.model` section.

  Args:
    model_cfg: the typed `config_checks.ModelConfig` (`networks.build_networks` passes it), or
      a ConfigDict (any attribute container) with nf, ch_mult, num_res_blocks,
      attn_resolutions, dropout, fir_kernel, skip_rescale, resamp_with_conv, centered,
      not_use_tanh, nz, z_emb_dim, n_mlp, remat.
    image_size: resolution of the (square) images.
    num_channels: image channels (= output channels).
    cond_channels: extra conditioning channels concatenated to the input (inpainting:
      num_channels + 1 for masked image and mask).
  """
  return NCSNppGenerator(
      num_channels=int(num_channels),
      image_size=int(image_size),
      cond_channels=int(cond_channels),
      nf=int(model_cfg.nf),
      ch_mult=tuple(int(m) for m in model_cfg.ch_mult),
      num_res_blocks=int(model_cfg.num_res_blocks),
      attn_resolutions=tuple(int(r) for r in model_cfg.attn_resolutions),
      dropout=float(model_cfg.dropout),
      fir_kernel=tuple(int(k) for k in model_cfg.fir_kernel),
      skip_rescale=bool(model_cfg.skip_rescale),
      resamp_with_conv=bool(model_cfg.resamp_with_conv),
      centered=bool(model_cfg.centered),
      not_use_tanh=bool(model_cfg.not_use_tanh),
      nz=int(model_cfg.nz),
      z_emb_dim=int(model_cfg.z_emb_dim),
      n_mlp=int(model_cfg.n_mlp),
      remat=bool(model_cfg.remat),
  )


def create_discriminator(model_cfg: Any) -> Discriminator:
  """Small (32 px) or large (256 px) discriminator from `config.model` (disc, ngf, t_emb_dim,
  fir_kernel, remat). Input channels are inferred at init; logits have shape [B, 1]."""
  kind = str(model_cfg.disc).lower()
  kwargs = dict(ngf=int(model_cfg.ngf), t_emb_dim=int(model_cfg.t_emb_dim),
                fir_kernel=tuple(int(k) for k in model_cfg.fir_kernel),
                remat=bool(model_cfg.remat))
  if kind == 'small':
    return DiscriminatorSmall(**kwargs)
  if kind == 'large':
    return DiscriminatorLarge(**kwargs)
  raise ValueError(f"model.disc must be 'small' or 'large', got {model_cfg.disc!r}.")
