"""The task registry: tasks are found through the Python entry-point group `enpire.tasks`.

A task package declares in its setup.py

    entry_points={'enpire.tasks': ['stack_cubes = enpire_task_stack_cubes.task:TASK']}

and every part of ENPIRE-ROS finds it by name with `get('stack_cubes')`. An unknown name is a clear error that
lists the tasks this installation knows.
"""
from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from enpire_common.task import Task

GROUP = 'enpire.tasks'


class UnknownTask(LookupError):
    pass


def _entry_points() -> dict:
    found = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)   # the first on the path wins, as for console scripts
    return found


def names() -> tuple[str, ...]:
    """The names of the installed tasks, sorted."""
    return tuple(sorted(_entry_points()))


def get(name: str) -> Task:
    """The task called `name`; `UnknownTask` (with the known names) when none is installed by that name."""
    if not isinstance(name, str) or not name:
        raise UnknownTask(f'a task name is a non-empty string, got {str(name)[:64]!r}; '
                          f'known tasks: {", ".join(names())}')
    return _load(name)


@cache
def _load(name: str) -> Task:
    ep = _entry_points().get(name)
    if ep is None:
        shown = name if len(name) <= 64 else name[:61] + '...'
        raise UnknownTask(f'unknown task {shown!r}; known tasks: {", ".join(names()) or "none installed"}')
    task = ep.load()
    if not isinstance(task, Task) or task.name != name:
        raise UnknownTask(f'entry point {ep.value!r} for task {name!r} is not a Task named {name!r}')
    return task


def sole() -> str:
    """The name of the one installed task: what a node serves when its `task` parameter is left empty
    (UnknownTask, asking for a name, when none or several are installed)."""
    installed = names()
    if len(installed) != 1:
        raise UnknownTask(f'{len(installed)} tasks are installed ({", ".join(installed) or "none"}): '
                          'name the task (parameter `task`)')
    return installed[0]


def problem(name) -> str:
    """'' when `name` is an installed task, else why not (for request checks that answer with a reason)."""
    try:
        get(name)
    except UnknownTask as e:
        return str(e)
    return ''
