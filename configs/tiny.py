"""Tiny configuration for tests and CPU smoke runs: 16 px, nf 16, synthetic data."""
from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'synthetic'
  config.data.image_size = 16
  config.data.num_channels = 3
  config.model.nf = 16
  config.model.ch_mult = (1, 2)
  config.model.num_res_blocks = 1
  config.model.attn_resolutions = (8,)
  config.model.nz = 8
  config.model.z_emb_dim = 32
  config.model.n_mlp = 2
  config.model.ngf = 4
  config.model.t_emb_dim = 32
  config.train.batch_size = 8
  config.train.num_steps = 20
  config.train.log_every = 5
  config.train.ckpt_every = 10
  config.train.sample_every = 10
  config.train.num_sample_images = 8
  config.sample.num_images = 8
  return config
