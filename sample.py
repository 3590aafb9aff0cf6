from ddgan_jax.commands.sample import USAGE as __doc__, main, run  # noqa: F401  (absl's usage; main)
if __name__ == '__main__':
  run()
