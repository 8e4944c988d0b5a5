"""The T's pose from the area-weighted moments of its mask on the table, and which table points it holds."""
from __future__ import annotations

import numpy as np

from enpire_task_pusht import geometry as pusht

# Principal variances of the T about its area centroid (along body x, along body y): the symmetry axis
# (body y) is the major axis, so second moments fix the axis and the third moment fixes the direction.
_T_VAR_X = (3600.0 * 1200.0 + 2700.0 * 75.0) / pusht.T_AREA
_T_VAR_Y = (3600.0 * (75.0 + (15.0 - pusht.T_CENTROID_LOCAL[1]) ** 2)
            + 2700.0 * (675.0 + (75.0 - pusht.T_CENTROID_LOCAL[1]) ** 2)) / pusht.T_AREA
T_AXIS_RATIO = _T_VAR_Y / _T_VAR_X


def pose_from_moments(points: np.ndarray, weights: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """T body-origin pose (x, y, theta) from weighted table points, and the measured axis ratio."""
    total = weights.sum()
    c = (points * weights[:, None]).sum(axis=0) / total
    d = points - c
    cov = (d.T * weights) @ d / total
    evals, evecs = np.linalg.eigh(cov)           # ascending: last is the major (symmetry) axis
    axis = evecs[:, 1]
    # Along the stem (+body y) the T has a long thin tail: positive third moment.
    if np.sum(weights * (d @ axis) ** 3) < 0:
        axis = -axis
    # Body y in the world is (-sin theta, cos theta).
    theta = float(np.arctan2(-axis[0], axis[1]))
    x, y = pusht.centroid_to_origin(float(c[0]), float(c[1]), theta)
    ratio = float(evals[1] / max(evals[0], 1e-9))
    return (float(x), float(y), theta), ratio


def inside_t(points: np.ndarray, pose, tol: float = 0.0) -> np.ndarray:
    """Which table points lie inside the T at `pose` (grown by tol units)."""
    x, y, theta = pose
    c, s = np.cos(theta), np.sin(theta)
    dx = points[:, 0] - x
    dy = points[:, 1] - y
    bx = c * dx + s * dy
    by = -s * dx + c * dy
    half_bar = pusht.LENGTH * pusht.SCALE / 2
    bar = (np.abs(bx) <= half_bar + tol) & (by >= -tol) & (by <= pusht.SCALE + tol)
    stem = ((np.abs(bx) <= pusht.SCALE / 2 + tol) & (by >= pusht.SCALE - tol)
            & (by <= pusht.LENGTH * pusht.SCALE + tol))
    return bar | stem
