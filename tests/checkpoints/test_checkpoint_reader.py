"""Reading the EMA generator or config of a training checkpoint (which also holds `state`) is
quiet: Orbax gets a handler for every item, so it does not warn about the ones not restored."""
import logging

import jax
import jax.numpy as jnp

from ddgan_jax.checkpoints import checkpointing


def test_partial_restore_of_a_training_checkpoint_does_not_warn(tmp_path, caplog, tiny_config):
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'checkpoints'), async_save=False)
  state = {'step': jnp.int32(5), 'params': {'w': jnp.arange(6.0)}}
  ema = {'w': jnp.ones((2, 3))}
  ckpt.save(5, state, ema, tiny_config)
  ckpt.close()
  with caplog.at_level(logging.WARNING):
    config = checkpointing.load_config(str(tmp_path))
    restored = checkpointing.restore_ema_generator(str(tmp_path), jax.eval_shape(lambda: ema))
    checkpointing.ema_metadata(str(tmp_path))
  assert config.model.nf == tiny_config.model.nf
  assert jnp.array_equal(restored['w'], ema['w'])
  noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert not noisy, noisy
