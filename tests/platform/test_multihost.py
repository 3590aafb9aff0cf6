"""Multi-process training on localhost: 2 processes x 2 CPU devices (jax.distributed, gloo),
started by `python -m ddgan_jax.platform.launch`, stopped and resumed, against 1 process x 4 devices.

The data is the offline Fashion-MNIST builder prepared from a tiny manual dir into a fresh
data_dir, so the same run shows that process 0 prepares it while process 1 waits.
"""
import gzip
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import tiny
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import input_pipeline
from ddgan_jax.models import networks
from ddgan_jax.platform import launch, sharding
from ddgan_jax.train import programs, train_lib
from ddgan_jax.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_idx(path, array):
  magic = 2051 if array.ndim == 3 else 2049
  header = magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _tiny_fashion_files(folder, num_train=32, num_test=8):
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    _write_idx(os.path.join(folder, f'{prefix}-images-idx3-ubyte.gz'), rng.integers(0, 256, (n, 28, 28)))
    _write_idx(os.path.join(folder, f'{prefix}-labels-idx1-ubyte.gz'), rng.integers(0, 10, n))


def _config(data_dir, manual_dir):
  config = tiny.get_config()
  config.data.dataset = 'fashion_mnist'  # 1 channel 32 px, served as 3 channels at 16 px
  config.data.data_dir, config.data.manual_dir = data_dir, manual_dir
  config.train.log_every = config.train.ckpt_every = 2
  config.train.num_sample_images = 0
  config.optim.r1_gamma = 0.0
  config.optim.schedule = 'constant'  # so a 2-step run followed by a 4-step run = one 4-step run
  # Adam's eps well above the tiniest gradients: with 1e-8, a weight whose gradient is ~0 moves
  # by lr * sign(g), and the gloo vs in-process all-reduce rounding flips such signs (measured:
  # one weight in 53,409 off by 4.5e-5, a different one in each run). eps = 1e-3 keeps the update
  # a smooth function of g, so the runs must agree to float32 rounding everywhere.
  config.optim.eps = 1e-3
  return config


def _flags(config, workdir, num_steps):
  keys = [('data', 'dataset'), ('data', 'data_dir'), ('data', 'manual_dir'), ('train', 'log_every'),
          ('train', 'ckpt_every'), ('train', 'num_sample_images'), ('optim', 'r1_gamma'),
          ('optim', 'schedule'), ('optim', 'eps')]
  return (['train.py', '--config=configs/tiny.py', f'--workdir={workdir}', '--cpu_devices=2',
           f'--config.train.num_steps={num_steps}'] +
          [f'--config.{s}.{k}={config[s][k]}' for s, k in keys])


def _launch(args):
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)
  return subprocess.run([sys.executable, '-m', 'ddgan_jax.platform.launch', '--num_processes=2', '--'] + args,
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _reference(config, num_steps):
  """1 process, 4 devices, fed the global batches the 2 processes assemble (process 0's
  rows, then process 1's), through the loop's own step and key."""
  mesh = sharding.make_mesh(jax.devices()[:4])
  repl = sharding.replicated(mesh)
  nets = networks.build_networks(config)
  batch = int(config.train.batch_size)
  steps_per_epoch = input_pipeline.num_examples(config.data, 'train') // batch
  opt = train_lib.make_optimizers(config.optim, steps_per_epoch, num_steps)
  base_key, init_key = jax.random.split(jax.random.PRNGKey(int(config.train.seed)))
  state = jax.jit(lambda k: train_lib.init_state(nets, opt, k), out_shardings=repl)(init_key)
  init = jax.device_get(state)
  step = programs.jit_train_step(step_lib.make_train_step(nets, opt, config), mesh)
  streams = [input_pipeline.create_dataset(config.data, global_batch_size=batch, split='train',
                                           train=True, seed=int(config.train.seed),
                                           process_index=i, process_count=2) for i in (0, 1)]
  for s in range(num_steps):
    images = np.concatenate([next(st)['image'] for st in streams])
    state, _ = step(state, jax.device_put(images, sharding.data_sharding(mesh)),
                    jax.device_put(base_key, repl), r1=step_lib.r1_due(config.optim, s))
  return jax.device_get(state), init, mesh, nets, opt


@pytest.mark.slow
def test_two_processes_stop_resume_and_match_one_process(tmp_path):
  manual, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  _tiny_fashion_files(manual)
  config = _config(data_dir, manual)
  workdir = str(tmp_path / 'run')

  proc = _launch(_flags(config, workdir, 2))
  assert proc.returncode == 0, proc.stdout[-4000:]
  # Process 0 prepared the fresh data_dir; process 1 waited and read it.
  assert [l for l in proc.stdout.splitlines() if 'Preparing' in l] == [
      f'[0] Preparing fashion_mnist_offline in {data_dir}/fashion_mnist_offline/1.0.0']
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']

  proc = _launch(_flags(config, workdir, 4))
  assert proc.returncode == 0, proc.stdout[-4000:]
  assert '[0] Resuming from step 2' in proc.stdout and '[1] Resuming' not in proc.stdout
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  # Logs from process 0 only: one line per log step.
  assert [json.loads(l)['step'] for l in open(os.path.join(workdir, 'metrics.jsonl'))] == [2, 4]

  ref, init, mesh, nets, opt = _reference(config, 4)
  abstract = jax.eval_shape(lambda k: train_lib.init_state(nets, opt, k), jax.random.PRNGKey(0))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  got = jax.device_get(ckpt.restore_state(4, checkpointing.with_sharding(abstract, sharding.replicated(mesh))))
  ckpt.close()
  assert int(got.step) == 4
  for name in ('params_g', 'params_d', 'ema_g'):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name),
                 getattr(ref, name), getattr(got, name))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(getattr(got, name)),
                                                            jax.tree.leaves(getattr(init, name))))
    assert moved > 1e-5, (name, moved)  # 10x atol: the comparison has teeth


@pytest.mark.slow
def test_launcher_stops_everyone_when_one_process_fails(capsys):
  code = ('import sys, time; i = int(sys.argv[-1].split("=")[1]); print("hello from", i, flush=True);'
          'time.sleep(1); sys.exit(3) if i == 1 else time.sleep(120)')
  t = time.time()
  rc = launch.launch(['-c', code], 2, grace_seconds=2)
  assert rc == 3 and time.time() - t < 30  # process 0 (sleeping 120 s) was stopped
  out = capsys.readouterr().out
  assert '[0] hello from 0' in out and '[1] hello from 1' in out
  assert '[launch] process 1 exited with 3: stopping the others' in out
