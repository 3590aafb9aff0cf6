"""Training: the entry point, train state and optimizers (`train_lib`), the train step as pure
functions (`step`), its jitted programs compiled ahead of time (`programs`), the loop with
resume and its hooks (`loop`), the guard that keeps non-finite updates out of the state
(`nonfinite`), SIGTERM and half-written checkpoints (`preemption`), starting from pretrained
weights (`finetune`), the discriminator's health scalars and at-chance warning (`d_health`) and
the TensorBoard / JSONL writer (`metric_writers`). It may import every room below it
(platform/, core/, checkpoints/, data/, config_checks, models/) and nothing above: not
inpainting/ (its sibling), evaluation/ or app. train.py at the repository root drives it.
"""
