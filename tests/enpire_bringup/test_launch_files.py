"""The launch files in launch/ build their nodes from the same bringup YAML as `enpire up`.

Needs the `launch` and `launch_ros` packages of a system ROS 2 (lab machines); the PyPI wheels these
machines run on do not carry them (PyPI's `launch` is an unrelated package), so here the test skips.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from enpire_bringup import bringup_file

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = {'sim_cells.launch.py': 'sim_cells', 'real_cell.launch.py': 'real_cell'}


def _launch_available() -> str:
    """'' when launch and launch_ros (ROS 2's) import, else why not."""
    for name in ('launch', 'launch_ros'):
        if importlib.util.find_spec(name) is None:
            return f'{name} is not importable (no system ROS 2 here; see ../shared/ROS_ON_PYPI.md)'
    import launch
    if not hasattr(launch, 'LaunchDescription'):
        return 'the importable `launch` is not ROS 2 launch (PyPI has an unrelated package of that name)'
    return ''


def test_launch_files_exist_and_name_their_bringup():
    for file, bringup in LAUNCH_FILES.items():
        text = (ROOT / 'launch' / file).read_text()
        assert f"default_bringup='{bringup}'" in text
        assert bringup_file.resolve_path(bringup).exists()


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

    description = get_launch_description_from_python_launch_file(str(ROOT / 'launch' / file))
    context = LaunchContext()
    context.launch_configurations.update(
        {'bringup': LAUNCH_FILES[file], 'cells': '2', 'only': '', 'skip': ''})
    nodes = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            nodes += [a for a in (entity.execute(context) or []) if isinstance(a, Node)]
    expansion = bringup_file.expand(bringup_file.load(LAUNCH_FILES[file]), cells=2)
    assert len(nodes) == len(expansion.nodes)
    for node, expected in zip(nodes, expansion.nodes, strict=True):
        argv = [perform_substitutions(context, part) for part in node.cmd]
        assert argv[1:3] == ['-m', expected.module], (argv, expected.label)
        namespace = getattr(node, '_Node__node_namespace', None)
        if isinstance(namespace, str):
            assert namespace == expected.namespace
