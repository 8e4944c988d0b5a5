"""The interfaces work across two real processes: a service call, an action with feedback, a cancel."""
from pathlib import Path

import pytest
from rclpy.action import ActionClient

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import FusedVerdict
from enpire_interfaces.srv import Verify

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
