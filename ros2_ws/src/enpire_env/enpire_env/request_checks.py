"""Field checks shared by the servers' request validation (pure): each returns '' when the value is
acceptable, else a short reason. A reason quotes at most `SHOWN` characters of what it was sent, so a
hostile 10 kB string never comes back whole in a result, a log or a bag."""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from enpire_common import task_registry

SHOWN = 64


def shown(value: object) -> str:
    """repr of a string (str of anything else) cut to about SHOWN characters, with the length when cut."""
    text = str(value)
    quoted = repr(text[:SHOWN]) if isinstance(value, str) else text[:SHOWN]
    if len(quoted) > SHOWN + 2:          # control characters quote as up to ten
        quoted = quoted[:SHOWN] + '...'
    return quoted if len(text) <= SHOWN else f'{quoted}... ({len(text)} characters)'


def name_problem(value: str, known: Collection[str], what: str) -> str:
    if value in known:
        return ''
    return f'unknown {what} {shown(value)}; expected one of {sorted(known)}'


def names_problem(values: Sequence[str], known: Collection[str], what: str) -> str:
    """Each of `values` known, none twice."""
    unknown = [v for v in dict.fromkeys(values) if v not in known]
    if unknown:
        listed = ', '.join(shown(v) for v in unknown[:3]) + (f' and {len(unknown) - 3} more'
                                                             if len(unknown) > 3 else '')
        return f'unknown {what}(s) {listed}; configured: {sorted(known)}'
    if len(set(values)) != len(values):
        return f'duplicate {what}s in the request ({len(values)} given, {len(set(values))} distinct)'
    return ''


def count_problem(value: int, field: str, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f'{field} must be an integer in {low}..{high} (got {shown(value)})'
    return ''


def number_problem(value: float, field: str, low: float, high: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        return f'{field} must be a finite number in {low:g}..{high:g} (got {shown(value)})'
    return ''


def task_problem(task: str, distribution: str | None = None) -> str:
    """An installed task (the registry's list is the one list of tasks) and, if given, one of its
    initial-state distributions."""
    problem = task_registry.problem(task)
    if problem or distribution is None:
        return problem
    return name_problem(distribution, task_registry.get(task).distributions, f'{task} distribution')


def verify_request_problem(task: str, cameras: Sequence[str], tasks: Collection[str],
                           configured: Collection[str]) -> str:
    """enpire_interfaces/Verify: a known task and known, distinct cameras."""
    return name_problem(task, tasks, 'task') or names_problem(cameras, configured, 'camera')
