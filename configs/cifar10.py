"""CIFAR-10 32x32, the official README run (4 GPUs x 64): FID 3.75 at NFE 4."""
from configs import default


def get_config():
  config = default.get_config()  # default.py holds the CIFAR-10 hyperparameters.
  config.data.dataset = 'cifar10'
  config.data.image_size = 32
  config.data.crop = 'resize'
  return config
