"""What the command lines share (train.py, sample.py, evaluate.py, the export and the converter).

Bad input to a command is one `error: <message>` line on stderr and exit status 2, with no
traceback: `fail(message)`. Library work done for a command raises `InputError` where the
command must report it that way (and nothing else); the command catches it and calls `fail`.
`first_line` and `one_line` shorten an exception's message to that line, `run` starts a
command with its usage text, and `parse_own_flags` parses a command that keeps its flags in a
flag set of its own (the export and the converter).
"""
from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn, Sequence

from absl import app, flags, logging


class InputError(ValueError):
  """Bad user input: a command reports it as one `error: <message>` line (exit status 2), the
  app (`sample.py serve`) as a message on the page."""


def fail(message: str) -> NoReturn:
  """Prints `error: <message>` on stderr and exits with status 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def first_line(e: BaseException) -> str:
  """The first line of an exception's message (the summary that checkpoint and file errors put
  first), or its type's name when it has none."""
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def one_line(e: BaseException) -> str:
  """An exception's whole message on one line (whitespace runs joined by one space), or its
  type's name when it has none."""
  return ' '.join(str(e).split()) or type(e).__name__


def quiet() -> None:
  """Library logs down to warnings (unless --verbosity was given: Orbax logs every checkpoint
  step at INFO) and TensorFlow's C++ logs to errors; call before JAX or TensorFlow start."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)


def run(main: Callable[[list[str]], None], usage: str, flag_modules: Sequence[str] = ()) -> None:
  """absl's `app.run(main)` for a command whose flags and `main` live in a module of the
  package, run by a script at the repository root or an installed command's launcher.

  absl's --help prints the `__main__` module's docstring and the flags that module defines:
  the launcher gets `usage` as its docstring (a script imports the command's docstring as its
  own), and the flags of the command module and of `flag_modules` (those of its subcommands)
  are filed as the program's own, so --help and --helpfull read as they did when the scripts
  defined them.
  """
  launcher = sys.modules['__main__']
  if not getattr(launcher, '__doc__', None):
    launcher.__doc__ = usage
  by_module = flags.FLAGS.flags_by_module_dict()
  for module in (main.__module__, *flag_modules):
    by_module.setdefault(sys.argv[0], []).extend(by_module.pop(module, []))
  app.run(main)


def parse_own_flags(fv: flags.FlagValues, argv: Sequence[str], usage: str) -> bool:
  """Parses `argv` into `fv`, a command's own flag set (absl's app.run knows only the global
  one). --help prints `usage` and the flags, and returns False (the command then stops); an
  unknown, malformed or missing flag is one `error:` line, exit status 2; True otherwise."""
  if any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv[1:]):
    print(usage.rstrip() + '\n')
    for name in sorted(fv):
      print(f'  --{name}: {fv[name].help} (default: {fv[name].default_as_str})')
    return False
  try:
    fv(list(argv))
  except flags.Error as e:
    fail(f'{one_line(e)} (see --help)')
  return True
