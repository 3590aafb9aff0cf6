"""The machine and its processes: CPU devices and the compilation cache (`runtime`), the device
mesh and the sharded jit of the train step (`sharding`), ahead-of-time compilation of the step
programs and `gc_paused` (`compiling`), multi-process start-up and barrier (`distributed`) and
the local multi-process launcher (`launch`, `python -m ddgan_jax.platform.launch`). A bottom
room: it imports nothing else of ddgan_jax, and everything above it may import it.
"""
