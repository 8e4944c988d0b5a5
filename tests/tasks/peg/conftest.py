"""MuJoCo renders headless through EGL, as env.sh sets."""
import os

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')


@pytest.fixture
def peg_task():
    """The task as the framework finds it: by name in the registry (it is installed with the rest)."""
    from enpire_common import task_registry
    return task_registry.get('peg_insertion')
