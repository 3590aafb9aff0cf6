"""The demo: mask-conditional DDGAN inpainting on offline Fashion-MNIST 32x32 (see `make demo`).

Trains for a bounded time on a 2-core CPU (train.max_time_minutes), then evaluate.py fills
held-out test images for every evaluation mask family, none of which training draws.

Tuned for an 11-minute CPU run rather than for convergence: T = 2, batch 16, a constant 3e-4 for
both networks and a wider D (ngf 16). Measured against fashion_mnist's T = 4, batch 64 and the
official learning rates over the same 11 minutes (~1000 vs ~650 steps, both measured before
the lazy-R1 fix in train_lib; the demo now makes ~1,600), LPIPS of the conditional
fill dropped on every family (wide 0.307 -> 0.238, narrow 0.323 -> 0.191, line 0.448 -> 0.325,
half 0.351 -> 0.266, expand 0.630 -> 0.463, sr2 0.596 -> 0.432; 128 test images).
"""
from configs import fashion_mnist


def get_config():
  config = fashion_mnist.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  config.model.ngf = 16
  config.diffusion.num_timesteps = 2
  config.optim.lr_g = config.optim.lr_d = 3e-4
  config.optim.schedule = 'constant'
  config.train.batch_size = 16
  config.train.max_time_minutes = 11.0
  config.train.num_epochs = 100  # An upper bound; the time limit ends the demo run first.
  return config
