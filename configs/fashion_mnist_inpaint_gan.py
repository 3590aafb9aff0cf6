"""The GAN fine-tune that made the shipped Fashion-MNIST inpainting model: D kept informative.

Starts from a trained `configs/fashion_mnist_inpaint.py` generator (`train.init_from`; its D
too when the checkpoint holds one) and changes only what keeps the discriminator learning at
this scale (docs/discriminator.md has the measured runs):
* optim.clean_weight=1: D also judges clean images against G's x0 predictions (t = 0 pairs),
  where the fill's texture is not drowned by the diffusion noise;
* optim.lr_g=1e-5 with D at 3e-4: G moves slowly enough that D keeps up (at 3e-4 G erases D's
  clean gap within 50 steps);
* optim.g_frozen_steps=500: a fresh D first learns against the starting generator alone.
`make demo` runs it from the shipped model, whose D is trained already, with
g_frozen_steps=0. The L1-only ablation is one override: --config.inpaint.adv_weight=0.
"""
from configs import fashion_mnist_inpaint


def get_config():
  config = fashion_mnist_inpaint.get_config()
  config.train.init_from = 'pretrained/fashion_mnist_inpaint'
  config.optim.clean_weight = 1.0
  config.optim.lr_g = 1e-5
  config.optim.lr_d = 3e-4
  config.optim.g_frozen_steps = 500
  config.train.num_steps = 2_500
  config.train.log_every = 50
  return config
