"""One camera's calibration as YAML: the ROS camera_info keys plus the camera's pose in the table. Pure.

The intrinsics use the keys of camera_calibration_parsers (image_width, camera_matrix, ...), so the file
is also a valid `camera_info_url` for a camera driver, which ignores the keys it does not know:

    table_transform: {parent_frame: table, child_frame: top_optical_frame,
                      translation: [x, y, z], rotation: [x, y, z, w]}   # table_from_optical, metres
    calibration: {board: ..., views: 12, reprojection_rms_px: 0.21, ...}   # how it was measured
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from enpire_env.calibration.camera_model import Intrinsics, Pose

TABLE_FRAME = 'table'


def optical_frame(camera: str) -> str:
    """The frame id of a camera's images (same rule as enpire_common.names.camera_frame)."""
    return f'{camera}_optical_frame'


class CameraCalibration(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra='forbid')

    camera: str
    intrinsics: Intrinsics
    table_from_optical: Pose
    parent_frame: str = TABLE_FRAME
    child_frame: str = ''
    report: dict = Field(default_factory=dict)

    def model_post_init(self, _context) -> None:
        if not self.child_frame:
            self.child_frame = optical_frame(self.camera)


def _matrix(rows: int, cols: int, data) -> dict:
    return {'rows': rows, 'cols': cols, 'data': [float(v) for v in np.ravel(data)]}


def to_yaml_dict(cal: CameraCalibration) -> dict:
    cam = cal.intrinsics
    pose = cal.table_from_optical
    return {
        'image_width': cam.width,
        'image_height': cam.height,
        'camera_name': cal.camera,
        'camera_matrix': _matrix(3, 3, cam.k),
        'distortion_model': cam.distortion_model,
        'distortion_coefficients': _matrix(1, len(cam.d), cam.d),
        'rectification_matrix': _matrix(3, 3, np.eye(3)),
        'projection_matrix': _matrix(3, 4, cam.projection()),
        'table_transform': {'parent_frame': cal.parent_frame, 'child_frame': cal.child_frame,
                            'translation': [float(v) for v in pose.translation],
                            'rotation': [float(v) for v in pose.quaternion()]},
        'calibration': cal.report,
    }


def save(cal: CameraCalibration, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f'# Calibration of camera {cal.camera!r}: ROS camera_info keys (intrinsics) and its pose in\n'
              f'# the {cal.parent_frame!r} frame (enpire_env.calibration.calibration_file).\n')
    path.write_text(header + yaml.safe_dump(to_yaml_dict(cal), sort_keys=False, default_flow_style=None))
    return path


def _intrinsics(data: dict) -> Intrinsics:
    return Intrinsics(width=data['image_width'], height=data['image_height'], k=data['camera_matrix']['data'],
                      d=(data.get('distortion_coefficients') or {}).get('data', []),
                      distortion_model=data.get('distortion_model') or 'plumb_bob')


def _read(path: Path, what: str, parse):
    try:
        return parse(yaml.safe_load(Path(path).read_text()) or {})
    except FileNotFoundError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise ValueError(f'{path}: not {what} ({type(exc).__name__}: {exc})') from exc


def load_intrinsics(path: str | Path) -> Intrinsics:
    """The intrinsics of any camera_info YAML (camera_calibration_parsers keys)."""
    return _read(path, 'a camera_info YAML', _intrinsics)


def load(path: str | Path) -> CameraCalibration:
    """ValueError naming the file and the problem when it is not a complete calibration."""
    def parse(data: dict) -> CameraCalibration:
        if 'table_transform' not in data:
            raise ValueError('no table_transform (intrinsics only? calibrate the pose with the board on '
                             'the table: enpire calibrate --intrinsics ... --pose-image ...)')
        tf = data['table_transform']
        intrinsics = _intrinsics(data)
        return CameraCalibration(
            camera=data['camera_name'], intrinsics=intrinsics,
            table_from_optical=Pose.from_quaternion(tf['translation'], tf['rotation']),
            parent_frame=tf.get('parent_frame', TABLE_FRAME),
            child_frame=tf.get('child_frame', ''), report=data.get('calibration') or {})
    return _read(path, 'a camera calibration', parse)
