"""The peg cell's cameras: fast offscreen renders whose calibration matches what MuJoCo draws, segmentation
masks, the views' roles (two see the mouth, one is hidden by the arm near success)."""
import numpy as np
import pytest
from enpire_task_peg.render import CAMERA_NAMES, CellCameras, camera
from enpire_task_peg.simulator import PegSimulator, sample_layout
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy


def _egl_or_skip():
    import ctypes.util
    if ctypes.util.find_library('EGL') is None:
        pytest.skip('libEGL is absent (scripts/setup.sh installs libegl1 and Mesa): MuJoCo cannot render')


@pytest.fixture(scope='module')
def scene():
    _egl_or_skip()
    sim = PegSimulator()
    obs = sim.reset(sample_layout(1))
    expert = SawyerPegInsertionSideV3Policy()
    for _ in range(200):
        obs, info = sim.step(expert.get_action(obs))
        if info['success']:
            break
    assert info['success'], 'the expert should insert on seed 1'
    cams = CellCameras(sim.model, 96, 96)
    yield sim, cams
    cams.close()
    sim.close()


def test_frames_are_rgb_at_96_px_and_not_blank(scene):
    sim, cams = scene
    frames = cams.render_all(sim.data)
    assert set(frames) == set(CAMERA_NAMES) and len(CAMERA_NAMES) == 3
    for frame in frames.values():
        assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8 and frame.std() > 10


def _nearest_pixel(mask, uv):
    rows, cols = np.nonzero(mask)
    return float(np.min(np.hypot(cols + 0.5 - uv[0], rows + 0.5 - uv[1])))


def test_the_calibration_projects_onto_the_segmented_objects(scene):
    """The peg's centre and the box's top, projected with K and the pose, land on the peg's and the box's
    pixels in MuJoCo's segmentation render (orientation, intrinsics and pose all right)."""
    sim, cams = scene
    for name in ('mouth_left', 'mouth_right'):
        masks = cams.segmentation(sim.data, name)
        assert masks['peg'].sum() > 10 and masks['box'].sum() > 100
        peg_uv = camera(name).project(sim.data.body('peg').xpos, 96, 96)[0]
        box_uv = camera(name).project(sim.data.body('box').xpos + [0.0, 0.0, 0.19], 96, 96)[0]
        assert _nearest_pixel(masks['peg'], peg_uv) <= 2.0, (name, peg_uv)
        assert _nearest_pixel(masks['box'], box_uv) <= 1.0, (name, box_uv)
        # and a point 10 cm beside the peg is not on it: the test can fail
        off_uv = camera(name).project(sim.data.body('peg').xpos + [0.0, 0.0, 0.1], 96, 96)[0]
        assert _nearest_pixel(masks['peg'], off_uv) > 3.0, name


def test_segmentation_agrees_with_the_peg_colour(scene):
    from enpire_task_peg.verification.colour import ColourConfig, hsv, peg_mask
    sim, cams = scene
    for name in CAMERA_NAMES:
        truth = cams.segmentation(sim.data, name)['peg']
        found = peg_mask(hsv(cams.rgb(sim.data, name)), ColourConfig())
        if truth.sum() < 5:
            continue
        iou = (truth & found).sum() / (truth | found).sum()
        assert iou > 0.8, (name, iou)


def test_camera_info_is_a_pinhole_with_a_rotation(scene):
    _, cams = scene
    info = cams.camera_info('mouth_left')
    k = np.array(info['k']).reshape(3, 3)
    assert info['width'] == info['height'] == 96 and k[0, 2] == k[1, 2] == 48 and k[0, 0] == k[1, 1] > 50
    r = np.array(info['rotation'])
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    with pytest.raises(KeyError, match='no camera'):
        camera('top')


def test_the_arm_hides_the_mouth_from_behind_arm_near_success(scene):
    """At success the wrist stands between behind_arm and the mouth: little of the box is seen there,
    while both mouth cameras see the box."""
    sim, cams = scene
    box_px = {name: int(cams.segmentation(sim.data, name)['box'].sum()) for name in CAMERA_NAMES}
    mouth = camera('behind_arm').project(sim.data.body('box').xpos + [0.096, 0.0, 0.13], 96, 96)[0]
    masks = cams.segmentation(sim.data, 'behind_arm')
    u, v = int(mouth[0]), int(mouth[1])
    assert not masks['box'][v - 2:v + 3, u - 2:u + 3].any(), 'the mouth should be hidden from behind_arm'
    assert box_px['mouth_left'] > 200 and box_px['mouth_right'] > 200, box_px
