"""The peg cell's reset and verification on a real graph: the sim_cell node with the peg task, the verify
node and the reset node. A reset places a seeded layout (in and out of distribution) through the cell's 3-D
place_objects, the verify service locates peg and box from the calibrated views (CameraInfo + /tf_static in
frame `world`) and the reset compares them with the layout in metres; the placed box reaches the verify
node's judge on /tf_static (`placed/box`). The peg lying on the table is never judged a success, and a
camera that is not asked never lets a lone view decide."""
import math
import os

import pytest
from enpire_common import names
from enpire_common.action_client import ActionClient
from enpire_common.cell_clock import sim_time_ros_args

from enpire_interfaces.action import ResetCell
from enpire_interfaces.msg import FusedVerdict
from enpire_interfaces.srv import Verify

os.environ.setdefault('MUJOCO_GL', 'egl')
pytestmark = pytest.mark.graph
NS = '/peg_v'
CAMERAS = ('mouth_left', 'mouth_right', 'behind_arm')
CONFIG = ('reset:\n  max_tries_limit: 5\n  frame_timeout_s: 10.0\n  service_timeout_s: 30.0\n'
          '  save_evidence: false\n')


@pytest.fixture
def peg_cell(node_processes, ros_node, tmp_path):
    env = {'MUJOCO_GL': os.environ['MUJOCO_GL']}
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:={NS}',
                                 '-p', 'task:=peg_insertion'], env=env)
    node_processes.start('verify', ['-m', 'enpire_env.verify_node', '--ros-args', '-r', f'__ns:={NS}',
                                    *sim_time_ros_args(NS), '-p', 'task:=peg_insertion',
                                    '-p', f"cameras:=[{','.join(CAMERAS)}]", '-p', 'max_frame_age:=5.0',
                                    '-p', f'evidence_dir:={tmp_path}'], env=env)
    config = tmp_path / 'reset.yaml'
    config.write_text(CONFIG)
    node_processes.start('reset', ['-m', 'enpire_env.reset_node', '--ros-args', '-r', f'__ns:={NS}',
                                   *sim_time_ros_args(NS), '-p', f'config_file:={config}'], env=env)
    client = ActionClient(ros_node.node, ResetCell, names.cell_name(NS, names.RESET))
    assert client.wait_for_server(timeout_sec=60), 'reset action never appeared'
    # a fresh server may lose the first goal (a discovery race): a refused one proves the paths first
    ros_node.wait_taking_goals(client, ResetCell.Goal(task='peg_insertion', seed=0, max_tries=0))
    verify = ros_node.node.create_client(Verify, names.cell_name(NS, names.VERIFY))
    assert verify.wait_for_service(timeout_sec=60), 'no verify service'
    return client, verify


def reset(ros_node, client, seed, distribution):
    goal = ResetCell.Goal(task='peg_insertion', seed=seed, distribution=distribution, max_tries=2)
    handle = ros_node.wait_future(client.send_goal_async(goal), timeout=60)
    assert handle.accepted
    return ros_node.wait_future(handle.get_result_async(), timeout=180).result


def test_a_3d_reset_is_located_from_the_views_and_its_box_reaches_the_judge(peg_cell, ros_node,
                                                                           node_processes):
    client, verify = peg_cell
    from enpire_task_peg.distributions import sample_initial_state
    for seed, distribution in ((3, 'metaworld'), (4, 'wide')):
        result = reset(ros_node, client, seed, distribution)
        assert result.success, (result.failure_reason, node_processes.log('reset')[-3000:],
                                node_processes.log('verify')[-2000:])
        errors = dict(zip(result.error_names, result.errors, strict=True))
        assert set(errors) == {'peg_position_m', 'box_position_m'}
        assert all(value <= 0.01 for value in errors.values()), errors
        target = [v for o in sample_initial_state(seed, distribution).scene() for v in o.pose]
        assert list(result.target_state) == pytest.approx(target)
        assert math.dist(result.achieved_state[3:], target[3:]) == pytest.approx(errors['box_position_m'])

    def judged():
        res = ros_node.call(verify, Verify.Request(task='peg_insertion'), 60)
        waiting = ('no_calibration', 'no_layout', 'no_frame')
        if not res.ok or any(c.reason in waiting for c in res.verdict.cameras):
            return None     # the calibration, the placed box or the first frames not heard yet
        return res
    res = ros_node.wait_for(judged, 60, 'a verdict with every camera calibrated and the placed box')
    assert [c.camera for c in res.verdict.cameras] == list(CAMERAS)
    assert res.verdict.state != FusedVerdict.SUCCESS and not res.verdict.success, res.verdict   # on the table
    assert res.verdict.rule == 'peg_3d' and list(res.scene) == []       # located only when asked
    lone = ros_node.call(verify, Verify.Request(task='peg_insertion', cameras=['mouth_left'],
                                                locate_scene=True), 60)
    assert lone.ok and not lone.verdict.success
    assert list(lone.scene) == [] and 'need 2' in lone.scene_problem
