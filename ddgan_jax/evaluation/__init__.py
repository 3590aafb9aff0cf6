"""Evaluation: the runner behind evaluate.py (`evaluation`), the methods it compares
(`methods`; the classical ones in `baselines`), the mask families (`families`), the paired
metrics (PSNR, SSIM, LPIPS, diversity: `metrics`), the table, JSON and grids (`report`),
distribution-level realism (KID, FID, precision/recall, density/coverage on AlexNet features or
those of the project's Fashion-MNIST classifier, `classifier`: `realism`) and the
machine a figure came from (`machine`, also stamped on the benchmarks). It may import platform/, core/, checkpoints/, data/,
config_checks, models/ and inpainting/ (it fills images with `inpaint`), but not train/: it
evaluates checkpoints, not the training machinery. Only app and the command-line scripts sit
above it.
"""
