"""Checkpoints on disk: the Orbax layout of a checkpoint directory (the whole TrainState, the EMA
generator alone, D's parameters, the config as JSON), writing and restoring them onto any device
layout, and reading every byte of an item before it is restored (`checkpointing`). A bottom
room: it imports nothing else of ddgan_jax. The tools that make checkpoints out of other
things sit higher, beside what they need: `models.convert` (official PyTorch weights) and
`inpainting.export` (an inference checkpoint or a StableHLO artefact from a training one).
"""
