"""Pure math of the real-robot adapters: table pixels <-> robot frame, twist control, joint targets.

The cell speaks in workspace pixels of the 512x512 table (frame "table"); a robot speaks in metres of
its base frame. `TableToRobot` is the 2D affine map between them (a calibration: 6 numbers) plus the
tool height and orientation. No rclpy here.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from enpire_common.task import resolve


@dataclass
class TableToRobot:
    """robot_xy = A @ pixel_xy + t, with `affine` = [a, b, tx, c, d, ty] (metres per pixel, metres)."""
    affine: Sequence[float] = (0.001, 0.0, 0.3, 0.0, -0.001, 0.256)
    tool_z: float = 0.02
    tool_orientation_xyzw: Sequence[float] = (1.0, 0.0, 0.0, 0.0)   # tool pointing down

    def __post_init__(self):
        if len(self.affine) != 6:
            raise ValueError(f'affine needs 6 numbers [a, b, tx, c, d, ty], got {list(self.affine)}')
        if len(self.tool_orientation_xyzw) != 4:
            raise ValueError('tool_orientation_xyzw needs 4 numbers')
        a, b, tx, c, d, ty = (float(v) for v in self.affine)
        self._m = np.array([[a, b], [c, d]])
        self._t = np.array([tx, ty])
        if abs(np.linalg.det(self._m)) < 1e-12:
            raise ValueError(f'affine {list(self.affine)} is singular')
        self._inv = np.linalg.inv(self._m)
        q = np.asarray(self.tool_orientation_xyzw, dtype=float)
        norm = float(np.linalg.norm(q))
        if norm < 1e-9:
            raise ValueError('tool_orientation_xyzw is not a rotation')
        self.quaternion = tuple(float(v) for v in q / norm)

    def to_robot(self, x_px: float, y_px: float) -> tuple[float, float, float]:
        x, y = self._m @ np.array([x_px, y_px], dtype=float) + self._t
        return float(x), float(y), float(self.tool_z)

    def to_table(self, x: float, y: float) -> tuple[float, float]:
        px, py = self._inv @ (np.array([x, y], dtype=float) - self._t)
        return float(px), float(py)

    def velocity_to_table(self, vx: float, vy: float) -> tuple[float, float]:
        px, py = self._inv @ np.array([vx, vy], dtype=float)
        return float(px), float(py)


def twist_toward(target_xy: Sequence[float], current_xy: Sequence[float], gain: float, max_speed: float,
                 deadband: float = 0.0) -> tuple[float, float]:
    """A proportional Cartesian velocity toward the target, its norm clipped to max_speed (m/s)."""
    dx, dy = target_xy[0] - current_xy[0], target_xy[1] - current_xy[1]
    dist = math.hypot(dx, dy)
    if dist <= deadband or dist == 0.0:
        return 0.0, 0.0
    speed = min(max_speed, gain * dist)
    return speed * dx / dist, speed * dy / dist


JointMap = Callable[[float, float, float], Sequence[float]]


def gantry_joints(n_joints: int) -> JointMap:
    """A Cartesian gantry: prismatic joints x, y (and z when there are three)."""
    if n_joints not in (2, 3):
        raise ValueError(f'the gantry map drives 2 or 3 joints (x, y[, z]), got {n_joints} joint names')
    return lambda x, y, z: [x, y, z][:n_joints]


def load_joint_map(spec: str, n_joints: int) -> JointMap:
    """'gantry', or 'package.module:function' taking (x, y, z) in the robot frame, returning positions."""
    if spec == 'gantry':
        return gantry_joints(n_joints)
    if ':' not in spec:
        raise ValueError(f"joint_map {spec!r}: 'gantry' or 'package.module:function'")
    function = resolve(spec)
    if not callable(function):
        raise ValueError(f'joint_map {spec!r} is not callable')
    return function
