"""Is the discriminator still discriminating? Scalars, a warning and a summary from the log.

A GAN's generator learns only what its discriminator tells it. When D stops telling real
pairs from fake ones it becomes a near-constant function: its logits on both sides agree, its
accuracy is 0.5 on each side, its input gradient (R1) vanishes and the adversarial part of G's
gradient with it, so G trains on its other terms alone (for the inpainting recipe, an L1
regressor). The train step already computes everything needed (`losses.discriminator_loss`'s
accuracies, R1 on R1 steps, `losses.generator_loss`'s gradient probes); this module turns a log
window of it into the health scalars, flags a D at chance for several windows in a row, and
summarises the end of a run for `make demo`.

"At chance" (config `train.d_health`) is either of:
* `d_logit_gap < min_logit_gap`: the mean real logit minus the mean fake one over a log window.
  A constant D gives exactly 0; the D of an early, still-learning run gave 0.5-1, an informative
  fine-tuning D 0.2-0.4 (docs/discriminator.md). With the clean pairs on (`optim.clean_weight`),
  their gap `d_clean_gap` is logged too, and the larger of the two gaps counts;
* `r1 < min_r1` (in a window that logged R1): the R1 penalty is D's input gradient, which is
  what G learns from; a constant D gives 0. D's that had collapsed logged 4e-9 to 2e-6, the
  informative ones 2e-5 to 5e-3, so the default 1e-5 sits between them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping

from ddgan_jax import config_checks

_DEFAULTS = config_checks.DHealthConfig()  # the thresholds of a config without train.d_health


def health_scalars(scalars: Mapping[str, float]) -> dict[str, float]:
  """The derived health scalars of one log window's means: D's logit gap, its mean accuracy,
  and the adversarial share of G's output gradient (adv / (adv + reconstruction) norms)."""
  out = {}
  if 'd_real_logit' in scalars and 'd_fake_logit' in scalars:
    out['d_logit_gap'] = scalars['d_real_logit'] - scalars['d_fake_logit']
  if 'd_clean_real_logit' in scalars and 'd_clean_fake_logit' in scalars:
    out['d_clean_gap'] = scalars['d_clean_real_logit'] - scalars['d_clean_fake_logit']
  if 'd_acc_real' in scalars and 'd_acc_fake' in scalars:
    out['d_accuracy'] = 0.5 * (scalars['d_acc_real'] + scalars['d_acc_fake'])
  adv, rec = scalars.get('g_grad_adv'), scalars.get('g_grad_rec')
  if adv is not None and rec is not None and adv + rec > 0:
    out['g_adv_share'] = adv / (adv + rec)
  return out


@dataclasses.dataclass
class Monitor:
  """Counts log windows in a row with D at chance; warns once per such streak."""
  min_logit_gap: float = _DEFAULTS.min_logit_gap
  windows: int = _DEFAULTS.windows
  min_r1: float = _DEFAULTS.min_r1
  streak: int = 0

  def reason(self, gap: float | None, r1: float | None) -> str | None:
    """Why D counts as at chance with this logit gap and R1 (None: not logged), else None.
    NaN counts as at chance."""
    if gap is not None and not gap >= self.min_logit_gap:
      return f'gap < {self.min_logit_gap:g}'
    if r1 is not None and not r1 >= self.min_r1:
      return f'R1 < {self.min_r1:g}, a flat D'
    return None

  def at_chance(self, scalars: Mapping[str, float]) -> bool:
    return self.reason(_gap(scalars), scalars.get('r1')) is not None

  @classmethod
  def from_config(cls, train: Any) -> 'Monitor':
    """From `config.train.d_health` (`config_checks.DHealthConfig`: its defaults where a
    config predates it, a one-line ConfigError for a bad value)."""
    health = config_checks.DHealthConfig.from_train(train)
    return cls(health.min_logit_gap, health.windows, health.min_r1)

  def update(self, step: int, scalars: Mapping[str, float]) -> str | None:
    """Feeds one window's scalars (with `health_scalars`); returns the warning line when the
    streak reaches `windows` windows, else None."""
    self.streak = self.streak + 1 if self.at_chance(scalars) else 0
    if self.windows <= 0 or self.streak != self.windows:
      return None
    gap, r1 = _gap(scalars), scalars.get('r1', math.nan)
    return (f'warning: at step {step} the discriminator has been at chance for {self.streak} log '
            f'windows in a row (real-minus-fake logit gap {gap:.4f}, threshold '
            f'{self.min_logit_gap:g}; R1 {r1:.1e}, threshold {self.min_r1:g}): the adversarial '
            'term gives G almost no signal. See docs/discriminator.md.')


def _gap(scalars: Mapping[str, float]) -> float | None:
  """The larger of the official and the clean pairs' logit gaps (None if neither is logged)."""
  gaps = [scalars[k] for k in ('d_logit_gap', 'd_clean_gap') if k in scalars]
  return max(gaps) if gaps and not any(math.isnan(g) for g in gaps) else (
      math.nan if gaps else None)


def summarize_run(workdir: str) -> str:
  """`summarize` of a training workdir's metrics.jsonl, with its config's threshold."""
  records, train = [], None
  path = os.path.join(workdir, 'metrics.jsonl')
  if os.path.exists(path):
    with open(path) as f:
      records = [json.loads(line) for line in f if line.strip()]
  config_path = os.path.join(workdir, 'config.json')
  if os.path.exists(config_path):
    with open(config_path) as f:
      train = json.load(f).get('train')  # (the defaults where it has none)
  monitor = Monitor.from_config(train)
  return summarize(records, monitor.min_logit_gap, min_r1=monitor.min_r1)


def summarize(records: list[dict], min_logit_gap: float = _DEFAULTS.min_logit_gap,
              last: int = 3, min_r1: float = _DEFAULTS.min_r1) -> str:
  """One Markdown paragraph on D's health over the last `last` log windows of a run."""
  records = [r for r in records if 'd_real_logit' in r][-last:]
  if not records:
    return 'Discriminator health: no training log found.'

  def mean(key: str) -> float:  # over the windows that logged `key` (R1: windows with R1 steps)
    values = [r[key] for r in records if key in r]
    return sum(values) / len(values) if values else math.nan

  gap = mean('d_real_logit') - mean('d_fake_logit')
  clean_gap = mean('d_clean_real_logit') - mean('d_clean_fake_logit')
  acc = 0.5 * (mean('d_acc_real') + mean('d_acc_fake'))
  best = gap if math.isnan(clean_gap) else max(gap, clean_gap)
  r1 = mean('r1')
  reason = Monitor(min_logit_gap, min_r1=min_r1).reason(best, None if math.isnan(r1) else r1)
  verdict = (f'AT CHANCE ({reason}): G learns from its other terms only' if reason else
             f'informative (gap >= {min_logit_gap:g}, R1 >= {min_r1:g})')

  steps = f"steps {records[0]['step']}-{records[-1]['step']}" if len(records) > 1 else \
      f"step {records[0]['step']}"
  parts = [f'logit gap (real - fake) {gap:.3f}', f'accuracy {acc:.2f}',
           f"d_loss {mean('d_loss'):.3f} (chance: 1.386)", f"R1 {r1:.2e}"]
  if not math.isnan(clean_gap):
    parts.insert(1, f'clean pairs\' logit gap {clean_gap:.3f}')
  share = mean('g_adv_share')
  if not math.isnan(share):
    parts.append(f'adversarial share of G\'s output gradient {share:.2f}')
  return f"Discriminator health over the last log windows ({steps}): {verdict}; " + \
      ', '.join(parts) + '.'
