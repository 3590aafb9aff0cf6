"""CelebA-HQ 256x256, the official README run (8 GPUs x 4): FID 7.64 at NFE 2."""
from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'celeb_a_hq/256'
  config.data.image_size = 256
  config.data.eval_split = 'train'  # tfds celeb_a_hq has a train split only.
  config.model.nf = 64
  config.model.ch_mult = (1, 1, 2, 2, 4, 4)
  config.model.n_mlp = 3
  config.model.disc = 'large'
  config.diffusion.num_timesteps = 2
  config.optim.lr_g = 2e-4
  config.optim.lr_d = 1e-4
  config.optim.r1_gamma = 2.0
  config.optim.lazy_reg = 10
  config.optim.ema_decay = 0.9999
  config.train.batch_size = 32
  config.train.num_epochs = 800
  config.train.num_sample_images = 16
  return config
