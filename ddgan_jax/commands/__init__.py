"""The command lines: `train`, `sample` and `evaluate`, run as `python train.py` (the scripts at
the repository root import them) or as the installed `ddgan-train`, `ddgan-sample` and
`ddgan-evaluate`, and `train_classifier` (`python -m ddgan_jax.commands.train_classifier`: the
Fashion-MNIST classifier of the realism metrics). Each module defines its flags when imported, checks them and calls one
library function per (sub)command; bad input is one `error:` line and exit status 2
(`platform.cli`). The top room: it may import every other room, and nothing in the package
imports it. This `__init__` imports nothing, so each command registers only its own flags.
"""
