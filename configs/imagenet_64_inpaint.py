"""ImageNet 64x64 (tfds imagenet_resized/64x64), mask-conditional DDGAN for inpainting.

The official code has no 64 px configuration, so the model is chosen here:

* Generator: the CIFAR-10 NCSN++ (nf 128, ch_mult (1, 2, 2, 2), 2 res blocks, attention at
  16 px). At 64 px it works at 64, 32, 16 and 8 px, the same four levels as CIFAR-10 at
  32 px shifted up by one octave, with the 16 px attention of every official config. About
  4x the CIFAR-10 FLOPs per image; the parameter count is unchanged apart from the input
  conv's extra condition channels.
* Discriminator: small. It has three FIR downsamplings (64 -> 8 px at the end) and a spatial
  sum, so it takes 64 px inputs unchanged (tests/inpainting/test_inpaint.py initialises it at 64 px).
  The large D halves six times, which leaves 1x1 maps at 64 px: its last blocks would see
  no spatial structure and most of its cost would go to FIR padding.
* T = 4 and the CIFAR-10 optimiser (the small-D settings: lr_g 1.6e-4, lr_d 1.25e-4,
  r1 0.02 every 15 steps, EMA 0.9999), batch 256. 1.28M training images make an epoch
  ~5000 steps; 100 epochs (~500k steps) are the same number of images as 2,560 CIFAR-10
  epochs, in line with the official 1800.

Training masks: the default mixture (no `thick`/`thin`, so `wide`/`narrow` stay unseen).
"""
from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'imagenet_resized/64x64'
  config.data.image_size = 64
  config.data.crop = 'resize'
  config.data.train_split = 'train'
  config.data.eval_split = 'validation'
  config.model.nf = 128
  config.model.ch_mult = (1, 2, 2, 2)
  config.model.num_res_blocks = 2
  config.model.attn_resolutions = (16,)
  config.model.disc = 'small'
  config.diffusion.num_timesteps = 4
  config.train.num_epochs = 100
  config.train.num_sample_images = 64
  config.inpaint.enabled = True
  config.inpaint.p_uncond = 0.1
  return config
