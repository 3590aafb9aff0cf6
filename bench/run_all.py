"""Runs the benchmark suite: every bench as its own process, JSON lines appended to --out.

  python bench/run_all.py --suite=cpu --out=bench/results/cpu.jsonl   # what `make bench` runs
  python bench/run_all.py --suite=cpu --out=... --official_repo=PATH  # + the official code
  python bench/run_all.py --suite=gpu --out=gpu.jsonl                 # on one accelerator

Each case runs in a fresh process (so device counts and compilation start clean, with the
persistent compilation cache off) under a time limit; a case that fails or times out is
recorded as such and the suite goes on. A `warm` case runs its command twice with a fresh
cache folder and records the second run: compile times as a resume or a second run sees them.
With --official_repo (a checkout of NVlabs/denoising-diffusion-gan, and torch installed: the
`official` extra) the official PyTorch code is timed in the same run (bench/official_torch.py).
The comparisons the targets rest on run back to back, in two rounds of opposite order
(`paired_cases`), since this machine's speed drifts from one process to the next; the samplers
are also timed alternating in one process (`interleaved_cases`), and the training loop against
the bare step only so (bench/train_loop.py).
`bench/report.py` turns the JSON lines into docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Case(NamedTuple):
  name: str
  argv: list[str]  # after `python`
  timeout: int  # seconds
  warm: bool = False  # run twice on a fresh compilation cache, record the second run
  pair: str = ''  # the comparison it is one side of, timed back to back (`paired_cases`)
  round: int = 0  # which round of that comparison (1, 2, ...)


def _train(config: str, devices: int, batch: int, steps: int, *extra: str) -> list[str]:
  return ['bench/train_step.py', f'--config=configs/{config}.py', f'--batch_size={batch}',
          f'--cpu_devices={devices}', f'--steps={steps}', *extra]


def _sampler(config: str, batch: int) -> list[str]:
  return ['bench/inpaint.py', f'--config=configs/{config}.py', f'--batch_size={batch}',
          '--repaint_resample=']


def _official(repo: str, config: str, batch: int, steps: int) -> list[str]:
  return ['bench/official_torch.py', f'--official_repo={repo}', f'--config=configs/{config}.py',
          f'--batch_size={batch}', f'--steps={steps}']


ROUNDS = 2


def paired_cases(official_repo: str = '', rounds: int = ROUNDS) -> list[Case]:
  """The cases a target compares, timed back to back: ours against the official PyTorch code
  (train step and sampler; only with `official_repo`). This machine's speed drifts between
  processes (up to ~1.6x within one suite run), so two sides timed half an hour apart can differ
  by that much. Each comparison runs in `rounds` rounds, in the opposite order every other round
  (A B, then B A), so a drift over the rounds falls on both sides; bench/report.py takes each
  round's ratio and their geometric mean.
  Round 1 carries the plain case names (the rest of the suite and the plots use those)."""
  sides = []  # (pair, [one side's cases, the other side's]) as (name, argv, timeout)
  for config, batch, steps, timeout in (('tiny', 16, 30, 900), ('cifar10', 8, 15, 2400)):
    ours = [(f'{config} b{batch} d1', _train(config, 1, batch, steps), timeout),
            (f'sampler {config} b{batch}', _sampler(config, batch), 900)]
    official = [(f'official {config} b{batch}', _official(official_repo, config, batch, steps),
                 1800)] if official_repo else []
    sides.append((f'{config} b{batch}', ours, official))
  cases = []
  for pair, first, second in sides:
    for k in range(1, (rounds if first and second else 1) + 1):
      order = first + second if k % 2 else second + first[::-1]
      cases += [Case(name if k == 1 else f'{name} (round {k})', argv, timeout, pair=pair, round=k)
                for name, argv, timeout in order]
  return cases


def interleaved_cases(official_repo: str) -> list[Case]:
  """Ours and the official sampler alternating in one process (bench/interleaved.py): the
  drift between processes does not enter their ratio. Only with `official_repo`."""
  if not official_repo:
    return []
  return [Case(f'interleaved sampler {config} b{batch}',
               ['bench/interleaved.py', f'--official_repo={official_repo}',
                f'--config=configs/{config}.py', f'--batch_size={batch}', f'--windows={windows}'],
               1800) for config, batch, windows in (('tiny', 16, 20), ('cifar10', 8, 8))]


def cpu_suite(official_repo: str = '', rounds: int = ROUNDS) -> list[Case]:
  cases = paired_cases(official_repo, rounds) + interleaved_cases(official_repo)
  # The training loop against the bare step it runs, alternating in one process.
  cases.append(Case('train loop demo', ['bench/train_loop.py',
                                        '--config=configs/fashion_mnist_inpaint.py'], 1800))
  cases.append(Case('demo b16 d2', _train('fashion_mnist_inpaint', 2, 16, 15), 1200))
  for devices in (2, 4, 8):  # images/s against host devices (1: paired_cases)
    cases.append(Case(f'tiny b16 d{devices}', _train('tiny', devices, 16, 30), 900))
  for batch in (8, 64):  # and against batch
    cases.append(Case(f'tiny b{batch} d2', _train('tiny', 2, batch, 30), 900))
  cases.append(Case('demo b16 d1', _train('fashion_mnist_inpaint', 1, 16, 15), 1200))
  cases.append(Case('cifar10 b8 d2', _train('cifar10', 2, 8, 15), 2400))
  for config, batch in (('tiny', 16), ('cifar10', 8)):  # compile time from the cache
    cases.append(Case(f'{config} b{batch} d1 warm', _train(config, 1, batch, 15), 2400, True))
  cases.append(Case('celebahq_256 b4 d1 remat', _train('celebahq_256', 1, 4, 2, '--warmup=1',
                                                       '--config.model.remat=True'), 2400))
  for config, batch in (('fashion_mnist_inpaint', 16), ('imagenet_64_inpaint', 8),
                        ('celebahq_256_inpaint', 2)):
    cases.append(Case(f'inpaint {config}', ['bench/inpaint.py', f'--config=configs/{config}.py',
                                            f'--batch_size={batch}', '--classical'], 1800))
  return cases


def gpu_suite() -> list[Case]:
  """Most telling first: a run cut short by its time limit keeps what it measured."""
  bf16 = '--config.model.compute_dtype=bfloat16'
  return [
      Case('cifar10 b64 float32', _train('cifar10', 0, 64, 15), 240),
      Case('cifar10 b64 bfloat16', _train('cifar10', 0, 64, 15, bf16), 240),
      Case('inpaint fashion_mnist_inpaint', ['bench/inpaint.py',
                                             '--config=configs/fashion_mnist_inpaint.py',
                                             '--batch_size=64'], 120),
      Case('inpaint celebahq_256_inpaint', ['bench/inpaint.py',
                                            '--config=configs/celebahq_256_inpaint.py',
                                            '--batch_size=16'], 180),
      Case('celebahq_256 b16 bfloat16', _train('celebahq_256', 0, 16, 10, bf16), 300),
      Case('celebahq_256 b16 bfloat16 remat', _train('celebahq_256', 0, 16, 10, bf16,
                                                     '--config.model.remat=True'), 300),
      Case('celebahq_256 b16 float32', _train('celebahq_256', 0, 16, 10), 300),
  ]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--suite', choices=('cpu', 'gpu'), default='cpu')
  parser.add_argument('--out', required=True, help='JSON lines are appended here.')
  parser.add_argument('--only', default='', help='Run only cases whose name contains this.')
  parser.add_argument('--official_repo', default='',
                      help='Checkout of NVlabs/denoising-diffusion-gan: time it too.')
  parser.add_argument('--rounds', type=int, default=ROUNDS,
                      help='Rounds of each back-to-back comparison (paired_cases).')
  args = parser.parse_args()
  repo = os.path.abspath(args.official_repo) if args.official_repo else ''
  cases = cpu_suite(repo, args.rounds) if args.suite == 'cpu' else gpu_suite()
  cases = [c for c in cases if args.only in c.name]
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE='false', TF_CPP_MIN_LOG_LEVEL='2')
  for name, argv, timeout, warm, pair, round_ in cases:
    t0 = time.time()
    print(f'[bench] {name} ...', file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as cache:
      runs = 2 if warm else 1
      case_env = dict(env, JAX_ENABLE_COMPILATION_CACHE='true') if warm else env
      run_argv = argv + [f'--compilation_cache={cache}'] if warm else argv
      try:
        for _ in range(runs):
          proc = subprocess.run([sys.executable, *run_argv], cwd=REPO, env=case_env,
                                capture_output=True, text=True, timeout=timeout)
        lines = [l for l in proc.stdout.splitlines() if l.startswith('{')]
        status = 'ok' if proc.returncode == 0 and lines else f'failed (exit {proc.returncode})'
        error = proc.stderr.strip().splitlines()[-1:] if status != 'ok' else []
      except subprocess.TimeoutExpired:
        lines, status, error = [], f'timed out after {timeout} s', []
    if warm:
      argv = argv + ['--compilation_cache=DIR', '(second run; the first fills DIR)']
    if repo:  # no local path in the records
      argv = [a.replace(repo, 'CHECKOUT') for a in argv]
    tags = dict(pair=pair, round=round_) if pair else {}
    records = [dict(json.loads(l), case=name, command='python ' + ' '.join(argv), **tags)
               for l in lines]
    if not records:
      records = [dict(case=name, command='python ' + ' '.join(argv), status=status,
                      error=error[0] if error else '', **tags)]
    with open(args.out, 'a') as f:
      for r in records:
        f.write(json.dumps(r) + '\n')
    print(f'[bench] {name}: {status} in {time.time() - t0:.0f} s', file=sys.stderr, flush=True)


if __name__ == '__main__':
  main()
