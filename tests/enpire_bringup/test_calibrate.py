"""`enpire calibrate` on ChArUco boards rendered through a simulated camera with known ground truth.

The camera is the simulated cell's oblique camera at 640x480 (`enpire_sim.cameras.pinhole`) with lens
distortion added; the views are what a person waving the board would give, the pose image the board
lying on the table at a known place. Errors are printed (pytest -s) and asserted within bounds.
"""
import threading

import cv2
import numpy as np
import pytest
from enpire_bringup.cli import main as enpire
from enpire_task_pusht import render as sim_cameras

from enpire_env.calibration import calibration_file
from enpire_env.calibration.camera_model import Intrinsics, pose_error, table_to_image
from enpire_env.calibration.charuco import BoardSpec, table_from_board
from enpire_sim.board_views import render_board, waving_poses

BOARD = BoardSpec()
DISTORTION = [-0.18, 0.06, 0.0008, -0.0006, -0.01]
BOARD_AT = (0.116, 0.156)   # m: the 280 x 200 mm board in the middle of the 512 mm table


def sim_camera(kind: str = 'oblique'):
    spec = sim_cameras.CameraSpec(name=kind, kind=kind, width=640, height=480)
    ideal, table_from_optical = sim_cameras.pinhole(spec, 0.001)
    return Intrinsics.from_matrix(640, 480, ideal.matrix, DISTORTION), table_from_optical


def write_views(folder, camera, table_from_optical, count=12):
    folder.mkdir()
    for i, pose in enumerate(waving_poses(BOARD, camera, count=count, seed=1)):
        cv2.imwrite(str(folder / f'view_{i:02d}.png'), render_board(BOARD, camera, pose))
    on_table = (table_from_optical.inverse() @ table_from_board(*BOARD_AT))
    pose_image = folder.parent / 'on_table.png'
    cv2.imwrite(str(pose_image), render_board(BOARD, camera, on_table))
    return pose_image


def workspace_mapping_error(estimate, truth) -> float:
    """Largest image distance (px) between where the two mappings put workspace points."""
    grid = np.stack(np.meshgrid(np.linspace(0, 512, 9), np.linspace(0, 512, 9)), -1).reshape(-1, 2)
    return float(np.abs(sim_cameras.project(estimate, grid) - sim_cameras.project(truth, grid)).max())


def test_calibrate_recovers_intrinsics_and_table_pose_of_a_rendered_camera(tmp_path, capsys):
    camera, truth = sim_camera()
    pose_image = write_views(tmp_path / 'views', camera, truth)
    out = tmp_path / 'calibration' / 'oblique.yaml'
    assert enpire(['calibrate', '--camera', 'oblique', '--images', str(tmp_path / 'views'), '--pose-image',
                   str(pose_image), '--board-at', *map(str, BOARD_AT), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'reprojection RMS' in printed and str(out) in printed
    cal = calibration_file.load(out)
    k, k_true = cal.intrinsics.matrix, camera.matrix
    focal_err = float(np.max(np.abs(np.diag(k)[:2] / np.diag(k_true)[:2] - 1.0)))
    centre_err = float(np.linalg.norm(k[:2, 2] - k_true[:2, 2]))
    dist_m, angle_deg = pose_error(cal.table_from_optical, truth)
    mapping_px = workspace_mapping_error(table_to_image(cal.intrinsics, cal.table_from_optical, 0.001),
                                         table_to_image(camera, truth, 0.001))
    report = cal.report
    with capsys.disabled():
        print(f"\ncalibration on rendered boards (oblique 640x480, {report['views']} views): "
              f"intrinsics RMS {report['reprojection_rms_px']:.3f} px, focal error {100 * focal_err:.3f} %, "
              f"principal point error {centre_err:.2f} px; "
              f"pose RMS {report['pose_reprojection_rms_px']:.3f} px, "
              f'position error {1000 * dist_m:.2f} mm, rotation error {angle_deg:.3f} deg; '
              f'table-to-image mapping error {mapping_px:.2f} px (max over the workspace)')
    assert report['views'] == 12 and report['reprojection_rms_px'] < 0.3
    assert focal_err < 0.01 and centre_err < 3.0
    assert report['pose_reprojection_rms_px'] < 0.3
    assert dist_m < 0.003 and angle_deg < 0.3
    assert mapping_px < 1.0
    assert cal.child_frame == 'oblique_optical_frame' and cal.parent_frame == 'table'


def test_calibrate_in_two_steps_intrinsics_then_pose_and_a_top_camera(tmp_path, capsys):
    camera, truth = sim_camera('top')
    pose_image = write_views(tmp_path / 'views', camera, truth, count=10)
    intrinsics = tmp_path / 'top_intrinsics.yaml'
    assert enpire(['calibrate', '--camera', 'top', '--images', str(tmp_path / 'views'),
                   '--out', str(intrinsics)]) == 0
    assert 'wrote the intrinsics only' in capsys.readouterr().out
    assert calibration_file.load_intrinsics(intrinsics).width == 640
    with pytest.raises(ValueError, match='no table_transform'):
        calibration_file.load(intrinsics)
    out = tmp_path / 'top.yaml'
    assert enpire(['calibrate', '--camera', 'top', '--intrinsics', str(intrinsics), '--pose-image',
                   str(pose_image), '--board-at', *map(str, BOARD_AT), '--out', str(out)]) == 0
    dist_m, angle_deg = pose_error(calibration_file.load(out).table_from_optical, truth)
    assert dist_m < 0.005 and angle_deg < 0.3


def test_calibrate_says_what_is_wrong_with_bad_input(tmp_path, capsys):
    blank = tmp_path / 'blank'
    blank.mkdir()
    for i in range(5):
        cv2.imwrite(str(blank / f'{i}.png'), np.full((120, 160), 200, np.uint8))
    code = enpire(['calibrate', '--camera', 'top', '--images', str(blank), '--out', str(tmp_path / 'x.yaml')])
    assert code == 2 and 'found in 0 of 5 views' in capsys.readouterr().err
    code = enpire(['calibrate', '--camera', 'top', '--images', str(tmp_path / 'none'),
                   '--out', str(tmp_path / 'x.yaml')])
    assert code == 2 and 'not a folder' in capsys.readouterr().err
    code = enpire(['calibrate', '--camera', 'top', '--out', str(tmp_path / 'x.yaml')])
    assert code == 2 and 'no views' in capsys.readouterr().err
    code = enpire(['calibrate', '--camera', 'top', '--images', str(blank),
                   '--intrinsics', str(blank / '0.png'), '--out', str(tmp_path / 'x.yaml')])
    assert code == 2 and '--pose-image' in capsys.readouterr().err
    assert not (tmp_path / 'x.yaml').exists()


def test_calibrate_help_works(capsys):
    with pytest.raises(SystemExit) as exit_:
        enpire(['calibrate', '--help'])
    assert exit_.value.code == 0 and '--pose-image' in capsys.readouterr().out


@pytest.mark.graph
def test_calibrate_from_a_camera_topic_in_two_steps(ros_node, tmp_path, capsys):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    board = BoardSpec(squares_x=5, squares_y=4, square_m=0.08, marker_m=0.06, dictionary='DICT_4X4_50')
    camera = Intrinsics.from_matrix(320, 240, [[310.0, 0, 158.0], [0, 310.0, 121.0], [0, 0, 1]],
                                    [-0.1, 0.02, 0.0, 0.0, 0.0])
    spec = sim_cameras.CameraSpec(name='oblique', kind='oblique', width=320, height=240)
    _, truth = sim_cameras.pinhole(spec, 0.001)
    views = [render_board(board, camera, p)
             for p in waving_poses(board, camera, count=8, seed=2, distance_m=(0.7, 1.1))]
    on_table = render_board(board, camera, truth.inverse() @ table_from_board(0.056, 0.096))
    shown = {'images': views, 'index': 0}
    pub = ros_node.node.create_publisher(Image, '/cal_camera/color/image_raw', qos_profile_sensor_data)
    showing = threading.Lock()     # no frame of the old scene is sent after the scene changed

    def publish():   # a driver streaming bgr8 frames of whatever is in front of the camera
        with showing:
            grey = shown['images'][shown['index'] % len(shown['images'])]
            shown['index'] += 1
            bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            pub.publish(Image(height=240, width=320, encoding='bgr8', step=960, data=bgr.tobytes()))
    ros_node.node.create_timer(0.05, publish)

    board_args = ['--squares', '5', '4', '--square-m', '0.08', '--marker-m', '0.06',
                  '--dictionary', 'DICT_4X4_50']
    intrinsics = tmp_path / 'intrinsics.yaml'
    assert enpire(['calibrate', '--camera', 'oblique', '--topic', '/cal_camera/color/image_raw',
                   '--views', '8', '--period', '0.04', '--timeout', '60', *board_args,
                   '--out', str(intrinsics)]) == 0
    assert 'wrote the intrinsics only' in capsys.readouterr().out
    k = calibration_file.load_intrinsics(intrinsics).matrix
    assert np.abs(np.diag(k)[:2] / 310.0 - 1.0).max() < 0.03

    with showing:
        shown['images'] = [on_table]   # the board laid on the table at its place
    out = tmp_path / 'oblique.yaml'
    assert enpire(['calibrate', '--camera', 'oblique', '--topic', '/cal_camera/color/image_raw',
                   '--intrinsics', str(intrinsics), '--board-at', '0.056', '0.096', '--timeout', '60',
                   *board_args, '--out', str(out)]) == 0
    dist_m, angle_deg = pose_error(calibration_file.load(out).table_from_optical, truth)
    assert dist_m < 0.01 and angle_deg < 0.5, (dist_m, angle_deg)
