"""bench/run_all.py's back-to-back rounds and how bench/report.py decides a target from them."""
import os
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_REPO, 'bench'))
import report  # pylint: disable=g-import-not-at-top,wrong-import-position
import run_all  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_rounds_run_back_to_back_in_opposite_orders():
  cases = run_all.paired_cases('/official', rounds=2)
  names = [c.name for c in cases if c.pair == 'cifar10 b8']
  assert names == ['cifar10 b8 d1', 'sampler cifar10 b8', 'official cifar10 b8',
                   'official cifar10 b8 (round 2)', 'sampler cifar10 b8 (round 2)',
                   'cifar10 b8 d1 (round 2)']
  # Without the official code there is nothing to pair ours with: one round of ours.
  alone = [c.name for c in run_all.paired_cases('', rounds=2) if c.pair == 'tiny b16']
  assert alone == ['tiny b16 d1', 'sampler tiny b16']
  suite = run_all.cpu_suite('/official')
  assert len({c.name for c in suite}) == len(suite)
  # The loop and its bare step alternate in one process (bench/train_loop.py): no rounds.
  assert [(c.name, c.pair) for c in suite if 'loop' in c.name] == [('train loop demo', '')]


def _records(ours_ms, official_ms):
  out = []
  for k, (a, b) in enumerate(zip(ours_ms, official_ms), start=1):
    common = dict(config='cifar10.py', batch_size=8, pair='cifar10 b8', round=k)
    out += [dict(common, bench='train_step', devices=1, compute_dtype='float32', remat=False,
                 ms_per_step=a, images_per_s=8e3 / a, compilation_cache=False,
                 share_of_matmul_peak=0.5),
            dict(common, bench='official_train_step', ms_per_step=b, images_per_s=8e3 / b)]
  return out


def test_a_drifting_machine_cancels_in_the_geometric_mean_of_rounds():
  (ours, other), = [(o, t) for pair, what, o, t in report.PAIRS
                     if pair == 'cifar10 b8' and what == 'train']
  # Round 1 on a machine 1.5x slower than in round 2, both sides alike: 2.0x in each round,
  # where ours of round 2 against the official code of round 1 would read 3.0x.
  speedup, rounds = report._compare(_records([3000.0, 2000.0], [6000.0, 4000.0]), 'cifar10 b8',
                                    ours, other)
  assert rounds == pytest.approx([2.0, 2.0]) and speedup == pytest.approx(2.0)
  # Rounds that disagree: their geometric mean, each round shown beside it.
  speedup, rounds = report._compare(_records([1000.0, 1000.0], [1000.0, 4000.0]), 'cifar10 b8',
                                    ours, other)
  assert speedup == pytest.approx(2.0) and rounds == pytest.approx([1.0, 4.0])
  text = '\n'.join(report._targets_section(_records([1000.0, 1000.0], [1000.0, 4000.0]), [], []))
  assert ('| cifar10.py b8 train images/s >= 1.5x official | 2.00x (rounds: 1.00x, 4.00x) | yes |'
          in text)


def test_interleaved_windows_cancel_a_steady_drift():
  import official_code  # pylint: disable=g-import-not-at-top
  now = [0.0]
  calls = [0]

  def costs(seconds):
    def fn():  # the machine slows by 10% of a call with every call
      now[0] += seconds * (1.0 + 0.1 * calls[0])
      calls[0] += 1
    return fn

  ratios, ours_s, official_s = official_code.window_ratios(costs(1.0), costs(2.0), 3,
                                                         clock=lambda: now[0])
  assert ratios == pytest.approx([2.0, 2.0, 2.0])
  assert ours_s[2] > ours_s[0]  # each side's own time drifted
  # Timed one side after the other (ours twice, then the official code twice), the same
  # drift reads 2 * (1.2 + 1.3) / (1.0 + 1.1) = 2.38x for a true 2x.
  now[0], calls[0] = 0.0, 0
  ours, official = costs(1.0), costs(2.0)
  ours(), ours()
  a = now[0]
  official(), official()
  assert (now[0] - a) / a == pytest.approx(2.381, abs=1e-3)


def test_a_sampler_target_needs_both_measurements():
  records = []
  for k, (a, b) in enumerate(((1000.0, 2000.0), (1000.0, 2000.0)), start=1):
    common = dict(config='cifar10.py', batch_size=8, pair='cifar10 b8', round=k)
    records += [dict(common, bench='inpaint', method='sampler', ms_per_call=a),
                dict(common, bench='official_sampler', ms_per_call=b)]
  row = lambda text: next(l for l in text.splitlines() if 'cifar10.py b8 sampler' in l)
  assert row('\n'.join(report._targets_section(records, [], []))).endswith(
      '| 2.00x (rounds: 2.00x, 2.00x) | yes |')
  inter = dict(bench='interleaved_sampler', config='cifar10.py', batch_size=8, nfe=4,
               windows=3, ratios=[1.1, 1.2, 1.3], median_ratio=1.2, ours_ms_per_call=1000.0,
               official_ms_per_call=1200.0, command='python bench/interleaved.py')
  text = '\n'.join(report._targets_section(records + [inter], [], []))
  assert row(text).endswith('| 2.00x (rounds: 2.00x, 2.00x); interleaved in one process: 1.20x '
                            '(median of 3 windows, 1.10-1.30x) | **no** |')
  assert '**1.20x**' in '\n'.join(report._interleaved_section([inter]))


def test_the_loop_target_reads_the_in_process_blocks():
  loop = dict(bench='train_loop', config='fashion_mnist_inpaint.py', batch_size=16, devices=2,
              chunk_steps=60, ms_per_step=400.0, bare_ms_per_step=380.0, loop_ms=[400.0, 400.0],
              bare_ms=[380.0, 380.0], ratios=[0.95, 0.93], speed_share=0.94, cpu='cpu',
              device='cpu:cpu', matmul_gflops=200.0, command='python bench/train_loop.py')
  row = lambda records: next(l for l in '\n'.join(report._targets_section(records, [], []))
                             .splitlines() if l.startswith('| training loop'))
  assert row([loop]).endswith('| 94% (blocks: 95%, 93%) | **no** |')
  assert row([dict(loop, speed_share=0.96, ratios=[0.96, 0.96])]).endswith(
      '| 96% (blocks: 96%, 96%) | yes |')
  # A record of the old separate-process kind (no blocks) decides nothing.
  old = {k: v for k, v in loop.items() if k not in ('ratios', 'speed_share')}
  assert row([old]).endswith('| - | - |')
