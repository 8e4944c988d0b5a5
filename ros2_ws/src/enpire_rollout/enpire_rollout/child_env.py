"""The environment of every process started with agent-supplied code or agent-chosen arguments: an
allow-list, nothing inherited (so no API key, token or ROS setting of the parent reaches it)."""
from __future__ import annotations

import os

# Inherited by name when set (and only these): what an interpreter or git needs to run, nothing secret.
_PASSED_THROUGH = ('PATH',)


def allowlisted_env(pythonpath: list[str] | tuple[str, ...] = (), home: str = '/nonexistent',
                    **extra: str) -> dict[str, str]:
    env = {
        'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
        'OPENBLAS_NUM_THREADS': '1', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1',
        'NUMEXPR_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', 'PYTHONDONTWRITEBYTECODE': '1',
        'PYTHONNOUSERSITE': '1', 'HOME': home, 'TMPDIR': home,
    }
    env.update({k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ})
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(pythonpath)
    env.update(extra)
    return env
