"""`python -m ddgan_jax.inpainting.export --format=stablehlo`: the artefact loads in a fresh process that
imports only jax and numpy, and gives the library's result for the same key."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny_inpaint
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.data import eval_masks
from ddgan_jax.inpainting import export, export_stablehlo, inpaint
from ddgan_jax.models import networks

BATCH, SIZE = 2, 16

LOADER = """
import sys
import jax, numpy as np
fn = jax.export.deserialize(open(sys.argv[1] + '/inpaint.jax_export', 'rb').read())
params = list(np.load(sys.argv[1] + '/params.npz').values())
inputs = np.load(sys.argv[2])
result = fn.call(params, inputs['images'], inputs['masks'], jax.random.PRNGKey(7))
np.save(sys.argv[3], np.asarray(result))
loaded = sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('flax', 'ddgan_jax', 'optax', 'orbax', 'tensorflow', 'ml_collections'))
print('project modules:', sorted(set(loaded)))
"""


@pytest.mark.slow
def test_exported_inpainter_runs_with_jax_alone(tmp_path):
  config = tiny_inpaint.get_config()
  nets = networks.build_networks(config)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
  ckpt = str(tmp_path / 'ckpt')
  checkpointing.save_inference_checkpoint(ckpt, ema_params=params, config=config)
  out = tmp_path / 'hlo'
  export.main(['export', '--format=stablehlo', f'--workdir={ckpt}', f'--output_dir={out}',
               f'--batch_size={BATCH}'])
  meta = json.loads((out / 'inpaint.json').read_text())
  assert meta['batch_size'] == BATCH and meta['image_size'] == SIZE and meta['nfe'] == 4

  images = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (BATCH, SIZE, SIZE, 3),
                                         minval=-1.0, maxval=1.0))
  holes = np.asarray(eval_masks.eval_masks('wide', jax.random.PRNGKey(2), BATCH, SIZE), np.float32)
  np.savez(tmp_path / 'inputs.npz', images=images, masks=holes)
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'XLA_FLAGS')}
  res = subprocess.run([sys.executable, '-c', LOADER, str(out), str(tmp_path / 'inputs.npz'),
                        str(tmp_path / 'result.npy')], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr
  assert 'project modules: []' in res.stdout, res.stdout
  exported = np.load(tmp_path / 'result.npy')
  library, _ = inpaint.inpaint(nets, params, images, holes, jax.random.PRNGKey(7))
  diff = float(np.max(np.abs(exported - np.asarray(library))))
  print(f'max abs difference, exported vs library: {diff:g}')
  assert diff <= 1e-5
  known = np.broadcast_to(holes == 0, images.shape)
  np.testing.assert_array_equal(exported[known], images[known])
  assert np.abs(exported[~known] - images[~known]).mean() > 1e-3

  with pytest.raises(ValueError, match='already holds'):  # nothing is overwritten
    export_stablehlo.export(ckpt, str(out), batch_size=BATCH)


def test_export_cli_answers_help_and_bad_flags_without_a_traceback(capsys):
  export.main(['export', '--help'])
  out = capsys.readouterr().out
  assert 'usage: python -m ddgan_jax.inpainting.export' in out and 'with_discriminator' in out
  with pytest.raises(SystemExit) as e:
    export.main(['export', '--workdir=w'])  # --output_dir missing
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.startswith('error: ') and 'output_dir' in err
  assert len(err.strip().splitlines()) == 1
