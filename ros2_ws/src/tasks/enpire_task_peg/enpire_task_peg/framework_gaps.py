"""The Task fields this task cannot fill until the framework can carry it (docs/TASKS.md, "Peg insertion:
what the framework still lacks"). Each reference resolves to a factory that refuses with the reason, so a
node or a backend that asks for one fails at once with a clear error instead of running half a task."""
from __future__ import annotations


class FrameworkGap(NotImplementedError):
    pass


def _gap(part: str, needs: str):
    def refuse(*_args, **_kwargs):
        raise FrameworkGap(f'peg_insertion: {part} is not available yet: {needs} '
                           '(docs/TASKS.md, "Peg insertion: what the framework still lacks")')
    refuse.__name__ = part
    return refuse
