"""Writes docs/performance.md (tables + plots) from the JSON lines of bench/run_all.py.

  python bench/report.py bench/results/cpu.jsonl [more.jsonl ...] [--out=docs/performance.md]

Every figure is shown with the machine it came from and the float32 matmul peak measured in
the same process, and speeds are also given as a share of that peak.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os

RUN_CMD = 'make bench'


def _load(paths):
  records = []
  for path in paths:
    with open(path) as f:
      records += [json.loads(line) for line in f if line.strip()]
  return records


def _machine(r):
  """CPU, device and the matmul peak (with the two measurements around the timed work)."""
  around = r.get('matmul_gflops_range')
  around = f" ({around[0]} before, {around[1]} after)" if around else ''
  return (f"{r.get('cpu', '?')}, {r.get('device', '?')}, matmul {r.get('matmul_gflops', '?')} "
          f"GFLOP/s{around}")


def _table(header, rows):
  out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  out += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(out)


def _plots(records, out_dir):
  """images/s against devices and batch (train step), ms/image against NFE (inpainting)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return []
  made = []
  train = [r for r in _cold(records) if r.get('bench') == 'train_step']
  if train:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    by_config = collections.defaultdict(list)
    for r in train:
      by_config[(r['config'], r['batch_size'])].append(r)
    for (config, batch), rs in sorted(by_config.items()):
      rs = sorted(rs, key=lambda r: r['devices'])
      if len(rs) > 1:
        axes[0].plot([r['devices'] for r in rs], [r['images_per_s'] for r in rs], 'o-',
                     label=f'{config} b{batch}')
    axes[0].set(xlabel='host devices', ylabel='train images/s', xscale='log', yscale='log')
    axes[0].minorticks_off()
    axes[0].set_xticks([1, 2, 4, 8], ['1', '2', '4', '8'])
    tiny = sorted((r for r in train if r['config'] == 'tiny.py' and r['devices'] == 2),
                  key=lambda r: r['batch_size'])
    axes[1].plot([r['batch_size'] for r in tiny], [r['images_per_s'] for r in tiny], 'o-')
    axes[1].set(xlabel='batch (tiny, 2 devices)', ylabel='train images/s', xscale='log')
    axes[1].minorticks_off()
    axes[1].set_xticks([r['batch_size'] for r in tiny], [str(r['batch_size']) for r in tiny])
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'images', 'perf_train.png'), dpi=110)
    made.append(('Train step throughput', 'images/perf_train.png'))
  inp = [r for r in records if r.get('bench') == 'inpaint' and r.get('nfe')]
  if inp:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    by_config = collections.defaultdict(list)
    for r in inp:
      by_config[(r['image_size'], r['config'])].append(r)
    for (size, config), rs in sorted(by_config.items()):
      rs = sorted(rs, key=lambda r: r['nfe'])
      ax.plot([r['nfe'] for r in rs], [r['ms_per_image'] for r in rs], 'o-',
              label=f"{config.removesuffix('.py')} ({size} px)")
    ax.set(xlabel='network evaluations (NFE)', ylabel='ms per image', xscale='log', yscale='log')
    ax.minorticks_off()
    nfes = sorted({r['nfe'] for r in inp})
    ax.set_xticks(nfes, [str(n) for n in nfes])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'images', 'perf_inpaint.png'), dpi=110)
    made.append(('Inpainting latency against NFE', 'images/perf_inpaint.png'))
  return made


def _not_run(records) -> list[str]:
  """Names of the CPU suite's cases (bench/run_all.py) that have no record here."""
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import run_all  # pylint: disable=g-import-not-at-top
  done = {r.get('case') for r in records}
  if not any(r.get('device', '').startswith('cpu') for r in records):
    return []
  return [case.name for case in run_all.cpu_suite() if case.name not in done]


def _cold(records):
  """The records of processes that compiled from scratch (all but the warm-cache cases)."""
  return [r for r in records if not r.get('compilation_cache')]


def _speedup(ours, official) -> float:
  """Official time over ours for the same batch (unrounded, unlike images/s)."""
  key = 'ms_per_step' if 'ms_per_step' in official else 'ms_per_call'
  return official[key] / ours[key]


def _matches(r, match) -> bool:
  return all(r.get(k) == v for k, v in match.items())


def _rounds(records, pair, ours, other) -> list[tuple[dict, dict]]:
  """(ours, other) per round of the back-to-back comparison `pair` (bench/run_all.py
  paired_cases) in which both sides have a record; [] for results from before the pairing."""
  out = []
  for k in sorted({r['round'] for r in records if r.get('pair') == pair}):
    rs = [r for r in records if r.get('pair') == pair and r.get('round') == k]
    a = next((r for r in rs if _matches(r, ours)), None)
    b = next((r for r in rs if _matches(r, other)), None)
    if a and b:
      out.append((a, b))
  return out


def _geomean(values) -> float:
  return math.exp(sum(math.log(v) for v in values) / len(values))


def _compare(records, pair, ours, other):
  """(speed-up, [one per round]): each round's other-over-ours time, and their geometric mean,
  so a drift of the machine over the rounds (which ran in opposite orders) cancels; (None, [])
  without a round that has both sides."""
  rounds = [_speedup(a, b) for a, b in _rounds(records, pair, ours, other)]
  return (_geomean(rounds), rounds) if rounds else (None, [])


def _with_rounds(value, rounds, fmt) -> str:
  if len(rounds) < 2:
    return fmt.format(value)
  return f"{fmt.format(value)} (rounds: {', '.join(fmt.format(v) for v in rounds)})"


F32 = dict(compute_dtype='float32', remat=False)
# The back-to-back comparisons (bench/run_all.py paired_cases): pair -> what, ours, the other side.
PAIRS = [(f'{config} b{batch}', what, dict(ours, config=f'{config}.py', batch_size=batch),
          dict(other, config=f'{config}.py', batch_size=batch))
         for config, batch in (('tiny', 16), ('cifar10', 8))
         for what, ours, other in (
             ('train', dict(bench='train_step', devices=1, **F32),
              dict(bench='official_train_step')),
             ('sampler (T steps)', dict(bench='inpaint', method='sampler'),
              dict(bench='official_sampler')))]
# The training loop against the bare step it runs, alternating in one process (bench/train_loop.py).
LOOP = dict(bench='train_loop', config='fashion_mnist_inpaint.py')


def _loop(records):
  """The bench/train_loop.py record of the target's config, or None."""
  return next((r for r in records if _matches(r, LOOP) and 'speed_share' in r), None)


def _interleaved(records, ours):
  """The bench/interleaved.py record of `ours`'s config and batch, or None."""
  return next((r for r in records if r.get('bench') == 'interleaved_sampler' and _matches(
      r, dict(config=ours['config'], batch_size=ours['batch_size']))), None)


def _interleaved_section(records) -> list[str]:
  rs = [r for r in records if r.get('bench') == 'interleaved_sampler']
  if not rs:
    return []
  return ['## Samplers interleaved in one process', '',
          '`bench/interleaved.py`: ours and the official `sample_from_model` in one process, each '
          'window timing ours, the official sampler twice, then ours again, so a drift of the '
          'machine within a window falls on both sides; the ratio is the official time over ours '
          '(images/s, ours over official).', '',
          _table(['config', 'batch', 'devices (ours)', 'NFE', 'ours ms/call', 'official ms/call',
                  'windows', 'median ours / official', 'per window', 'machine', 'command'],
                 [[r['config'], r['batch_size'], r.get('batch_devices', 1), r['nfe'],
                   r['ours_ms_per_call'],
                   r['official_ms_per_call'], r['windows'], f"**{r['median_ratio']:.2f}x**",
                   ', '.join(f'{v:.2f}' for v in r['ratios']), _machine(r), f"`{r['command']}`"]
                  for r in rs]), '']


def _targets_section(records, train, warm) -> list[str]:
  """The performance targets, each with the figure of this run that decides it."""
  rows = []

  def row(target, value, fmt, ok, rounds=()):
    rows.append([target, '-' if value is None else _with_rounds(value, rounds, fmt),
                 '-' if value is None else ('yes' if ok(value) else '**no**')])

  goals = {('tiny.py', 'train'): 3.0}
  for pair, what, ours, other in PAIRS:
    goal = goals.get((ours['config'], what), 1.5)
    speedup, rounds = _compare(records, pair, ours, other)
    target = f"{ours['config']} b{ours['batch_size']} {what.split()[0]} images/s >= {goal}x official"
    inter = _interleaved(records, ours) if what.startswith('sampler') else None
    if inter is None:
      row(target, speedup, '{:.2f}x', lambda v, g=goal: v >= g, rounds)
      continue
    # Both measurements shown; the target is met only if both say so.
    shown = ('-' if speedup is None else _with_rounds(speedup, rounds, '{:.2f}x')) + (
        f"; interleaved in one process: {inter['median_ratio']:.2f}x (median of "
        f"{len(inter['ratios'])} windows, {min(inter['ratios']):.2f}-{max(inter['ratios']):.2f}x)")
    met = speedup is not None and speedup >= goal and inter['median_ratio'] >= goal
    rows.append([target, shown, 'yes' if met else '**no**'])
  shares = [r['share_of_matmul_peak'] for r in _cold(records) if r.get('bench') == 'train_step'
            and _matches(r, dict(config='cifar10.py', batch_size=8, devices=1, **F32))]
  row('cifar10.py b8 train step >= 60% of the matmul peak (1 device)',
      sum(shares) / len(shares) if shares else None, '{:.0%}', lambda v: v >= 0.6, shares)
  for config, batch, rs, limit, what in (
      ('cifar10.py', 8, train, 60, 'cold'), ('cifar10.py', 8, warm, 5, 'warm'),
      ('tiny.py', 16, train, 20, 'cold')):
    times = [r['compile_s'] for r in rs if r['config'] == config and r['batch_size'] == batch
             and r['devices'] == 1 and 'init_compile_s' in r]
    first = [r['first_step_ready_s'] for r in rs if r['config'] == config
             and r['batch_size'] == batch and r['devices'] == 1 and 'init_compile_s' in r]
    row(f'{config} b{batch} step compile, {what} < {limit} s (init and all step programs ready; '
        f'first step ready after {first[0] if first else "-"} s)', times[0] if times else None, '{} s',
        lambda v, l=limit: v < l)
  loop = _loop(records)
  shown = '-' if loop is None else (f"{loop['speed_share']:.0%} (blocks: "
                                    f"{', '.join(f'{v:.0%}' for v in loop['ratios'])})")
  rows.append([f"training loop within 5% of the bare step it runs ({LOOP['config']}, "
               f"{loop['devices'] if loop else '-'} devices; alternating in one process)", shown,
               '-' if loop is None else ('yes' if loop['speed_share'] >= 0.95 else '**no**')])
  for r in (r for r in records if r.get('bench') == 'inpaint' and r['method'] == 'conditional'):
    row(f"conditional inpainting {r['image_size']} px: NFE = T, >= 500x fewer than RePaint's "
        f"2,410 ({r['ms_per_image']} ms/image end to end; {r['ms_per_nfe']} ms per network "
        f"evaluation of the batch of {r['batch_size']})",
        r['nfe_fewer_than_repaint'], '{}x', lambda v: v >= 500)
  if not rows:
    return []
  return ['## Targets', '', 'Each decided by a figure of the tables below (`-`: not in these '
          'results). A comparison timed in rounds (ours and the official code, back to back, in '
          'the opposite order in the second round: the machine\'s speed drifts between '
          'processes) gives the geometric mean of its rounds\' ratios, each round in brackets. '
          'The samplers are also timed alternating in one process (below); a sampler target is '
          'met only if both measurements meet it. The training loop and the bare step alternate '
          'in one process only.', '',
          _table(['target', 'measured', 'met'], rows), '']


def _official_section(records) -> list[str]:
  """Ours against the official PyTorch code, both timed in this run (bench/official_torch.py)."""
  official = [r for r in records if r.get('bench', '').startswith('official_')]
  if not official:
    return []
  rows = []
  for what, ours, off in ((what, a, b) for pair, what, ours, other in PAIRS
                          for a, b in _rounds(records, pair, ours, other)):
    n = ours.get('devices', ours.get('batch_devices'))  # train step / sampler (absent: 1)
    devices = f", {n} device(s)" if n else ''
    # The same model and step, so XLA's FLOP count of ours also counts the official one's work.
    off_share = (f"{ours['gflop_per_step'] / off['ms_per_step'] * 1e3 / off['matmul_gflops']:.3f}"
                 if 'gflop_per_step' in ours and off.get('ms_per_step') else '-')
    rows.append([off['config'], off['batch_size'], what, ours['round'],
                 f"{ours['images_per_s']}{devices}", off['images_per_s'],
                 f"**{_speedup(ours, off):.2f}x**",
                 ours.get('share_of_matmul_peak', '-'), off_share, _machine(ours),
                 f"`{ours['command']}` / `{off['command']}`"])
  return ['## Against the official PyTorch code (same machine, same run)', '',
          f"{official[0]['implementation']} with {official[0]['torch_threads']} threads: "
          'NVlabs/denoising-diffusion-gan unchanged on its CPU code path, timed by '
          '`bench/official_torch.py` (its training-loop body and `sample_from_model`, R1 on the '
          'same steps as ours). Each round times ours and the official code back to back (round '
          '1: ours first; round 2: the official code first). images/s, higher is better; '
          '`machine` is ours, with the matmul peak of its process.', '',
          _table(['config', 'batch', 'what', 'round', 'ours images/s', 'official images/s',
                  'ours / official', 'share of peak: ours', 'official', 'machine',
                  'commands (ours / official)'],
                 rows), '']


def _compile_section(train, warm) -> list[str]:
  """Cold compile times (cache off) and warm ones (second run on a filled cache)."""
  if not train:
    return []
  rows = [[r['config'], r['batch_size'], r['devices'], 'warm' if r in warm else 'cold',
           r.get('init_compile_s', '-'), r.get('ready_r1_s', '-'), r.get('ready_update_s', '-'),
           r.get('ready_no_r1_s', '-'), r['compile_s'], r.get('first_step_ready_s', '-')]
          for r in train + warm if 'init_compile_s' in r]
  return ['## Compile time', '',
          'Wall seconds from the start to when each program was ready, including tracing and '
          'lowering, as the training loop runs it (`ddgan_jax/train/programs.py`): in the background, '
          'one thread traces and lowers the three step programs in turn (the discriminator phase '
          'with R1, the update both phases share, the discriminator phase without R1: step 0 has '
          'R1) and another compiles each as it comes, in the same order, while init compiles and '
          'runs in the main thread. `all ready`: init and every step program; `first step '
          'ready`: init, the R1 D phase and the update. `warm`: a second process on a filled '
          'persistent compilation cache (train.py has it on by default), i.e. a resume or a '
          'rerun.', '',
          _table(['config', 'batch', 'devices', 'cache', 'init', 'D phase (R1)', 'update',
                  'D phase (no R1)', 'all ready', 'first step ready'], rows), ''
          ] + _parts(train + warm)


def _parts(train) -> list[str]:
  """Where each program's compile went (bench/train_step.py compile_parts_s)."""
  programs = (('init', 'init'), ('d_phase_r1', 'D phase (R1)'), ('update', 'update'),
              ('d_phase_no_r1', 'D phase (no R1)'))
  cell = lambda part: ' / '.join(str(part.get(k, '-')) for k in ('trace', 'lower', 'xla'))
  rows = [[r['config'], r['batch_size'], r['devices'],
           'warm' if r.get('compilation_cache') else 'cold']
          + [cell(r['compile_parts_s'].get(p, {})) for p, _ in programs]
          for r in train if r.get('compile_parts_s')]
  if not rows:
    return []
  return ['Where each program\'s time went: seconds of tracing (Python), lowering to StableHLO, '
          'and XLA (a compile, or with a warm cache the load of the cached executable), from '
          'JAX\'s own `jax.monitoring` events. Each is its own thread\'s time: init traces in the '
          'main thread while the step programs trace in another and compile in a third, so they '
          'overlap and do not add up to the wall times above.', '',
          _table(['config', 'batch', 'devices', 'cache'] + [f'{name}: trace / lower / XLA'
                                                              for _, name in programs], rows), '']


def render(everything, out_dir) -> str:
  # Later rounds of the back-to-back comparisons (bench/run_all.py paired_cases) count in the
  # targets, the comparison with the official code and the loop section; the rest shows round 1.
  records = [r for r in everything if r.get('round', 0) <= 1]
  lines = ['# Performance', '',
           f'Regenerate with `{RUN_CMD}` (runs `bench/run_all.py`, then this report). Each row '
           'names its machine: CPU model, device kind and the float32 matmul peak measured in the '
           'same process, right before and right after the timed work (their mean; the machine\'s '
           'speed drifts); `share` is achieved GFLOP/s (XLA cost analysis) over that peak.', '']
  failed = [r for r in everything if r.get('status')]
  warm = [r for r in records if r.get('bench') == 'train_step' and r.get('compilation_cache')]
  train = [r for r in _cold(records) if r.get('bench') == 'train_step']
  lines += _targets_section(everything, train, warm)
  lines += _official_section(everything)
  lines += _interleaved_section(everything)
  lines += _compile_section(train, warm)
  if train:
    lines += ['## Train step (bare jitted step, random images, lazy R1 mixed in)', '',
              _table(['config', 'dtype', 'remat', 'batch', 'devices', 'ms/step', 'images/s',
                      'GFLOP/s', 'share', 'compile s', 'peak RSS MiB', 'machine', 'command'],
                     [[r['config'], r.get('compute_dtype', 'float32'), r.get('remat', False),
                       r['batch_size'], r['devices'], r['ms_per_step'], r['images_per_s'],
                       r['achieved_gflop_per_s'], r.get('share_of_matmul_peak', ''),
                       r['compile_s'], r['peak_rss_mib'], _machine(r), f"`{r['command']}`"]
                      for r in train]), '']
  loop = _loop(everything)
  if loop:
    lines += ['## Training loop against the bare step', '',
              f"`{loop['command']}`: the real `train_and_evaluate` (input pipeline, masks, "
              f"logging, checkpoints, the non-finite guard) against the bare step it runs (the same "
              f"programs, one batch already on the devices, the same step numbers), alternating "
              f"in one process: blocks of loop, bare, bare, loop, each loop part a resume of "
              f"{loop['chunk_steps']} steps whose first logging window is left out. "
              f"{loop['config']}, batch {loop['batch_size']}, {loop['devices']} devices, "
              f"{_machine(loop)}.", '',
              _table(['', 'ms/step (mean)', 'per part'],
                     [[name, loop[mean], ', '.join(map(str, loop[parts]))] for name, mean, parts
                      in (('loop', 'ms_per_step', 'loop_ms'),
                          ('bare step', 'bare_ms_per_step', 'bare_ms'))]),
              '', f"The loop runs at **{loop['speed_share']:.0%}** of the bare step's speed "
              f"(geometric mean of the blocks' bare over loop time: "
              f"{', '.join(f'{v:.0%}' for v in loop['ratios'])}).", '']
  inp = [r for r in records if r.get('bench') == 'inpaint']
  if inp:
    lines += ['## Sampling and inpainting latency', '',
              'Untrained networks of each config (speed does not depend on the weights); `wide` '
              'masks; one batched call, median of 5, the batch split over `devices` as sample.py '
              'splits it. RePaint\'s own schedule needs 2,410 network evaluations per image.', '',
              _table(['config', 'px', 'batch', 'devices', 'method', 'NFE', 'ms/call', 'ms/image',
                      'images/s', 'ms/NFE', 'share', 'NFE fewer than RePaint', 'machine'],
                     [[r['config'], r['image_size'], r['batch_size'], r.get('batch_devices', 1),
                       r['method'], r['nfe'],
                       r['ms_per_call'], r['ms_per_image'], r['images_per_s'],
                       r.get('ms_per_nfe', '-'), r.get('share_of_matmul_peak', '-'),
                       r.get('nfe_fewer_than_repaint', '-'), _machine(r)]
                      for r in inp]), '']
  for title, path in _plots(records, out_dir):
    lines += [f'## {title}', '', f'![{title}]({path})', '']
  missing = _not_run(everything)
  if missing:
    lines += ['## Suite cases not in these results', '',
              'Not run for this file (run `make bench` for the whole suite): ' +
              ', '.join(f'`{name}`' for name in missing) + '.', '']
  if failed:
    lines += ['## Cases that did not finish', '',
              _table(['case', 'status', 'last error line', 'command'],
                     [[r['case'], r['status'], r.get('error', ''), f"`{r['command']}`"]
                      for r in failed]), '']
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('results', nargs='+')
  parser.add_argument('--out', default='docs/performance.md')
  args = parser.parse_args()
  out_dir = os.path.dirname(os.path.abspath(args.out))
  os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
  text = render(_load(args.results), out_dir)
  with open(args.out, 'w') as f:
    f.write(text)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
