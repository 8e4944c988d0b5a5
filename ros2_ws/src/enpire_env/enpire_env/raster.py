"""Polygon rasterisation shared by the simulated cameras and the verifier (pure numpy)."""
from __future__ import annotations

import numpy as np


def centre_sampled(uv: np.ndarray, half: float = 0.5) -> np.ndarray:
    """Polygon (canvas pixels) moved inward so cv2.fillPoly fills the pixels whose centres it holds.

    fillPoly's spans are inclusive at both ends: it fills every pixel within half a pixel (along the
    edge's dominant axis) of the polygon, growing it by half a pixel. Each edge is moved inward by
    half x max(|n_x|, |n_y|) of its unit normal n, which cancels that on average (measured over
    random T poses: area bias 0.0 +- 0.08 px per unit of outline)."""
    p = np.asarray(uv, dtype=np.float64)
    q = np.empty_like(p)                 # q[i] = p[i + 1]: edge i runs p[i] -> q[i]
    q[:-1], q[-1] = p[1:], p[0]
    e = q - p
    length = np.maximum(np.sqrt(e[:, 0] ** 2 + e[:, 1] ** 2), 1e-12)
    area2 = float(np.dot(p[:, 0], q[:, 1]) - np.dot(q[:, 0], p[:, 1]))
    nx, ny = e[:, 1] / length, -e[:, 0] / length
    if area2 > 0:
        nx, ny = -nx, -ny
    shift = half * np.maximum(np.abs(nx), np.abs(ny))
    a = p + np.column_stack([nx * shift, ny * shift])
    # Vertex i is where the moved edges i-1 and i meet.
    d1, a1 = np.empty_like(e), np.empty_like(a)
    d1[1:], d1[0], a1[1:], a1[0] = e[:-1], e[-1], a[:-1], a[-1]
    den = d1[:, 0] * e[:, 1] - d1[:, 1] * e[:, 0]
    ok = np.abs(den) > 1e-9
    t = ((a[:, 0] - a1[:, 0]) * e[:, 1] - (a[:, 1] - a1[:, 1]) * e[:, 0]) / np.where(ok, den, 1.0)
    out = a1 + t[:, None] * d1
    out[~ok] = a[~ok]
    return out
