"""LSUN church outdoor 256x256, the official README run (8 GPUs x 8): FID 5.25 at NFE 4."""
from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'lsun/church_outdoor'
  config.data.image_size = 256
  config.data.crop = 'resize'  # Resize shorter side, then center crop (official transform).
  # The official run trains on the first 120,000 of the 126,227 training images (a
  # torch Subset of the LMDB order; tfds's order of the same images may differ).
  config.data.num_train_examples = 120_000  # read as 'train[:120000]'
  config.data.eval_split = 'validation'
  config.model.nf = 64
  config.model.ch_mult = (1, 1, 2, 2, 4, 4)
  config.model.n_mlp = 3
  config.model.disc = 'large'
  config.diffusion.num_timesteps = 4
  config.optim.lr_g = 1.6e-4
  config.optim.lr_d = 1e-4
  config.optim.r1_gamma = 1.0
  config.optim.lazy_reg = 10
  config.optim.ema_decay = 0.999
  config.train.batch_size = 64
  config.train.num_epochs = 500
  config.train.num_sample_images = 16
  return config
