"""Poses, intrinsics, the static transform tree and the homography derived from them (pure)."""
import cv2
import numpy as np
import pytest
from enpire_task_pusht import render as sim_cameras

from enpire_env.calibration import calibration_file
from enpire_env.calibration.camera_model import (
    Intrinsics,
    Pose,
    Undistorter,
    matrix_from_quaternion,
    pose_error,
    quaternion_from_matrix,
    table_to_image,
)
from enpire_env.calibration.charuco import BoardSpec, Detection, detect, same_view
from enpire_env.calibration.table_mapping import CalibratedCameras
from enpire_env.calibration.transforms import StaticTransforms, TransformError
from enpire_sim.board_views import render_board


def random_pose(rng) -> Pose:
    q = rng.normal(size=4)
    return Pose.from_quaternion(rng.normal(size=3), q)


def test_quaternion_and_matrix_round_trip_for_random_and_half_turn_rotations():
    rng = np.random.default_rng(3)
    rotations = [random_pose(rng).rotation for _ in range(50)]
    rotations += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    for rot in rotations:
        q = quaternion_from_matrix(rot)
        assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1.0)
        np.testing.assert_allclose(matrix_from_quaternion(q), rot, atol=1e-12)


def test_pose_composition_inverse_and_error():
    rng = np.random.default_rng(4)
    a, b = random_pose(rng), random_pose(rng)
    points = rng.normal(size=(5, 3))
    np.testing.assert_allclose((a @ b).apply(points), a.apply(b.apply(points)), atol=1e-12)
    np.testing.assert_allclose((a @ a.inverse()).apply(points), points, atol=1e-12)
    turned = Pose(matrix_from_quaternion([0.0, 0.0, np.sin(np.radians(1.0)), np.cos(np.radians(1.0))]),
                  a.translation + [0.003, 0.0, 0.004])
    dist, angle = pose_error(turned, Pose(np.eye(3), a.translation))
    assert dist == pytest.approx(0.005) and angle == pytest.approx(2.0)
    with pytest.raises(ValueError, match='quaternion'):
        Pose.from_quaternion([0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize('kind', ['top', 'oblique', 'wrist'])
def test_homography_from_the_sim_cameras_pinhole_model_equals_the_sims_own(kind):
    spec = sim_cameras.CameraSpec(name=kind, kind=kind, width=160, height=120)
    state = sim_cameras.RenderState((300.0, 200.0, 0.7), (120.0, 340.0), (3.0, -2.0), step=23)
    intrinsics, table_from_optical = sim_cameras.pinhole(spec, 0.001, state)
    derived = table_to_image(intrinsics, table_from_optical, 0.001)
    sim = sim_cameras.table_to_image(spec, state)
    np.testing.assert_allclose(derived, sim / sim[2, 2], atol=1e-9)
    # and the camera is above the table (z into the table: negative), looking into it
    assert table_from_optical.translation[2] < 0 and table_from_optical.rotation[2, 2] > 0


def test_static_transforms_compose_a_lab_chain_and_refuse_unconnected_frames():
    rng = np.random.default_rng(5)
    table_base, base_link, link_optical = (random_pose(rng) for _ in range(3))
    tree = StaticTransforms()
    tree.set('table', 'base_link', table_base)
    tree.set('base_link', 'camera_link', base_link)
    tree.set('camera_link', 'top_optical_frame', link_optical)
    tree.set('world', 'elsewhere', Pose.identity())
    expected = table_base @ base_link @ link_optical
    got = tree.lookup('table', 'top_optical_frame')
    np.testing.assert_allclose(got.rotation, expected.rotation, atol=1e-12)
    np.testing.assert_allclose(got.translation, expected.translation, atol=1e-12)
    back = tree.lookup('top_optical_frame', 'base_link')
    np.testing.assert_allclose(back.translation, (link_optical.inverse() @ base_link.inverse()).translation,
                               atol=1e-12)
    with pytest.raises(TransformError, match='not connected'):
        tree.lookup('table', 'elsewhere')
    with pytest.raises(TransformError, match='not in the static transforms'):
        tree.lookup('table', 'nowhere')


def test_calibration_file_round_trip_keeps_camera_info_keys_and_pose(tmp_path):
    rng = np.random.default_rng(6)
    cam = Intrinsics.from_matrix(640, 480, [[600, 0, 320], [0, 601, 240], [0, 0, 1]], [-0.2, 0.05, 0, 0, 0])
    pose = random_pose(rng)
    cal = calibration_file.CameraCalibration(camera='top', intrinsics=cam, table_from_optical=pose,
                                             report={'views': 3})
    path = calibration_file.save(cal, tmp_path / 'top.yaml')
    text = path.read_text()
    for key in ('image_width', 'camera_matrix', 'distortion_model', 'distortion_coefficients',
                'rectification_matrix', 'projection_matrix', 'table_transform'):
        assert f'{key}:' in text
    back = calibration_file.load(path)
    assert back.intrinsics == cam and back.child_frame == 'top_optical_frame' and back.report == {'views': 3}
    np.testing.assert_allclose(back.table_from_optical.rotation, cal.table_from_optical.rotation, atol=1e-12)
    (tmp_path / 'bad.yaml').write_text('image_width: 640\n')
    with pytest.raises(ValueError, match='bad.yaml'):
        calibration_file.load(tmp_path / 'bad.yaml')


class _Info:
    def __init__(self, intrinsics: Intrinsics, frame: str):
        self.width, self.height = intrinsics.width, intrinsics.height
        self.k, self.d, self.distortion_model = intrinsics.k, intrinsics.d, intrinsics.distortion_model

        class Header:
            frame_id = frame
        self.header = Header()


def test_calibrated_cameras_give_a_mapping_only_with_both_camera_info_and_pose():
    spec = sim_cameras.CameraSpec(name='oblique', kind='oblique', width=96, height=96)
    intrinsics, pose = sim_cameras.pinhole(spec, 0.001)
    cams = CalibratedCameras(0.001)
    assert cams.mapping('oblique') is None and 'CameraInfo' in cams.problem('oblique')
    cams.set_camera_info('oblique', _Info(intrinsics, 'oblique_optical_frame'))
    assert cams.mapping('oblique') is None and 'not in the static transforms' in cams.problem('oblique')
    cams.transforms.set('table', 'oblique_optical_frame', pose)
    mapping = cams.mapping('oblique')
    assert cams.problem('oblique') is None and mapping.undistort is None
    np.testing.assert_allclose(mapping.table_to_image, sim_cameras.table_to_image(spec), atol=1e-9)
    with pytest.raises(ValueError):
        CalibratedCameras(0.0)


def test_undistorter_straightens_what_the_lens_bends():
    cam = Intrinsics.from_matrix(320, 240, [[300, 0, 160], [0, 300, 120], [0, 0, 1]], [-0.3, 0.1, 0, 0, 0])
    board = BoardSpec()
    seen = Pose(np.eye(3), np.array([-0.14, -0.10, 0.45]))
    distorted = render_board(board, cam, seen)
    straight = Undistorter(cam)(distorted)
    ideal = Intrinsics.from_matrix(320, 240, cam.matrix)
    found = detect(board, straight)
    assert found is not None
    expected, _ = cv2.projectPoints(found.object_points, np.zeros(3), seen.translation, ideal.matrix, None)
    assert np.abs(expected.reshape(-1, 2) - found.image_points).max() < 0.5
    with pytest.raises(ValueError, match='calibration is for'):
        Undistorter(cam)(np.zeros((10, 10, 3), np.uint8))


def test_map_frame_prefers_the_frames_own_homography_else_undistorts_by_the_calibration():
    cam = Intrinsics.from_matrix(320, 240, [[300, 0, 160], [0, 300, 120], [0, 0, 1]], [-0.3, 0.1, 0, 0, 0])
    pose = Pose(np.eye(3), np.array([0.256, 0.256, -0.6]))
    cams = CalibratedCameras(0.001)
    image = render_board(BoardSpec(), cam, Pose(np.eye(3), np.array([-0.14, -0.10, 0.45])))
    assert cams.map_frame('top', image) == (image, None)            # nothing known: no mapping
    own = np.eye(3)
    assert cams.map_frame('top', image, own)[1] is own
    cams.set_camera_info('top', _Info(cam, 'top_optical_frame'))
    cams.transforms.set('table', 'top_optical_frame', pose)
    mapped, h = cams.map_frame('top', image)
    np.testing.assert_allclose(h, table_to_image(cam, pose, 0.001))
    np.testing.assert_array_equal(mapped, Undistorter(cam)(image))
    assert not np.array_equal(mapped, image)
    assert cams.map_frame('top', image, own)[1] is own               # a per-frame homography still wins


def test_same_view_tells_a_board_held_still_from_a_moved_one():
    cam = Intrinsics.from_matrix(320, 240, [[300, 0, 160], [0, 300, 120], [0, 0, 1]])
    board = BoardSpec()
    here = detect(board, render_board(board, cam, Pose(np.eye(3), np.array([-0.14, -0.10, 0.45]))))
    again = detect(board, render_board(board, cam, Pose(np.eye(3), np.array([-0.1395, -0.10, 0.45]))))
    moved = detect(board, render_board(board, cam, Pose(np.eye(3), np.array([-0.11, -0.10, 0.45]))))
    assert same_view(here, here, 1.0) and same_view(here, again, 2.0)      # 0.5 mm: under 1 px
    assert not same_view(here, moved, 2.0)                                   # 30 mm: about 20 px
    assert same_view(here, moved, 40.0)
    assert not same_view(here, Detection(here.object_points[:3], here.image_points[:3]), 2.0)  # too few
