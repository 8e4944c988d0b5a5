"""Hostile peg policies in the real sandbox (`enpire_rollout.sandbox.PolicyRunner`, the OS boundary), with the
peg task's context (a 4-entry action): each is refused or stopped with a reason by the checks Push-T's
contract uses, and a composed peg policy runs there with its tools."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from enpire_task_peg import strategies
from enpire_task_peg.paths import safety_limits_path
from enpire_task_peg.safety import ToolLimits, limit_command

from enpire_rollout import os_sandbox
from enpire_rollout.policy_contract import Observation
from enpire_rollout.policy_runtime import trial_context
from tests.enpire_rollout import test_sandbox

runner = test_sandbox.runner      # the sandbox tests' fixture: every runner closed, none left running


@pytest.fixture
def context(peg_task):
    # the sandbox binds the files of every installed task's policy tools: learn them with this task in
    for cached in (os_sandbox.runtime_view, os_sandbox.probe):
        cached.cache_clear()
    yield trial_context('peg_insertion', attempts=2, steps_per_attempt=20, control_hz=80.0, cameras=[],
                        seed=1)
    for cached in (os_sandbox.runtime_view, os_sandbox.probe):
        cached.cache_clear()


def observation(step: int = 0) -> Observation:
    hand = np.array([0.0, 0.6, 0.2])
    return Observation(step=step, attempt=1, time_s=step / 80.0, agent_position=hand,
                       agent_velocity=np.zeros(3), frames={}, table_to_image={},
                       proprioception=np.array([*hand, 1.0]),
                       scene={'peg': np.array([0.1, 0.6, 0.02]), 'box': np.array([-0.3, 0.6, 0.0])})


def policy_file(tmp_path, act_body: str, header: str = ''):
    source = header + '\n\nclass Policy:\n    def reset(self, context):\n        pass\n\n' \
        '    def act(self, observation):\n' + textwrap.indent(textwrap.dedent(act_body), ' ' * 8) + \
        '\n\n    def on_attempt_failed(self, report):\n        pass\n'
    path = tmp_path / 'policy.py'
    path.write_text(source)
    return path


def test_a_composed_peg_policy_runs_in_the_sandbox_with_its_tools(tmp_path, runner, context):
    path = tmp_path / 'composed.py'
    path.write_text(strategies.compose(strategies.default_genome()))
    sandbox = runner()
    started = sandbox.start(path, context)
    assert started.ok, started.reason
    answer = sandbox.act(observation())
    assert answer.ok and len(answer.action) == 4 and all(-1.0 <= v <= 1.0 for v in answer.action)
    assert answer.action[3] == -1.0 and answer.action[0] > 0      # open, towards the peg (+x of the hand)


@pytest.mark.parametrize('returned', ["(float('nan'), 0.0, 0.0, 1.0)", "(0.0, float('inf'), 0.0, 1.0)",
                                      '(0.0, 0.0, 1.0)', '(0.0, 0.0, 0.0, 1.0, 0.0)', "'down'", 'None',
                                      '[[0.0, 0.0], [0.0, 1.0]]'])
def test_a_malformed_action_is_refused_with_a_reason(tmp_path, runner, context, returned):
    sandbox = runner()
    assert sandbox.start(policy_file(tmp_path, f'return {returned}'), context).ok
    answer = sandbox.act(observation())
    assert not answer.ok and answer.action is None and answer.reason
    assert answer.kind in ('invalid_action', 'exception')


def test_an_out_of_range_action_is_answered_then_limited_on_its_way_to_the_cell(tmp_path, runner, context):
    sandbox = runner()
    assert sandbox.start(policy_file(tmp_path, 'return (1e9, -1e9, 5.0, -7.0)'), context).ok
    answer = sandbox.act(observation())
    assert answer.ok and answer.action == (1e9, -1e9, 5.0, -7.0)     # finite: the sandbox passes it on
    limits = ToolLimits.from_yaml(safety_limits_path())
    command, why = limit_command(answer.action, observation().agent_position, limits)
    assert np.all(np.abs(command) <= 1.0) and command[3] == limits.gripper_low and why


def test_a_hanging_policy_is_held_then_killed(tmp_path, runner, context):
    sandbox = runner(step_deadline_s=0.1, hang_timeout_s=1.0)
    assert sandbox.start(policy_file(tmp_path, 'while True:\n    pass'), context).ok
    first = sandbox.act(observation())
    assert first.ok and first.held and first.kind == 'deadline'
    for step in range(1, 200):
        answer = sandbox.act(observation(step))
        if not answer.ok:
            break
    assert not answer.ok and answer.kind == 'hang' and answer.fatal and not sandbox.alive


@pytest.mark.parametrize('header', ['import os', 'import mujoco', 'import metaworld',
                                    'from enpire_task_peg.simulator import PegSimulator',
                                    'from enpire_task_peg import in_process', 'import subprocess'])
def test_a_forbidden_import_is_refused_before_the_policy_loads(tmp_path, runner, context, header):
    sandbox = runner()
    started = sandbox.start(policy_file(tmp_path, 'return (0.0, 0.0, 0.0, 0.0)', header=header), context)
    assert not started.ok and started.kind == 'violation' and 'not allowed' in started.reason


def test_with_the_static_check_off_the_import_guard_still_refuses(tmp_path, runner, context):
    sandbox = runner(static_check=False)
    act = 'import enpire_task_peg.simulator\nreturn (0.0, 0.0, 0.0, 0.0)'
    assert sandbox.start(policy_file(tmp_path, act), context).ok
    answer = sandbox.act(observation())
    assert not answer.ok and answer.kind == 'violation' and answer.fatal
