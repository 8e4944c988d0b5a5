"""`enpire audit` re-judges a real cell's trial bag: no homography was recorded, the frames (with lens
distortion) are mapped by the cameras' calibration the bag holds (/tf_static, CameraInfo)."""
from __future__ import annotations

import numpy as np
import pytest
from enpire_common import names
from enpire_task_pusht.geometry import GOAL_POSE
from enpire_task_pusht.render import CameraSpec, RenderState, draw, pinhole
from geometry_msgs.msg import TransformStamped
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_env.calibration.camera_model import Intrinsics, table_to_image
from enpire_env.calibration.transforms import fill_transform
from enpire_interfaces.msg import CameraVerdict, FusedVerdict
from enpire_rollout.audit import audit_bag
from enpire_rollout.trial_bag import TrialBag, TrialRecordConfig
from enpire_sim.board_views import through_lens

SPEC = CameraSpec(name='top', kind='oblique', width=200, height=160)
IDEAL, POSE = pinhole(SPEC, 0.001)
CAMERA = Intrinsics.from_matrix(200, 160, IDEAL.matrix, [-0.15, 0.04, 0.0, 0.0, 0.0])


def frame(block, stamp_ns: int) -> bytes:
    rgb, _ = draw(RenderState(block, (60.0, 60.0)), SPEC, h=table_to_image(CAMERA, POSE, 0.001))
    rgb = through_lens(rgb, CAMERA)
    msg = Image(height=160, width=200, encoding='rgb8', is_bigendian=0, step=600, data=rgb.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.header.frame_id = names.camera_frame('top')
    return serialize_message(msg)


def verdict(success: bool, score: float) -> bytes:
    return serialize_message(FusedVerdict(task='pusht', state=FusedVerdict.SUCCESS if success else
                                          FusedVerdict.FAILURE, success=success, score=score,
                                          cameras=[CameraVerdict(camera='top')]))


def real_cell_bag(root, with_calibration: bool):
    bag = TrialBag(root, 'trial_real', 'cell_0', {}, TrialRecordConfig(cameras=['top']))
    bag.open(10**9)
    if with_calibration:
        tf = fill_transform(TransformStamped(), names.TABLE_FRAME, names.camera_frame('top'), POSE)
        bag.write_cdr(names.TF_STATIC, serialize_message(TFMessage(transforms=[tf])), 10**9)
        info = CAMERA.fill_camera_info(CameraInfo())
        info.header.frame_id = names.camera_frame('top')
        bag.write_cdr(bag.topic(names.camera_info('top')), serialize_message(info), 10**9)
    bag.write_cdr(bag.topic(names.camera_image('top')), frame(GOAL_POSE, 2 * 10**9), 2 * 10**9)
    bag.write_cdr(bag.topic('trial/verdicts'), verdict(True, 1.0), 2 * 10**9 + 1)
    bag.write_cdr(bag.topic(names.camera_image('top')), frame((150.0, 350.0, 2.0), 3 * 10**9), 3 * 10**9)
    bag.write_cdr(bag.topic('trial/verdicts'), verdict(False, 0.0), 3 * 10**9 + 1)
    return bag.close()


def test_audit_maps_a_real_cells_frames_by_the_recorded_calibration(tmp_path):
    rows, _ = audit_bag(real_cell_bag(tmp_path / 'calibrated', True), video=False, score_tolerance=0.1)
    assert [(r.audit_success, r.agree) for r in rows] == [(True, True), (False, True)], rows
    assert rows[0].audit_score > 0.9 and rows[1].audit_score == pytest.approx(0.0, abs=0.1)


def test_without_the_calibration_the_audit_cannot_confirm_a_success(tmp_path):
    rows, _ = audit_bag(real_cell_bag(tmp_path / 'bare', False), video=False)
    assert not rows[0].audit_success and not rows[0].agree
    assert np.isfinite(rows[0].audit_score)
