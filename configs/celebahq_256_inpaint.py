"""CelebA-HQ 256x256, mask-conditional DDGAN for inpainting (SPEC section 4).

The official CelebA-HQ 256 run (configs/celebahq_256.py: nf 64, ch_mult (1,1,2,2,4,4), large D,
T = 2, so NFE = 2) with the inpainting condition on both networks. Training masks: LaMa medium
strokes, boxes and CoModGAN brushes; `thick` and `thin` get weight 0 because their
distributions are the evaluation families `wide` and `narrow`, which must stay unseen
(masks.DEFAULT_TRAIN_MIXTURE). p_uncond 0.1 keeps unconditional sampling (all-ones mask) and
RePaint mode usable with the same weights.
"""
from configs import celebahq_256


def get_config():
  config = celebahq_256.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  config.inpaint.mask_mixture.thick = 0.0
  config.inpaint.mask_mixture.thin = 0.0
  config.inpaint.mask_mixture.medium = 1.0
  config.inpaint.mask_mixture.box = 1.0
  config.inpaint.mask_mixture.brush = 1.0
  return config
