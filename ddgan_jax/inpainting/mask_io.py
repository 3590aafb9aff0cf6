"""Reading images and masks as people have them: any size, either mask polarity, alpha channels.

Conventions (the same in the API, `sample.py inpaint` and the app):

* A mask file's luma (or its 16-bit / float value) in [0, 1] is thresholded at 50%:
  `missing_white` (default; LaMa, IOPaint, our own masks): >= 0.5 is missing;
  `missing_black` (RePaint's masks, 255 = keep): <= 0.5 is missing.
* An image with an alpha channel and no mask file: the transparent pixels (alpha < 50%) are the
  hole, as painting tools give it. With a mask file the alpha channel is ignored.
* `dilate(hole, n)` grows a hole by n pixels (a Euclidean disk), which removes the halo a mask
  drawn tight around an object leaves behind.

Bad files raise a one-line ValueError (FileNotFoundError for a missing path) saying what is
wrong; the CLIs print it as `error: ...`.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
POLARITIES = ('missing_white', 'missing_black')
_ALPHA_MODES = ('LA', 'RGBA', 'PA', 'La', 'RGBa')


def list_images(path: str, what: str) -> list[str]:
  """The image files of `path` (a file, or a folder's image files sorted by name)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'{what} {path} does not exist.')
  if os.path.isfile(path):
    return [path]
  files = sorted(os.path.join(path, f) for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f)))
  if not files:
    raise ValueError(f'{what} folder {path} holds no image files ({", ".join(IMAGE_EXTENSIONS)}).')
  return files


def open_image(path: str):
  """The decoded PIL image of `path`; ValueError if it is not a readable image."""
  try:
    image = Image.open(path)
    image.load()
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise ValueError(f'cannot read {path}: not an image or corrupt '
                     f'({str(e).splitlines()[0] if str(e) else type(e).__name__}).') from None
  return image


def read_image(path: str, num_channels: int) -> tuple[np.ndarray, np.ndarray | None]:
  """(uint8 [H, W, C] for a C-channel model, hole bool [H, W] from the alpha channel or None).

  RGB models take RGB or palette images (grayscale is refused); grayscale models take
  grayscale, and RGB converted to luma (PIL 'L'). Alpha is split off first.
  """
  return from_pil(open_image(path), num_channels, path)


def from_pil(image, num_channels: int, what: str,
             gray_to_rgb: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
  """`read_image` of a decoded PIL image (`what` names it in errors); `gray_to_rgb` converts
  grayscale for an RGB model instead of refusing it."""
  path = what
  mode = image.mode
  alpha = None
  if mode == 'P' and 'transparency' in image.info:
    image = image.convert('RGBA')
  if image.mode in _ALPHA_MODES:
    image = image.convert('LA' if image.mode in ('LA', 'La') else 'RGBA')
    alpha = np.asarray(image.getchannel('A'), np.uint8) < 128  # transparent = missing
    image = image.convert('L' if image.mode == 'LA' else 'RGB')
  if image.mode == 'P':
    image = image.convert('RGB')
  if num_channels == 3:
    if image.mode == 'L' and gray_to_rgb:
      image = image.convert('RGB')
    if image.mode == 'L':
      raise ValueError(f'{path} is grayscale (1 channel) but the model expects RGB images '
                       '(3 channels).')
    if image.mode != 'RGB':
      raise ValueError(f'{path} has unsupported image mode {mode!r}; the model expects 8-bit RGB.')
  elif num_channels == 1:
    if image.mode == 'RGB':
      image = image.convert('L')
    if image.mode != 'L':
      raise ValueError(f'{path} has unsupported image mode {mode!r}; the model expects 8-bit '
                       'grayscale (or RGB, converted).')
  else:
    raise ValueError(f'models with {num_channels} channels are not supported.')
  array = np.asarray(image, np.uint8)
  return (array[..., None] if array.ndim == 2 else array), alpha


def mask_values(path: str) -> np.ndarray:
  """float [H, W] in [0, 1] of a mask file (its luma; 16-bit and float images scaled)."""
  return pil_mask_values(open_image(path))


def pil_mask_values(image) -> np.ndarray:
  """`mask_values` of a decoded PIL image."""
  if image.mode in ('I', 'I;16', 'F'):
    values = np.asarray(image, np.float64)
    return values / (65535.0 if values.max() > 255 else 255.0)
  return np.asarray(image.convert('L'), np.float64) / 255.0


def to_hole(values: np.ndarray, polarity: str = 'missing_white') -> np.ndarray:
  """bool [H, W] (True = missing) of mask values in [0, 1], thresholded at 50%."""
  if polarity not in POLARITIES:
    raise ValueError(f'mask polarity must be one of {", ".join(POLARITIES)}, got {polarity!r}.')
  values = np.asarray(values, np.float64)
  return values >= 0.5 if polarity == 'missing_white' else (1.0 - values) >= 0.5


def read_mask(path: str, polarity: str = 'missing_white') -> tuple[np.ndarray, bool]:
  """(hole bool [H, W], non_binary) of a mask file."""
  values = mask_values(path)
  non_binary = bool(np.any((values != 0.0) & (values != 1.0)))
  return to_hole(values, polarity), non_binary


def dilate(hole: np.ndarray, pixels: int) -> np.ndarray:
  """The hole grown by `pixels` (every pixel within that Euclidean distance of it)."""
  hole = np.asarray(hole, bool)
  if pixels < 0:
    raise ValueError(f'dilate must be >= 0 pixels, got {pixels}.')
  if pixels == 0 or not hole.any():
    return hole
  from scipy import ndimage  # scipy.ndimage: lazy, +0.13 s on sample.py --help
  return ndimage.distance_transform_edt(~hole) <= pixels
