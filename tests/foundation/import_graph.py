"""The import graph of the workspace's Python packages (ros2_ws/src, sim), read from source without importing.

An edge A -> B means module A names module B: an `import`/`from` statement (anywhere, lazy ones too), a
literal module name passed to `importlib.import_module`, `importlib.util.find_spec` or `__import__`, or a
string literal that spells one of our modules (`'pkg.module'` or a `'pkg.module:attribute'` reference, as
a task's `task.py` holds them): a module looked up at run time is a dependency all the same.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (ROOT / 'ros2_ws' / 'src', ROOT / 'sim')
SKIP_DIRS = {'build', 'install', 'log', 'test', 'tests', '__pycache__', 'resource'}
IMPORT_FUNCTIONS = {'import_module', 'find_spec', '__import__'}
_REFERENCE = re.compile(r'^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?$')


@dataclass
class Module:
    name: str            # dotted name, e.g. enpire_env.reset.core
    path: Path
    package: str         # the top-level Python package (= the ROS package)
    is_task: bool        # lives under ros2_ws/src/tasks
    imports: set[str] = field(default_factory=set)   # dotted names as written (resolved later)


def _package_dirs() -> list[tuple[Path, bool]]:
    """Every top-level Python package (a folder with __init__.py beside a setup.py) and whether it is a
    task package."""
    found = []
    for root in SOURCE_ROOTS:
        for setup in root.rglob('setup.py'):
            if SKIP_DIRS & set(setup.relative_to(root).parts[:-1]):
                continue
            for init in setup.parent.glob('*/__init__.py'):
                found.append((init.parent, 'tasks' in setup.relative_to(ROOT).parts))
    return sorted(found)


def _module_name(package_dir: Path, source: Path) -> str:
    parts = [package_dir.name, *source.relative_to(package_dir).with_suffix('').parts]
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _resolve_relative(module: Module, level: int, target: str | None) -> str:
    base = module.name.split('.')
    if module.path.name != '__init__.py':
        base.pop()
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return '.'.join([*base, target] if target else base)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _imports_of(module: Module, tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, node.level, node.module) if node.level else node.module
            # `from pkg import sub` names pkg.sub when that is a module (edges() falls back to pkg)
            names.update(base if alias.name == '*' else f'{base}.{alias.name}' for alias in node.names)
        elif isinstance(node, ast.Call) and _called_name(node) in IMPORT_FUNCTIONS:
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _REFERENCE.match(node.value)
            if match:
                names.add(match.group(1))
    return names


def extra_sources() -> list[Path]:
    """Python files of the packages that are no importable module (launch files), for the text checks."""
    return sorted(p for root in SOURCE_ROOTS for p in root.rglob('*.launch.py')
                  if not SKIP_DIRS & set(p.relative_to(root).parts[:-1]))


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package_dir, is_task in _package_dirs():
        for source in sorted(package_dir.rglob('*.py')):
            if SKIP_DIRS & set(source.relative_to(package_dir).parts[:-1]):
                continue
            module = Module(_module_name(package_dir, source), source, package_dir.name, is_task)
            module.imports = _imports_of(module, ast.parse(source.read_text(), filename=str(source)))
            modules[module.name] = module
    return modules


def edges(modules: dict[str, Module]) -> set[tuple[str, str]]:
    """(importer, imported) between our modules; a name resolves to the longest module it starts with, so
    `from pkg.sub import name` is an edge to pkg.sub (or to pkg.sub.name when that is a module)."""
    result = set()
    for module in modules.values():
        for name in module.imports:
            parts = name.split('.')
            while parts and '.'.join(parts) not in modules:
                parts.pop()
            target = '.'.join(parts)
            if target and target != module.name:
                result.add((module.name, target))
    return result


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def adjacency(pairs) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in pairs:
        graph.setdefault(a, set()).add(b)
    return graph
