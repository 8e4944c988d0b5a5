"""A trial goal's task and distribution are checked against the task registry (no list of our own)."""
from __future__ import annotations

from types import SimpleNamespace

from enpire_common import task_registry

from enpire_rollout.trial_core import validate_goal


def _goal(**kw):
    values = dict(trial_id='', task=task_registry.names()[0], distribution='', attempts=1,
                  steps_per_attempt=1, time_budget_s=0.0, policy_path='', policy_sha256='')
    return SimpleNamespace(**{**values, **kw})


def test_an_unknown_task_is_refused_with_the_installed_tasks_named():
    reason = validate_goal(_goal(task='stack_cups'))
    assert 'stack_cups' in reason and all(name in reason for name in task_registry.names())


def test_a_distribution_must_be_one_of_the_tasks_own():
    task = task_registry.get(task_registry.names()[0])
    refused = validate_goal(_goal(distribution='everywhere'))
    assert 'everywhere' in refused and task.distributions[0] in refused
    for distribution in task.distributions:      # a known one passes on to the next check (the policy file)
        assert 'policy' in validate_goal(_goal(distribution=distribution))
