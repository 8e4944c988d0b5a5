"""The interfaces work across two real processes: a service call, an action with feedback, a cancel, and the
generic vectors (command, state, ground truth, scene, camera estimate) crossing bit for bit."""
import json
import struct
from pathlib import Path

import pytest
from enpire_common.action_client import ActionClient

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import CellState, Command, FusedVerdict, GroundTruth, ObjectPose
from enpire_interfaces.srv import PlaceObjects, Verify

SERVER = str(Path(__file__).with_name('interface_echo_server.py'))
pytestmark = pytest.mark.graph


@pytest.fixture
def echo_server(node_processes):
    return node_processes.start('echo_server', [SERVER])


def test_verify_and_run_trial_round_trip(echo_server, ros_node):
    node = ros_node.node
    verify = node.create_client(Verify, '/cell_0/verify')
    assert verify.wait_for_service(timeout_sec=15), 'verify service never appeared'
    response = ros_node.call(verify, Verify.Request(task='pusht', cameras=['top', 'wrist']))
    assert response.ok and response.verdict.state == FusedVerdict.SUCCESS
    assert [c.camera for c in response.verdict.cameras] == ['top', 'wrist']
    assert [list(c.estimate) for c in response.verdict.cameras] == [[0.0, -0.0, 1e-300], [1.0, -0.0, 1e-300]]
    bad = ros_node.call(verify, Verify.Request(task='fold_laundry'))
    assert not bad.ok and 'fold_laundry' in bad.error

    client = ActionClient(node, RunTrial, '/cell_0/run_trial')
    assert client.wait_for_server(timeout_sec=15)
    feedback = []
    goal = RunTrial.Goal(trial_id='t1', task='pusht', attempts=2, steps_per_attempt=3)
    handle = ros_node.wait_future(client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(
        f.feedback)))
    assert handle.accepted
    result = ros_node.wait_future(handle.get_result_async()).result
    assert result.success and result.attempts_used == 2 and result.bag_path == '/bags/t1'
    assert list(result.attempt_scores) == pytest.approx([0.1, 0.2])
    assert [(f.attempt, f.step) for f in feedback] == [(a, s) for a in (1, 2) for s in range(3)]

    rejected = ros_node.wait_future(client.send_goal_async(RunTrial.Goal(attempts=0)))
    assert not rejected.accepted


def test_cancel_stops_a_running_trial(echo_server, ros_node):
    client = ActionClient(ros_node.node, RunTrial, '/cell_0/run_trial')
    assert client.wait_for_server(timeout_sec=15)
    feedback = []
    handle = ros_node.wait_future(client.send_goal_async(
        RunTrial.Goal(attempts=1, steps_per_attempt=10_000), feedback_callback=feedback.append))
    ros_node.wait_for(lambda: len(feedback) >= 3, what='feedback')
    ros_node.wait_future(handle.cancel_goal_async())
    outcome = ros_node.wait_future(handle.get_result_async())
    assert outcome.status == 5  # GoalStatus.STATUS_CANCELED
    assert outcome.result.failure_reason == 'canceled'


ODD = [0.1, -0.0, 5e-324, 1e308, -2.5e-310, 123456.789, 7.0]   # signed zero, subnormals, extremes


def bits(values):
    return [struct.pack('<d', float(v)) for v in values]


def test_generic_vectors_cross_processes_bit_for_bit(echo_server, ros_node):
    node = ros_node.node
    place = node.create_client(PlaceObjects, '/cell_0/mock_hardware/place_objects')
    assert place.wait_for_service(timeout_sec=15), 'place_objects never appeared'
    objects = [ObjectPose(name='block', pose=ODD[:3]), ObjectPose(name='cup', pose=ODD)]
    request = PlaceObjects.Request(objects=objects, tool=ODD[3:5])
    echoed = json.loads(ros_node.call(place, request).message)
    assert echoed == {'objects': [['block', [v.hex() for v in ODD[:3]]], ['cup', [v.hex() for v in ODD]]],
                      'tool': [v.hex() for v in ODD[3:5]]}

    states, truths = [], []
    node.create_subscription(CellState, '/cell_0/cell_state', states.append, 10)
    node.create_subscription(GroundTruth, '/cell_0/privileged/ground_truth', truths.append, 10)
    pub = node.create_publisher(Command, '/cell_0/cmd/target', 10)
    ros_node.wait_for(lambda: pub.get_subscription_count() > 0, 15, 'the echo cell to subscribe')

    def echoed_state():
        command = Command(values=ODD)
        command.header.frame_id = 'table'
        pub.publish(command)
        return states and truths
    ros_node.wait_for(echoed_state, 15, 'the cell state answering a command')
    state, truth = states[-1], truths[-1]
    assert state.header.frame_id == 'table' and list(state.joints.name) == ['j0']
    assert bits(state.commanded) == bits(ODD) and bits(state.joints.position) == bits(ODD[:1])
    assert len(state.task_state) == 0
    assert bits(truth.task_state) == bits(ODD) and bits(truth.tool) == bits(ODD[:2])
    assert (truth.score, truth.success) == (0.5, False)
