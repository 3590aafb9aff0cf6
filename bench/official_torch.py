"""The official PyTorch DDGAN timed on this machine, for a side-by-side with bench/train_step.py.

  pip install -e '.[official]'         # torch==2.13.0, CPU build
  python bench/official_torch.py --official_repo=PATH --config=configs/cifar10.py --batch_size=8

PATH is a checkout of https://github.com/NVlabs/denoising-diffusion-gan (not shipped here). Its
code runs unchanged, on the path it takes for CPU tensors: the CUDA extensions it builds at import
(upfirdn2d, fused_act) are not built, since on a CPU tensor its own `upfirdn2d_native` and
`F.leaky_relu` fallbacks run instead; torchvision and its dataset modules, which only its data
loading needs, are replaced by empty modules. Our config is translated to its argparse options.

Two JSON lines: the train step, the body of `train_ddgan.py`'s iteration loop with its own
functions (D on real with lazy R1, D on fake, Adam; G, Adam with EMA) on random images, with R1
on the same steps as ours; and its `sample_from_model` (the T-step sampler).
"""
import json
import os
import resource
import statistics
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_REPO = flags.DEFINE_string('official_repo', '', 'Checkout of NVlabs/denoising-diffusion-gan.')
_CONFIG = config_flags.DEFINE_config_file('config', 'configs/tiny.py', 'Our config file.')
_BATCH = flags.DEFINE_integer('batch_size', 0, 'Batch (0: the config value).')
_STEPS = flags.DEFINE_integer('steps', 30, 'Timed train steps (a multiple of optim.lazy_reg).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed train steps first.')
_SAMPLE_REPS = flags.DEFINE_integer('sample_reps', 5, 'Timed sampler calls (median reported).')
_THREADS = flags.DEFINE_integer('threads', 0, 'torch threads (0: one per core).')


def main(_):
  logging.set_verbosity(logging.WARNING)
  if not _REPO.value or not os.path.isfile(os.path.join(_REPO.value, 'train_ddgan.py')):
    raise app.UsageError('--official_repo must be a checkout of NVlabs/denoising-diffusion-gan')
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  import official_code  # pylint: disable=g-import-not-at-top
  from ddgan_jax.evaluation import machine  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(_THREADS.value or os.cpu_count())
  torch.manual_seed(0)
  tdg, NCSNpp, disc_lib, EMA = official_code.import_official(_REPO.value)
  config = _CONFIG.value
  batch = _BATCH.value or int(config.train.batch_size)
  args = official_code.official_args(config, batch)
  device = torch.device('cpu')

  # As train_ddgan.train() builds them.
  t0 = time.perf_counter()
  netG = NCSNpp(args).to(device)
  Disc = disc_lib.Discriminator_small if args.disc == 'small' else disc_lib.Discriminator_large
  netD = Disc(nc=2 * args.num_channels, ngf=args.ngf, t_emb_dim=args.t_emb_dim,
              act=torch.nn.LeakyReLU(0.2)).to(device)
  optimizerD = torch.optim.Adam(netD.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
  optimizerG = EMA(torch.optim.Adam(netG.parameters(), lr=args.lr_g,
                                    betas=(args.beta1, args.beta2)), ema_decay=args.ema_decay)
  coeff = tdg.Diffusion_Coefficients(args, device)
  pos_coeff = tdg.Posterior_Coefficients(args, device)
  build_s = time.perf_counter() - t0
  real_data = torch.rand(batch, args.num_channels, args.image_size, args.image_size) * 2 - 1

  def iteration(global_step):
    """The body of train_ddgan.py's `for iteration, (x, y) in enumerate(data_loader)` loop."""
    for p in netD.parameters():
      p.requires_grad = True
    netD.zero_grad()
    t = torch.randint(0, args.num_timesteps, (real_data.size(0),), device=device)
    x_t, x_tp1 = tdg.q_sample_pairs(coeff, real_data, t)
    x_t.requires_grad = True
    D_real = netD(x_t, t, x_tp1.detach()).view(-1)
    errD_real = F.softplus(-D_real).mean()
    errD_real.backward(retain_graph=True)
    if args.lazy_reg is None or global_step % args.lazy_reg == 0:
      grad_real = torch.autograd.grad(outputs=D_real.sum(), inputs=x_t, create_graph=True)[0]
      grad_penalty = (grad_real.view(grad_real.size(0), -1).norm(2, dim=1) ** 2).mean()
      (args.r1_gamma / 2 * grad_penalty).backward()
    latent_z = torch.randn(batch, args.nz, device=device)
    x_0_predict = netG(x_tp1.detach(), t, latent_z)
    x_pos_sample = tdg.sample_posterior(pos_coeff, x_0_predict, x_tp1, t)
    output = netD(x_pos_sample, t, x_tp1.detach()).view(-1)
    F.softplus(output).mean().backward()
    optimizerD.step()

    for p in netD.parameters():
      p.requires_grad = False
    netG.zero_grad()
    t = torch.randint(0, args.num_timesteps, (real_data.size(0),), device=device)
    x_t, x_tp1 = tdg.q_sample_pairs(coeff, real_data, t)
    latent_z = torch.randn(batch, args.nz, device=device)
    x_0_predict = netG(x_tp1.detach(), t, latent_z)
    x_pos_sample = tdg.sample_posterior(pos_coeff, x_0_predict, x_tp1, t)
    output = netD(x_pos_sample, t, x_tp1.detach()).view(-1)
    F.softplus(-output).mean().backward()
    optimizerG.step()

  for s in range(_WARMUP.value):
    iteration(s)
  peak_before = machine.matmul_gflops()
  t0 = time.perf_counter()
  for s in range(_WARMUP.value, _WARMUP.value + _STEPS.value):
    iteration(s)
  seconds = (time.perf_counter() - t0) / _STEPS.value

  info = machine.describe(peak_before)
  common = dict(config=os.path.basename(config_flags.get_config_filename(flags.FLAGS['config'])),
                batch_size=batch, implementation=f'official PyTorch {torch.__version__}',
                torch_threads=torch.get_num_threads(), **info)
  print(json.dumps(dict(
      common, bench='official_train_step', steps=_STEPS.value,
      r1_share=round(sum(args.lazy_reg is None or s % args.lazy_reg == 0 for s in range(
          _WARMUP.value, _WARMUP.value + _STEPS.value)) / _STEPS.value, 3),
      ms_per_step=round(seconds * 1e3, 2), images_per_s=round(batch / seconds, 1),
      build_s=round(build_s, 2),
      peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))),
        flush=True)

  # test_ddgan.py's sampler: T generator calls from Gaussian noise.
  T = tdg.get_time_schedule(args, device)
  x_init = torch.randn(batch, args.num_channels, args.image_size, args.image_size)
  sample = lambda: tdg.sample_from_model(pos_coeff, netG, args.num_timesteps, x_init, T, args)
  t0 = time.perf_counter()
  sample()
  first_call = time.perf_counter() - t0
  times = []
  peak_before = machine.matmul_gflops()
  for _ in range(_SAMPLE_REPS.value):
    t0 = time.perf_counter()
    sample()
    times.append(time.perf_counter() - t0)
  seconds = statistics.median(times)
  print(json.dumps(dict(
      common, **machine.describe(peak_before), bench='official_sampler', nfe=args.num_timesteps,
      ms_per_call=round(seconds * 1e3, 2), ms_per_image=round(seconds * 1e3 / batch, 3),
      images_per_s=round(batch / seconds, 1), first_call_s=round(first_call, 2))), flush=True)


if __name__ == '__main__':
  app.run(main)
