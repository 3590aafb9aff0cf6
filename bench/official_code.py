"""The official DDGAN code (NVlabs/denoising-diffusion-gan) imported on its CPU code path, our
config as its options, and alternating timing of ours against it: shared by
bench/official_torch.py and bench/interleaved.py (no flags here, so tests can import it)."""
import argparse
import os
import sys
import time
import types


class _Empty(types.ModuleType):
  """A module whose every attribute is None: stands in for the data-loading imports."""

  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return None


def import_official(repo: str):
  """train_ddgan, NCSNpp, the discriminators and EMA from `repo`, on the CPU code path."""
  import torch.utils.cpp_extension  # pylint: disable=g-import-not-at-top
  torch.utils.cpp_extension.load = lambda *a, **k: None  # CUDA ops: CPU tensors never use them
  for name in ('torchvision', 'torchvision.transforms', 'torchvision.datasets', 'datasets_prep',
               'datasets_prep.lsun', 'datasets_prep.stackmnist_data',
               'datasets_prep.lmdb_datasets'):
    sys.modules.setdefault(name, _Empty(name))
  sys.path.insert(0, os.path.abspath(repo))
  import train_ddgan  # pylint: disable=g-import-not-at-top
  from EMA import EMA  # pylint: disable=g-import-not-at-top
  from score_sde.models import discriminator  # pylint: disable=g-import-not-at-top
  from score_sde.models.ncsnpp_generator_adagn import NCSNpp  # pylint: disable=g-import-not-at-top
  return train_ddgan, NCSNpp, discriminator, EMA


def official_args(config, batch: int) -> argparse.Namespace:
  """Our config as the official train_ddgan.py options (architecture defaults are its own)."""
  m, d, o = config.model, config.diffusion, config.optim
  return argparse.Namespace(
      image_size=config.data.image_size, num_channels=config.data.num_channels,
      centered=m.centered, use_geometric=d.use_geometric, beta_min=d.beta_min,
      beta_max=d.beta_max, num_channels_dae=m.nf, n_mlp=m.n_mlp, ch_mult=list(m.ch_mult),
      num_res_blocks=m.num_res_blocks, attn_resolutions=tuple(m.attn_resolutions),
      dropout=m.dropout, resamp_with_conv=m.resamp_with_conv, conditional=True, fir=True,
      fir_kernel=list(m.fir_kernel), skip_rescale=m.skip_rescale, resblock_type='biggan',
      progressive='none', progressive_input='residual', progressive_combine='sum',
      embedding_type='positional', fourier_scale=16., not_use_tanh=m.not_use_tanh,
      nz=m.nz, num_timesteps=d.num_timesteps, z_emb_dim=m.z_emb_dim, t_emb_dim=m.t_emb_dim,
      batch_size=batch, ngf=m.ngf, lr_g=o.lr_g, lr_d=o.lr_d, beta1=o.beta1, beta2=o.beta2,
      use_ema=True, ema_decay=o.ema_decay, r1_gamma=o.r1_gamma, lazy_reg=o.lazy_reg or None,
      disc=m.disc)


def window_ratios(ours, official, windows: int, clock=time.perf_counter):
  """Times `ours` and `official` as A B B A per window: (ratios, ours_s, official_s), each a
  list with one entry per window (a side's mean of its two calls; ratio = official / ours)."""
  def timed(fn):
    start = clock()
    fn()
    return clock() - start
  ratios, ours_s, official_s = [], [], []
  for _ in range(windows):
    a = timed(ours)
    b = timed(official)
    b += timed(official)
    a += timed(ours)
    ratios.append(b / a)
    ours_s.append(a / 2)
    official_s.append(b / 2)
  return ratios, ours_s, official_s
