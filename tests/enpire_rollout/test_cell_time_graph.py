"""A trial on its cell's clock, on a real graph (the cell from the bringup file: sim time, lockstep):
the time budget counts cell time (a policy slow in wall time does not lose it), every record of the bag
lies on the cell's clock, and a cell whose clock stops ends the trial with that reason."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from enpire_common import names
from enpire_common.action_client import ActionClient
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosgraph_msgs.msg import Clock

from enpire_interfaces.action import RunTrial
from tests.enpire_rollout.test_trial_server_graph import goal, policy_source, run
from tests.graph_harness import NodeProcesses, RosTestNode, start_cell_nodes

pytestmark = pytest.mark.graph
NS = 'cell_time'
STALL_S = 5.0


# About 0.1 to 0.4 s of CPython per act() on these machines (more under load): no clock in a sandbox.
SLOW = policy_source('''
total = 0
for i in range(4_000_000):
    total += i * i
x, y = observation.agent_position
return (float(x), float(y))''')


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@pytest.fixture(scope='module')
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cell_time')
    procs = NodeProcesses(tmp / 'logs')
    parameters = {'recorder': {'record_camera_period_s': 0.0}, 'trial_server': {
        'verify_every_n_steps': 0, 'step_deadline_s': 5.0, 'hang_timeout_s': 10.0,
        'clock_stall_timeout_s': STALL_S}}
    started = start_cell_nodes(procs, NS, bag_dir=tmp / 'bags', parameters=parameters,
                               only={'sim', 'safety', 'verify', 'reset', 'recorder', 'trial_server'},
                               label=lambda node: node.name)
    ros = RosTestNode('cell_time_test_client')
    try:       # the nodes stop also when the set-up fails
        times, lock = [], threading.Lock()

        def keep(msg: Clock) -> None:
            with lock:
                times.append(_ns(msg.clock))
        ros.node.create_subscription(Clock, names.cell_name(NS, names.CLOCK), keep, 100)
        client = ActionClient(ros.node, RunTrial, names.cell_name(NS, names.RUN_TRIAL))
        assert client.wait_for_server(timeout_sec=60), 'run_trial never appeared'
        ros.wait_for(lambda: times, 30, 'the cell clock')

        ros.wait_taking_goals(client, goal(tmp, attempts=0))

        def clock_now() -> int:
            with lock:
                return times[-1]
        yield {'procs': procs, 'ros': ros, 'client': client, 'tmp': tmp, 'clock': clock_now,
               'started': started, 'first_clock': times[0]}
    finally:
        ros.close()
        procs.stop_all()


@pytest.fixture(scope='module')
def slow_trial(cell):
    """30 steps of a policy that computes 0.2 s or more per step (4M loop turns, even on a fast machine)
    against a 4 s budget: 3 s of cell time,
    more than 4 s of wall time."""
    before = cell['clock']()
    wall0 = time.monotonic()
    _, result, _ = run(cell, goal(cell['tmp'], source=SLOW, name='slow.py', attempts=1,
                                  steps_per_attempt=30, time_budget_s=4.0), timeout=300)
    wall = time.monotonic() - wall0
    cell['ros'].wait_for(lambda: cell['clock']() >= before, 10, 'the clock after the trial')
    return result, before, cell['clock'](), wall


def test_a_slow_policy_in_lockstep_does_not_lose_its_cell_time_budget(slow_trial):
    result, before, after, wall = slow_trial
    assert wall > 4.0, f'the trial took {wall:.1f} s of wall time: the test needs more than its budget'
    assert result.failure_reason == '', result.failure_reason
    assert result.attempts_used == 1 and len(result.attempt_scores) == 1
    # 30 steps, the reset's placement and the final hold: about 3.2 s of the cell's time.
    assert 3.0 <= (after - before) * 1e-9 < 4.0, (after - before) * 1e-9


def test_every_record_of_the_bag_lies_on_the_cells_clock(slow_trial, cell):
    result, before, after, _ = slow_trial
    # Lockstep sim time lags the wall clock here (it started at the wall time of start-up and runs at
    # 10 steps per sim second, slower than the wall): a record stamped from a wall clock would lie beyond
    # `after`.
    assert after < time.time_ns() - 2_000_000_000
    mcap_files = sorted(Path(result.bag_path).glob('*.mcap'))
    assert mcap_files, result.bag_path
    records = stamps = 0
    for path in mcap_files:
        with open(path, 'rb') as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for _schema, channel, message, msg in reader.iter_decoded_messages():
                records += 1
                assert before <= message.log_time <= after, (channel.topic, message.log_time - before)
                headers = [msg.header] if hasattr(msg, 'header') else \
                    [t.header for t in getattr(msg, 'transforms', [])]
                for header in headers:
                    stamps += 1
                    stamp = _ns(header.stamp)
                    # Captured stamps (a camera's calibration, latched poses) may predate the trial, never
                    # the cell's clock.
                    assert cell['first_clock'] <= stamp <= after, (channel.topic, stamp - before)
    assert records > 50 and stamps > 50, (records, stamps)


def test_a_cell_whose_clock_stops_ends_the_trial_with_that_reason(cell):
    ros, client = cell['ros'], cell['client']
    feedback = []
    handle = ros.wait_future(client.send_goal_async(
        goal(cell['tmp'], attempts=1, steps_per_attempt=5000, time_budget_s=0.0),
        feedback_callback=lambda f: feedback.append(f.feedback)), timeout=30, what='goal accepted')
    assert handle.accepted
    ros.wait_for(lambda: any(f.step >= 10 for f in feedback), 120, 'steps of the trial')
    cell['procs'].kill(cell['started']['sim'], signal.SIGKILL)      # the clock source is gone
    result = ros.wait_future(handle.get_result_async(), timeout=120, what='trial result').result
    assert f'cell clock stalled for {STALL_S:.0f} s' in result.failure_reason, result.failure_reason
    assert result.failure_reason.startswith('cell not responding')
