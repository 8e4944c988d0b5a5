"""FleetClient.close(): a fleet run stopped while trials are on the cells cancels their goals, returns within
a bounded time and leaves no worker thread behind; destroy() then takes the action clients off the node
(left to the garbage collector, their fini runs after the context shut down, where Fast DDS can deadlock)."""
from __future__ import annotations

import threading
import time

import pytest
import rclpy
from enpire_common import names

from enpire_interfaces.action import RunTrial
from enpire_rollout.fleet_client import FleetClient, TrialOutcome, TrialRequest
from enpire_rollout.trial_bag import bag_custom_data

POLICY = '''
class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        return (250.0, 250.0)

    def on_attempt_failed(self, report):
        pass
'''


def fleet_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith('fleet-worker')]


def run_in_background(fleet: FleetClient, requests: list[TrialRequest]) -> tuple[threading.Thread, list]:
    result: list = []
    caller = threading.Thread(target=lambda: result.append(fleet.run_trials(requests)), daemon=True)
    caller.start()
    return caller, result


def test_close_ends_a_run_waiting_for_a_server_at_once(ros_node, tmp_path):
    """No run_trial server: the trial waits for one (up to 10 minutes here); close() ends the wait."""
    policy = tmp_path / 'p.py'
    policy.write_text(POLICY)
    fleet = FleetClient(ros_node.node, ['nowhere_0', 'nowhere_1'], server_timeout_s=600.0)
    caller, result = run_in_background(
        fleet, [TrialRequest(task='pusht', policy_path=str(policy), seed=s) for s in range(3)])
    ros_node.wait_for(lambda: len(fleet_workers()) == 2, 30.0, 'both workers waiting for a server')
    t0 = time.monotonic()
    assert fleet.close(timeout_s=30.0)
    assert time.monotonic() - t0 < 10.0
    caller.join(10.0)
    assert not caller.is_alive() and not fleet_workers()
    outcomes = result[0]
    assert [o.seed for o in outcomes] == [0, 1, 2]
    assert all(o.failure_reason == 'not started: the fleet client closed' and not o.refused
               and not o.accepted for o in outcomes), [o.failure_reason for o in outcomes]
    with pytest.raises(RuntimeError, match='closed'):
        fleet.run_trials([TrialRequest(task='pusht', policy_path=str(policy), seed=9)])


@pytest.mark.graph
def test_close_cancels_the_trial_on_the_cell_and_returns(sim_cells, ros_node, tmp_path):
    """A real-time cell running a 60 s (cell time) recorded trial: close() cancels it on the cell, the call
    returns with the cell's cancelled result and its bag, and nothing of the client is left."""
    sim_cells(['cell_0'], bag_dir=lambda cell: tmp_path / 'bags' / cell, pacing='real_time')
    policy = tmp_path / 'p.py'
    policy.write_text(POLICY)
    steps = []
    feedback = ros_node.node.create_subscription(
        RunTrial.Impl.FeedbackMessage, names.cell_name('cell_0', names.RUN_TRIAL) + '/_action/feedback',
        lambda m: steps.append((m.feedback.phase, m.feedback.step)), 10)
    fleet = FleetClient(ros_node.node, ['cell_0'], server_timeout_s=60.0, goal_answer_timeout_s=60.0,
                        cancel_timeout_s=30.0)
    caller, result = run_in_background(
        fleet, [TrialRequest(task='pusht', policy_path=str(policy), seed=3, attempts=1,
                             steps_per_attempt=600, record=True)])
    ros_node.wait_for(lambda: any(phase == 'executing' and step >= 5 for phase, step in steps), 120.0,
                      'the trial executing on the cell')
    t0 = time.monotonic()
    assert fleet.close(timeout_s=90.0)
    closed_s = time.monotonic() - t0
    caller.join(10.0)
    assert not caller.is_alive() and not fleet_workers()
    assert closed_s < 60.0, closed_s         # the trial had more than 50 s of cell time to go
    [outcome] = result[0]
    assert outcome.accepted and outcome.failure_reason == 'cancelled', outcome.failure_reason
    assert max(step for phase, step in steps if phase == 'executing') < 600
    assert bag_custom_data(outcome.bag_path)['enpire.status'] == 'cancelled'
    ros_node.node.destroy_subscription(feedback)


def test_close_is_bounded_by_a_call_that_will_not_end_and_destroy_takes_the_clients(tmp_path):
    """close() is bounded even when a call cannot return (a stuck progress callback) and says so; destroy()
    takes the action clients off the node (no executor spins it here)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('fleet_close_probe', context=context)
    release = threading.Event()
    try:
        fleet = FleetClient(node, ['cell_0'])
        fleet.run_one = lambda cell, request: TrialOutcome(seed=request.seed, cell=cell, accepted=True)
        policy = tmp_path / 'p.py'
        policy.write_text(POLICY)
        entered = threading.Event()

        def stuck(outcome, done, total):
            entered.set()
            release.wait(30)
        caller = threading.Thread(target=lambda: fleet.run_trials(
            [TrialRequest(task='pusht', policy_path=str(policy), seed=0)], progress=stuck), daemon=True)
        caller.start()
        assert entered.wait(10)
        t0 = time.monotonic()
        assert not fleet.close(timeout_s=1.0)
        assert time.monotonic() - t0 < 5.0
        release.set()
        caller.join(10)
        assert fleet.close(timeout_s=10.0)
        [client] = fleet.clients.values()
        assert client in list(node.waitables)
        fleet.destroy()
        assert fleet.clients == {} and client not in list(node.waitables)
    finally:
        release.set()
        node.destroy_node()
        rclpy.shutdown(context=context)
