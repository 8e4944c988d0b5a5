"""The launch files are installed to share/enpire_bringup/launch (so `ros2 launch enpire_bringup <file>` finds
them), parse, take `use_sim_time`, and build their nodes from the same bringup YAML as `enpire up`: managed
nodes as launch_ros LifecycleNodes that the launch configures and then activates.

Running them needs the `launch` and `launch_ros` packages of a system ROS 2 (lab machines); the PyPI wheels
these machines run on do not carry them (PyPI's `launch` is an unrelated package). So here the translation
is checked against recording stand-ins of the launch classes, and the real run skips.
"""
from __future__ import annotations

import ast
import importlib.util
import runpy
import sys
import types
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory
from enpire_common import bringup_file

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = {'sim_cells.launch.py': 'sim_cells', 'real_cell.launch.py': 'real_cell'}
SOURCE = ROOT / 'ros2_ws' / 'src' / 'enpire_bringup' / 'launch'


def installed(file: str) -> Path:
    return Path(get_package_share_directory('enpire_bringup')) / 'launch' / file


def _launch_available() -> str:
    """'' when launch and launch_ros (ROS 2's) import, else why not."""
    for name in ('launch', 'launch_ros'):
        if importlib.util.find_spec(name) is None:
            return f'{name} is not importable (no system ROS 2 here; see ../shared/ROS_ON_PYPI.md)'
    import launch
    if not hasattr(launch, 'LaunchDescription'):
        return 'the importable `launch` is not ROS 2 launch (PyPI has an unrelated package of that name)'
    return ''


@pytest.mark.parametrize('file', sorted(LAUNCH_FILES))
def test_launch_files_are_installed_and_parse(file):
    path = installed(file)
    assert path.is_file(), f'{file} is not installed to {path.parent}'
    assert path.read_text() == (SOURCE / file).read_text()
    for source in (path, ROOT / 'launch' / file):          # the package's file and the checkout's include
        tree = ast.parse(source.read_text(), filename=str(source))
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert 'generate_launch_description' in functions, source
    assert f"default_bringup='{LAUNCH_FILES[file]}'" in path.read_text()
    assert f"include_installed('{file}')" in (ROOT / 'launch' / file).read_text()   # the installed one
    assert bringup_file.resolve_path(LAUNCH_FILES[file]).exists()


class Recorded:
    """Stands in for a launch class: keeps what it was built with."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context):
        return context[self.args[0]]


@pytest.fixture
def recording_launch(monkeypatch):
    """`launch` / `launch_ros` modules whose classes record their arguments."""
    classes = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'OpaqueFunction', 'Shutdown', 'EmitEvent',
                           'RegisterEventHandler', 'IncludeLaunchDescription'],
        'launch.substitutions': [],
        'launch.events': [],
        'launch.launch_description_sources': ['PythonLaunchDescriptionSource'],
        'launch_ros': [], 'launch_ros.actions': ['Node', 'LifecycleNode'],
        'launch_ros.event_handlers': ['OnStateTransition'], 'launch_ros.events': [],
        'launch_ros.events.lifecycle': ['ChangeState'],
    }
    modules = {}
    for name, names in classes.items():
        module = types.ModuleType(name)
        for cls in names:
            setattr(module, cls, type(cls, (Recorded,), {}))
        modules[name] = module
        monkeypatch.setitem(sys.modules, name, module)
    modules['launch.substitutions'].LaunchConfiguration = LaunchConfiguration
    modules['launch.events'].matches_action = lambda action: ('matches', action)
    for name, module in modules.items():
        parent, _, child = name.rpartition('.')
        if parent:
            setattr(modules[parent], child, module)
    return modules


def _expand(sim_time: str, compose: str) -> list:
    description = runpy.run_path(str(installed('sim_cells.launch.py')))['generate_launch_description']()
    arguments = {a.args[0]: a.kwargs.get('default_value') for a in description.args[0]
                 if type(a).__name__ == 'DeclareLaunchArgument'}
    assert arguments['use_sim_time'] == ''
    assert {'bringup', 'cells', 'task', 'only', 'skip', 'compose'} <= set(arguments)
    expand = next(a for a in description.args[0] if type(a).__name__ == 'OpaqueFunction').kwargs['function']
    return expand({'bringup': 'sim_cells', 'cells': '2', 'task': '', 'only': '', 'skip': '',
                   'use_sim_time': sim_time, 'compose': compose})


def _sim_time_of(node, sim_time: str):
    """use_sim_time a node gets: forced by the launch argument, else the bringup file's (None: unset)."""
    return (sim_time == 'true') if sim_time else node.parameters.get('use_sim_time')


@pytest.mark.parametrize('sim_time', ['true', 'false', ''])
def test_launch_description_builds_the_bringup_with_managed_nodes(recording_launch, sim_time):
    import lifecycle_msgs.msg

    actions = _expand(sim_time, 'false')
    expansion = bringup_file.expand(bringup_file.load('sim_cells'), cells=2)
    nodes = [a for a in actions if type(a).__name__ in ('Node', 'LifecycleNode')]
    assert [n.kwargs['arguments'][1] for n in nodes] == [n.module for n in expansion.nodes]
    managed = {n.kwargs['namespace'] for n in nodes if type(n).__name__ == 'LifecycleNode'}
    assert managed == {'/cell_0', '/cell_1'}                          # each cell's safety node
    for node, expected in zip(nodes, expansion.nodes, strict=True):
        assert node.kwargs['parameters'][-1].get('use_sim_time') is _sim_time_of(expected, sim_time)
    if not sim_time:      # the file's: a simulated cell's nodes on their cell's clock, the simulator not
        assert {n.kwargs['parameters'][-1].get('use_sim_time') for n in nodes
                if n.kwargs['namespace'] == '/cell_0'} == {True, None}
    transitions = [a.kwargs['event'].kwargs['transition_id'] for a in actions
                   if type(a).__name__ == 'EmitEvent']
    assert transitions.count(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE) == 2
    handlers = [a.args[0] for a in actions if type(a).__name__ == 'RegisterEventHandler']
    assert [h.kwargs['goal_state'] for h in handlers] == ['inactive', 'inactive']
    activate = handlers[0].kwargs['entities'][0].kwargs['event'].kwargs['transition_id']
    assert activate == lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE


@pytest.mark.parametrize('sim_time', ['true', 'false', ''])
def test_launch_description_starts_a_composed_cell_as_one_container(recording_launch, sim_time):
    from enpire_common.composition import parse_nodes, split_options

    actions = _expand(sim_time, '')
    expansion = bringup_file.expand(bringup_file.load('sim_cells'), cells=2)
    # one process per cell and the agent team; no lifecycle events
    assert [type(a).__name__ for a in actions] == ['Node', 'Node', 'Node']
    assert actions[2].kwargs['arguments'] == ['-m', 'enpire_agents.agent_node']
    for action, cell in zip(actions[:2], ('cell_0', 'cell_1'), strict=True):
        arguments = action.kwargs['arguments']
        assert arguments[:2] == ['-m', 'enpire_common.composition']
        _executor, rest = split_options(arguments[2:])
        _process_args, composed = parse_nodes(rest)
        cell_nodes = [n for n in expansion.nodes if n.cell == cell]
        assert [c.plugin for c in composed] == [n.plugin for n in cell_nodes]
        for node, expected in zip(composed, cell_nodes, strict=True):
            args = ' '.join(node.ros_args)
            assert f'__ns:=/{cell}' in args
            wanted = _sim_time_of(expected, sim_time)
            assert (f'use_sim_time:={str(wanted).lower()}' in args) if wanted is not None \
                else 'use_sim_time' not in args
            assert ('autostart:=true' in args) is expected.lifecycle     # no lifecycle events in a container
        assert action.kwargs['respawn'] is True


@pytest.mark.parametrize('file', sorted(LAUNCH_FILES))
def test_launch_description_matches_the_bringup_yaml(file):
    reason = _launch_available()
    if reason:
        pytest.skip(f'launch files not loaded: {reason}')
    from launch.actions import OpaqueFunction
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    from launch import LaunchContext

    description = get_launch_description_from_python_launch_file(str(installed(file)))
    context = LaunchContext()
    context.launch_configurations.update(
        {'bringup': LAUNCH_FILES[file], 'cells': '2', 'task': '', 'only': '', 'skip': '',
         'use_sim_time': 'false', 'compose': ''})
    nodes = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            nodes += [a for a in (entity.execute(context) or []) if isinstance(a, Node)]
    processes = bringup_file.expand(bringup_file.load(LAUNCH_FILES[file]), cells=2).processes()
    assert len(nodes) == len(processes)
    for node, expected in zip(nodes, processes, strict=True):
        argv = [perform_substitutions(context, part) for part in node.cmd]
        module = 'enpire_common.composition' if expected.composed else expected.nodes[0].module
        assert argv[1:3] == ['-m', module], (argv, expected.label)
