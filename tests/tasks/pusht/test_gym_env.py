"""The registered Gymnasium env: observation types, reset options, termination, truncation, pacing."""
import time

import enpire_task_pusht.gym_env  # noqa: F401
import gymnasium as gym
import numpy as np
import pytest
from enpire_task_pusht.distributions import sample_initial_state
from enpire_task_pusht.geometry import GOAL_POSE
from enpire_task_pusht.gym_env import ENV_ID


def test_state_obs_reset_from_seed_and_distribution():
    env = gym.make(ENV_ID, obs_type='state')
    for distribution in ('in_distribution', 'out_of_distribution'):
        obs, info = env.reset(seed=11, options={'distribution': distribution})
        expected = sample_initial_state(11, distribution)
        assert obs.shape == (5,) and obs.dtype == np.float64
        assert obs[:2] == pytest.approx(expected.agent)
        assert info['block_pose'] == pytest.approx(expected.block, abs=1e-9)
        assert env.observation_space.contains(obs)
    again, _ = env.reset(seed=11, options={'distribution': 'out_of_distribution'})
    assert again.tolist() == obs.tolist()
    with pytest.raises(ValueError, match='unknown Push-T distribution'):
        env.reset(seed=1, options={'distribution': 'bogus'})


def test_pixels_and_multi_camera_obs():
    env = gym.make(ENV_ID, obs_type='pixels', camera='oblique')
    obs, _ = env.reset(seed=0)
    assert obs.shape == (96, 96, 3) and obs.dtype == np.uint8
    env = gym.make(ENV_ID, obs_type='multi_camera')
    obs, _ = env.reset(seed=0)
    assert set(obs) == {'top', 'oblique', 'wrist'}
    obs, *_ = env.step(np.array([256.0, 256.0]))
    assert env.observation_space.contains(obs)
    assert env.render().shape == (96, 96, 3)


def test_success_terminates_and_300_steps_truncate():
    env = gym.make(ENV_ID)
    env.reset(options={'initial_state': {'block': GOAL_POSE, 'agent': (60.0, 60.0)}})
    _, reward, terminated, truncated, info = env.step(np.array([60.0, 60.0]))
    assert terminated and not truncated and reward == 1.0 and info['is_success']
    env.reset(options={'initial_state': {'block': (120.0, 400.0, 0.0), 'agent': (450.0, 60.0)}})
    for i in range(300):
        _, _, terminated, truncated, _ = env.step(np.array([450.0, 60.0]))
        assert not terminated and truncated == (i == 299)


def test_bad_actions_are_refused():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(np.array([np.nan, 3.0]))


def test_real_time_pacing_holds_10_hz():
    env = gym.make(ENV_ID, pacing='real_time')
    env.reset(seed=0)
    start = time.monotonic()
    for _ in range(6):
        env.step(np.array([256.0, 256.0]))
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 0.9  # first step is immediate, then 5 periods of 0.1 s
    fast = gym.make(ENV_ID, pacing='as_fast')
    fast.reset(seed=0)
    start = time.monotonic()
    for _ in range(6):
        fast.step(np.array([256.0, 256.0]))
    assert time.monotonic() - start < 0.2
