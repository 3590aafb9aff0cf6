"""Starts N local processes of a multi-process (multi-host) run, e.g. to try or test one on a
single machine:

  python -m ddgan_jax.platform.launch --num_processes=2 -- train.py --config=configs/tiny.py \\
      --workdir=runs/mp --cpu_devices=2

Each process gets `--coordinator_address=127.0.0.1:<free port> --num_processes=N
--process_id=i` appended to the command. Their output is forwarded line by line with a
`[i] ` prefix; when one fails, the others are stopped (SIGTERM, then SIGKILL) and the launcher
exits with the failing process's code. SIGTERM / SIGINT to the launcher go to every process.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence

from absl import app, flags



def _define_flags() -> None:
  """The launcher's flags, defined only when it runs as a program: importing this module (for
  `launch()`) must not claim flag names such as --num_processes that train.py defines too."""
  flags.DEFINE_integer('num_processes', 2, 'How many processes to start.')
  flags.DEFINE_integer('port', 0, 'Coordinator port on 127.0.0.1 (0: a free one).')
  flags.DEFINE_float('grace_seconds', 10.0,
                     'After one process fails: seconds between SIGTERM and SIGKILL.')


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _forward(stream, prefix: str, lock: threading.Lock) -> None:
  for line in iter(stream.readline, ''):
    with lock:
      sys.stdout.write(prefix + line)
      sys.stdout.flush()
  stream.close()


def _stop(procs: Sequence[subprocess.Popen], grace: float) -> None:
  for p in procs:
    if p.poll() is None:
      p.send_signal(signal.SIGTERM)
  deadline = time.time() + grace
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def launch(command: Sequence[str], num_processes: int, *, port: int = 0,
           grace_seconds: float = 10.0) -> int:
  """Runs `python command... <coordinator flags>` N times; returns the first non-zero exit code
  (a signal as 128 + its number), or 0 when every process succeeded."""
  port = port or free_port()
  lock = threading.Lock()
  procs, threads = [], []
  for i in range(num_processes):
    args = [sys.executable] + list(command) + [
        f'--coordinator_address=127.0.0.1:{port}', f'--num_processes={num_processes}',
        f'--process_id={i}']
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         bufsize=1)
    t = threading.Thread(target=_forward, args=(p.stdout, f'[{i}] ', lock), daemon=True)
    t.start()
    procs.append(p)
    threads.append(t)

  def on_signal(signum, frame):  # pylint: disable=unused-argument
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)
  previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    code = 0
    while [p.poll() for p in procs].count(None):  # poll every process, every time
      failed = [p for p in procs if p.returncode not in (None, 0)]
      if failed:
        code = failed[0].returncode
        with lock:
          print(f'[launch] process {procs.index(failed[0])} exited with {code}: stopping the others',
                flush=True)
        _stop(procs, grace_seconds)
        break
      time.sleep(0.1)
    if not code:
      code = next((p.returncode for p in procs if p.returncode), 0)
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
  for t in threads:
    t.join(timeout=5)
  return 128 - code if code < 0 else code


def main(argv: Sequence[str]) -> None:
  if len(argv) < 2:
    raise app.UsageError('Give the command after --, e.g. -- train.py --config=... --workdir=...')
  fv = flags.FLAGS
  sys.exit(launch(argv[1:], fv.num_processes, port=fv.port, grace_seconds=fv.grace_seconds))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
