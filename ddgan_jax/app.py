"""The inpainting app: paint over part of a picture, see the fills (Gradio, the `app` extra).

  python sample.py serve --workdir=demo_out/workdir        # or --checkpoint=DIR

The page takes an uploaded image or one of a few test images of the model's dataset, a hole
painted with the brush (or a generated mask family), the mode (conditional, or RePaint with r
resampling rounds), a seed and a number of fills, and shows the fills side by side with the
network evaluations (NFE) and milliseconds each took. Pictures of any size are filled at their
own size with the strategies of `hires.py` (every known pixel kept), next to the model-size
view of the first window; mask files of either polarity, a hole grown by a few pixels and a
soft seam are options. Bad input (a file that is not an image included) becomes a message on
the page. The same computation is an API endpoint, `/inpaint` (image and mask files),
for `gradio_client`.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Any

import jax
import numpy as np
from PIL import Image

from ddgan_jax import config_checks
from ddgan_jax.data import heldout_masks, masks, visualize
from ddgan_jax.evaluation import evaluation
from ddgan_jax.inpainting import batch_inpaint, hires, mask_io
from ddgan_jax.inpainting import inpaint as inpaint_lib
from ddgan_jax.models import networks
from ddgan_jax.platform import cli

PAINTED = 'painted (brush)'
MASK_SOURCES = (PAINTED,) + masks.EVAL_FAMILIES + heldout_masks.HELDOUT_FAMILIES
STRATEGIES = ('auto',) + hires.STRATEGIES
DISPLAY_SIZE = 256  # small pictures are shown enlarged (nearest) to about this size
MAX_FILLS, MAX_RESAMPLE, MAX_DILATE = 8, 10, 32
MAX_PIXELS = 16_000_000
WINDOW_BATCH = 4  # model-size windows per network call (one compiled program for any size)


def _pil(value: Any, what: str):
  """PIL image of an upload: a file path (the API's files), an array (the page's editor) or PIL."""
  if isinstance(value, dict) and 'path' in value:  # gradio FileData
    value = value['path']
  if isinstance(value, (str, os.PathLike)):
    try:
      image = mask_io.open_image(str(value))
    except ValueError:
      raise cli.InputError(f'The {what} is not an image (or is damaged): upload a PNG, JPEG, WebP, '
                       'BMP or TIFF file.') from None
  elif isinstance(value, Image.Image):
    image = value
  else:
    array = np.asarray(value)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
      raise cli.InputError(f'not an image: an array of shape {array.shape}.')
    if array.dtype != np.uint8:
      array = np.clip(array, 0, 255).astype(np.uint8)
    image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
  if image.width * image.height > MAX_PIXELS:
    raise cli.InputError(f'The {what} is {image.width}x{image.height}; the app takes up to '
                     f'{MAX_PIXELS // 1_000_000} megapixels (sample.py inpaint takes any size).')
  return image


def to_image(value: Any, channels: int) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
  """(uint8 [H, W, channels] at the upload's own size, hole from its alpha channel or None,
  notes) of an uploaded image (gray, RGB, RGBA, palette)."""
  image = _pil(value, 'image')
  notes = []
  if channels == 1 and image.mode not in ('L', 'LA', 'La'):
    notes.append('converted to grayscale (the model is grayscale).')
  try:
    x, alpha = mask_io.from_pil(image, channels, 'the image', gray_to_rgb=True)
  except ValueError as e:
    raise cli.InputError(str(e)) from None
  return x, alpha, notes


def to_hole(value: Any, shape: tuple[int, int], polarity: str, notes: list[str]) -> np.ndarray:
  """bool [H, W] of a painted layer (transparent background: painted = missing) or a mask
  image (luma thresholded at 50%, `polarity`), scaled to the image's `shape` if needed (a
  pixel is missing when any mask pixel over it is, so thin strokes survive)."""
  image = _pil(value, 'mask')
  rgba = np.asarray(image.convert('RGBA')) if image.mode in ('RGBA', 'LA', 'PA', 'P') else None
  if rgba is not None and (rgba[..., 3] < 255).any():
    hole = rgba[..., 3] > 0
  else:
    try:
      hole = mask_io.to_hole(mask_io.pil_mask_values(image), polarity)
    except ValueError as e:
      raise cli.InputError(str(e)) from None
  if hole.shape != tuple(shape):
    notes.append(f"mask scaled from {hole.shape[1]}x{hole.shape[0]} to the image's "
                 f'{shape[1]}x{shape[0]}.')
    down = hole.shape[0] > shape[0] or hole.shape[1] > shape[1]
    scaled = Image.fromarray(hole.astype(np.float32)).resize(
        shape[::-1], Image.Resampling.BOX if down else Image.Resampling.NEAREST)
    hole = np.asarray(scaled) > 1e-6
  return hole


class Inpainter:
  """One checkpoint's generator, with timed fills at any image size (one call at a time)."""

  def __init__(self, source: str, step: int | None = None):
    model = networks.load_model(source, step=step)
    self.config, self.nets, self.params = model.config, model.nets, model.params
    self.source, self.step = source, model.step
    self.modes = inpaint_lib.MODES if self.nets.inpaint else ('repaint',)
    self._warm = set()
    self._lock = threading.Lock()  # one computation on the device at a time

  def fill(self, image: np.ndarray, hole: np.ndarray, plan: hires.Plan, mode: str,
           resample: int, seed: int, num_fills: int, feather: int = 0
           ) -> tuple[list[np.ndarray], np.ndarray, int, list[float]]:
    """Fills of one uint8 [H, W, C] image: (fills at its size, the model-size window fills of
    the first, NFE, ms per fill)."""
    if mode not in self.modes:
      raise cli.InputError(f'mode {mode!r} does not apply to this model; use one of {self.modes}.')
    resample = 1 if mode == 'conditional' else int(resample)
    if not 1 <= resample <= MAX_RESAMPLE or not 1 <= int(num_fills) <= MAX_FILLS:
      raise cli.InputError(f'resample must be 1-{MAX_RESAMPLE} and fills 1-{MAX_FILLS}.')

    def run(x, m, key):
      return inpaint_lib.inpaint(self.nets, self.params, x, m, key, mode=mode, resample=resample)

    nfe = inpaint_lib.num_function_evaluations(self.nets, mode, resample)
    fills, times, first = [], [], None
    with self._lock:
      if (mode, resample) not in self._warm:  # compile outside the timed calls
        hires.fill_windows(run, plan.images[:1], plan.masks[:1], jax.random.PRNGKey(0),
                           WINDOW_BATCH)
        self._warm.add((mode, resample))
      for k in range(int(num_fills)):
        t0 = time.perf_counter()
        windows = hires.fill_windows(run, plan.images, plan.masks,
                                     jax.random.PRNGKey(int(seed) + k), WINDOW_BATCH)
        fills.append(hires.compose(image, hole, plan.windows, windows, feather))
        times.append(1000.0 * (time.perf_counter() - t0))
        first = windows if first is None else first
    return fills, first, nfe, times


def display_scale(shape: tuple[int, ...]) -> int:
  """Integer nearest-neighbour enlargement of small pictures to about DISPLAY_SIZE."""
  return max(1, DISPLAY_SIZE // max(shape[0], shape[1]))


def enlarge(image: np.ndarray, k: int | None = None) -> tuple[np.ndarray, int]:
  """Nearest-neighbour enlargement by an integer factor (bytes kept)."""
  k = display_scale(image.shape) if k is None else k
  out = image.repeat(k, 0).repeat(k, 1)
  return (out[..., 0] if out.shape[-1] == 1 else out), k


def run(model: Inpainter, image: Any, painted: Any, mask_source: str, mode: str, resample: int,
        seed: int, num_fills: int, strategy: str = 'auto', polarity: str = 'missing_white',
        dilate: int = 0, feather: int = 0) -> tuple[list[tuple[np.ndarray, str]], dict]:
  """What the page and the API compute: (gallery [(picture, caption)], info)."""
  if image is None:
    raise cli.InputError('Upload an image or pick one of the examples first.')
  size, channels = model.nets.image_size, model.nets.num_channels
  x, alpha, notes = to_image(image, channels)
  if mask_source == PAINTED:
    if painted is not None:
      hole = to_hole(painted, x.shape[:2], polarity, notes)
    elif alpha is not None and alpha.any():
      hole = alpha
      notes.append("the image's transparent pixels are the hole.")
    else:
      raise cli.InputError('Paint over the part to fill with the brush, or pick a mask family.')
  elif mask_source in MASK_SOURCES:
    hole = batch_inpaint.family_hole(mask_source, jax.random.PRNGKey(int(seed)), size,
                                     x.shape[:2])
  else:
    raise cli.InputError(f'unknown mask {mask_source!r}; one of {", ".join(MASK_SOURCES)}.')
  if not 0 <= int(dilate) <= MAX_DILATE or not 0 <= int(feather) <= MAX_DILATE:
    raise cli.InputError(f'dilate and feather must be 0-{MAX_DILATE} pixels.')
  hole = mask_io.dilate(hole, int(dilate))
  if not hole.any():
    raise cli.InputError('The mask is empty: paint over the part to fill, or pick a mask family.')
  if mode == 'conditional' and int(resample) != 1:
    notes.append('resample applies to RePaint mode only; conditional mode ignores it.')
  chosen = hires.default_strategy(*x.shape[:2], size) if strategy in (None, 'auto') else strategy
  try:
    plan = hires.plan(x, hole, size, chosen)
  except ValueError as e:
    raise cli.InputError(str(e)) from None
  fills, windows, nfe, times = model.fill(x, hole, plan, mode, resample, seed, num_fills,
                                          int(feather))
  k = display_scale(x.shape)
  masked = np.where(hole[..., None], np.uint8(127), x)
  gallery = [(enlarge(masked, k)[0], f'input (grey = hole), {x.shape[1]}x{x.shape[0]}')]
  gallery += [(enlarge(f, k)[0], f'fill {i + 1}: NFE {nfe}, {ms:.1f} ms')
              for i, (f, ms) in enumerate(zip(fills, times))]
  gallery.append((enlarge(windows[0])[0],
                  f'model view ({size} px): window 1 of {len(plan.windows)}, fill 1'))
  info = dict(nfe=nfe, ms_per_fill=[round(t, 2) for t in times], mode=mode,
              resample=1 if mode == 'conditional' else int(resample), seed=int(seed),
              hole_percent=round(100.0 * float(hole.mean()), 1), model_size=size,
              image_size=[int(x.shape[1]), int(x.shape[0])], strategy=chosen,
              windows=len(plan.windows), display_scale=k, notes=notes)
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
  try:
    data = config_checks.DataConfig.from_section(model.config.data)
    images = evaluation.load_images(data, data.eval_split, count)
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


def _intro(model: Inpainter) -> str:
  """The page's heading: the model and what the controls do."""
  nets = model.nets
  return (
      f'# {TITLE}\nPaint over the part of the picture to fill, then press **Fill**. Model: '
      f'`{model.source}` (step {model.step}), {nets.image_size}x{nets.image_size} px, '
      f'{"mask-conditional" if nets.inpaint else "unconditional"}, T = {nets.num_timesteps}. '
      'Conditional mode takes T network evaluations (NFE); RePaint mode T x r. Pictures of '
      'any size are filled at their own size (strategy `crop`: a window around each hole '
      'at the model\'s resolution; `resize`: the whole picture), every known pixel kept; '
      'the last picture shows what the model saw.')


def _controls(model: Inpainter, examples: list[str] | None) -> tuple[Any, Any, Any, list[Any]]:
  """The left column, inside the page's Blocks: (editor, Fill button, mask source, the options
  `run` takes after them: mode, resample, seed, fills, strategy, polarity, dilate, feather)."""
  import gradio as gr  # optional extra [app]
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
  strategy = gr.Radio(list(STRATEGIES), value='auto', label='strategy (auto: exact at '
                      "the model's size, else crop)")
  polarity = gr.Radio(list(mask_io.POLARITIES), value='missing_white',
                      label='uploaded mask files: which colour is the hole')
  dilate = gr.Slider(0, MAX_DILATE, value=0, step=1, label='grow the hole (pixels)')
  feather = gr.Slider(0, MAX_DILATE, value=0, step=1, label='soft seam (pixels)')
  return editor, button, mask_source, [mode, resample, seed, num_fills, strategy, polarity,
                                       dilate, feather]


def build_ui(model: Inpainter, examples: list[str] | None = None):
  """The Gradio Blocks of the app (not launched)."""
  import gradio as gr  # optional extra [app]

  def page(editor, mask_source, mode, resample, seed, num_fills, strategy, polarity, dilate,
           feather):
    try:
      background = (editor or {}).get('background')
      return run(model, background, _editor_layers(editor), mask_source, mode, resample, seed,
                 num_fills, strategy, polarity, dilate, feather)
    except cli.InputError as e:
      raise gr.Error(str(e), print_exception=False) from None

  def api(image, mask, mode, resample, seed, num_fills, strategy, polarity, dilate, feather):
    try:
      return run(model, image, mask, PAINTED, mode, resample, seed, num_fills, strategy,
                 polarity, dilate, feather)
    except cli.InputError as e:
      raise gr.Error(str(e), print_exception=False) from None

  with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
    gr.Markdown(_intro(model))
    with gr.Row():
      with gr.Column():
        editor, button, mask_source, options = _controls(model, examples)
      with gr.Column():
        gallery = gr.Gallery(label='fills', columns=3, format='png', object_fit='contain',
                             height=420)
        info = gr.JSON(label='NFE, timing and notes')
    button.click(page, [editor, mask_source, *options], [gallery, info], api_name='fill_page')
    with gr.Row(visible=False):  # the same computation for API clients: image + mask files
      # Files, not gr.Image: a file that is not an image reaches `run`, which says so.
      api_image = gr.File(type='filepath')
      api_mask = gr.File(type='filepath')
      api_button = gr.Button()
    api_button.click(api, [api_image, api_mask, *options], [gallery, info], api_name='inpaint')
  return demo


def serve(source: str, *, step: int | None = None, host: str = '127.0.0.1', port: int = 7860,
          max_file_size: str = '10mb', block: bool = True):
  """Loads the model, builds the page and serves it; returns the Blocks (block=False)."""
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  model = Inpainter(source, step)
  demo = build_ui(model, example_images(model))
  demo.queue(default_concurrency_limit=1, max_size=64)  # requests wait their turn (64 at most)
  demo.launch(server_name=host, server_port=port, max_file_size=max_file_size,
              prevent_thread_lock=True, quiet=True, footer_links=['api'], ssr_mode=False)
  print(f'Serving {source} on {demo.local_url} (Ctrl+C stops).', flush=True)
  if block:
    demo.block_thread()
  return demo
