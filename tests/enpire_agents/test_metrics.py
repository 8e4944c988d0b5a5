"""Metrics against hand-computed values."""
import math

import pytest

from enpire_agents.metrics import (
    CellTime,
    ProgressPoint,
    failure_reasons,
    mean_best_score,
    mean_robot_utilization,
    mean_token_utilization,
    pass_at,
    time_to_success,
    tokens_to_success,
    wilson_interval,
)
from enpire_rollout.trial_outcome import TrialOutcome


def _rollout(seed, first_success, attempts=8, reason='timeout'):
    n = attempts if first_success is None else first_success
    return TrialOutcome(seed=seed, attempts=attempts,
                        attempt_scores=[0.5] * (n - 1) + [0.97 if first_success else 0.5],
                        attempt_successes=[i + 1 == first_success for i in range(n)],
                        attempt_reasons=[reason] * (n - 1) + ['success' if first_success else reason])


def test_wilson_matches_hand_computation():
    # p = 0.8, n = 10, z = 1.96: centre = (0.8 + 0.19208) / 1.38416 = 0.71673; half = 0.23620
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(100, 100)
    assert high == 1.0 and low == pytest.approx(0.9630, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_wilson_interval_always_holds_the_observed_rate():
    # rounding put 0/6's lower bound at 3e-17 (a plotted error bar of -3e-17 made matplotlib refuse)
    for n in range(1, 200):
        for successes in (0, n // 2, n):
            low, high = wilson_interval(successes, n)
            assert 0.0 <= low <= successes / n <= high <= 1.0
    assert wilson_interval(0, 6)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_pass_at_k_counts_first_success_within_k_of_one_rollout():
    rollouts = [_rollout(1, 1), _rollout(2, 3), _rollout(3, None), _rollout(4, 8)]
    assert pass_at(rollouts, 1).rate == 0.25
    assert pass_at(rollouts, 2).rate == 0.25
    assert pass_at(rollouts, 3).rate == 0.5
    assert pass_at(rollouts, 8).successes == 3 and pass_at(rollouts, 8).n == 4
    assert pass_at(rollouts, 8).seeds == [1, 2, 3, 4]
    low, high = wilson_interval(3, 4)
    assert (pass_at(rollouts, 8).low, pass_at(rollouts, 8).high) == (low, high)


def test_pass_at_k_refuses_k_beyond_the_rollouts_attempts():
    with pytest.raises(ValueError, match='attempts'):
        pass_at([_rollout(1, 1, attempts=2)], 8)


def test_scores_and_reasons():
    rollouts = [_rollout(1, 2, reason='angle off'), _rollout(2, None, attempts=2, reason='far')]
    assert mean_best_score(rollouts) == pytest.approx((0.97 + 0.5) / 2)
    assert failure_reasons(rollouts) == ['far (x2)', 'angle off (x1)']


def test_mru_is_execute_share_averaged_over_cells():
    cells = [CellTime(cell='a', wall_s=100, execute_s=80, reset_s=10, verify_s=5, idle_s=5),
             CellTime(cell='b', wall_s=50, execute_s=20, reset_s=10, idle_s=20)]
    u = mean_robot_utilization(cells)
    assert u.mru == pytest.approx((0.8 + 0.4) / 2)
    assert u.reset_share == pytest.approx((0.1 + 0.2) / 2) and u.idle_share == pytest.approx((0.05 + 0.4) / 2)
    assert mean_robot_utilization([]).mru == 0.0


def test_mtu_is_team_throughput_over_n_single():
    # 4 agents: 8000 tokens in 100 s = 80/s; one agent 2500 tokens in 100 s = 25/s -> 80 / (4 * 25) = 0.8
    assert mean_token_utilization(8000, 100.0, 4, 2500, 100.0) == pytest.approx(0.8)
    assert mean_token_utilization(8000, 100.0, 4, 0, 100.0) is None


def test_time_and_tokens_to_success_take_the_first_point_at_the_bar():
    points = [ProgressPoint(t_s=5, tokens=100), ProgressPoint(t_s=30, tokens=900, at_bar=True),
              ProgressPoint(t_s=20, tokens=500, at_bar=True)]
    assert time_to_success(points) == 20 and tokens_to_success(points) == 500
    assert time_to_success(points[:1]) is None and math.isnan(float('nan'))
