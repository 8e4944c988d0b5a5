"""The peg-insertion task is not installed by default (its folder holds COLCON_IGNORE: see docs/TASKS.md), so
its tests import the package from its source folder. MuJoCo renders headless through EGL, as env.sh sets."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
PACKAGE_ROOT = Path(__file__).resolve().parents[3] / 'ros2_ws' / 'src' / 'tasks' / 'enpire_task_peg'
if str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))


@pytest.fixture
def peg_task(monkeypatch):
    """The task in the registry (`enpire_common.task_registry`) from its source folder while it is not
    installed: found by name as the framework asks for it; restored after the test."""
    from importlib.metadata import EntryPoint

    from enpire_common import task_registry
    if 'peg_insertion' not in task_registry.names():
        installed = task_registry._entry_points

        def with_peg():
            found = dict(installed())
            found.setdefault('peg_insertion', EntryPoint(name='peg_insertion', group=task_registry.GROUP,
                                                         value='enpire_task_peg.task:TASK'))
            return found
        monkeypatch.setattr(task_registry, '_entry_points', with_peg)
    yield task_registry.get('peg_insertion')
    task_registry._load.cache_clear()
