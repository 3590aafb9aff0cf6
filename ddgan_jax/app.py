"""The inpainting app: paint over part of a picture, see the fills (Gradio, the `app` extra).

  python sample.py serve --workdir=demo_out/workdir        # or --checkpoint=DIR

The page takes an uploaded image or one of a few test images of the model's dataset, a hole
painted with the brush (or a generated mask family), the mode (conditional, or RePaint with r
resampling rounds), a seed and a number of fills, and shows the fills side by side with the
network evaluations (NFE) and milliseconds each took. Images of another size are centre-cropped
to a square and resized to the model's resolution, with a note saying so. Bad input becomes a
message on the page. The same computation is an API endpoint, `/inpaint` (image and mask files),
for `gradio_client`.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from ddgan_jax import checkpointing, heldout_masks, masks, networks
from ddgan_jax import inpaint as inpaint_lib

PAINTED = 'painted (brush)'
MASK_SOURCES = (PAINTED,) + masks.EVAL_FAMILIES + heldout_masks.HELDOUT_FAMILIES
DISPLAY_SIZE = 256  # small models' images are shown enlarged (nearest) to about this size
MAX_FILLS, MAX_RESAMPLE = 8, 10


class InputError(ValueError):
  """Bad user input, shown as a message on the page."""


def _square(image: Any, notes: list[str], what: str) -> Any:
  """PIL image centre-cropped to a square (a note if cropped)."""
  w, h = image.size
  if w != h:
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    image = image.crop((left, top, left + s, top + s))
    notes.append(f'{what} centre-cropped from {w}x{h} to {s}x{s}.')
  return image


def to_model_image(array: np.ndarray, size: int, channels: int) -> tuple[np.ndarray, list[str]]:
  """uint8 [size, size, channels] of an uploaded image (any size, gray/RGB/RGBA) + notes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  array = np.asarray(array)
  if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
    raise InputError(f'not an image: an array of shape {array.shape}.')
  if array.dtype != np.uint8:
    array = np.clip(array, 0, 255).astype(np.uint8)
  notes = []
  if array.ndim == 3 and array.shape[-1] == 4:  # transparent parts become black
    alpha = array[..., 3:].astype(np.float32) / 255.0
    array = np.round(array[..., :3] * alpha).astype(np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  image = Image.fromarray(array)
  if channels == 1 and image.mode != 'L':
    image = image.convert('L')
    notes.append('converted to grayscale (the model is grayscale).')
  elif channels == 3 and image.mode != 'RGB':
    image = image.convert('RGB')
  elif channels not in (1, 3):
    raise InputError(f'models with {channels} channels are not supported.')
  image = _square(image, notes, 'image')
  if image.size != (size, size):
    notes.append(f'image resized from {image.size[0]}x{image.size[1]} to the model\'s '
                 f'{size}x{size}.')
    image = image.resize((size, size), Image.Resampling.LANCZOS if image.size[0] > size
                         else Image.Resampling.BICUBIC)
  out = np.asarray(image, np.uint8)
  return (out[..., None] if out.ndim == 2 else out), notes


def to_model_mask(array: np.ndarray, size: int) -> np.ndarray:
  """bool [size, size, 1] of a painted layer or mask image: painted (alpha > 0, or white where
  there is no alpha) = missing. Cropped like the image; a model pixel is missing when any of
  the picture's pixels over it is, so thin strokes survive the resize."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[-1] == 4:
    painted = array[..., 3] > 0
  elif array.ndim == 3:
    painted = array[..., :3].max(-1) >= 128
  elif array.ndim == 2:
    painted = array >= (128 if array.dtype == np.uint8 else 0.5)
  else:
    raise InputError(f'not a mask: an array of shape {array.shape}.')
  image = _square(Image.fromarray(painted.astype(np.uint8) * 255), [], 'mask')
  coverage = np.asarray(image.resize((size, size), Image.Resampling.BOX), np.uint8)
  return (coverage > 0)[..., None]


class Inpainter:
  """One checkpoint's generator, with a timed fill per seed."""

  def __init__(self, source: str, step: int | None = None):
    step = checkpointing.resolve_checkpoint(source, step)[1]
    self.config = checkpointing.load_config(source, step)
    self.nets = networks.build_networks(self.config)
    self.params = networks.restore_ema_params(source, self.nets, step=step)
    self.source, self.step = source, step
    self.modes = ('conditional', 'repaint') if self.nets.inpaint else ('repaint',)
    self._warm = set()

  def fill(self, image: np.ndarray, hole: np.ndarray, mode: str, resample: int, seed: int,
           num_fills: int) -> tuple[list[np.ndarray], int, list[float]]:
    """Fills of one uint8 [S, S, C] image: (fills, NFE, ms per fill)."""
    import jax  # pylint: disable=g-import-not-at-top
    if mode not in self.modes:
      raise InputError(f'mode {mode!r} does not apply to this model; use one of {self.modes}.')
    resample = 1 if mode == 'conditional' else int(resample)
    if not 1 <= resample <= MAX_RESAMPLE or not 1 <= int(num_fills) <= MAX_FILLS:
      raise InputError(f'resample must be 1-{MAX_RESAMPLE} and fills 1-{MAX_FILLS}.')

    def run(x, m, key):
      return inpaint_lib.inpaint(self.nets, self.params, x, m, key, mode=mode, resample=resample)

    x, m = image[None], hole[None]
    if (mode, resample) not in self._warm:  # compile outside the timed calls
      inpaint_lib.inpaint_uint8(run, x, m, jax.random.PRNGKey(0))
      self._warm.add((mode, resample))
    fills, times, nfe = [], [], 0
    for k in range(int(num_fills)):
      t0 = time.perf_counter()
      out, nfe = inpaint_lib.inpaint_uint8(run, x, m, jax.random.PRNGKey(int(seed) + k))
      times.append(1000.0 * (time.perf_counter() - t0))
      fills.append(out[0])
    return fills, nfe, times

  def generated_mask(self, family: str, seed: int) -> np.ndarray:
    import jax  # pylint: disable=g-import-not-at-top
    key, size = jax.random.PRNGKey(int(seed)), self.nets.image_size
    if family in heldout_masks.HELDOUT_FAMILIES:
      holes = heldout_masks.heldout_masks(family, key, 1, size)
    else:
      holes = masks.eval_masks(family, key, 1, size)
    return np.asarray(holes[0]) > 0.5


def enlarge(image: np.ndarray) -> tuple[np.ndarray, int]:
  """Nearest-neighbour enlargement by an integer factor to about DISPLAY_SIZE (bytes kept)."""
  k = max(1, DISPLAY_SIZE // image.shape[0])
  out = image.repeat(k, 0).repeat(k, 1)
  return (out[..., 0] if out.shape[-1] == 1 else out), k


def run(model: Inpainter, image: Any, painted: Any, mask_source: str, mode: str, resample: int,
        seed: int, num_fills: int) -> tuple[list[tuple[np.ndarray, str]], dict]:
  """What the page and the API compute: (gallery [(picture, caption)], info)."""
  if image is None:
    raise InputError('Upload an image or pick one of the examples first.')
  size, channels = model.nets.image_size, model.nets.num_channels
  x, notes = to_model_image(image, size, channels)
  if mask_source == PAINTED:
    if painted is None:
      raise InputError('Paint over the part to fill with the brush, or pick a mask family.')
    hole = to_model_mask(painted, size)
  elif mask_source in MASK_SOURCES:
    hole = model.generated_mask(mask_source, seed)
  else:
    raise InputError(f'unknown mask {mask_source!r}; one of {", ".join(MASK_SOURCES)}.')
  if not hole.any():
    raise InputError('The mask is empty: paint over the part to fill, or pick a mask family.')
  if mode == 'conditional' and int(resample) != 1:
    notes.append('resample applies to RePaint mode only; conditional mode ignores it.')
  fills, nfe, times = model.fill(x, hole, mode, resample, seed, num_fills)
  masked = np.where(hole, np.uint8(127), x)
  gallery = [(enlarge(masked)[0], 'input (grey = hole)')]
  gallery += [(enlarge(f)[0], f'fill {k + 1}: NFE {nfe}, {ms:.1f} ms')
              for k, (f, ms) in enumerate(zip(fills, times))]
  info = dict(nfe=nfe, ms_per_fill=[round(t, 2) for t in times], mode=mode,
              resample=1 if mode == 'conditional' else int(resample), seed=int(seed),
              hole_percent=round(100.0 * float(hole.mean()), 1), model_size=size,
              display_scale=enlarge(x)[1], notes=notes)
  return gallery, info


def _editor_layers(value: Any) -> Any:
  """The union of the editor's painted layers (RGBA arrays), or None when nothing is painted."""
  layers = [np.asarray(l) for l in (value or {}).get('layers') or [] if l is not None]
  if not layers:
    return None
  return np.max(np.stack([l if l.ndim == 3 and l.shape[-1] == 4 else
                          np.concatenate([l[..., :3], np.full(l.shape[:2] + (1,), 255, l.dtype)], -1)
                          for l in layers]), axis=0)


def example_images(model: Inpainter, count: int = 4) -> list[str]:
  """A few test images of the model's dataset as enlarged PNGs (none if it is not available)."""
  from ddgan_jax import evaluation, visualize  # pylint: disable=g-import-not-at-top
  try:
    data_cfg = model.config.data.copy_and_resolve_references()
    images = evaluation.load_images(data_cfg, data_cfg.get('eval_split', 'test'), count)
  except Exception:  # pylint: disable=broad-except  (examples are optional)
    return []
  folder = tempfile.mkdtemp(prefix='ddgan_app_')
  paths = []
  for i, img in enumerate(inpaint_lib.float_to_uint8(images)):
    big = enlarge(img)[0]
    paths.append(os.path.join(folder, f'example_{i}.png'))
    visualize.save_png(big if big.ndim == 3 else big[..., None], paths[-1])
  return paths


# ------------------------------------------------------------------------- the page

TITLE = 'DDGAN inpainting'


def build_ui(model: Inpainter, examples: list[str] | None = None):
  """The Gradio Blocks of the app (not launched)."""
  import gradio as gr  # pylint: disable=g-import-not-at-top

  nets = model.nets

  def page(editor, mask_source, mode, resample, seed, num_fills):
    try:
      background = (editor or {}).get('background')
      return run(model, background, _editor_layers(editor), mask_source, mode, resample, seed,
                 num_fills)
    except InputError as e:
      raise gr.Error(str(e), print_exception=False) from None

  def api(image, mask, mode, resample, seed, num_fills):
    try:
      return run(model, image, mask, PAINTED, mode, resample, seed, num_fills)
    except InputError as e:
      raise gr.Error(str(e), print_exception=False) from None

  with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
    gr.Markdown(
        f'# {TITLE}\nPaint over the part of the picture to fill, then press **Fill**. Model: '
        f'`{model.source}` (step {model.step}), {nets.image_size}x{nets.image_size} px, '
        f'{"mask-conditional" if nets.inpaint else "unconditional"}, T = {nets.num_timesteps}. '
        'Conditional mode takes T network evaluations (NFE); RePaint mode T x r. Other image '
        'sizes are centre-cropped and resized to the model\'s, with a note below.')
    with gr.Row():
      with gr.Column():
        editor = gr.ImageEditor(label='image (paint the hole)', type='numpy',
                                image_mode='RGBA', sources=('upload', 'clipboard'),
                                brush=gr.Brush(colors=['#ff3060'], default_size=16,
                                               color_mode='fixed'),
                                layers=False, transforms=(), height=420,
                                canvas_size=(DISPLAY_SIZE, DISPLAY_SIZE))
        button = gr.Button('Fill', variant='primary')
        if examples:
          gr.Examples(examples=examples, inputs=editor, label='test images of the dataset')
        mask_source = gr.Dropdown(list(MASK_SOURCES), value=PAINTED, label='mask')
        mode = gr.Radio(list(model.modes), value=model.modes[0], label='mode')
        resample = gr.Slider(1, MAX_RESAMPLE, value=1, step=1, label='RePaint resampling r')
        seed = gr.Number(0, precision=0, label='seed')
        num_fills = gr.Slider(1, MAX_FILLS, value=4, step=1, label='fills')
      with gr.Column():
        gallery = gr.Gallery(label='fills', columns=3, format='png', object_fit='contain',
                             height=420)
        info = gr.JSON(label='NFE, timing and notes')
    button.click(page, [editor, mask_source, mode, resample, seed, num_fills], [gallery, info],
                 api_name='fill_page')
    with gr.Row(visible=False):  # the same computation for API clients: image + mask files
      api_image = gr.Image(type='numpy', image_mode=None)
      api_mask = gr.Image(type='numpy', image_mode=None)
      api_button = gr.Button()
    api_button.click(api, [api_image, api_mask, mode, resample, seed, num_fills],
                     [gallery, info], api_name='inpaint')
  return demo


def serve(source: str, *, step: int | None = None, host: str = '127.0.0.1', port: int = 7860,
          max_file_size: str = '10mb', block: bool = True):
  """Loads the model, builds the page and serves it; returns the Blocks (block=False)."""
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  model = Inpainter(source, step)
  demo = build_ui(model, example_images(model))
  demo.queue(default_concurrency_limit=1)
  demo.launch(server_name=host, server_port=port, max_file_size=max_file_size,
              prevent_thread_lock=True, quiet=True, footer_links=['api'], ssr_mode=False)
  print(f'Serving {source} on {demo.local_url} (Ctrl+C stops).', flush=True)
  if block:
    demo.block_thread()
  return demo
