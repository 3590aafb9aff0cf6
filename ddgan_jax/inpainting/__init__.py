"""Inference: the jitted few-step inpainter and its loader (`inpaint`: conditional and RePaint
modes), images of any size through a model of one resolution (`hires`), image and mask files as
people have them (`mask_io`), folders of them with resume (`batch_inpaint`, `sample.py
inpaint`), and the inpainter exported for other programs: an inference checkpoint (`export`,
`python -m ddgan_jax.inpainting.export`) or a StableHLO artefact that loads with jax alone
(`export_stablehlo`). It may import every room below it (platform/, core/, checkpoints/,
data/, config_checks, models/) and nothing above: not train/ (its sibling), evaluation/ or
app. The two export modules live here and not in checkpoints/ because the StableHLO export
lowers `inpaint.inpaint`.
"""
