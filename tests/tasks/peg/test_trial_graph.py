"""Peg trials through the ROS cell: the bringup file's cell (sim_cell with task peg_insertion, safety, verify,
reset, recorder, trial server; one composed process) runs `run_trial` goals with the policy in its sandbox.

Metaworld's scripted expert (`enpire_task_peg.expert`, in the debug mode that gives it the live task state)
inserts the peg: the trial's fused verdict is SUCCESS and metaworld's own rule holds on the exact state of
the step it judged. The empty policy never lifts the peg: no attempt is judged SUCCESS, nor is it one by
metaworld's rule. The policy sees the hand and gripper opening (proprioception) and the scene the reset
located; attempts continue where the last one left the arm; one bag per trial."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from enpire_common import names
from enpire_common.action_client import ActionClient

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import FusedVerdict, GroundTruth, TrialEvent
from tests.graph_harness import RosTestNode

os.environ.setdefault('MUJOCO_GL', 'egl')
pytestmark = pytest.mark.graph
CELL = 'peg_0'
# Verified every second step (metaworld's window is not sticky: the expert pushes on through it);
# generous deadlines for a loaded machine (a missed deadline repeats the last displacement).
SERVER = {'verify_every_n_steps': 2, 'save_evidence': False, 'debug_ground_truth': True,
          'step_deadline_s': 2.0, 'hang_timeout_s': 10.0}

# The policy reports what it sees through the only channel it has: its actions. Attempt 1 moves the hand
# up 3 steps; every step's command carries nothing else. The recorded observation lines are checked from
# the commands' gripper entry: 1.0 when proprioception and scene have the contract's shapes, else -1.
SHAPES = '''
import numpy as np


class Policy:
    def reset(self, context):
        self.names = tuple(context.proprioception)

    def act(self, observation):
        ok = (observation.proprioception.shape == (4,) and set(observation.scene) == {'peg', 'box'}
              and all(np.shape(v) == (3,) for v in observation.scene.values())
              and np.allclose(observation.proprioception[:3], observation.agent_position)
              and 0.0 <= observation.proprioception[3] <= 1.0
              and self.names == ('hand_x', 'hand_y', 'hand_z', 'gripper_open'))
        return 0.0, 0.0, 1.0, 1.0 if ok else -1.0

    def on_attempt_failed(self, report):
        pass
'''


@pytest.fixture(scope='module')
def peg_cell(tmp_path_factory):
    from enpire_common.cells import simulated_cells
    from enpire_task_peg.cell_nodes import node_parameters

    tmp = tmp_path_factory.mktemp('peg_trials')
    with simulated_cells([CELL], tmp / 'logs', bag_dir=lambda _cell: tmp / 'bags', task='peg_insertion',
                         parameters=node_parameters(trial_server=SERVER)) as cells:
        assert cells.wait_ready(240.0), cells.problems()
        ros = RosTestNode('peg_trial_client')
        try:
            client = ActionClient(ros.node, RunTrial, names.cell_name(CELL, names.RUN_TRIAL))
            assert client.wait_for_server(timeout_sec=60), 'run_trial never appeared'
            ros.wait_taking_goals(client, RunTrial.Goal(task='peg_insertion', attempts=0))
            yield {'ros': ros, 'client': client, 'tmp': tmp, 'cells': cells}
        finally:
            ros.close()


class Heard:
    """The cell's verdicts, trial events and exact states (by stamp) while a trial runs."""

    def __init__(self, node):
        self.lock = threading.Lock()
        self.verdicts: list[FusedVerdict] = []
        self.events: list[TrialEvent] = []
        self.truth: dict[int, GroundTruth] = {}
        def sub(msg_type, name, callback, depth):
            return node.create_subscription(msg_type, names.cell_name(CELL, name), callback, depth)
        self.subs = [sub(FusedVerdict, names.TRIAL_VERDICTS, self._add(self.verdicts), 100),
                     sub(TrialEvent, names.TRIAL_EVENTS, self._add(self.events), 100),
                     sub(GroundTruth, names.GROUND_TRUTH, self._truth, 1000)]

    def _add(self, into):
        def add(msg):
            with self.lock:
                into.append(msg)
        return add

    def _truth(self, msg):
        with self.lock:
            self.truth[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = msg

    def truth_of(self, verdict: FusedVerdict) -> GroundTruth | None:
        with self.lock:
            return self.truth.get(verdict.header.stamp.sec * 10**9 + verdict.header.stamp.nanosec)


def run(cell, source: str, name: str, timeout: float = 600.0, **fields):
    ros, client, tmp = cell['ros'], cell['client'], cell['tmp']
    path = tmp / name
    path.write_text(source)
    goal = RunTrial.Goal(task='peg_insertion', policy_path=str(path),
                         policy_sha256=hashlib.sha256(source.encode()).hexdigest(), distribution='metaworld',
                         record=True, **fields)
    heard = Heard(ros.node)
    ros.wait_for(lambda: all(s.get_publisher_count() for s in heard.subs), 60, 'the cell\'s topics')

    def accepted():
        handle = ros.wait_future(client.send_goal_async(goal), timeout=30, what='goal answered')
        return handle if handle.accepted else None
    handle = ros.wait_for(accepted, 60, 'goal accepted')
    result = ros.wait_future(handle.get_result_async(), timeout=timeout, what='trial result').result
    for sub in heard.subs:
        ros.node.destroy_subscription(sub)
    return result, heard


def test_the_expert_inserts_the_peg_through_run_trial_and_the_verdict_agrees_with_metaworld(peg_cell):
    from enpire_task_peg.expert import EXPERT_POLICY
    result, heard = run(peg_cell, EXPERT_POLICY, 'expert.py', seed=1, attempts=1, steps_per_attempt=300)
    with heard.lock:
        rule = sorted((t.step, t.success) for t in heard.truth.values() if t.success)[:3]
    assert result.failure_reason == '' and result.success, (result.failure_reason, result.attempt_reasons,
                                                            'first steps in the window:', rule,
                                                            peg_cell['cells'].problems())
    assert Path(result.bag_path, 'metadata.yaml').exists(), result.bag_path     # the trial's one bag
    final = heard.verdicts[-1]
    assert final.state == FusedVerdict.SUCCESS and final.success, final
    truth = heard.truth_of(final)
    assert truth is not None, 'no exact state with the stamp of the judged frames'
    assert truth.success, (list(truth.task_state), truth.score)        # metaworld's rule on that step
    # the verdicts before it were not successes (the attempt ends at its first)
    assert not any(v.success for v in heard.verdicts[:-1])
    # `enpire audit` re-judges every recorded verdict from the bag alone (its frames, CameraInfo, camera
    # poses and placed layout on /tf_static) and agrees with each, the success included
    from enpire_rollout.audit import audit_bag
    rows, _ = audit_bag(result.bag_path, video=False)
    assert len(rows) >= 2 and rows[-1].audit_success, rows[-3:]
    assert all(r.agree for r in rows), [r for r in rows if not r.agree][:3]


def test_the_empty_policy_is_never_judged_a_success(peg_cell):
    from enpire_task_peg.empty_policy import EMPTY_POLICY
    result, heard = run(peg_cell, EMPTY_POLICY, 'empty.py', seed=2, attempts=2, steps_per_attempt=40)
    assert result.failure_reason == '', result.failure_reason
    assert not result.success and result.attempts_used == 2, list(result.attempt_reasons)
    assert heard.verdicts and not any(v.state == FusedVerdict.SUCCESS or v.success for v in heard.verdicts)
    for verdict in heard.verdicts:
        truth = heard.truth_of(verdict)
        assert truth is None or not truth.success
    assert Path(result.bag_path, 'metadata.yaml').exists(), result.bag_path


def test_the_policy_sees_proprioception_and_the_located_scene_and_attempts_continue(peg_cell):
    from enpire_task_peg.distributions import sample_initial_state
    result, heard = run(peg_cell, SHAPES, 'shapes.py', seed=5, attempts=2, steps_per_attempt=6)
    assert result.failure_reason == '' and result.attempts_used == 2, result.failure_reason
    reset = next(e for e in heard.events if e.event == 'reset_done')
    located = json.loads(reset.detail)['estimated_state']
    target = [v for o in sample_initial_state(5, 'metaworld').scene() for v in o.pose]
    assert np.max(np.abs(np.subtract(located, target))) <= 0.0101       # the reset's tolerance
    from rosbags.rosbag2 import Reader

    from enpire_rollout.trial_bag import typestore
    store = typestore()
    with Reader(result.bag_path) as reader:
        topics = (names.cell_name(CELL, names.POLICY_COMMAND), names.cell_name(CELL, names.CELL_STATE))
        wanted = [c for c in reader.connections if c.topic in topics]
        policy, states = [], []
        for c, _t, raw in reader.messages(connections=wanted):
            msg = store.deserialize_cdr(raw, c.msgtype)
            (policy if c.topic.endswith(names.POLICY_COMMAND) else states).append(msg)
    moves = [tuple(m.values) for m in policy if any(m.values[:3])]
    assert len(moves) == 12, moves                           # 2 attempts x 6 steps, the holds apart
    assert all(v[3] == 1.0 for v in moves), moves            # every observation had the contract's shapes
    # no reset between the attempts: the hand rose over both (12 cm commanded from where the reset put it)
    start_z = sample_initial_state(5, 'metaworld').tool()[2]
    assert states[-1].tool_pose.position.z - start_z > 0.06, (start_z, states[-1].tool_pose.position)
    assert all(list(s.joints.name) == ['gripper_open'] for s in states)
