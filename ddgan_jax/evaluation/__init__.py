"""Evaluation: the runner behind evaluate.py, its metrics (PSNR, SSIM, LPIPS), the classical
baselines and the report (`evaluation`), distribution-level realism (KID, FID,
precision/recall on AlexNet features: `realism`) and the machine a figure came from (`machine`,
also stamped on the benchmarks). It may import every room below it (platform/, core/,
checkpoints/, data/, config_checks, models/, inpainting/, train/) and nothing above: only app
and the command-line scripts sit higher. It uses inpainting/ (`inpaint`) today, not train/.
"""
