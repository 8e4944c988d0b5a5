"""Parity with gym-pusht: same initial state, same actions -> same trajectory.

Tolerance: the state (agent and block positions, block angle) must be bit-for-bit equal -- our sim runs
the same Chipmunk build (pymunk 6.11.1) with the same bodies, insertion order and float operations, so
any difference at all would mean a modelling difference. Coverage is compared within 1e-9 absolute:
gym-pusht asks shapely (GEOS) for the intersection of two MultiPolygons, we clip the four convex box
pairs analytically; both are exact geometry evaluated in different float orders, measured to differ
by under 1e-14, far below anything that moves a success decision (0.95 threshold).
"""
import numpy as np
import pytest
from enpire_task_pusht.simulator import PushTSim

gym = pytest.importorskip('gymnasium')
pytest.importorskip('gym_pusht')

SEEDS = 50
STEPS = 300
COVERAGE_TOL = 1e-9


def _actions(rng, env, steps):
    """Targets that chase the block with noise, so most episodes push the T (contacts are what matters)."""
    actions = []
    target = np.array(env.unwrapped.block.position)
    for t in range(steps):
        if t % 15 == 0:
            target = np.array(env.unwrapped.block.position) + rng.normal(0, 25, 2)
        actions.append(np.clip(target + rng.normal(0, 30, 2), 0, 512))
    return actions


@pytest.mark.slow
def test_trajectories_match_gym_pusht_for_50_seeds_x_300_steps():
    import gym_pusht  # noqa: F401

    env = gym.make('gym_pusht/PushT-v0', obs_type='state').unwrapped
    sim = PushTSim()
    moved = 0
    worst_cov = 0.0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        state = [rng.integers(50, 450), rng.integers(50, 450), rng.integers(100, 400), rng.integers(100, 400),
                 rng.uniform(-np.pi, np.pi)]
        obs, _ = env.reset(options={'reset_to_state': state})
        sim.place_gym_state(np.asarray(state, dtype=float))
        assert sim.state_vector() == obs.tolist(), f'seed {seed}: placement differs'
        start = np.array(sim.block_pose)
        # Actions are generated against gym-pusht's block as it moves (closed loop on the reference).
        target = np.array(env.unwrapped.block.position)
        for t in range(STEPS):
            if t % 15 == 0:
                target = np.array(env.unwrapped.block.position) + rng.normal(0, 25, 2)
            action = np.clip(target + rng.normal(0, 30, 2), 0, 512)
            obs, _, terminated, _, info = env.step(action)
            sim.step(action)
            assert sim.state_vector() == obs.tolist(), f'seed {seed} step {t}: state differs'
            worst_cov = max(worst_cov, abs(sim.coverage() - info['coverage']))
            assert sim.is_success() == terminated
        moved += np.linalg.norm(np.array(sim.block_pose[:2]) - start[:2]) > 5.0
    assert worst_cov < COVERAGE_TOL, worst_cov
    assert moved >= SEEDS // 2, f'only {moved} of {SEEDS} episodes pushed the T: the test would prove little'


def test_float32_actions_match_too():
    import gym_pusht  # noqa: F401

    env = gym.make('gym_pusht/PushT-v0', obs_type='state').unwrapped
    env.reset(options={'reset_to_state': [300.0, 300.0, 256.0, 256.0, 0.3]})
    sim = PushTSim()
    sim.place_gym_state([300.0, 300.0, 256.0, 256.0, 0.3])
    rng = np.random.default_rng(7)
    for _ in range(60):
        action = (256 + rng.normal(0, 60, 2)).astype(np.float32)
        obs, *_ = env.step(action)
        sim.step(action)
        assert sim.state_vector() == obs.tolist()


def test_coverage_agrees_with_shapely_reference():
    from enpire_task_pusht.geometry import GOAL_POSE, coverage
    from enpire_task_pusht.simulator import coverage_fast

    rng = np.random.default_rng(0)
    poses = [GOAL_POSE] + [(256 + rng.uniform(-150, 150), 256 + rng.uniform(-150, 150), rng.uniform(-4, 4))
                           for _ in range(500)]
    errors = [abs(coverage_fast(p) - coverage(p)) for p in poses]
    assert max(errors) < COVERAGE_TOL
    assert coverage_fast(GOAL_POSE) == pytest.approx(1.0, abs=1e-12)


def test_unmodified_gym_pusht_placed_as_the_cell_places_replays_bit_for_bit():
    """`enpire audit --replay` cross-checks a bag in gym-pusht: placed angle-then-position (the cell's
    exact placement, not reset_to_state's legacy order), it must follow our simulator exactly."""
    from enpire_task_pusht.replay import GymPushTReplay

    rng = np.random.default_rng(3)
    for _ in range(5):
        block = (float(rng.uniform(150, 350)), float(rng.uniform(150, 350)), float(rng.uniform(-3, 3)))
        agent = (float(rng.uniform(30, 480)), float(rng.uniform(30, 80)))
        gym_env, sim = GymPushTReplay(block, agent), PushTSim()
        sim.place(block, agent)
        assert sim.block_pose == tuple(gym_env.env.block.position) + (gym_env.env.block.angle,)
        for _ in range(80):
            action = np.clip(np.array(sim.block_pose[:2]) + rng.normal(0, 40, 2), 0, 512)
            sim.step(action)
            gym_env.step(action)
            assert gym_env.state() == sim.state_vector()
            assert abs(gym_env.score - sim.coverage()) < COVERAGE_TOL
