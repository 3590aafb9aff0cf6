"""The demo: mask-conditional DDGAN inpainting on offline Fashion-MNIST 32x32 (see `make demo`).

Trains for a bounded time on a 2-core CPU (train.max_time_minutes), then evaluate.py fills
held-out test images for every evaluation mask family, none of which training draws.
"""
from configs import fashion_mnist


def get_config():
  config = fashion_mnist.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  config.train.max_time_minutes = 11.0
  config.train.num_epochs = 100  # An upper bound; the time limit ends the demo run first.
  return config
