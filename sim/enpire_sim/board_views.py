"""A ChArUco board (or any drawn scene) seen by a pinhole camera with lens distortion. Pure.

What a calibration sees when a person waves the board in front of a camera (`waving_poses`) or lays it
on the table (`camera_from_board` = the camera's pose inverted, composed with the board's place). Each
pixel integrates light over `supersample` x `supersample` samples, as `cameras.draw` does; samples are
traced through the distortion model exactly (cv2.undistortPointsIter) onto the board's plane.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from enpire_env.calibration.camera_model import Intrinsics, Pose
from enpire_env.calibration.charuco import BoardSpec

_RAYS: dict[tuple, np.ndarray] = {}


def _rays(camera: Intrinsics, supersample: int) -> np.ndarray:
    """Normalised image coordinates (x, y) of every sample of the camera's image (cached per camera)."""
    key = (camera, supersample)
    if key not in _RAYS:
        ss = supersample
        us = (np.arange(camera.width * ss) + 0.5) / ss - 0.5
        vs = (np.arange(camera.height * ss) + 0.5) / ss - 0.5
        grid = np.stack(np.meshgrid(us, vs), axis=-1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
        rays = cv2.undistortPointsIter(grid, camera.matrix, camera.coefficients, None, None, criteria)
        if len(_RAYS) > 8:
            _RAYS.clear()
        _RAYS[key] = rays.reshape(camera.height * ss, camera.width * ss, 2)
    return _RAYS[key]


def through_lens(ideal: np.ndarray, camera: Intrinsics) -> np.ndarray:
    """An image drawn with the ideal pinhole K as the camera with lens distortion records it."""
    if not camera.distorted:
        return ideal
    k = camera.matrix
    rays = _rays(camera, 1)
    map_x = (k[0, 0] * rays[..., 0] + k[0, 2]).astype(np.float32)
    map_y = (k[1, 1] * rays[..., 1] + k[1, 2]).astype(np.float32)
    return cv2.remap(ideal, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def render_board(spec: BoardSpec, camera: Intrinsics, camera_from_board: Pose, supersample: int = 3,
                 background: int = 150, pixels_per_square: int = 120) -> np.ndarray:
    """The grey (uint8 HxW) image of the board at `camera_from_board` (floor of `background` around it)."""
    texture = spec.image(pixels_per_square)
    px_per_m = pixels_per_square / spec.square_m
    rays = _rays(camera, supersample)
    r, t = camera_from_board.rotation, camera_from_board.translation
    board_from_normalised = np.linalg.inv(np.column_stack([r[:, 0], r[:, 1], t]))
    homog = np.concatenate([rays, np.ones(rays.shape[:2] + (1,))], axis=-1) @ board_from_normalised.T
    with np.errstate(divide='ignore', invalid='ignore'):
        xy = homog[..., :2] / homog[..., 2:3]
    # A sample sees the board only in front of the camera: depth of the hit point along the ray > 0.
    depth = xy[..., 0] * r[2, 0] + xy[..., 1] * r[2, 1] + t[2]
    map_xy = (xy * px_per_m - 0.5).astype(np.float32)
    map_xy[~(depth > 0) | ~np.isfinite(map_xy).all(axis=-1)] = -1e6
    fine = cv2.remap(texture, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    return cv2.resize(fine, (camera.width, camera.height), interpolation=cv2.INTER_AREA)


def waving_poses(spec: BoardSpec, camera: Intrinsics, count: int = 12, seed: int = 0,
                 distance_m: tuple[float, float] = (0.35, 0.6), max_tilt_deg: float = 35.0) -> list[Pose]:
    """camera_from_board of a board held at various places, distances and tilts across the view."""
    rng = np.random.default_rng(seed)
    centre_board = np.array([spec.squares_x * spec.square_m / 2, spec.squares_y * spec.square_m / 2, 0.0])
    k_inv = np.linalg.inv(camera.matrix)
    poses = []
    for i in range(count):
        u = camera.width * (0.3 + 0.4 * rng.random())
        v = camera.height * (0.3 + 0.4 * rng.random())
        depth = distance_m[0] + (distance_m[1] - distance_m[0]) * (i % 4) / 3.0
        centre = depth * (k_inv @ np.array([u, v, 1.0]))
        tilt_x, tilt_y = np.radians(rng.uniform(-max_tilt_deg, max_tilt_deg, size=2))
        roll = np.radians(rng.uniform(-20.0, 20.0))
        rot = _rot_x(tilt_x) @ _rot_y(tilt_y) @ _rot_z(roll)   # board z away from the camera: it faces it
        poses.append(Pose(rot, centre - rot @ centre_board))
    return poses


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
