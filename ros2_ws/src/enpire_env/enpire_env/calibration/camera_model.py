"""Rigid poses, pinhole intrinsics (CameraInfo layout) and the table-to-image homography. Pure.

`Pose` is a transform `parent_from_child`: p_parent = R @ p_child + t, the meaning of a
geometry_msgs/TransformStamped with header.frame_id = parent and child_frame_id = child.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial')   # the models OpenCV's pinhole functions take


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix."""
    m = np.asarray(rotation, dtype=float)
    trace = np.trace(m)
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(xyzw) -> np.ndarray:
    x, y, z, w = np.asarray(xyzw, dtype=float) / np.linalg.norm(xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@dataclass(frozen=True)
class Pose:
    """parent_from_child: p_parent = rotation @ p_child + translation (metres)."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> Pose:
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_quaternion(cls, translation, xyzw) -> Pose:
        q = np.asarray(xyzw, dtype=float)
        if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
            raise ValueError(f'not a rotation quaternion (x, y, z, w): {list(np.ravel(xyzw))}')
        return cls(matrix_from_quaternion(q), np.asarray(translation, dtype=float).reshape(3))

    @classmethod
    def from_rvec(cls, rvec, tvec) -> Pose:
        """From OpenCV's (rvec, tvec), e.g. solvePnP's camera_from_object."""
        return cls(cv2.Rodrigues(np.asarray(rvec, dtype=float).reshape(3))[0],
                   np.asarray(tvec, dtype=float).reshape(3))

    def quaternion(self) -> np.ndarray:
        return quaternion_from_matrix(self.rotation)

    def inverse(self) -> Pose:
        return Pose(self.rotation.T, -self.rotation.T @ self.translation)

    def __matmul__(self, other: Pose) -> Pose:
        """a_from_b @ b_from_c = a_from_c."""
        return Pose(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=float) @ self.rotation.T + self.translation


def pose_error(estimate: Pose, truth: Pose) -> tuple[float, float]:
    """(translation error in metres, rotation error in degrees) between two poses of the same frames."""
    delta = estimate.rotation.T @ truth.rotation
    angle = np.degrees(np.arccos(np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0)))
    return float(np.linalg.norm(estimate.translation - truth.translation)), float(angle)


class Intrinsics(BaseModel):
    """A pinhole camera as sensor_msgs/CameraInfo describes it (K row-major, D per distortion model)."""

    model_config = ConfigDict(frozen=True, extra='forbid')

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    k: tuple[float, ...]
    d: tuple[float, ...] = ()
    distortion_model: str = 'plumb_bob'

    @field_validator('k')
    @classmethod
    def _k_is_a_camera_matrix(cls, k):
        if len(k) != 9 or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
            raise ValueError(f'K must be 9 finite numbers with fx, fy > 0, got {list(k)}')
        return tuple(float(v) for v in k)

    @field_validator('distortion_model')
    @classmethod
    def _known_model(cls, model):
        if model not in DISTORTION_MODELS:
            raise ValueError(f'distortion model {model!r} is not one of {DISTORTION_MODELS}')
        return model

    @classmethod
    def from_matrix(cls, width: int, height: int, k: np.ndarray, d=(),
                    model: str = 'plumb_bob') -> Intrinsics:
        d = tuple(float(v) for v in np.ravel(d))
        if model == 'plumb_bob':
            d = (d + (0.0,) * 5)[:5]
        return cls(width=width, height=height, k=tuple(np.ravel(k)), d=d, distortion_model=model)

    @classmethod
    def from_camera_info(cls, msg) -> Intrinsics:
        """From a sensor_msgs/CameraInfo (any object with its fields). ValueError when it has no K."""
        return cls(width=int(msg.width), height=int(msg.height), k=tuple(msg.k), d=tuple(msg.d),
                   distortion_model=msg.distortion_model or 'plumb_bob')

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.k, dtype=float).reshape(3, 3)

    @property
    def coefficients(self) -> np.ndarray:
        return np.asarray(self.d, dtype=float)

    @property
    def distorted(self) -> bool:
        return bool(np.any(self.coefficients != 0.0))

    def projection(self) -> np.ndarray:
        """P (3x4) of a monocular camera: [K | 0]."""
        return np.hstack([self.matrix, np.zeros((3, 1))])

    def fill_camera_info(self, msg):
        """Write width, height, K, D, R, P and the distortion model into a CameraInfo message."""
        msg.width, msg.height = self.width, self.height
        msg.distortion_model = self.distortion_model
        msg.d = list(self.d)
        msg.k = list(self.k)
        msg.r = np.eye(3).ravel().tolist()
        msg.p = self.projection().ravel().tolist()
        return msg


def table_to_image(camera: Intrinsics | np.ndarray, table_from_optical: Pose,
                   table_pixel_m: float) -> np.ndarray:
    """3x3 homography from table units to (undistorted) image pixels: [u v 1] ~ H [px py 1]."""
    k = camera.matrix if isinstance(camera, Intrinsics) else np.asarray(camera, dtype=float)
    optical_from_table = table_from_optical.inverse()
    r, t = optical_from_table.rotation, optical_from_table.translation
    extrinsic = np.column_stack([r[:, 0] * table_pixel_m, r[:, 1] * table_pixel_m, t])
    h = k @ extrinsic
    if abs(h[2, 2]) < 1e-12:
        raise ValueError('the table origin lies in the camera plane: no homography')
    return h / h[2, 2]


class Undistorter:
    """Removes lens distortion from frames of one camera (the maps are computed once)."""

    def __init__(self, camera: Intrinsics):
        self.camera = camera
        self._maps = cv2.initUndistortRectifyMap(camera.matrix, camera.coefficients, None, camera.matrix,
                                                 (camera.width, camera.height), cv2.CV_32FC1)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1] != self.camera.width or image.shape[0] != self.camera.height:
            raise ValueError(f'frame is {image.shape[1]}x{image.shape[0]}, calibration is for '
                             f'{self.camera.width}x{self.camera.height}')
        return cv2.remap(image, *self._maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera: K (3x3, CameraInfo's), its centre and the rotation task-frame-from-optical-frame
    (columns: x right, y down, z forward), as CameraInfo and /tf_static (or a calibration file) give them."""
    k: np.ndarray
    position: np.ndarray
    rotation: np.ndarray
    width: int
    height: int

    def valid(self) -> bool:
        k, r = np.asarray(self.k, float), np.asarray(self.rotation, float)
        return (k.shape == (3, 3) and r.shape == (3, 3) and np.shape(self.position) == (3,)
                and bool(np.all(np.isfinite(k)) and np.all(np.isfinite(r)))
                and bool(np.all(np.isfinite(self.position))) and abs(np.linalg.det(k)) > 1e-12
                and abs(np.linalg.det(r) - 1.0) < 1e-3 and self.width > 0 and self.height > 0)
