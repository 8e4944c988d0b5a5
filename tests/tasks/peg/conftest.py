"""The peg-insertion task is not installed by default (its folder holds COLCON_IGNORE: see docs/TASKS.md), so
its tests import the package from its source folder. MuJoCo renders headless through EGL, as env.sh sets."""
import os
import sys
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')
PACKAGE_ROOT = Path(__file__).resolve().parents[3] / 'ros2_ws' / 'src' / 'tasks' / 'enpire_task_peg'
if str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))
