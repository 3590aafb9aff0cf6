"""Evaluation: the runner behind evaluate.py, its metrics (PSNR, SSIM, LPIPS), the classical
baselines and the report (`evaluation`), distribution-level realism (KID, FID,
precision/recall on AlexNet features: `realism`) and the machine a figure came from (`machine`,
also stamped on the benchmarks). It may import platform/, core/, checkpoints/, data/,
config_checks, models/ and inpainting/ (it fills images with `inpaint`), but not train/: it
evaluates checkpoints, not the training machinery. Only app and the command-line scripts sit
above it.
"""
