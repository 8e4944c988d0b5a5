"""The policy contract is the task's: its action size, its allowed imports, its action spec in the context;
the contract module holds what a policy author reads, the machinery around it lives in policy_runtime."""
from __future__ import annotations

import inspect
import math

import pytest
from enpire_common import task_registry

from enpire_rollout import policy_contract
from enpire_rollout.policy_contract import TrialContext
from enpire_rollout.policy_runtime import BASE_IMPORTS, action_values, allowed_imports, trial_context
from enpire_rollout.sandbox import _finite_action

TASK = task_registry.names()[0]


@pytest.mark.parametrize('size', [1, 2, 3, 7])
def test_an_action_has_the_tasks_size_and_finite_values(size):
    assert action_values([0.5] * size, size) == (0.5,) * size
    with pytest.raises(ValueError, match=f'must return {size} numbers, got {size + 1}'):
        action_values([0.5] * (size + 1), size)
    with pytest.raises(ValueError, match='non-finite'):
        action_values([math.inf] + [0.0] * (size - 1), size)
    with pytest.raises(ValueError, match=f'must return {size} numbers, got str'):
        action_values('left', size)


@pytest.mark.parametrize('size', [1, 2, 3])
def test_the_answer_pipe_takes_the_tasks_action_size_only(size):
    assert _finite_action([1] * size, size) == (1.0,) * size
    assert _finite_action([1] * (size + 1), size) is None
    assert _finite_action([True] * size, size) is None


def test_a_policy_may_import_the_base_set_and_its_tasks_tools_only():
    task = task_registry.get(TASK)
    assert allowed_imports(TASK) == BASE_IMPORTS | task.policy_imports
    assert not any(m.startswith('enpire_env') or m.startswith('enpire_agents') for m in allowed_imports(TASK))
    with pytest.raises(task_registry.UnknownTask, match='stack_cups'):
        allowed_imports('stack_cups')


def test_the_trial_context_carries_the_tasks_action_and_observation_spec():
    task = task_registry.get(TASK)
    context = trial_context(TASK, attempts=1, steps_per_attempt=1, control_hz=10.0, cameras=[], seed=0)
    assert isinstance(context, TrialContext)
    assert context.action_names == task.action.names and context.action_units == task.action.units
    assert context.action_frame == task.action.frame and context.action_size == task.action.size
    assert context.proprioception == task.observation.proprioception


def test_the_contract_module_is_the_contract_only():
    """Agents read this module's source as the contract: the three types, no framework machinery."""
    public = {name for name, value in vars(policy_contract).items()
              if not name.startswith('_') and getattr(value, '__module__', None) == policy_contract.__name__}
    assert public == {'TrialContext', 'Observation', 'AttemptReport'}
    source = inspect.getsource(policy_contract)
    assert 'task_registry' not in source and 'def allowed_imports' not in source
    assert 'enpire_rollout.policy_contract' in BASE_IMPORTS     # a policy may still import it
