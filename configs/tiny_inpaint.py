"""Tiny mask-conditional configuration for tests and CPU smoke runs (16 px, synthetic data).

configs/tiny.py with inpainting on and the default training mask mixture (medium, box,
brush: no `thick`/`thin`, whose distributions are the evaluation families `wide`/`narrow`).
"""
from configs import tiny


def get_config():
  config = tiny.get_config()
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  return config
