"""Push-T on the generic interfaces and back with no loss: every float of a sampled initial state, of the
cell's state and of a command crosses the messages (and their CDR serialization) bit for bit."""
import math
import struct

import pytest
from enpire_common import messages
from enpire_common.task_registry import get
from enpire_task_pusht import messages as pusht
from enpire_task_pusht.distributions import sample_initial_state
from enpire_task_pusht.geometry import coverage
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message

from enpire_interfaces.msg import CellState, Command
from enpire_interfaces.srv import PlaceObjects

TASK = get('pusht')
real = st.floats(allow_nan=False, allow_infinity=False)   # any finite double: -0.0, subnormals, 1e308
pair = st.tuples(real, real)


def bits(values):
    return [struct.pack('<d', float(v)) for v in values]


def through_the_wire(msg):
    return deserialize_message(serialize_message(msg), type(msg))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(TASK.distributions), pair, pair, pair)
def test_state_and_command_round_trip_bit_identical(seed, distribution, velocity, target, command):
    initial = sample_initial_state(seed, distribution)
    block, agent = initial.block, initial.agent

    # Placement: the scene and the tool of the task contract, as PlaceObjects carries them.
    request = through_the_wire(pusht.place_request(block, agent))
    assert [o.name for o in request.objects] == [o.name for o in initial.scene()]
    placed_block, placed_agent = pusht.placement_of(request)
    assert bits(placed_block) == bits(block) and bits(placed_agent) == bits(agent)
    assert messages.scene_objects(request.objects) == initial.scene()
    assert bits(request.tool) == bits(initial.tool())

    # The cell's state: tool pose, velocity, the tracked command.
    state = through_the_wire(pusht.cell_state(7, agent, velocity, target))
    assert state.header.frame_id == TASK.action.frame and not state.joints.name and not state.task_state
    assert bits(pusht.agent_of(state)) == bits(agent)
    assert bits(pusht.velocity_of(state)) == bits(velocity)
    assert bits(pusht.target_of(state)) == bits(target)
    assert bits(messages.measured_action(state, TASK.action.names)) == bits(agent)
    assert bits(messages.measured_velocity(state, TASK.action.names)) == bits(velocity)
    q = state.tool_pose.orientation
    assert (q.x, q.y, q.z, q.w, state.tool_pose.position.z) == (0.0, 0.0, 0.0, 1.0, 0.0)

    # A command: the action vector in the action's frame.
    cmd = through_the_wire(pusht.command(command))
    assert cmd.header.frame_id == TASK.action.frame and len(cmd.values) == TASK.action.size
    assert bits(pusht.target_of_command(cmd)) == bits(command)

    # Ground truth: the task-state vector named by the task, the tool, the score and the task's own rule.
    cov = coverage(block)
    truth = through_the_wire(pusht.ground_truth(7, block, agent, cov))
    assert len(truth.task_state) == len(TASK.task_state)
    got_block, got_agent, got_cov = pusht.truth_of(truth)
    assert bits(got_block) == bits(block) and bits(got_agent) == bits(agent)
    assert bits([got_cov]) == bits([cov])
    assert (truth.score, truth.success) == TASK.load('success_rule')(truth.task_state)


@pytest.mark.parametrize('values', [math.nan, math.inf])
def test_non_finite_values_cross_unchanged_for_safety_to_see(values):
    """The messages do not launder bad input: safety and the cell see the NaN or inf a policy sent."""
    cmd = through_the_wire(pusht.command((values, 1.0)))
    x, y = pusht.target_of_command(cmd)
    assert (math.isnan(x) if math.isnan(values) else x == values) and y == 1.0
    assert 'non-finite' in messages.command_problem(cmd, 2, 'table')


@pytest.mark.parametrize('build,why', [
    (lambda: PlaceObjects.Request(objects=[], tool=[1.0, 2.0]), "exactly one object named 'block'"),
    (lambda: pusht.place_request((1.0, 2.0), (3.0, 4.0)), 'expected 3 entries'),
    (lambda: pusht.place_request((1.0, 2.0, 0.0), (3.0,)), 'expected 2 entries'),
])
def test_malformed_placements_are_refused_with_the_reason(build, why):
    with pytest.raises(ValueError, match=why):
        pusht.placement_of(build())


def test_command_problems_name_frame_and_length():
    assert messages.command_problem(pusht.command((1.0, 2.0)), 2, 'table') is None
    assert '3 values' in messages.command_problem(Command(values=[1.0, 2.0, 3.0]), 2, '')
    wrong = pusht.command((1.0, 2.0))
    wrong.header.frame_id = 'map'
    assert "'map' is not 'table'" in messages.command_problem(wrong, 2, 'table')


def test_a_joint_space_action_is_measured_by_the_joints_any_other_by_the_tool():
    state = CellState()
    state.joints.name, state.joints.position = ['a', 'b', 'c'], [0.1, -0.2, 0.3]
    messages.set_tool(state, (4.0, 5.0, 6.0), (1.0, 2.0))
    assert messages.measured_action(state, ('a', 'b', 'c')) == (0.1, -0.2, 0.3)
    assert messages.measured_velocity(state, ('a', 'b', 'c')) == (0.0, 0.0, 0.0)   # none reported
    assert messages.measured_action(state, ('target_x', 'target_y')) == (4.0, 5.0)
    assert messages.measured_velocity(state, ('target_x', 'target_y')) == (1.0, 2.0)
    state.joints.position = [0.1]
    with pytest.raises(ValueError, match='1 joint positions for 3 named joints'):
        messages.measured_action(state, ('a', 'b', 'c'))
    with pytest.raises(ValueError, match='1 to 3 entries'):
        messages.measured_action(state, ('u', 'v', 'w', 'z'))
