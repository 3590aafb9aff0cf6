"""CelebA-HQ 256x256, mask-conditional DDGAN for inpainting (SPEC section 4).

The official CelebA-HQ 256 run (configs/celebahq_256.py: nf 64, ch_mult (1,1,2,2,4,4), large D,
T = 2, so NFE = 2) with the inpainting condition on both networks. Training masks: the default mixture of LaMa
medium strokes, boxes and CoModGAN brushes (no `thick`/`thin`, whose distributions are the
evaluation families `wide`/`narrow`, which must stay unseen). p_uncond 0.1 keeps unconditional sampling (all-ones mask) and
RePaint mode usable with the same weights.
"""
from configs import celebahq_256


def get_config():
  config = celebahq_256.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  return config
