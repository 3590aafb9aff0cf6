"""Exports the EMA generator and config of a training checkpoint as an inference checkpoint.

  python -m ddgan_jax.inpainting.export --workdir=runs/fm --output_dir=pretrained/fashion_mnist_inpaint

The result holds only what inference needs (`ema_generator` + `config`, no optimizer state),
at the same step number, and loads like any checkpoint: `load_inpainter`, `sample.py
--checkpoint`, `evaluate.py --checkpoint`, or `train.init_from` to fine-tune. With
`--with_discriminator` it also holds D's parameters, so a fine-tuning run starts with a D that
already discriminates (`finetune.load_pretrained_discriminator`).

  python -m ddgan_jax.inpainting.export --format=stablehlo --workdir=runs/fm --output_dir=fm_hlo --batch_size=8

writes the jitted inpaint function for a fixed batch at the model's resolution, with its
parameters, as a `jax.export` artefact that loads with jax alone (`export_stablehlo.py`).
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import jax
from absl import flags

from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.inpainting import export_stablehlo, inpaint
from ddgan_jax.models import networks
from ddgan_jax.platform import cli


def export(workdir: str, output_dir: str, step: int | None = None,
           with_discriminator: bool = False) -> str:
  """Writes the inference checkpoint; returns its step directory. Refuses to overwrite."""
  model = networks.load_model(workdir, step=step)
  step = model.step
  params = jax.tree.map(jax.numpy.asarray, model.params)
  disc = None
  if with_discriminator:
    disc = checkpointing.restore_discriminator(workdir, step)
    if disc is None:
      raise ValueError(f'{workdir} holds no discriminator at step {step}; export a training '
                       'workdir, or drop --with_discriminator.')
    disc = jax.tree.map(jax.numpy.asarray, disc)
  return checkpointing.save_inference_checkpoint(os.path.abspath(output_dir), ema_params=params,
                                                 config=model.config, step=step,
                                                 disc_params=disc)


def main(argv: Sequence[str] | None = None) -> None:
  fv = flags.FlagValues()
  flags.DEFINE_string('workdir', None, 'Training workdir (or checkpoint directory).', flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where to write the inference checkpoint.', flag_values=fv)
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).', flag_values=fv)
  flags.DEFINE_bool('with_discriminator', False, "Also write D's parameters (for fine-tuning).",
                    flag_values=fv)
  flags.DEFINE_enum('format', 'orbax', ['orbax', 'stablehlo'], 'orbax: an inference checkpoint; '
                    'stablehlo: the inpaint function for jax alone (jax.export).', flag_values=fv)
  flags.DEFINE_integer('batch_size', 1, 'stablehlo: images per call (fixed).', flag_values=fv)
  flags.DEFINE_enum('mode', None, list(inpaint.MODES), 'stablehlo: sampler (default: '
                    'conditional for a mask-conditional model).', flag_values=fv)
  flags.DEFINE_list('platforms', ['cpu'], 'stablehlo: platforms to lower for (cpu, cuda, tpu).',
                    flag_values=fv)
  flags.mark_flags_as_required(['workdir', 'output_dir'], flag_values=fv)
  usage = ('Writes an inference checkpoint (or a jax.export inpainter) of a training run.\n\n'
           'usage: python -m ddgan_jax.inpainting.export --workdir=W --output_dir=O [flags]')
  if not cli.parse_own_flags(fv, sys.argv if argv is None else argv, usage):
    return
  try:
    if fv.format == 'stablehlo':
      out = export_stablehlo.export(fv.workdir, fv.output_dir, batch_size=fv.batch_size,
                                    mode=fv.mode, step=fv.step, platforms=fv.platforms)
    else:
      out = export(fv.workdir, fv.output_dir, fv.step, fv.with_discriminator)
  except (OSError, ValueError) as e:
    cli.fail(cli.one_line(e))
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
