"""Fashion-MNIST 32x32 (28x28 padded), grayscale: the offline default dataset (Debian's
dataset-fashion-mnist, prepared by a tfds builder with no network access).

A small DDGAN sized for a 2-core CPU; the unconditional base of the demo config.
"""
from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'fashion_mnist'
  config.data.image_size = 32
  config.data.num_channels = 1
  config.data.random_flip = True
  config.model.nf = 16  # ~1.2 GFLOP per image and train step (bench/train_step.py).
  config.model.ch_mult = (1, 2, 2)
  config.model.num_res_blocks = 1
  config.model.attn_resolutions = (8,)
  config.model.nz = 32
  config.model.z_emb_dim = 64
  config.model.n_mlp = 2
  config.model.disc = 'small'
  config.model.ngf = 8
  config.model.t_emb_dim = 32
  config.diffusion.num_timesteps = 4
  config.optim.ema_decay = 0.999  # Short runs: 0.9999 would average mostly early weights.
  config.train.batch_size = 64
  config.train.num_epochs = 50
  config.train.log_every = 50
  config.train.ckpt_every = 500
  config.train.sample_every = 500
  config.sample.num_images = 64
  return config
