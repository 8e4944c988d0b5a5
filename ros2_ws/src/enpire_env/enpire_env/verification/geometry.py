"""Table-plane geometry of image masks: pixels to table points with area weights, pixel size on the table."""
from __future__ import annotations

import numpy as np


def table_points(mask: np.ndarray, image_to_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask pixels (value > 0) as table points (N x 2) and their table areas (mask value x pixel area).

    A pixel's table area is |det J| of the image->table homography at the pixel centre, det(G)/w^3, so
    oblique views (far pixels cover more table) give unbiased areas and moments.
    """
    vs, us = np.nonzero(mask > 0)
    if us.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    g = image_to_table
    u = us.astype(np.float64)
    v = vs.astype(np.float64)
    w = g[2, 0] * u + g[2, 1] * v + g[2, 2]
    x = (g[0, 0] * u + g[0, 1] * v + g[0, 2]) / w
    y = (g[1, 0] * u + g[1, 1] * v + g[1, 2]) / w
    area = np.abs(np.linalg.det(g) / w ** 3) * mask[vs, us]
    return np.stack([x, y], axis=1), area


def units_per_pixel(image_to_table: np.ndarray, u: float, v: float) -> float:
    """Side of a pixel on the table near image point (u, v), in workspace units."""
    g = image_to_table
    w = g[2, 0] * u + g[2, 1] * v + g[2, 2]
    return float(np.sqrt(abs(np.linalg.det(g) / w ** 3)))
