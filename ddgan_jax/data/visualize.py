"""Image grids and PNG files for samples and inpainting comparisons."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> uint8 with the same shape (clipped)."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2,
              pad_value: int = 255) -> np.ndarray:
  """Tiles images [N, H, W, C] in [-1, 1] into one uint8 image [H', W', C]."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, np.uint8)
  for i in range(n):
    r, col = divmod(i, ncol)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def save_png(array: np.ndarray, path: str) -> None:
  """Writes a uint8 [H, W, C] (C in 1, 3) image, atomically (no partial file on failure)."""
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp'
  Image.fromarray(array).save(tmp, format='PNG')
  os.replace(tmp, path)


def save_grid(images: np.ndarray, path: str, ncol: int | None = None) -> np.ndarray:
  grid = make_grid(images, ncol=ncol)
  save_png(grid, path)
  return grid
