"""Tiny mask-conditional configuration for tests and CPU smoke runs (16 px, synthetic data).

configs/tiny.py with inpainting on. The training mask mixture leaves out `thick` and `thin`
(weight 0), whose distributions are the evaluation families `wide` and `narrow`, so those
stay unseen in training (see masks.DEFAULT_TRAIN_MIXTURE); set e.g.
--config.inpaint.mask_mixture.thick=1 to add them.
"""
from configs import tiny


def get_config():
  config = tiny.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  config.inpaint.mask_mixture.thick = 0.0
  config.inpaint.mask_mixture.thin = 0.0
  config.inpaint.mask_mixture.medium = 1.0
  config.inpaint.mask_mixture.box = 1.0
  config.inpaint.mask_mixture.brush = 1.0
  return config
