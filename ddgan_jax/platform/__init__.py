"""The machine and its processes: CPU devices and the compilation cache (`runtime`), the device
mesh and its shardings (`sharding`), ahead-of-time compilation helpers and `gc_paused`
(`compiling`), multi-process start-up and barrier (`distributed`),
the local multi-process launcher (`launch`, `python -m ddgan_jax.platform.launch`) and what
the command lines share (`cli`: one `error:` line and exit status 2 for bad input). A bottom
room: it imports nothing else of ddgan_jax, and everything above it may import it.
"""
