"""The run_trial action on the simulated cell (sim + safety + verify + reset + trial server, as-fast)."""
from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import pytest
from rclpy.action import ActionClient

from enpire_env import names
from enpire_interfaces.action import RunTrial
from enpire_rollout.trial_bag import bag_custom_data, list_trials
from tests.graph_harness import NodeProcesses, RosTestNode

pytestmark = pytest.mark.graph
NS = 'cell_0'

MOVER = '''
import numpy as np

class Policy:
    def reset(self, context):
        self.failures = []

    def act(self, observation):
        x, y = observation.agent_position
        return (float(np.clip(x + 5.0, 20, 490)), float(y))

    def on_attempt_failed(self, report):
        self.failures.append(report.score)
'''
HANG = '''
class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        while True:
            pass

    def on_attempt_failed(self, report):
        pass
'''


def start_trial_server(procs, bag_dir):
    return procs.start('trial_server', ['-m', 'enpire_rollout.trial_server_node', '--ros-args', '-r',
                                        f'__ns:=/{NS}', '-p', f'bag_dir:={bag_dir}',
                                        '-p', 'hang_timeout_s:=1.0', '-p', 'save_evidence:=false'])


@pytest.fixture(scope='module')
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cell')
    procs = NodeProcesses(tmp / 'logs')
    ns = ['--ros-args', '-r', f'__ns:=/{NS}']
    procs.start('sim', ['-m', 'enpire_sim.sim_cell_node', *ns, '-p', 'pacing:=as_fast'])
    procs.start('safety', ['-m', 'enpire_env.safety_node', *ns, '-p', 'pacing:=as_fast'])
    procs.start('verify', ['-m', 'enpire_env.verify_node', *ns])
    procs.start('reset', ['-m', 'enpire_env.reset_node', *ns])
    server = start_trial_server(procs, tmp / 'bags')
    ros = RosTestNode('rollout_test_client')
    client = ActionClient(ros.node, RunTrial, names.cell_name(NS, names.RUN_TRIAL))
    assert client.wait_for_server(timeout_sec=30), 'run_trial never appeared'
    yield {'procs': procs, 'ros': ros, 'client': client, 'tmp': tmp, 'server': server}
    ros.close()
    procs.stop_all()


def policy_file(tmp, name, source):
    path = tmp / name
    path.write_text(source)
    return str(path), hashlib.sha256(source.encode()).hexdigest()


def goal(tmp, source=MOVER, name='mover.py', **kw):
    path, sha = policy_file(tmp, name, source)
    values = dict(task='pusht', policy_path=path, policy_sha256=sha, seed=3, distribution='in_distribution',
                  attempts=2, steps_per_attempt=15, time_budget_s=0.0, record=True)
    values.update(kw)
    return RunTrial.Goal(**values)


def run(cell, g, timeout=90, cancel_after_step=None):
    ros, client = cell['ros'], cell['client']
    feedback = []
    handle = ros.wait_future(
        client.send_goal_async(g, feedback_callback=lambda f: feedback.append(f.feedback)),
        timeout=30, what='goal accepted')
    assert handle.accepted
    if cancel_after_step is not None:
        ros.wait_for(lambda: any(f.step >= cancel_after_step for f in feedback), timeout=60, what='steps')
        ros.wait_future(handle.cancel_goal_async())
    res = ros.wait_future(handle.get_result_async(), timeout=timeout, what='trial result')
    return res.status, res.result, feedback


def test_full_trial_with_two_attempts_recorded(cell):
    status, result, feedback = run(cell, goal(cell['tmp']))
    log = cell['procs'].log('trial_server')[-3000:]
    assert result.failure_reason == '', (result.failure_reason, log)
    assert result.attempts_used == 2 and not result.success
    assert len(result.attempt_scores) == 2 and len(result.attempt_reasons) == 2
    assert result.reset_s > 0 and result.execute_s > 0 and result.verify_s > 0
    assert {f.phase for f in feedback} >= {'resetting', 'executing', 'verifying'}
    from rosbags.rosbag2 import Reader
    with Reader(result.bag_path) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/cell_0/cmd/policy_target'] >= 30 and counts['/cell_0/cmd/target'] >= 30
    assert counts['/cell_0/cell_state'] >= 30 and counts['/cell_0/trial/verdicts'] == 2
    assert counts['/cell_0/cameras/top/image_raw'] >= 30 and counts['/trial/metadata'] == 1
    assert counts['/cell_0/trial_events'] >= 5
    assert bag_custom_data(result.bag_path)['enpire.status'] == 'finished'


def test_invalid_goals_are_refused_with_reasons(cell):
    tmp = cell['tmp']
    for g, needle in [(goal(tmp, task='stack'), 'unknown task'), (goal(tmp, attempts=0), 'attempts'),
                      (goal(tmp, policy_sha256='0' * 64), 'sha256 mismatch'),
                      (goal(tmp, policy_path='/nonexistent.py'), 'not found'),
                      (goal(tmp, time_budget_s=float('nan')), 'time_budget_s')]:
        status, result, _ = run(cell, g)
        assert needle in result.failure_reason and not result.success


def test_hostile_policy_through_the_server(cell):
    status, result, _ = run(cell, goal(cell['tmp'], HANG, 'hang.py', steps_per_attempt=10))
    assert result.failure_reason == '' and result.attempts_used == 2
    assert all('hang' in r for r in result.attempt_reasons), result.attempt_reasons
    refused = goal(cell['tmp'], 'import socket\n' + MOVER, 'sock.py', attempts=1)
    status, result, _ = run(cell, refused)
    assert 'static check' in result.attempt_reasons[0] and 'import socket' in result.attempt_reasons[0]


def test_cancel_leaves_the_bag_closed(cell):
    status, result, _ = run(cell, goal(cell['tmp'], steps_per_attempt=400, attempts=1), cancel_after_step=10)
    assert result.failure_reason == 'cancelled'
    assert bag_custom_data(result.bag_path)['enpire.status'] == 'cancelled'


def test_audit_and_replay_of_a_trial_bag(cell, tmp_path):
    from enpire_interfaces.msg import TrialEvent
    from enpire_rollout.audit import audit_bag
    from enpire_rollout.replay import replay

    status, result, _ = run(cell, goal(cell['tmp'], attempts=1, steps_per_attempt=10))
    assert result.failure_reason == '', result.failure_reason
    rows, videos = audit_bag(result.bag_path, tmp_path)
    assert len(rows) == 1 and rows[0].agree, rows
    assert set(videos) == {'top', 'oblique', 'wrist'}
    assert all(Path(v).stat().st_size > 0 for v in videos.values())

    ros = cell['ros']
    got = []
    ros.node.create_subscription(TrialEvent, '/cell_0/trial_events', got.append, 100)
    time.sleep(1.0)
    counts = replay(result.bag_path, rate=0.0, topics=['/cell_0/trial_events'], node=ros.node)
    ros.wait_for(lambda: len(got) >= counts['/cell_0/trial_events'] > 0, timeout=10, what='replayed events')


# Last: after a SIGKILL the dead server lingers in discovery for a while.
def test_killed_trial_server_leaves_an_aborted_bag(cell):
    procs, tmp = cell['procs'], cell['tmp']
    ros, client = cell['ros'], cell['client']
    feedback = []
    handle = ros.wait_future(client.send_goal_async(goal(tmp, steps_per_attempt=2000, attempts=1),
                                                    feedback_callback=lambda f: feedback.append(f.feedback)))
    ros.wait_for(lambda: any(f.step >= 40 for f in feedback), timeout=60, what='40 steps')
    time.sleep(0.7)                                   # past one flush period
    procs.kill(cell['server'], signal.SIGKILL)
    journal = list((tmp / 'bags' / '.journal').glob('*.json'))
    assert len(journal) == 1
    trial_id = journal[0].stem
    cell['server'] = start_trial_server(procs, tmp / 'bags')
    ros.wait_for(lambda: any(t['trial_id'] == trial_id for t in list_trials(tmp / 'bags')), timeout=30,
                 what='restart recorded the aborted trial')
    record = next(t for t in list_trials(tmp / 'bags') if t['trial_id'] == trial_id)
    assert record['status'] == 'aborted' and record['summary']['messages'] > 40
    assert bag_custom_data(record['bag_path'])['enpire.status'] == 'aborted'
    assert handle is not None
    assert client.wait_for_server(timeout_sec=30)
