"""The shape of the code: no import circle, no import from a lower layer to a higher one, no framework
module naming Push-T.

Layers, lowest first: enpire_interfaces < enpire_common < {enpire_env, enpire_sim} < enpire_rollout <
enpire_agents < enpire_bringup. Task packages (ros2_ws/src/tasks/*) are plugins on top: they may import
any framework package; no framework package imports one (frameworks reach a task through
`enpire_common.task_registry`). Imports through importlib and `module:attr` strings count.

The ALLOWED_* lists name today's violations, one entry per file or edge; a fix removes its entry, and an
entry that is no longer needed fails the test, so the lists only shrink.
"""
import re
from pathlib import Path

from tests.foundation.import_graph import ROOT, adjacency, edges, extra_sources, load_modules, reaches

LAYERS = {
    'enpire_interfaces': 0, 'enpire_common': 1, 'enpire_env': 2, 'enpire_sim': 2, 'enpire_rollout': 3,
    'enpire_agents': 4, 'enpire_bringup': 5,
}
TASK_LAYER = 6
PUSHT = re.compile(r'pusht|push[-_]t(?![a-z])', re.IGNORECASE)
INTERFACE_SUFFIXES = ('.msg', '.srv', '.action')

# (importer, imported): a lower layer importing a higher one, or a framework module importing a task.
ALLOWED_UPWARD: set[tuple[str, str]] = set()

# (importer, imported) between modules of one package that lie on a circle.
ALLOWED_MODULE_CIRCLE: set[tuple[str, str]] = set()

# (importer, imported) across packages whose packages import each other (a circle between packages).
ALLOWED_PACKAGE_CIRCLE: set[tuple[str, str]] = set()

# Files outside a task folder that name Push-T (paths relative to the repository root).
ALLOWED_PUSHT_NAMES: set[str] = set()

MODULES = load_modules()
EDGES = edges(MODULES)


def _layer(module: str) -> int:
    info = MODULES[module]
    if info.is_task:
        return TASK_LAYER
    assert info.package in LAYERS, f'{info.package} has no layer: add it to LAYERS in {Path(__file__).name}'
    return LAYERS[info.package]


def _package(module: str) -> str:
    return MODULES[module].package


def _check(found: set, allowed, what: str) -> None:
    allowed = set(allowed)   # an emptied list written as {} is a dict
    new, fixed = sorted(found - allowed), sorted(allowed - found)
    message = []
    if new:
        message.append(f'{what}, not allowed:\n  ' + '\n  '.join(map(repr, new)))
    if fixed:
        message.append(f'fixed, remove from the allow-list of {what}:\n  ' + '\n  '.join(map(repr, fixed)))
    assert not message, '\n'.join(message)


def upward_imports() -> set[tuple[str, str]]:
    return {(a, b) for a, b in EDGES
            if _layer(a) < _layer(b) or (not MODULES[a].is_task and MODULES[b].is_task)}


def module_circles() -> set[tuple[str, str]]:
    inner = {(a, b) for a, b in EDGES if _package(a) == _package(b)}
    graph = adjacency(inner)
    return {(a, b) for a, b in inner if reaches(graph, b, a)}


def package_circles() -> set[tuple[str, str]]:
    """Circles the layering does not already rule out: between packages of one layer (env, sim) or tasks."""
    across = {(a, b) for a, b in EDGES if _package(a) != _package(b)} - upward_imports()
    graph = adjacency({(_package(a), _package(b)) for a, b in across})
    return {(a, b) for a, b in across if reaches(graph, _package(b), _package(a))}


def pusht_names() -> set[str]:
    sources = [m.path for m in MODULES.values() if not m.is_task] + extra_sources()
    for root in (ROOT / 'ros2_ws' / 'src', ROOT / 'sim'):
        sources += [p for suffix in INTERFACE_SUFFIXES for p in root.rglob(f'*{suffix}')]
    task_root = ROOT / 'ros2_ws' / 'src' / 'tasks'
    return {str(p.relative_to(ROOT)) for p in sources
            if not p.is_relative_to(task_root) and PUSHT.search(p.read_text())}


def test_the_graph_is_read():
    """The graph sees every framework package, the task package and the known edges (a guard against a
    reader that finds nothing and so passes everything)."""
    packages = {m.package for m in MODULES.values()}
    assert set(LAYERS) - {'enpire_interfaces'} <= packages
    assert 'enpire_task_pusht' in packages and MODULES['enpire_task_pusht.task'].is_task
    assert ('enpire_task_pusht.task', 'enpire_common.task') in EDGES
    assert ('enpire_common.task_registry', 'enpire_common.task') in EDGES


def test_no_import_from_a_lower_layer_to_a_higher_one():
    _check(upward_imports(), ALLOWED_UPWARD, 'imports from a lower layer to a higher one (or to a task)')


def test_no_import_circle_between_modules_of_a_package():
    _check(module_circles(), ALLOWED_MODULE_CIRCLE, 'imports on a circle between modules of a package')


def test_no_import_circle_between_packages():
    _check(package_circles(), ALLOWED_PACKAGE_CIRCLE, 'imports on a circle between packages')


def test_no_framework_module_names_push_t():
    _check(pusht_names(), ALLOWED_PUSHT_NAMES, 'framework files naming Push-T')
