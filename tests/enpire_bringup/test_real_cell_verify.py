"""A real cell judges frames with no simulator: camera drivers (rendered frames with lens distortion,
bgr8 + CameraInfo on driver topics), and the real-cell bringup's camera relay, camera calibration (files
made by `enpire calibrate` from a ChArUco board image) and verify node, started by `enpire up real_cell`.
No TableHomography is published anywhere."""
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from enpire_bringup.calibrate import save_intrinsics
from enpire_bringup.cli import main as enpire
from enpire_task_pusht import render as sim_cameras
from enpire_task_pusht.geometry import GOAL_POSE

from enpire_env.calibration.camera_model import Intrinsics, Pose
from enpire_env.calibration.charuco import BoardSpec, table_from_board
from enpire_sim.board_views import render_board

pytestmark = pytest.mark.graph
NS = '/cell_7'
HERE = Path(__file__).resolve().parent
BOARD = BoardSpec(squares_x=5, squares_y=4, square_m=0.08, marker_m=0.06, dictionary='DICT_4X4_50')
BOARD_AT = (0.056, 0.096)     # the 400 x 320 mm board in the middle of the 512 mm table


def driver_cameras() -> dict[str, tuple[str, Intrinsics, Pose]]:
    """camera -> (driver topic prefix, intrinsics with distortion, table_from_optical): ground truth."""
    top = Intrinsics.from_matrix(320, 240, [[300.0, 0, 161.3], [0, 300.0, 118.2], [0, 0, 1]],
                                 [-0.12, 0.03, 0.0005, -0.0004, 0.0])
    c, s = math.cos(math.radians(2.0)), math.sin(math.radians(2.0))   # mounted slightly off vertical
    top_pose = Pose(np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), np.array([0.258, 0.27, -0.75]))
    side_spec = sim_cameras.CameraSpec(name='oblique', kind='oblique', width=320, height=240)
    side_ideal, side_pose = sim_cameras.pinhole(side_spec, 0.001)
    side = Intrinsics.from_matrix(320, 240, side_ideal.matrix, [-0.08, 0.01, 0.0, 0.0, 0.0])
    return {'top': ('/top_camera/color', top, top_pose), 'oblique': ('/side_camera/color', side, side_pose)}


def calibrate_cameras(tmp_path: Path, cameras) -> Path:
    """What a lab does once: the drivers' factory intrinsics, then `enpire calibrate` on the board."""
    out = tmp_path / 'calibration'
    for name, (_, intrinsics, table_from_optical) in cameras.items():
        factory = tmp_path / f'{name}_factory.yaml'
        save_intrinsics(name, intrinsics, factory, {})
        board_image = tmp_path / f'{name}_board.png'
        seen = table_from_optical.inverse() @ table_from_board(*BOARD_AT)
        cv2.imwrite(str(board_image), render_board(BOARD, intrinsics, seen))
        assert enpire(['calibrate', '--camera', name, '--intrinsics', str(factory), '--pose-image',
                       str(board_image), '--board-at', *map(str, BOARD_AT), '--squares', '5', '4',
                       '--square-m', '0.08', '--marker-m', '0.06', '--dictionary', 'DICT_4X4_50',
                       '--out', str(out / f'{name}.yaml')]) == 0
    return out


def test_real_cell_verifies_driver_frames_from_calibration_alone(node_processes, ros_node, tmp_path):
    from enpire_common import names
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    from enpire_interfaces.msg import CameraVerdict, FusedVerdict
    from enpire_interfaces.srv import Verify

    cameras = driver_cameras()
    calibration_dir = calibrate_cameras(tmp_path, cameras)
    config = tmp_path / 'driver.json'
    config.write_text(json.dumps({'table_pixel_m': 0.001, 'cameras': [
        {'prefix': prefix, 'width': cam.width, 'height': cam.height, 'k': list(cam.k), 'd': list(cam.d),
         'translation': pose.translation.tolist(), 'rotation': pose.quaternion().tolist()}
        for prefix, cam, pose in cameras.values()]}))
    node_processes.start('driver', [str(HERE / 'camera_driver.py'), str(config)])
    # The lab's bringup, as shipped (real_cell.yaml, real_cell_adapters.yaml: driver topics
    # /top_camera/color, /side_camera/color), with the cell's nodes that judge frames; no simulator.
    node_processes.start('up', [
        '-m', 'enpire_bringup.cli', 'up', 'real_cell', '--only', 'camera_relay',
        '--only', 'camera_calibration', '--only', 'verify', '--log-dir', str(tmp_path / 'logs'), '--quiet'],
        env={'ENPIRE_CELL': NS.strip('/'), 'ENPIRE_CALIBRATION_DIR': str(calibration_dir),
             'ENPIRE_RUN_DIR': str(tmp_path / 'run')})
    node = ros_node.node
    scene_pub = node.create_publisher(String, '/test_driver/scene',
                                      QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    verify = node.create_client(Verify, f'{NS}/{names.VERIFY}')
    assert verify.wait_for_service(timeout_sec=60), 'no verify service'

    def verdict_on(block, agent):
        scene_pub.publish(String(data=json.dumps({'block': block, 'agent': agent})))

        def judged():
            res = ros_node.call(verify, Verify.Request(task='pusht'), 30)
            cams = {c.camera: c for c in res.verdict.cameras if c.camera in cameras}
            near = all(len(c.estimate) == 3 and math.hypot(c.estimate[0] - block[0], c.estimate[1] - block[1])
                       < 10.0 for c in cams.values())
            decided = len(cams) == 2 and all(c.state != CameraVerdict.UNCERTAIN for c in cams.values())
            return res.verdict if (res.ok and decided and near) else None
        return ros_node.wait_for(judged, 60, f'both cameras to judge the block at {block}')

    at_goal = verdict_on(list(GOAL_POSE), [80.0, 80.0])
    assert at_goal.state == FusedVerdict.SUCCESS and at_goal.success and at_goal.score > 0.95, at_goal
    assert {c.camera: c.state for c in at_goal.cameras} == {
        'top': CameraVerdict.SUCCESS, 'oblique': CameraVerdict.SUCCESS,
        'wrist': CameraVerdict.UNCERTAIN}   # the bringup's wrist camera: no driver here, no frame
    elsewhere = verdict_on([150.0, 350.0, 2.0], [400.0, 100.0])
    assert elsewhere.state == FusedVerdict.FAILURE and not elsewhere.success and elsewhere.score < 0.2
    for camera in cameras:   # judged from the calibration: nothing in this cell publishes a homography
        assert node.count_publishers(f'{NS}/{names.camera_homography(camera)}') == 0


def test_calibration_node_refuses_to_start_without_a_calibration_file(node_processes, tmp_path):
    proc = node_processes.start('calibration', [
        '-m', 'enpire_bringup.adapters.camera_calibration_node', '--ros-args', '-r', f'__ns:={NS}',
        '-p', 'cameras:=[top]', '-p', f'calibration_dir:={tmp_path}'])
    assert proc.wait(timeout=60) == 2
    log = node_processes.log('calibration')
    assert f'{tmp_path}/top.yaml does not exist' in log and 'enpire calibrate --camera top' in log
