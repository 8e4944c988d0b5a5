"""Agents never touch reset, verifier, safety limits or evaluation seeds: the guard's checks."""
import pytest

from enpire_agents import guard
from enpire_agents.backends.base import ImprovementRequest
from enpire_agents.backends.code_check import check_code
from enpire_agents.experiment import load_experiment
from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.sandbox import static_check

GOOD = '''
import math
import numpy as np
from enpire_task_pusht import policy_tools
from enpire_task_pusht.policy_tools import locate_block, GOAL_POSE
from enpire_rollout.policy_contract import Observation


class Policy:
    def reset(self, context):
        self.seed = context.seed

    def act(self, observation):
        return 256.0, 256.0

    def on_attempt_failed(self, report):
        pass
'''


def test_clean_policy_passes():
    assert guard.check_proposal(GOOD, 'pusht', held_out_seeds=[900000]).ok


@pytest.mark.parametrize('line, why', [
    ('import enpire_env.safety.limits', 'enpire_env'),
    ('from enpire_env.verification import verifier', 'enpire_env'),
    ('from enpire_rollout import sandbox', 'enpire_rollout.sandbox'),
    ('from enpire_task_pusht import geometry', 'enpire_task_pusht.geometry'),
    ('import enpire_task_pusht.task', 'enpire_task_pusht.task'),
    ('import enpire_rollout.scheduler', 'enpire_rollout.scheduler'),
    ('import rclpy', 'rclpy'),
    ('import importlib', 'importlib'),
    ('SEEDS = {900001, 5}', 'held-out'),
    ('X = "evaluation_seeds"', 'evaluation_seeds'),
    ('y = observation.debug_ground_truth', 'debug_ground_truth'),
])
def test_reaching_past_the_contract_is_refused(line, why):
    verdict = guard.check_proposal(GOOD + '\n' + line + '\n', 'pusht', held_out_seeds=[900000, 900001])
    assert not verdict.ok and any(why in r for r in verdict.reasons), verdict.reasons


def test_the_guard_opens_exactly_the_project_modules_the_sandbox_allows():
    project = {m for m in allowed_imports('pusht') if m.startswith('enpire_')}
    assert guard.allowed_project_modules('pusht') == project
    assert {'enpire_rollout.learned_policy', 'enpire_task_pusht.learned_policy',
            'enpire_task_pusht.policy_motion_tools'} <= project


def _regimes_proposals():
    from enpire_agents.regimes import regime_backends
    from enpire_agents.regimes.bc import learned_policy_source
    request = ImprovementRequest(task='pusht', contract='', agent_id='agent_0', round=1)
    tool_calling = regime_backends.ToolCallingBackend(seed=0).propose(request)
    learned = learned_policy_source('/tmp/weights.npz', '0' * 64, 'behaviour_cloning', task='pusht')
    return {'tool_calling': tool_calling.code, 'behaviour_cloning': learned}


@pytest.mark.parametrize('regime', ['tool_calling', 'behaviour_cloning'])
def test_a_regimes_backend_proposal_passes_the_guard(regime):
    code = _regimes_proposals()[regime]
    assert 'policy_motion_tools' in code or 'learned_policy' in code
    verdict = guard.check_proposal(code, 'pusht', held_out_seeds=[900000])
    assert verdict.ok, verdict.reasons
    # and the gates after it agree
    assert check_code(code, 'pusht').ok and static_check(code, allowed_imports('pusht')) == []


@pytest.mark.parametrize('line', ['from enpire_rollout import sandbox', 'import enpire_rollout.trial_bag',
                                  'from enpire_rollout import learned_policy, scheduler'])
def test_a_regimes_proposal_with_a_forbidden_import_still_fails(line):
    code = _regimes_proposals()['tool_calling'] + '\n' + line + '\n'
    verdict = guard.check_proposal(code, 'pusht')
    assert not verdict.ok and any('imports enpire_rollout.' in r for r in verdict.reasons), verdict.reasons


def test_small_constants_that_happen_to_equal_a_seed_are_not_leaks():
    assert guard.check_proposal(GOOD + '\nGAIN = 5\n', 'pusht', held_out_seeds=[5]).ok


def test_agent_view_has_no_evaluation_seeds(tmp_path):
    config = load_experiment({'name': 'g', 'task': 'pusht',
                              'improvement': {'seeds': {'start': 0, 'count': 10}},
                              'evaluation': {'seeds': {'start': 5000, 'count': 5}},
                              'success_bar': {'n_eval': 5}})
    view = guard.agent_view(config, 'agent_0')
    assert view.improvement_seeds == list(range(10))
    assert '5000' not in view.model_dump_json()
    guard.assert_improvement_seeds([1, 2], config)
    with pytest.raises(PermissionError):
        guard.assert_improvement_seeds([1, 5003], config)


def test_protected_files_detect_a_change(tmp_path):
    limits = tmp_path / 'safety.yaml'
    limits.write_text('max_speed: 1.0\n')
    other = tmp_path / 'reset.yaml'
    other.write_text('retries: 3\n')
    protected = guard.ProtectedFiles([limits, other])
    assert protected.verify().valid
    limits.write_text('max_speed: 100.0\n')
    integrity = protected.verify()
    assert not integrity.valid and integrity.changed == [str(limits.resolve())]


def test_default_protected_paths_cover_en_config_and_the_experiment(tmp_path):
    exp = tmp_path / 'exp.yaml'
    exp.write_text('name: x\n')
    paths = guard.default_protected_paths(exp)
    assert exp in paths
    assert any('enpire_env' in str(p) and 'safety' in str(p) for p in paths)
