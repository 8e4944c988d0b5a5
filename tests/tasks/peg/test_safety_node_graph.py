"""The safety node of a peg cell on a real graph, the test playing the cell: it loads the task's command rule
(named by its `task` parameter), and no hostile policy command reaches cmd/target outside the peg's limits;
a latched e-stop sends only stops that keep the gripper."""
import threading

import numpy as np
import pytest
from enpire_common import messages, names
from std_srvs.srv import SetBool

from enpire_env.safety_node import task_command_rule, task_limits_file
from enpire_interfaces.msg import CellState, Command

pytestmark = pytest.mark.graph
NS = '/peg_safety'
TOOL = task_command_rule('peg_insertion', task_limits_file('peg_insertion')).limits
LOW, HIGH = np.array(TOOL.workspace_low), np.array(TOOL.workspace_high)
MARGIN = TOOL.hand_margin


def test_no_hostile_command_leaves_the_peg_limits_through_the_safety_node(node_processes, ros_node):
    node_processes.start('safety', ['-m', 'enpire_env.safety_node', '--ros-args', '-r', f'__ns:={NS}',
                                    '-p', 'task:=peg_insertion', '-p', 'pacing:=as_fast',
                                    '-p', 'autostart:=true'])
    node, lock, received = ros_node.node, threading.Lock(), []

    def keep(msg):
        with lock:
            received.append(msg)
    sub = node.create_subscription(Command, names.cell_name(NS, names.CELL_COMMAND), keep, 100)
    policy = node.create_publisher(Command, names.cell_name(NS, names.POLICY_COMMAND), 100)
    state = node.create_publisher(CellState, names.cell_name(NS, names.CELL_STATE), 10)
    estop = node.create_client(SetBool, names.cell_name(NS, names.ESTOP))
    assert estop.wait_for_service(timeout_sec=60), 'the safety node never came up'
    ros_node.wait_for(lambda: policy.get_subscription_count() and state.get_subscription_count()
                      and sub.get_publisher_count(), 60, 'the safety node matched')

    def hand_at(position):
        msg = CellState()
        msg.header.frame_id = 'world'
        messages.set_tool(msg, position)
        state.publish(msg)

    def send(values):
        with lock:
            before = len(received)
        msg = Command(values=[float(v) for v in values])
        msg.header.frame_id = 'world'
        policy.publish(msg)
        ros_node.wait_for(lambda: len(received) > before, 30, 'a command on cmd/target')
        with lock:
            return np.array(received[before].values), received[before].header.frame_id

    out, frame = send((1.0, 1.0, 1.0, 1.0))          # no hand position heard yet: a stop
    assert frame == 'world' and not np.any(out[:3])
    rng = np.random.default_rng(7)
    hand = np.array(HIGH) - 0.004                     # in a corner of the workspace, 4 mm from its faces

    def heard():      # the hand's position reached the node: a move away from the faces passes whole
        hand_at(hand)
        return send((-1.0, 0.0, 0.0, 0.0))[0][0] == -1.0
    ros_node.wait_for(heard, 60, 'the safety node to hear the hand')
    # The rule tracks the commanded target from the hand, moved by every command it let through (the first
    # was the move away): the target keeps the box, the hand (held still here) the box grown by its margin.
    target = hand + np.array([-0.01, 0.0, 0.0])
    for i in range(60):
        hostile = rng.choice([-1e9, 1e9, 5.0, -5.0, 1.0, float('nan')], size=4) if i % 4 else (1, 1, 1, 9)
        out, _ = send(hostile)
        assert out.shape == (4,) and np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
        assert np.all(np.abs(out[:3]) * 0.01 <= TOOL.max_displacement + 1e-12)
        moved = hand + out[:3] * 0.01
        assert np.all(moved <= HIGH + MARGIN + 1e-9) and np.all(moved >= LOW - MARGIN - 1e-9)
        target = target + out[:3] * 0.01
        assert np.all(target <= HIGH + 1e-9) and np.all(target >= LOW - 1e-9), target
        assert TOOL.gripper_low <= out[3] <= TOOL.gripper_high
    gripper = out[3]
    assert ros_node.call(estop, SetBool.Request(data=True)).success
    for _ in range(5):
        out, _ = send((-1.0, -1.0, -1.0, -1.0))
        assert not np.any(out[:3]) and out[3] == gripper, 'a latched e-stop sends only stops'
