"""Fit the T's pose to its image mask by matching the outline drawn through the camera's homography.

Moments give a start; a pattern search over (centroid x, centroid y, heading) then minimises the
pixels where the mask and the drawn T differ. Working in the image makes the fit indifferent to how
edge pixels were rasterised (both sides are drawn the same way) and to perspective.
"""
from __future__ import annotations

import cv2
import numpy as np

from enpire_task_pusht import geometry as pusht

_SHIFT = 4
_SCALE = float(1 << _SHIFT)


def draw_polygon(shape: tuple[int, int], h: np.ndarray, polygon_table: np.ndarray, x0: int = 0,
                 y0: int = 0) -> np.ndarray:
    """Binary uint8 raster (0/1) of a table polygon in an image window starting at (x0, y0)."""
    p = np.c_[polygon_table, np.ones(len(polygon_table))] @ h.T
    uv = p[:, :2] / p[:, 2:3] - (x0, y0)
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(uv * _SCALE).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return out


def _outline(c: np.ndarray) -> np.ndarray:
    ox, oy = pusht.centroid_to_origin(c[0], c[1], c[2])
    return pusht.t_outline((ox, oy, c[2]))


def refine_pose(mask: np.ndarray, h: np.ndarray, pose, units_per_px: float, max_evals: int = 150,
                start_px: float = 2.0, stop_px: float = 0.05,
                ) -> tuple[tuple[float, float, float], np.ndarray, tuple[int, int]]:
    """Refined origin pose, the drawn T at that pose in the window, and the window's origin (x0, y0)."""
    ys, xs = np.nonzero(mask)
    pad = 4
    x0, y0 = max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0)
    x1, y1 = min(int(xs.max()) + pad + 1, mask.shape[1]), min(int(ys.max()) + pad + 1, mask.shape[0])
    window = (mask[y0:y1, x0:x1] > 0).astype(np.uint8)
    shape = window.shape

    def cost(c):
        drawn = draw_polygon(shape, h, _outline(c), x0, y0)
        return int(np.count_nonzero(drawn != window)), drawn

    cx, cy = pusht.origin_to_centroid(pose)
    best = np.array([cx, cy, pose[2]], dtype=float)
    best_cost, best_drawn = cost(best)
    # Heading step that moves the T's far end (about 80 units from the centroid) by one pixel.
    step = np.array([units_per_px, units_per_px, units_per_px / 80.0]) * start_px
    floor = step * (stop_px / start_px)
    evals = 1
    while evals < max_evals and np.any(step > floor):
        improved = False
        for axis in range(3):
            for sign in (1.0, -1.0):
                cand = best.copy()
                cand[axis] += sign * step[axis]
                c, drawn = cost(cand)
                evals += 1
                if c < best_cost:
                    best, best_cost, best_drawn, improved = cand, c, drawn, True
        if not improved:
            step = step * 0.5
    ox, oy = pusht.centroid_to_origin(best[0], best[1], best[2])
    theta = float(pusht.angle_diff(best[2], 0.0))
    return (float(ox), float(oy), theta), best_drawn, (x0, y0)
