"""Mask-conditional DDGAN inpainting on offline Fashion-MNIST 32x32: the shipped model's recipe.

The networks, T = 2, batch 16 and the constant 3e-4 of the earlier demo config, plus what made
the conditional model learn fast (docs/inpainting_recipe.md has the measured table):
* inpaint.cond_fill='smooth': the condition's hole holds a pull-push + Laplace fill of the known
  pixels (ddgan_jax/core/fill.py) instead of zeros, so every missing pixel carries an estimate from
  step 0;
* inpaint.rec_weight=1: an L1 term on the composited x0 prediction inside the hole, next to
  the adversarial term (unconditional samples get the adversarial term alone);
* the training masks add i.i.d. pixel-noise holes to the medium strokes, boxes and brushes.
None of RePaint's six evaluation families (wide, narrow, line, half, expand, sr2) is drawn.

Setting cond_fill='zeros', rec_weight=0 and mask_mixture.noise=0 gives back the pure-DDGAN
conditional model of SPEC section 4 (the baseline row of the table).
"""
from configs import fashion_mnist


def get_config():
  config = fashion_mnist.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.2  # Unconditional samples get a fifth of each batch.
  config.inpaint.cond_fill = 'smooth'
  config.inpaint.rec_weight = 1.0
  config.inpaint.mask_mixture.noise = 1.0
  config.model.ngf = 16
  config.diffusion.num_timesteps = 2
  config.optim.lr_g = config.optim.lr_d = 3e-4
  config.optim.schedule = 'constant'
  config.train.batch_size = 16
  config.train.num_steps = 100_000  # An upper bound; runs here end at max_time_minutes.
  config.train.ckpt_every = 250
  return config
