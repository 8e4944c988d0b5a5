"""The reset action on a real graph: malformed goals, retries and failures against fakes played by the test,
and an end-to-end reset against the simulated cell and the verify node."""
import math
import threading
import time

import pytest
from enpire_common import names
from enpire_common.action_client import ActionClient
from enpire_common.cell_clock import sim_time_ros_args
from enpire_task_pusht.distributions import sample_initial_state
from rclpy.callback_groups import ReentrantCallbackGroup

from enpire_interfaces.action import ResetCell
from enpire_interfaces.msg import CameraVerdict, CellState, FusedVerdict
from enpire_interfaces.srv import PlaceObjects, Verify

pytestmark = pytest.mark.graph
NS = '/cell_0'
CONFIG = ('reset:\n  tolerances: {{position_px: 5.0}}\n  max_tries_limit: 5\n'
          '  frame_timeout_s: {timeout}\n  service_timeout_s: 5.0\n  save_evidence: {evidence}\n'
          '{extra}')


def start_reset(node_processes, tmp_path, timeout=1.0, evidence='false', extra=''):
    config = tmp_path / 'reset.yaml'
    config.write_text(CONFIG.format(timeout=timeout, evidence=evidence, extra=extra))
    return node_processes.start('reset', ['-m', 'enpire_env.reset_node', '--ros-args', '-r', f'__ns:={NS}',
                                          '-p', f'config_file:={config}'])


# A goal every reset server refuses (never placed): proves the goal and result paths of a fresh server.
REFUSED = ResetCell.Goal(task='pusht', seed=0, distribution='in_distribution', max_tries=0)


def run_goal(ros_node, client, task='pusht', seed=3, distribution='in_distribution', max_tries=2, timeout=30):
    feedback = []
    goal = ResetCell.Goal(task=task, seed=seed, distribution=distribution, max_tries=max_tries)
    handle = ros_node.wait_future(client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(
        (f.feedback.phase, f.feedback.try_number))))
    assert handle.accepted
    outcome = ros_node.wait_future(handle.get_result_async(), timeout=timeout)
    return outcome.status, outcome.result, feedback


class FakeCell:
    """place_objects + verify + cell_state played by the test; verify sees the placed block plus `offset`."""

    def __init__(self, ros_node):
        self.ros = ros_node
        node = ros_node.node
        group = ReentrantCallbackGroup()
        self.lock = threading.Lock()
        self.block = None
        self.tick = 0
        self.offset = (0.0, 0.0, 0.0)
        self.place_ok = True
        self.verify_ok = True
        self.fresh = True
        self.placements = 0
        self.state_pub = node.create_publisher(CellState, names.cell_name(NS, names.CELL_STATE), 10)
        node.create_service(PlaceObjects, names.cell_name(NS, names.PLACE_OBJECTS), self.on_place,
                            callback_group=group)
        node.create_service(Verify, names.cell_name(NS, names.VERIFY), self.on_verify, callback_group=group)

    def on_place(self, request, response):
        with self.lock:
            self.placements += 1
            if not self.place_ok:
                response.success, response.message = False, 'placement refused: test'
                return response
            [obj] = request.objects
            assert obj.name == 'block' and len(request.tool) == 2
            self.block = tuple(obj.pose)
            self.tick += 1
            state = CellState(step=0)
            state.header.stamp.sec = 1000 + self.tick
            self.state_pub.publish(state)
        response.success, response.message = True, 'placed'
        return response

    def on_verify(self, request, response):
        with self.lock:
            if not self.verify_ok:
                response.ok, response.error = False, 'unknown camera(s) for test'
                return response
            response.ok = True
            verdict = FusedVerdict(task=request.task, state=FusedVerdict.FAILURE)
            for cam in ('top', 'side'):
                c = CameraVerdict(camera=cam, state=CameraVerdict.FAILURE)
                c.frame_stamp.sec = 1000 + (self.tick if self.fresh else 0)
                if self.block is not None:
                    b = [v + o for v, o in zip(self.block, self.offset, strict=True)]
                    c.estimate = b
                verdict.cameras.append(c)
            wrist = CameraVerdict(camera='wrist', state=CameraVerdict.UNCERTAIN, reason='occluded')
            verdict.cameras.append(wrist)
            verdict.evidence_path = '/tmp/evidence/test' if request.save_evidence else ''
            response.verdict = verdict
        return response


def test_reset_node_against_fakes(node_processes, ros_node, tmp_path):
    start_reset(node_processes, tmp_path, timeout=0.5, evidence='true')
    cell = FakeCell(ros_node)
    client = ActionClient(ros_node.node, ResetCell, names.cell_name(NS, names.RESET))
    assert client.wait_for_server(timeout_sec=20), 'reset action never appeared'
    ros_node.wait_taking_goals(client, REFUSED)     # a fresh server: the first goal may be lost (see it)

    # malformed goals: a clear reason, nothing placed
    malformed = [({'task': 'fold_laundry'},
                  "unknown task 'fold_laundry'; known tasks: peg_insertion, pusht"),
                 ({'distribution': 'weird'}, "unknown pusht distribution 'weird'"),
                 ({'max_tries': 0}, 'max_tries must be'), ({'max_tries': -3}, 'max_tries must be'),
                 ({'max_tries': 2**31 - 1}, 'max_tries must be')]
    for kwargs, needle in malformed:
        status, result, _ = run_goal(ros_node, client, **kwargs)
        assert status == 6 and not result.success and needle in result.failure_reason, (kwargs, result)
    assert cell.placements == 0

    # a good reset
    status, result, feedback = run_goal(ros_node, client, seed=11)
    target = sample_initial_state(11, 'in_distribution')
    assert status == 4 and result.success and result.tries_used == 1, result.failure_reason
    assert tuple(result.target_state) == target.block and tuple(result.target_tool) == target.agent
    assert tuple(result.achieved_state) == pytest.approx(target.block)
    assert list(result.error_names) == ['position_px', 'angle_rad']
    assert result.errors[0] == pytest.approx(0.0, abs=1e-6)
    assert result.evidence_path == '/tmp/evidence/test'
    assert feedback[:3] == [('placing', 1), ('settling', 1), ('verifying', 1)]

    # seen out of tolerance: retried, then failed with the errors
    cell.offset = (8.0, 0.0, 0.0)
    status, result, feedback = run_goal(ros_node, client, max_tries=2)
    assert status == 6 and not result.success and result.tries_used == 2
    assert result.errors[0] == pytest.approx(8.0)
    assert 'errors position_px 8, angle_rad 0; beyond the tolerance: position_px 5' in result.failure_reason
    assert ('retrying', 2) in feedback
    cell.offset = (0.0, 0.0, math.radians(7.0))
    status, result, _ = run_goal(ros_node, client, max_tries=1)
    assert not result.success and math.degrees(result.errors[1]) == pytest.approx(7.0)

    # cannot be verified: stale frames, verify refusing, placement refused -> failed reset
    cell.offset, cell.fresh = (0.0, 0.0, 0.0), False
    status, result, _ = run_goal(ros_node, client, max_tries=1)
    assert not result.success and 'could not verify' in result.failure_reason
    assert 'frame older than the placement' in result.failure_reason
    assert 'wrist: occluded' in result.failure_reason
    cell.fresh, cell.verify_ok = True, False
    status, result, _ = run_goal(ros_node, client, max_tries=1)
    assert not result.success and 'verify refused' in result.failure_reason
    cell.verify_ok, cell.place_ok = True, False
    status, result, _ = run_goal(ros_node, client, max_tries=2)
    assert not result.success and 'placement failed: placement refused' in result.failure_reason
    cell.place_ok = True
    status, result, _ = run_goal(ros_node, client, seed=12)
    assert result.success, 'the node is still up and works after every failure'
    assert node_processes.procs[0][1].poll() is None


def test_reset_end_to_end_with_sim_and_verify(node_processes, ros_node, tmp_path):
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:={NS}',
                                 '-p', 'task:=pusht'])
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:={NS}',
                                    *sim_time_ros_args(NS), '-p', 'task:=pusht'])
    start_reset(node_processes, tmp_path, timeout=5.0, evidence='true', extra='  pose_cameras: [top]\n')
    client = ActionClient(ros_node.node, ResetCell, names.cell_name(NS, names.RESET))
    assert client.wait_for_server(timeout_sec=30), 'reset action never appeared'
    ros_node.wait_taking_goals(client, REFUSED)
    for seed, distribution, idle in [(5, 'in_distribution', 0.0), (6, 'out_of_distribution', 1.5)]:
        time.sleep(idle)   # a reset after the cell idled (as-fast: sim time stands still meanwhile)
        status, result, feedback = run_goal(ros_node, client, seed=seed, distribution=distribution,
                                            max_tries=2, timeout=60)
        assert result.success, (result.failure_reason, node_processes.log('reset')[-2000:])
        assert result.errors[0] <= 5.0 and math.degrees(result.errors[1]) <= 5.0
        assert result.evidence_path
