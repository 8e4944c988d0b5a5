"""Where the task's config files are: the installed share folder, else the source tree's."""
from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """The task's config folder: the installed one (share/enpire_task_peg/config), else the source's."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory('enpire_task_peg')) / 'config'
        if installed.is_dir():
            return str(installed)
    except (ImportError, LookupError, ValueError):
        pass
    return str(Path(__file__).resolve().parents[1] / 'config')


def safety_limits_path() -> str:
    return str(Path(config_dir()) / 'safety_limits.yaml')


def verification_config_path() -> str:
    return str(Path(config_dir()) / 'verify.yaml')
