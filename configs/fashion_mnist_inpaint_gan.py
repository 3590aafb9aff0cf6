"""The GAN fine-tune that made the shipped Fashion-MNIST inpainting model, in two phases.

Starts from a trained `configs/fashion_mnist_inpaint.py` generator (`train.init_from`; its D
too when the checkpoint holds one). docs/discriminator.md has the measured runs.

`--config=configs/fashion_mnist_inpaint_gan.py` (phase `warmup`, steps 0 -> 2,500) gets a
fresh D discriminating:
* optim.clean_weight=1: D also judges clean images against G's x0 predictions (t = 0 pairs),
  where the fill's texture is not drowned by the diffusion noise; without them a fresh D stays
  at chance at this scale;
* optim.lr_g=3e-5 with D at 3e-4: G moves slowly enough that D keeps up (at 3e-4 G erases D's
  clean gap within 50 steps);
* optim.g_frozen_steps=500: a fresh D first learns against the starting generator alone;
* inpaint.p_uncond=0.5: half of each batch is unconditional (all-ones masks), where the
  adversarial term is G's only term.

`--config=configs/fashion_mnist_inpaint_gan.py:main` (steps 2,500 -> 4,500, resuming the same
workdir) keeps the clean pairs for the fills only (optim.clean_uncond=False): judged as images,
G's one-step samples from pure noise narrow (a plain GAN objective: lower recall of the
unconditional samples), so those are left to the official pairs, which keep D informative
once it has learned. `make demo` runs this phase from the shipped model, whose D is trained.

The L1-only ablation is one override: --config.inpaint.adv_weight=0.
"""
from configs import fashion_mnist_inpaint

PHASES = ('warmup', 'main')


def get_config(phase: str = 'warmup'):
  if phase not in PHASES:
    raise ValueError(f'unknown phase {phase!r} of configs/fashion_mnist_inpaint_gan.py: use '
                     f'{" or ".join(PHASES)} (--config=configs/fashion_mnist_inpaint_gan.py:main).')
  config = fashion_mnist_inpaint.get_config()
  config.train.init_from = 'pretrained/fashion_mnist_inpaint'
  config.inpaint.p_uncond = 0.5
  config.optim.clean_weight = 1.0
  config.optim.lr_g = 3e-5
  config.optim.lr_d = 3e-4
  config.optim.g_frozen_steps = 500
  config.train.num_steps = 2_500
  config.train.log_every = 50
  if phase == 'main':
    config.optim.clean_uncond = False
    config.optim.g_frozen_steps = 0
    config.train.num_steps = 4_500
  return config
