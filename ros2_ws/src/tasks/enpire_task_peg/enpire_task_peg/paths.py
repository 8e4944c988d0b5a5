"""Where the task's config files are: the installed share folder, else the source tree's."""
from __future__ import annotations

from pathlib import Path

from enpire_common.task import config_dir_of


def config_dir() -> str:
    return config_dir_of('enpire_task_peg', Path(__file__).resolve().parents[1] / 'config')


def safety_limits_path() -> str:
    return str(Path(config_dir()) / 'safety_limits.yaml')


def verification_config_path() -> str:
    return str(Path(config_dir()) / 'verify.yaml')
