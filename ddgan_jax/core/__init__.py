"""The DDGAN math, pure jnp functions of arrays and explicit keys: the discretised VP diffusion
(schedule, forward process, posterior, sampler: `diffusion`), the objective (non-saturating
losses, R1, the inpainting condition and the compositing of x_0: `losses`), the smooth fill of
the condition's hole (`fill`) and DiffAugment of D's inputs (`augment`). No networks, configs
or files. A bottom room: it imports nothing else of ddgan_jax. Training and inference both
build on it: inpainting builds its condition with `losses.inpaint_condition` and composites
with `losses.composite`, and the config checks parse `augment`'s policies, so none of these
can live in train/.
"""
