"""Push-T geometry and success rule, as in the reference gym-pusht environment.

The block pose (x, y, theta) is the pose of the T's body origin (not its centre of mass), in the
512x512 workspace frame, matching gym-pusht's `block.position` / `block.angle`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely.geometry as sg
from shapely.ops import unary_union

WORKSPACE_SIZE = 512.0
SCALE = 30.0
LENGTH = 4.0
AGENT_RADIUS = 15.0
GOAL_POSE = (256.0, 256.0, np.pi / 4)
SUCCESS_COVERAGE = 0.95
CONTROL_HZ = 10
PHYSICS_DT = 0.01
EPISODE_STEPS = 300
# Inner faces of the walls (segments at 5 and 506, radius 2): the free table the T and agent move in.
WALL_INNER = (7.0, 504.0)
FREE_TABLE = np.array([(WALL_INNER[0], WALL_INNER[0]), (WALL_INNER[1], WALL_INNER[0]),
                       (WALL_INNER[1], WALL_INNER[1]), (WALL_INNER[0], WALL_INNER[1])])

# The T as two boxes in its body frame: the bar, then the stem (gym-pusht's add_tee).
BAR_LOCAL = np.array([
    (-LENGTH * SCALE / 2, SCALE), (LENGTH * SCALE / 2, SCALE),
    (LENGTH * SCALE / 2, 0.0), (-LENGTH * SCALE / 2, 0.0)])
STEM_LOCAL = np.array([
    (-SCALE / 2, SCALE), (-SCALE / 2, LENGTH * SCALE),
    (SCALE / 2, LENGTH * SCALE), (SCALE / 2, SCALE)])
# Outline of the union, counter-clockwise in the body frame, for drawing and mask comparison.
T_OUTLINE_LOCAL = np.array([
    (-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (15.0, 30.0), (15.0, 120.0),
    (-15.0, 120.0), (-15.0, 30.0), (-60.0, 30.0)])
# Area centroid of the outline (bar 120x30 about y=15, stem 30x90 about y=75): what a camera's
# mask moments measure. gym-pusht's dynamics use a different point, the mean of the boxes' centroids.
T_AREA = 120.0 * 30.0 + 30.0 * 90.0
T_CENTROID_LOCAL = np.array([0.0, (3600.0 * 15.0 + 2700.0 * 75.0) / T_AREA])


@dataclass(frozen=True)
class PlanarPose:
    x: float
    y: float
    theta: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.theta)


def rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def to_world(points_local: np.ndarray, pose) -> np.ndarray:
    """Body-frame points to workspace coordinates for a pose (x, y, theta)."""
    x, y, theta = pose
    return np.asarray(points_local) @ rotation(theta).T + np.array([x, y])


def t_outline(pose) -> np.ndarray:
    return to_world(T_OUTLINE_LOCAL, pose)


def t_polygon(pose) -> sg.base.BaseGeometry:
    """The T as a shapely geometry (union of the two boxes, as gym-pusht's coverage sees it)."""
    return unary_union([sg.Polygon(to_world(BAR_LOCAL, pose)), sg.Polygon(to_world(STEM_LOCAL, pose))])


_GOAL_GEOMETRY = t_polygon(GOAL_POSE)


def coverage(block_pose) -> float:
    """area(goal & T) / area(goal): the reference success measure."""
    return float(_GOAL_GEOMETRY.intersection(t_polygon(block_pose)).area / _GOAL_GEOMETRY.area)


def is_success(cov: float) -> bool:
    return cov > SUCCESS_COVERAGE


def success_of_state(task_state) -> tuple[float, bool]:
    """The task contract's ground-truth rule on the task-state vector (block x, y, theta, ...)."""
    cov = coverage(tuple(float(v) for v in task_state[:3]))
    return cov, is_success(cov)


def centroid_to_origin(cx: float, cy: float, theta: float) -> tuple[float, float]:
    """Body origin from the T's area centroid and heading (what a camera measures)."""
    off = rotation(theta) @ T_CENTROID_LOCAL
    return cx - off[0], cy - off[1]


def origin_to_centroid(pose) -> tuple[float, float]:
    x, y, theta = pose
    off = rotation(theta) @ T_CENTROID_LOCAL
    return x + off[0], y + off[1]


def angle_diff(a: float, b: float) -> float:
    """Signed smallest difference a - b in (-pi, pi]."""
    d = (a - b + np.pi) % (2 * np.pi) - np.pi
    return float(d if d != -np.pi else np.pi)
