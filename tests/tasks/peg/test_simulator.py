"""The peg simulator is metaworld's physics: same layout and actions give bit-identical states; snapshots
restore bit for bit; layouts are seeded; the success rule is metaworld's own."""
import pickle

import metaworld
import numpy as np
import pytest
from enpire_task_peg.simulator import (
    BOX,
    PEG_HEAD,
    TARGET_OFFSET,
    Layout,
    LayoutError,
    PegSimulator,
    layout_ranges,
    sample_layout,
    success_rule,
)
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

ENV = 'peg-insert-side-v3'


@pytest.fixture(scope='module')
def mt1():
    return metaworld.MT1(ENV, seed=7)


@pytest.fixture(scope='module')
def sim():
    simulator = PegSimulator()
    yield simulator
    simulator.close()


def _layout_of(task) -> Layout:
    vec = pickle.loads(task.data)['rand_vec']
    return Layout(tuple(vec[:3]), tuple(vec[3:]))


def _same(a, b):
    return np.array_equal(a, b)


@pytest.mark.parametrize('task_index', [0, 5])
def test_expert_through_the_simulator_matches_plain_metaworld_bit_for_bit(mt1, sim, task_index):
    """metaworld's own task and scripted expert on plain metaworld, the same actions on our simulator:
    observations, qpos, qvel equal at every step, and our success rule agrees with info['success']."""
    task = mt1.train_tasks[task_index]
    plain = mt1.train_classes[ENV]()
    plain.set_task(task)
    obs_plain, _ = plain.reset()
    obs = sim.reset(_layout_of(task))
    assert _same(obs, obs_plain)
    expert = SawyerPegInsertionSideV3Policy()
    successes = 0
    for step in range(300):
        action = expert.get_action(obs_plain)
        obs_plain, _, _, _, info_plain = plain.step(action)
        obs, info = sim.step(action)
        assert _same(obs, obs_plain), f'observation differs at step {step}'
        assert _same(sim.data.qpos, plain.data.qpos) and _same(sim.data.qvel, plain.data.qvel), step
        assert success_rule(sim.task_state())[1] == bool(info_plain['success']) == bool(info['success']), step
        successes += bool(info_plain['success'])
    plain.close()
    assert successes > 0, 'the expert never succeeded: the agreement was only tested on failures'


def test_random_actions_match_plain_metaworld(mt1, sim):
    task = mt1.train_tasks[3]
    plain = mt1.train_classes[ENV]()
    plain.set_task(task)
    plain.reset()
    sim.reset(_layout_of(task))
    actions = np.random.default_rng(3).uniform(-1.2, 1.2, (200, 4)).astype(np.float32)
    for action in actions:
        obs_plain, *_ = plain.step(action)
        obs, _ = sim.step(action)
        assert _same(obs, obs_plain) and _same(sim.data.qvel, plain.data.qvel)
    plain.close()


def _run(sim, actions):
    return [np.concatenate([sim.step(a)[0], sim.data.qpos, sim.data.qvel]) for a in actions]


def test_a_snapshot_restores_bit_for_bit_also_across_layouts(sim):
    expert = SawyerPegInsertionSideV3Policy()
    obs = sim.reset(sample_layout(11))
    for _ in range(60):
        obs, _ = sim.step(expert.get_action(obs))
    snap = sim.snapshot()
    actions = np.random.default_rng(1).uniform(-1, 1, (80, 4)).astype(np.float32)
    first = _run(sim, actions)
    state_after = sim.task_state()
    sim.reset(sample_layout(12, 'wide'))          # another layout in between
    _run(sim, actions[:10])
    sim.restore(snap)
    assert sim.steps == 60 and _same(sim.task_state()[BOX], np.array(sample_layout(11).box))
    again = _run(sim, actions)
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    assert _same(sim.task_state(), state_after)


def test_layouts_are_seeded_inside_their_ranges_and_never_too_close():
    assert sample_layout(4) == sample_layout(4) and sample_layout(4) != sample_layout(5)
    assert sample_layout(4, 'wide') != sample_layout(4)
    for distribution in ('metaworld', 'wide'):
        low, high = layout_ranges(distribution)
        for seed in range(200):
            layout = sample_layout(seed, distribution)
            vec = layout.rand_vec()
            assert np.all(vec >= low) and np.all(vec <= high) and not layout.problem()
    wide_low, wide_high = layout_ranges('wide')
    low, high = layout_ranges('metaworld')
    assert np.all(wide_low[:2] < low[:2]) and np.all(wide_high[3:5] > high[3:5])
    with pytest.raises(ValueError, match='unknown distribution'):
        sample_layout(0, 'rotated')


def test_a_layout_metaworld_would_loop_on_is_refused(sim):
    close = Layout((0.0, 0.5, 0.02), (-0.05, 0.55, 0.0))
    assert 'closer than 0.1 m' in close.problem()
    with pytest.raises(LayoutError, match='closer than 0.1 m'):
        sim.reset(close)
    with pytest.raises(LayoutError, match='finite'):
        sim.reset(Layout((float('nan'), 0.5, 0.02), (-0.3, 0.6, 0.0)))


def test_step_refuses_malformed_actions_and_a_finished_episode(sim):
    sim.reset(sample_layout(2))
    for bad in ([0.0, 0.0, 0.0], [0.0, float('nan'), 0.0, 0.0]):
        with pytest.raises(ValueError, match='4 finite numbers'):
            sim.step(bad)
    snap = sim.snapshot()
    sim.restore(snap.__class__(**{**snap.__dict__, 'curr_path_length': 500}))
    with pytest.raises(RuntimeError, match='episode is over'):
        sim.step([0.0, 0.0, 0.0, 0.0])


def test_the_success_window_is_metaworlds():
    box = np.array([-0.3, 0.6, 0.0])
    target = box + TARGET_OFFSET
    state = np.zeros(13)
    state[BOX] = box

    def judged(offset):
        state[PEG_HEAD] = target + np.asarray(offset)
        return success_rule(state)

    assert judged([0, 0, 0]) == (1.0, True)
    assert judged([0.0699, 0, 0])[1] and not judged([0.0701, 0, 0])[1]      # x counts once
    assert judged([0, 0.0349, 0])[1] and not judged([0, 0.0351, 0])[1]      # y and z count twice
    assert judged([0, 0, -0.0349])[1] and not judged([0, 0, -0.0351])[1]
    score, success = judged([0.14, 0, 0])
    assert not success and score == pytest.approx(0.5)
