from ddgan_jax.commands.sample import __doc__, main, run  # noqa: F401  (absl's usage text; main)
if __name__ == '__main__':
  run()
