"""The inpainting app: a real server (`sample.py serve`), real `gradio_client` calls and a real
headless-Chromium render of the page, plus the image/mask preparation it relies on."""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest
from PIL import Image

from ddgan_jax import app
from ddgan_jax.checkpoints import checkpointing
from ddgan_jax.models import networks
from ddgan_jax.platform import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULTS = ('auto', 'missing_white', 0, 0)  # strategy, mask polarity, dilate, feather


def test_to_image_keeps_the_size_and_converts():
  rgba = np.zeros((48, 80, 4), np.uint8)
  rgba[..., :3], rgba[..., 3] = 200, 255
  rgba[10:20, 30:50, 3] = 0  # transparent: the hole when no mask is given
  out, alpha, notes = app.to_image(rgba, 1)
  assert out.shape == (48, 80, 1) and out.dtype == np.uint8
  assert np.all(out == 200) and alpha.sum() == 200 and alpha[10:20, 30:50].all()
  assert any('grayscale' in n for n in notes)
  gray, alpha, notes = app.to_image(np.full((16, 16), 7, np.uint8), 3)  # gray for RGB: converted
  assert gray.shape == (16, 16, 3) and np.all(gray == 7) and alpha is None and notes == []
  with pytest.raises(cli.InputError, match='not an image'):
    app.to_image(np.zeros((4, 4, 5)), 3)


def test_to_hole_scales_thin_strokes_and_reads_both_polarities():
  layer = np.zeros((128, 128, 4), np.uint8)
  layer[60, :, 3] = 255  # a 1-px brush stroke on an 8x larger canvas
  notes = []
  hole = app.to_hole(layer, (16, 16), 'missing_white', notes)
  assert hole.shape == (16, 16) and hole.dtype == bool
  assert hole[60 // 8, :].all() and hole.sum() == 16 and 'scaled from 128x128' in notes[0]
  white = np.zeros((16, 16), np.uint8)
  white[2:4, 5:9] = 255
  assert app.to_hole(white, (16, 16), 'missing_white', []).sum() == 8
  np.testing.assert_array_equal(app.to_hole(255 - white, (16, 16), 'missing_black', []),
                                app.to_hole(white, (16, 16), 'missing_white', []))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  from configs import tiny_inpaint  # pylint: disable=g-import-not-at-top
  config = tiny_inpaint.get_config()
  nets = networks.build_networks(config)
  params = jax.jit(nets.init_generator)(jax.random.PRNGKey(0))
  ckpt = str(tmp_path_factory.mktemp('app') / 'ckpt')
  checkpointing.save_inference_checkpoint(ckpt, ema_params=params, config=config)
  port = _free_port()
  env = dict(os.environ, GRADIO_ANALYTICS_ENABLED='False')
  env.pop('XLA_FLAGS', None)
  proc = subprocess.Popen([sys.executable, 'sample.py', 'serve', f'--checkpoint={ckpt}',
                           f'--port={port}'], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  lines, ready = [], threading.Event()

  def read():
    for line in proc.stdout:
      lines.append(line)
      if line.startswith('Serving '):
        ready.set()

  threading.Thread(target=read, daemon=True).start()
  ready.wait(timeout=240)
  if not ready.is_set():
    proc.kill()
    pytest.fail('the app did not start:\n' + ''.join(lines[-30:]))
  yield f'http://127.0.0.1:{port}/', nets, lines
  proc.terminate()
  proc.wait(timeout=30)


def _png(path, array):
  Image.fromarray(array).save(path)
  return str(path)


@pytest.mark.slow
def test_app_fills_the_painted_hole_and_keeps_the_known_bytes(server, tmp_path):
  from gradio_client import Client, handle_file  # pylint: disable=g-import-not-at-top
  url, nets, lines = server
  image = np.random.RandomState(0).randint(0, 256, (16, 16, 3)).astype(np.uint8)
  mask = np.zeros((16, 16), np.uint8)
  mask[4:10, 3:12] = 255
  client = Client(url, verbose=False)
  gallery, info = client.predict(handle_file(_png(tmp_path / 'i.png', image)),
                                 handle_file(_png(tmp_path / 'm.png', mask)),
                                 'conditional', 1, 3, 2, *DEFAULTS, api_name='/inpaint')
  assert info['nfe'] == nets.num_timesteps and info['notes'] == []
  assert info['strategy'] == 'exact' and info['windows'] == 1
  assert len(info['ms_per_fill']) == 2 and all(ms > 0 for ms in info['ms_per_fill'])
  assert [g['caption'].split(':')[0] for g in gallery] == [
      'input (grey = hole), 16x16', 'fill 1', 'fill 2', 'model view (16 px)']
  known = mask == 0
  k = info['display_scale']
  fills = [np.asarray(Image.open(g['image']).convert('RGB'))[::k, ::k] for g in gallery[1:3]]
  for fill in fills:
    assert fill.shape == image.shape
    np.testing.assert_array_equal(fill[known], image[known])
    assert np.any(fill[~known] != image[~known])
  assert np.any(fills[0][~known] != fills[1][~known])  # two seeds, two fills
  assert not any('Traceback' in l for l in lines), ''.join(lines)


@pytest.mark.slow
def test_app_reports_bad_input_as_a_message(server, tmp_path):
  from gradio_client import Client, handle_file  # pylint: disable=g-import-not-at-top
  url, _, lines = server
  client = Client(url, verbose=False)
  image = handle_file(_png(tmp_path / 'i.png', np.zeros((24, 40, 3), np.uint8)))
  empty = handle_file(_png(tmp_path / 'e.png', np.zeros((24, 40), np.uint8)))
  with pytest.raises(Exception, match='The mask is empty'):
    client.predict(image, empty, 'conditional', 1, 0, 1, *DEFAULTS, api_name='/inpaint')
  with pytest.raises(Exception, match='Paint over the part to fill'):
    client.predict(image, None, 'conditional', 1, 0, 1, *DEFAULTS, api_name='/inpaint')
  (tmp_path / 'notes.txt').write_text('not a picture')
  with pytest.raises(Exception, match='The image is not an image'):
    client.predict(handle_file(str(tmp_path / 'notes.txt')), empty, 'conditional', 1, 0, 1,
                   *DEFAULTS, api_name='/inpaint')
  with pytest.raises(Exception, match='strategy "exact" needs'):
    client.predict(image, empty, 'conditional', 1, 0, 1, 'exact', 'missing_black', 0, 0,
                   api_name='/inpaint')
  assert not any('Traceback' in l for l in lines), ''.join(lines)


@pytest.mark.slow
def test_app_answers_16_concurrent_requests_at_their_own_sizes(server, tmp_path):
  """A bounded load test: 16 requests at once (two picture sizes, the non-square one larger
  than the model), every one answered with its known pixels intact, nothing in the log."""
  from gradio_client import Client, handle_file  # pylint: disable=g-import-not-at-top
  url, _, lines = server
  rng = np.random.RandomState(1)
  requests = []
  for i in range(16):
    h, w = (16, 16) if i % 2 else (24, 40)
    image = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[3 + i % 5:10 + i % 5, 2:12] = 255
    requests.append((image, mask, handle_file(_png(tmp_path / f'i{i}.png', image)),
                     handle_file(_png(tmp_path / f'm{i}.png', mask))))
  clients = [Client(url, verbose=False) for _ in range(4)]
  jobs = [clients[i % 4].submit(img, msk, 'conditional', 1, i, 1, *DEFAULTS, api_name='/inpaint')
          for i, (_, _, img, msk) in enumerate(requests)]
  for (image, mask, _, _), job in zip(requests, jobs):
    gallery, info = job.result(timeout=240)
    assert info['image_size'] == [image.shape[1], image.shape[0]]
    k = info['display_scale']
    fill = np.asarray(Image.open(gallery[1]['image']).convert('RGB'))[::k, ::k]
    assert fill.shape == image.shape
    np.testing.assert_array_equal(fill[mask == 0], image[mask == 0])
    assert np.any(fill[mask > 0] != image[mask > 0])
  log = ''.join(lines)
  assert 'Traceback' not in log and 'Error' not in log, log


@pytest.mark.slow
def test_app_page_renders_in_headless_chromium(server, tmp_path):
  url, _, _ = server
  chromium = shutil.which('chromium') or shutil.which('chromium-browser')
  assert chromium, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
  dom = subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu',
                        f'--user-data-dir={tmp_path / "profile"}', '--virtual-time-budget=15000',
                        '--dump-dom', url], capture_output=True, text=True, timeout=180).stdout
  # Gradio's JavaScript renders the page (the HTML it serves holds only its config): the
  # heading from the Markdown and the brush editor's toolbar exist only if the app ran.
  assert f'<h1>{app.TITLE}</h1>' in dom, dom[:2000]
  assert 'aria-label="Clear canvas"' in dom and 'image (paint the hole)' in dom
