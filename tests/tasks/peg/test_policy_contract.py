"""The peg task's policy contract on its in-process harness: what a policy sees (hand, gripper, the scene as
the reset located it, never the live truth), that attempts continue where the last one left the arm, that
every command passes the cell's limits, and that metaworld's scripted expert through the harness does what
it does in plain metaworld."""
import numpy as np
import pytest
from enpire_task_peg.expert import EXPERT_POLICY
from enpire_task_peg.in_process import InProcessHarness
from enpire_task_peg.simulator import PegSimulator, sample_layout
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

from enpire_agents.local_eval import load_policy_class, run_in_process
from enpire_rollout.policy_contract import Observation

RECORDER = '''
class Policy:
    seen = []

    def reset(self, context):
        Policy.seen.clear()

    def act(self, observation):
        Policy.seen.append(observation)
        return (0.0, 1.0, 0.5, -1.0)        # up and away from the robot: never near success

    def on_attempt_failed(self, report):
        pass
'''


@pytest.fixture(scope='module')
def harness():
    return InProcessHarness('auto')


def test_the_observation_is_hand_gripper_and_the_located_scene(harness):
    cell = harness.cell(4, 'metaworld')
    cell.reset()
    layout = sample_layout(4)
    obs = Observation(**cell.observe(0, 1))
    state = harness.sim.task_state()
    assert np.allclose(obs.agent_position, state[:3]) and obs.proprioception.shape == (4,)
    assert obs.proprioception[3] == pytest.approx(state[3]) and obs.debug_ground_truth is None
    assert set(obs.scene) == {'peg', 'box'} and not obs.frames
    for name, truth in (('peg', layout.peg), ('box', layout.box)):
        error = np.abs(obs.scene[name] - np.array(truth))
        assert np.all(error[:2] <= 0.01) and error[2] == 0.0        # the reset's tolerance, camera error in
    assert np.any(np.abs(obs.scene['peg'] - np.array(layout.peg)) > 0)
    again = harness.cell(4, 'metaworld')
    again.reset()
    assert np.array_equal(Observation(**again.observe(0, 1)).scene['peg'], obs.scene['peg'])   # seeded
    exact = InProcessHarness('exact_reset').cell(4, 'metaworld')
    exact.reset()
    assert np.array_equal(exact.observe(0, 1)['scene']['peg'], layout.peg)


def test_attempts_continue_where_the_last_left_the_arm_and_the_scene_is_not_tracked(harness, peg_task):
    policy = load_policy_class(RECORDER)
    outcome = run_in_process(policy, 7, harness.cell(7, 'metaworld'), task=peg_task, attempts=3,
                             distribution='metaworld', steps_per_attempt=40)
    assert outcome.attempts_used == 3 and outcome.first_success is None
    assert all(r.startswith('timeout: peg never grasped') for r in outcome.attempt_reasons)
    seen = policy.seen
    starts = [i for i, o in enumerate(seen) if o.step == 0]
    assert [seen[i].attempt for i in starts] == [1, 2, 3]
    for i in starts[1:]:       # no reset: attempt k+1 starts where attempt k's last step left the hand
        assert np.linalg.norm(seen[i].agent_position - seen[i - 1].agent_position) < 0.011
        assert seen[i].agent_position[1] > seen[0].agent_position[1] + 0.1
    assert all(np.array_equal(o.scene['box'], seen[0].scene['box']) for o in seen)


@pytest.mark.parametrize('answer, reason', [((float('nan'), 0.0, 0.0, 0.0), 'non-finite'),
                                            ((1.0, 0.0, 0.0), '4 numbers'), ('down', '4 numbers')])
def test_a_malformed_action_ends_the_attempt_with_its_reason(harness, peg_task, answer, reason):
    code = f'class Policy:\n    def reset(self, c):\n        pass\n    def act(self, o):\n' \
           f'        return {answer!r}\n' \
           '    def on_attempt_failed(self, r):\n        pass\n'
    code = code.replace('nan', "float('nan')")
    outcome = run_in_process(load_policy_class(code), 1, harness.cell(1, 'metaworld'), task=peg_task,
                             attempts=2, distribution='metaworld', steps_per_attempt=20)
    assert outcome.attempts_used == 2 and outcome.first_success is None
    assert all(reason in r and r.startswith('exception') for r in outcome.attempt_reasons)


def test_commands_out_of_range_are_limited_before_they_reach_the_cell(harness, peg_task):
    code = ('class Policy:\n    def reset(self, c):\n        self.n = 0\n    def act(self, o):\n'
            '        self.n += 1\n        s = 1e9 if self.n % 2 else -1e9\n        return (s, -s, 1e9, 7.0)\n'
            '    def on_attempt_failed(self, r):\n        pass\n')
    cell = harness.cell(2, 'metaworld')
    low, high = np.array(harness.limits.workspace_low), np.array(harness.limits.workspace_high)
    hands = []
    original = cell.command

    def watched(values):
        before = harness.sim.data.mocap_pos[0].copy()
        original(values)
        after = harness.sim.data.mocap_pos[0].copy()
        assert np.all(np.abs(after - before) <= 0.01 + 1e-9)       # one step at most 1 cm per axis
        hands.append(after)
    cell.command = watched
    run_in_process(load_policy_class(code), 2, cell, task=peg_task, attempts=1, distribution='metaworld',
                   steps_per_attempt=120)
    hands = np.array(hands)
    assert len(hands) == 120 and np.all(hands >= low - 1e-9) and np.all(hands <= high + 1e-9)
    assert hands[:, 2].max() == pytest.approx(high[2], abs=1e-6)        # up to the limit, no further


def _plain_metaworld(seed: int, steps: int = 500) -> tuple[int | None, list]:
    sim = PegSimulator()
    obs = sim.reset(sample_layout(seed))
    expert = SawyerPegInsertionSideV3Policy()
    first, actions = None, []
    for step in range(1, steps + 1):
        action = expert.get_action(obs)
        actions.append(np.clip(action, -1, 1))
        obs, info = sim.step(action)
        if first is None and info['success']:
            first = step
    sim.close()
    return first, actions


@pytest.mark.parametrize('seed', [1, 3])
def test_the_expert_through_the_harness_is_the_expert_in_plain_metaworld(peg_task, seed):
    plain_first, plain_actions = _plain_metaworld(seed)
    truth = InProcessHarness('gt')
    cell = truth.cell(seed, 'metaworld')
    sent = []
    original = cell.command
    cell.command = lambda values: (sent.append(np.clip(np.asarray(values, dtype=np.float32), -1, 1)),
                                   original(values))
    outcome = run_in_process(load_policy_class(EXPERT_POLICY), seed, cell, task=peg_task, attempts=1,
                             distribution='metaworld')
    assert plain_first is not None and outcome.first_success == 1 and outcome.steps == plain_first
    assert np.array_equal(np.array(sent), np.array(plain_actions[:plain_first]))       # bit for bit


def test_local_evaluation_in_trial_mode_says_the_peg_cell_is_judged_through_run_trial(peg_task):
    """local_eval's trial mode steps a table cell under a camera rig: for the peg's self-rendering cell it
    refuses with the reason and the ways that work, instead of failing somewhere inside."""
    from enpire_task_peg.empty_policy import EMPTY_POLICY

    from enpire_agents.local_eval import evaluate

    with pytest.raises(ValueError, match='run_trial.*in_process'):
        evaluate(EMPTY_POLICY, [0], attempts=1, mode='trial', task=peg_task.name, steps_per_attempt=2,
                 distribution='metaworld')
