"""The peg-insertion Task object: its fields resolve, its specs match metaworld, its limits load, and no
command through its limits leaves the workspace (property-tested); the parts the framework cannot carry
yet refuse with a reason."""
import numpy as np
import pytest
from enpire_common.task import Task
from enpire_task_peg.framework_gaps import FrameworkGap
from enpire_task_peg.paths import safety_limits_path
from enpire_task_peg.safety import ACTION_SCALE, ToolLimits, limit_command
from enpire_task_peg.simulator import PegSimulator, sample_layout
from enpire_task_peg.task import TASK
from hypothesis import given, settings
from hypothesis import strategies as st

from enpire_env.safety.limits import SafetyLimits


def test_the_installed_entry_point_names_this_task():
    from enpire_common import task_registry
    assert task_registry.get('peg_insertion') is TASK
    assert isinstance(TASK, Task) and TASK.name == 'peg_insertion'


def test_specs_match_metaworld():
    from metaworld.envs.sawyer_peg_insertion_side_v3 import SawyerPegInsertionSideEnvV3
    env = SawyerPegInsertionSideEnvV3()
    assert TASK.action.space().shape == env.action_space.shape == (4,)
    assert np.array_equal(TASK.action.space().low, env.action_space.low)
    assert TASK.control_hz == pytest.approx(1.0 / env.dt) and TASK.episode_steps == env.max_path_length
    assert len(TASK.task_state) == len(TASK.task_state_units) == 13
    env.close()


def test_initial_states_and_the_success_rule_resolve():
    sample = TASK.load('sample_initial_state')
    first, again = sample(3, 'metaworld'), sample(3, 'metaworld')
    assert first == again and first.seed == 3 and first.distribution == 'metaworld'
    assert [o.name for o in first.scene()] == ['peg', 'box'] and len(first.tool()) == 3
    assert sample(3, 'wide') != first and sample(3).distribution == TASK.distributions[0]
    rule = TASK.load('success_rule')
    sim = PegSimulator()
    sim.reset(first.layout)
    score, success = rule(sim.task_state())
    assert not success and 0.0 < score < 1.0
    sim.close()


def test_policy_prompt_and_limits_load():
    namespace = {}
    exec(compile(TASK.load('empty_policy'), 'empty_policy', 'exec'), namespace)
    policy = namespace['Policy']()
    policy.reset(None)
    action = np.asarray(policy.act(None))
    assert action.shape == (4,) and TASK.action.space().contains(action)
    prompt = TASK.load('prompt')
    assert 'hand_dx' in prompt and '0.07' not in prompt        # no ground-truth numbers for the agent
    limits = SafetyLimits.from_yaml(safety_limits_path())
    assert limits.size == 4 and limits.frame_id == TASK.action.frame
    assert ToolLimits.from_yaml(safety_limits_path()).max_displacement == ACTION_SCALE


def test_a_part_the_framework_lacks_refuses_with_a_reason():
    from enpire_task_peg.framework_gaps import _gap
    with pytest.raises(FrameworkGap, match='framework still lacks'):
        _gap('a part', 'something')()


def test_the_reset_places_through_the_cell_and_locates_from_the_views():
    assert TASK.reset.placement == 'mock_placement' and TASK.reset.multi_view


LIMITS = ToolLimits.from_yaml(safety_limits_path())
LOW, HIGH = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
anything = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=400, deadline=None)
@given(action=st.lists(anything, min_size=0, max_size=6),
       hand=st.tuples(*(st.floats(lo - 0.1, hi + 0.1) for lo, hi in zip(LOW, HIGH, strict=True))))
def test_no_command_leaves_the_limits(action, hand):
    hand = np.array(hand)
    out, reason = limit_command(action, hand, LIMITS)
    assert out.shape == (4,) and np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
    assert LIMITS.gripper_low <= out[3] <= LIMITS.gripper_high
    step = out[:3] * ACTION_SCALE
    assert np.all(np.abs(step) <= LIMITS.max_displacement + 1e-12)
    inside = (hand >= LOW) & (hand <= HIGH)
    target = hand + step
    assert np.all(~inside | ((target >= LOW - 1e-12) & (target <= HIGH + 1e-12)))     # stays in
    outside_by = np.abs(target - np.clip(target, LOW, HIGH))
    # a hand outside the box never moves further out
    assert np.all(inside | (outside_by <= np.abs(hand - np.clip(hand, LOW, HIGH)) + 1e-12))
    if len(action) != 4 or not np.all(np.isfinite(np.asarray(action, dtype=float))):
        assert reason and not np.any(out[:3])


def test_a_hostile_policy_through_the_limits_keeps_the_hand_in_the_workspace():
    sim = PegSimulator()
    sim.reset(sample_layout(5))
    rng = np.random.default_rng(0)
    for step in range(300):
        hostile = rng.choice([-1e9, 1e9, -1.0, 1.0], size=4) if step % 3 else np.array([5.0, -5.0, 9.0, 3.0])
        command, _ = limit_command(hostile, sim.data.mocap_pos[0], LIMITS)
        sim.step(command)
        assert np.all(sim.data.mocap_pos[0] >= LOW - 1e-9) and np.all(sim.data.mocap_pos[0] <= HIGH + 1e-9)
    sim.close()
