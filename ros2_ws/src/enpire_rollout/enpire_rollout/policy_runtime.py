"""What the framework does around the policy contract (`policy_contract.py`); no policy calls it.

The modules a policy may import (`allowed_imports`, `installed_policy_imports` for the sandbox's preload),
the check of `act()`'s answer inside the sandbox child (`action_values`), and the task's action and
observation spec in a new `TrialContext` (`trial_context`). Kept apart so the contract agents read stays
the contract. The registry is imported lazily: the sandbox child uses `action_values` only.
"""
from __future__ import annotations

import math

from enpire_rollout.policy_contract import TrialContext

# What every policy may import, whatever its task; a task adds its own tools (`Task.policy_imports`).
BASE_IMPORTS = frozenset({
    'math', 'cmath', 'random', 'dataclasses', 'typing', 'collections', 'itertools', 'functools',
    'heapq', 'bisect', 'enum', 'statistics', '__future__', 'numpy', 'enpire_rollout.policy_contract',
    'enpire_rollout.learned_policy',
})


def allowed_imports(task: str) -> frozenset[str]:
    """The modules a policy of `task` may import (`UnknownTask` for a task that is not installed)."""
    from enpire_common import task_registry
    return BASE_IMPORTS | task_registry.get(task).policy_imports


def installed_policy_imports() -> frozenset[str]:
    """Every installed task's policy modules: what a sandbox may have to load for any task."""
    from enpire_common import task_registry
    return frozenset().union(*(task_registry.get(name).policy_imports for name in task_registry.names()))


def action_values(action, size: int) -> tuple[float, ...]:
    """`act()`'s answer as `size` finite floats; ValueError (starting 'act() ') saying why not."""
    if isinstance(action, (str, bytes, dict)) or action is None:
        raise ValueError(f'act() must return {size} numbers, got {type(action).__name__}')
    values = tuple(float(v) for v in action)      # a value that is no number raises as the policy's own error
    if len(values) != size:
        raise ValueError(f'act() must return {size} numbers, got {len(values)}')
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f'act() returned a non-finite action {values}')
    return values


def trial_context(task: str, **fields) -> TrialContext:
    """A `TrialContext` for `task` with the task's action and observation spec (`UnknownTask` if the task
    is not installed); `fields` are the trial's (attempts, steps_per_attempt, control_hz, cameras, seed)."""
    from enpire_common import task_registry
    spec = task_registry.get(task)
    return TrialContext(task=task, **fields, action_names=spec.action.names, action_units=spec.action.units,
                        action_frame=spec.action.frame, proprioception=spec.observation.proprioception,
                        proprioception_units=spec.observation.proprioception_units)
