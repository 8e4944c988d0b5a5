"""Agents never touch reset, verifier, safety limits or evaluation seeds: the guard's checks."""
import pytest

from enpire_agents import guard
from enpire_agents.experiment import load_experiment

GOOD = '''
import math
import numpy as np
from enpire_rollout import policy_tools
from enpire_rollout.policy_tools import locate_block, GOAL_POSE
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
    assert guard.check_proposal(GOOD, held_out_seeds=[900000]).ok


@pytest.mark.parametrize('line, why', [
    ('import enpire_env.safety.limits', 'enpire_env'),
    ('from enpire_env.verification import verifier', 'enpire_env'),
    ('from enpire_rollout import sandbox', 'enpire_rollout.sandbox'),
    ('import enpire_rollout.scheduler', 'enpire_rollout.scheduler'),
    ('import rclpy', 'rclpy'),
    ('import importlib', 'importlib'),
    ('SEEDS = {900001, 5}', 'held-out'),
    ('X = "evaluation_seeds"', 'evaluation_seeds'),
    ('y = observation.debug_ground_truth', 'debug_ground_truth'),
])
def test_reaching_past_the_contract_is_refused(line, why):
    verdict = guard.check_proposal(GOOD + '\n' + line + '\n', held_out_seeds=[900000, 900001])
    assert not verdict.ok and any(why in r for r in verdict.reasons), verdict.reasons


def test_small_constants_that_happen_to_equal_a_seed_are_not_leaks():
    assert guard.check_proposal(GOOD + '\nGAIN = 5\n', held_out_seeds=[5]).ok


def test_agent_view_has_no_evaluation_seeds(tmp_path):
    config = load_experiment({'name': 'g', 'improvement': {'seeds': {'start': 0, 'count': 10}},
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
