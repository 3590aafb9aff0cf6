"""train.py with a fault: the process delivers a real signal to itself at an exact point of the
training loop, through the loop's hooks (ddgan_jax/train/loop.py).

  DDGAN_JAX_FAULT=SIGKILL@save:4 python tests/train/fault_runner.py --config=... --workdir=...

DDGAN_JAX_FAULT=<SIGNAL>@<point>:<step>: the signal at `point` of `step` ('step': after the
step's update; 'save': right after the save of that step started, still running). Without the
variable it runs train.py as it is.
"""
import functools
import os
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

FAULT_ENV = 'DDGAN_JAX_FAULT'


def fault_hook(spec: str):
  """The hook of DDGAN_JAX_FAULT=`spec`: hook(point, step) sends the signal there."""
  try:
    sig, where = spec.split('@')
    want_point, want_step = where.split(':')
    signum, want_step = getattr(signal, sig), int(want_step)
  except (ValueError, AttributeError):
    raise ValueError(f'{FAULT_ENV}={spec!r}; expected e.g. SIGKILL@save:4 or SIGTERM@step:3.') from None

  def hook(point: str, step: int) -> None:
    if point == want_point and step == want_step:
      os.kill(os.getpid(), signum)
  return hook


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top

  from ddgan_jax.commands import train  # pylint: disable=g-import-not-at-top  (its flags)
  spec = os.environ.get(FAULT_ENV)
  app.run(functools.partial(train.main, hooks=[fault_hook(spec)] if spec else []))
