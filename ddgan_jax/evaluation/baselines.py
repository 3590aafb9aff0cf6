"""The classical inpainting baselines of the evaluation: `telea` and `navier_stokes`
(cv2.inpaint, radius `CV_RADIUS`) and `biharmonic` (skimage.restoration.inpaint_biharmonic).

OpenCV and scikit-image are optional (the `eval` extra): each is imported when a method that
needs it runs.
"""
from __future__ import annotations

import numpy as np

CV_RADIUS = 3
CLASSICAL = ('telea', 'navier_stokes', 'biharmonic')


def classical_inpaint(method: str, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """Classical inpainting of uint8 images [B, H, W, C]; masks [B, H, W, 1] (nonzero = missing).

  Returns uint8 [B, H, W, C] whose known pixels equal the input.
  """
  images = np.asarray(images, np.uint8)
  holes = np.asarray(masks)[..., 0].astype(bool)
  out = np.empty_like(images)
  for i, (image, hole) in enumerate(zip(images, holes)):
    if method in ('telea', 'navier_stokes'):
      import cv2  # optional extra [eval]
      flag = cv2.INPAINT_TELEA if method == 'telea' else cv2.INPAINT_NS
      src = image[..., 0] if image.shape[-1] == 1 else np.ascontiguousarray(image)
      filled = cv2.inpaint(src, hole.astype(np.uint8) * 255, CV_RADIUS, flag)
      filled = filled.reshape(image.shape)
    elif method == 'biharmonic':
      from skimage.restoration import inpaint_biharmonic  # optional extra [eval]
      result = inpaint_biharmonic(image.astype(np.float64) / 255.0, hole, channel_axis=-1)
      filled = np.clip(np.round(result * 255.0), 0, 255).astype(np.uint8)
    else:
      raise ValueError(f'unknown classical method {method!r}; one of {CLASSICAL}.')
    out[i] = np.where(hole[..., None], filled, image)
  return out
