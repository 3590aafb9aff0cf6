"""The evaluation's report: results.json, results.md (the table, the summary against the
classical baselines and the settings) and one picture grid per family (grid_<family>.png).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ddgan_jax.data import visualize
from ddgan_jax.evaluation import baselines, methods
from ddgan_jax.evaluation import families as families_lib

HOLE_VALUE = 0.0  # Grey, in [-1, 1], for the holes of the "masked" grid column.


def write(report: dict, output_dir: str) -> None:
  """Writes `report` ({'settings': ..., 'results': [...]}) as results.json and results.md."""
  with open(os.path.join(output_dir, 'results.json'), 'w') as f:
    json.dump(report, f, indent=2)
  with open(os.path.join(output_dir, 'results.md'), 'w') as f:
    f.write(format_markdown(report))


def input_columns(images: np.ndarray, masks: np.ndarray) -> list[np.ndarray]:
  """The first two grid columns: the input images ([-1, 1]) and them with grey holes."""
  return [images, np.where(masks > 0, HOLE_VALUE, images)]


def save_family_grid(columns: list[np.ndarray], path: str) -> None:
  """Rows = images; columns = input, masked, then one per method ([-1, 1] arrays)."""
  stacked = np.stack(columns, axis=1)  # [G, K, H, W, C]
  g, k = stacked.shape[:2]
  visualize.save_grid(stacked.reshape((g * k,) + stacked.shape[2:]), path, ncol=k)


def format_summary(report: dict) -> str:
  """Per family: each model method's LPIPS next to the best classical method's (Markdown).

  The `unconditional` rows (no ground truth, no LPIPS) are left out.
  """
  rows = report['results']
  families = [f for f in report['settings']['families'] if f != families_lib.UNCONDITIONAL]
  models = [m for m in report['settings']['methods'] if methods.parse_method(m).kind == 'model']
  if not models or not any(r['method'] in baselines.CLASSICAL for r in rows):
    return ''
  labels = [methods.LABELS.get(m, methods.parse_method(m).label) for m in models]
  lines = ['| family | ' + ' | '.join(labels) + ' | best classical (LPIPS) |',
           '|---|' + '---:|' * (len(models) + 1)]
  for family in families:
    by = {r['method']: r for r in rows if r['family'] == family}
    best = min((by[m] for m in baselines.CLASSICAL if m in by), key=lambda r: r['lpips'])
    cells = [f"{by[m]['lpips']:.3f}" + (' ✓' if by[m]['lpips'] < best['lpips'] else '')
             for m in models]
    lines.append(f"| {family} | " + ' | '.join(cells) + f" | {best['lpips']:.3f} ({best['label']}) |")
  return '\n'.join(lines) + '\n\n✓ = lower (better) LPIPS than every classical method.\n'


def _cell(value: float | None, spec: str, scale: float = 1.0) -> str:
  return '-' if value is None else f'{scale * value:{spec}}'


def format_markdown(report: dict) -> str:
  """The results table (rows: family x method) and the settings, as Markdown.

  With realism metrics: KID x 1e3 (± its std over subsets, when subsets were drawn), FID,
  precision, recall, density and coverage columns, and the `unconditional` rows ('-' where not measured).
  """
  s = report['settings']
  real = s.get('realism')
  families = s['families'] + ([families_lib.UNCONDITIONAL] if s.get('unconditional') else [])
  lines = ["# Inpainting evaluation\n",
           f"{s['num_images']} images of `{s['dataset']}` split `{s['split']}` "
           f"({s['image_size']} px, T = {s['num_timesteps']}), checkpoint `{s['checkpoint']}`. "
           f"Masks from seed {s['seed']}. LPIPS ({s['lpips']}), PSNR and SSIM ({s['ssim']}) on "
           f"{s['metrics_on']}; ms/image: {s['timing']} ({s['device']}, "
           f"{s['num_devices']} device(s)).\n",
           (f"Machine: {s['machine']['cpu']}, float32 matmul {s['machine']['matmul_gflops']} "
            "GFLOP/s measured in the same run.\n" if 'machine' in s else ''),
           (f"Realism: {real['features']} features of the results vs {real['reference_images']} "
            f"real images of the split (cached in `{real['cache_file']}`); KID: {real['kid']}; "
            f"FID: {real['fid']}; precision/recall: {real['precision_recall']}; density/coverage: "
            f"{real.get('density_coverage', 'not measured')}. Not comparable with Inception "
            "FID/KID.\n" if real else ''),
           format_summary(report),
           '| family | hole % | method | LPIPS ↓ | PSNR ↑ | SSIM ↑ | diversity | '
           + ('KID×10³ ↓ | FID ↓ | precision ↑ | recall ↑ | density | coverage ↑ | '
              if real else '')
           + 'NFE | ms/image |',
           '|---|---:|---|' + '---:|' * (12 if real else 6)]
  for r in report['results']:
    kid = _cell(r.get('kid'), '.2f', 1e3) + (
        f" ± {1e3 * r['kid_std']:.2f}" if r.get('kid_std') is not None else '')
    realism_cells = (f"{kid} | {_cell(r.get('fid'), '.2f')} | {_cell(r.get('precision'), '.3f')} | "
                     f"{_cell(r.get('recall'), '.3f')} | {_cell(r.get('density'), '.3f')} | "
                     f"{_cell(r.get('coverage'), '.3f')} | " if real else '')
    lines.append(f"| {r['family']} | {100 * r['hole_ratio']:.1f} | {r['label']} | "
                 f"{_cell(r['lpips'], '.4f')} | {_cell(r['psnr'], '.2f')} | "
                 f"{_cell(r['ssim'], '.4f')} | {_cell(r.get('diversity'), '.4f')} | "
                 f"{realism_cells}{r['nfe'] if r['nfe'] else '-'} | {r['ms_per_image']:.2f} |")
  lines.append('\nPSNR is computed from the mean squared error over all images of a family. '
               f"Diversity: {s.get('diversity', 'not measured')} (0 for a deterministic method).")
  columns = ', '.join(['input', 'masked'] + [r['label'] for r in report['results']
                                             if r['family'] == s['families'][0]])
  lines.append(f"\nGrids (rows: images; columns: {columns}):\n")
  lines += [f'- {f}: ![{f}](grid_{f}.png)' for f in families]
  if s.get('unconditional'):
    lines.append('\nThe unconditional grid has one column per model method (no input).')
  return '\n'.join(lines) + '\n'
