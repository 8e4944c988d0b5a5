"""Intrinsics and camera-to-table pose from views of a ChArUco board (OpenCV's aruco module). Pure.

Intrinsics come from several views of the board held at different distances and tilts
(`calibrate_intrinsics`, cv2.calibrateCamera); the pose from one view of the board lying flat on the
table at a known place (`board_pose`, cv2.solvePnP). The board's frame is OpenCV's: origin at the
outer corner of its first square, x along its rows, y along its columns, z = x cross y into the board;
lying face up on the table it is the table frame moved by `table_from_board`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from enpire_env.calibration.calibration_file import CameraCalibration
from enpire_env.calibration.camera_model import DISTORTION_MODELS, Intrinsics, Pose

MIN_CORNERS = 6   # fewer inner corners than this give no stable pose


class BoardSpec(BaseModel):
    """The printed board: squares per side, their size and the marker dictionary."""

    model_config = ConfigDict(frozen=True, extra='forbid')

    squares_x: int = Field(7, ge=3)
    squares_y: int = Field(5, ge=3)
    square_m: float = Field(0.04, gt=0.0)
    marker_m: float = Field(0.03, gt=0.0)
    dictionary: str = 'DICT_5X5_100'

    @model_validator(mode='after')
    def _valid(self):
        if self.marker_m >= self.square_m:
            raise ValueError(f'marker_m ({self.marker_m}) must be smaller than square_m ({self.square_m})')
        if not hasattr(cv2.aruco, self.dictionary):
            raise ValueError(f'unknown aruco dictionary {self.dictionary!r} (e.g. DICT_5X5_100)')
        return self

    def board(self) -> cv2.aruco.CharucoBoard:
        return _board(self)

    def image(self, pixels_per_square: int = 100) -> np.ndarray:
        """The board as a grey image, exactly `pixels_per_square` per square (no margin): a texture."""
        size = (self.squares_x * pixels_per_square, self.squares_y * pixels_per_square)
        return self.board().generateImage(size, marginSize=0, borderBits=1)


@lru_cache(maxsize=8)
def _board(spec: BoardSpec) -> cv2.aruco.CharucoBoard:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, spec.dictionary))
    return cv2.aruco.CharucoBoard((spec.squares_x, spec.squares_y), spec.square_m, spec.marker_m, dictionary)


@lru_cache(maxsize=8)
def _detector(spec: BoardSpec) -> cv2.aruco.CharucoDetector:
    return cv2.aruco.CharucoDetector(_board(spec))


@dataclass
class Detection:
    object_points: np.ndarray   # (N, 3) float32, board frame, metres
    image_points: np.ndarray    # (N, 2) float32, pixels


def detect(spec: BoardSpec, image: np.ndarray) -> Detection | None:
    """The board's inner corners seen in an image (grey, RGB or BGR), or None when too few."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    corners, ids, _, _ = _detector(spec).detectBoard(grey)
    if ids is None or len(ids) < MIN_CORNERS:
        return None
    obj, img = spec.board().matchImagePoints(corners, ids)
    return Detection(obj.reshape(-1, 3).astype(np.float32), img.reshape(-1, 2).astype(np.float32))


def same_view(a: Detection, b: Detection, min_move_px: float) -> bool:
    """Whether two detections show the board where it was: the corners both saw moved less than
    `min_move_px` (median). A second copy of a view adds no pose to a calibration, only weight on one
    (a board held still, or one camera frame taken twice)."""
    seen = {tuple(o): p for o, p in zip(np.round(a.object_points, 5).tolist(), a.image_points, strict=True)}
    moves = [np.linalg.norm(p - seen[tuple(o)])
             for o, p in zip(np.round(b.object_points, 5).tolist(), b.image_points, strict=True)
             if tuple(o) in seen]
    return len(moves) >= MIN_CORNERS and float(np.median(moves)) < min_move_px


@dataclass
class IntrinsicsResult:
    intrinsics: Intrinsics
    rms_px: float           # reprojection error over all views (what calibrateCamera minimises)
    views: int              # views in which the board was found
    skipped: int            # views without enough corners


def calibrate_intrinsics(spec: BoardSpec, images: list[np.ndarray], model: str = 'plumb_bob',
                         min_views: int = 4) -> IntrinsicsResult:
    """K and distortion from views of the board at several distances and tilts."""
    if model not in DISTORTION_MODELS:
        raise ValueError(f'distortion model {model!r} is not one of {DISTORTION_MODELS}')
    if not images:
        raise ValueError('no images to calibrate from')
    sizes = {img.shape[:2] for img in images}
    if len(sizes) != 1:
        raise ValueError(f'the views have different sizes {sorted(sizes)}: one camera, one resolution')
    height, width = sizes.pop()
    found = [d for d in (detect(spec, img) for img in images) if d is not None]
    if len(found) < min_views:
        raise ValueError(f'the board was found in {len(found)} of {len(images)} views; intrinsics need at '
                         f'least {min_views} views at different distances and tilts')
    flags = cv2.CALIB_RATIONAL_MODEL if model == 'rational_polynomial' else 0
    rms, k, d, _, _ = cv2.calibrateCamera([f.object_points for f in found], [f.image_points for f in found],
                                          (width, height), None, None, flags=flags)
    return IntrinsicsResult(Intrinsics.from_matrix(width, height, k, d, model), float(rms),
                            len(found), len(images) - len(found))


@dataclass
class BoardPose:
    camera_from_board: Pose
    rms_px: float      # reprojection error of the board's corners with this pose
    corners: int


def board_pose(spec: BoardSpec, image: np.ndarray, camera: Intrinsics) -> BoardPose:
    """The board's pose in the camera's optical frame from one view (ValueError when it is not seen)."""
    if image.shape[1] != camera.width or image.shape[0] != camera.height:
        raise ValueError(f'image is {image.shape[1]}x{image.shape[0]}, the intrinsics are for '
                         f'{camera.width}x{camera.height}')
    found = detect(spec, image)
    if found is None:
        raise ValueError(f'the board ({spec.squares_x}x{spec.squares_y} {spec.dictionary}) is not in the '
                         f'pose image (fewer than {MIN_CORNERS} corners found)')
    k, d = camera.matrix, camera.coefficients
    ok, rvec, tvec = cv2.solvePnP(found.object_points, found.image_points, k, d, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise ValueError('solvePnP found no pose for the board')
    rvec, tvec = cv2.solvePnPRefineLM(found.object_points, found.image_points, k, d, rvec, tvec)
    projected, _ = cv2.projectPoints(found.object_points, rvec, tvec, k, d)
    rms = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - found.image_points) ** 2, axis=1))))
    return BoardPose(Pose.from_rvec(rvec, tvec), rms, len(found.image_points))


def table_from_board(x_m: float, y_m: float, yaw_deg: float = 0.0) -> Pose:
    """The board lying face up on the table, its origin at (x, y), turned by yaw about the table's z."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    return Pose(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), np.array([x_m, y_m, 0.0]))


def calibrate_camera(camera: str, spec: BoardSpec, intrinsics: Intrinsics, pose_image: np.ndarray,
                     board_in_table: Pose, report: dict | None = None) -> CameraCalibration:
    """The camera's full calibration: intrinsics and table_from_optical from the board on the table."""
    seen = board_pose(spec, pose_image, intrinsics)
    table_from_optical = board_in_table @ seen.camera_from_board.inverse()
    report = {**(report or {}), 'board': spec.model_dump(), 'pose_corners': seen.corners,
              'pose_reprojection_rms_px': round(seen.rms_px, 4)}
    return CameraCalibration(camera=camera, intrinsics=intrinsics, table_from_optical=table_from_optical,
                             report=report)
