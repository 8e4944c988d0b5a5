"""Sub-pixel evidence from area-sampled colours: unmix each pixel into palette fractions, measure coverage.

A camera integrates light over each pixel's area, so a pixel on an edge has a colour between the
colours that share it. With a known palette (T block, agent, goal, table) and the sum-to-one
constraint the four fractions follow from the three channels by a 4x4 linear solve; a pixel whose
colour no mix of the palette explains (an occluder, a shadow) is marked unknown.

Coverage straight from those fractions, with the goal's exact footprint in each pixel (the known goal
polygon through the homography, rasterised finely and area-averaged):
    T & goal = goal - visible goal - goal hidden by the agent or unknown pixels
The hidden part may or may not be under the T, so the camera gets bounds [lo, hi] rather than a
number; both are exact up to the camera's own sampling when nothing is hidden.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from enpire_env.raster import centre_sampled
from enpire_task_pusht import geometry as pusht

ORDER = ('block', 'agent', 'goal', 'background')


def unmix_matrix(palette: dict[str, tuple[int, int, int]]) -> np.ndarray:
    """4x4 M with fractions = M @ [r, g, b, 1] for the palette colours in ORDER."""
    cols = np.array([palette[k] for k in ORDER], dtype=np.float64).T    # 3 x 4
    a = np.vstack([cols, np.ones(4)])
    return np.linalg.inv(a)


def unmix(rgb: np.ndarray, m: np.ndarray, palette_cols: np.ndarray, max_residual: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Fractions (H x W x 4, ORDER, clipped, summing to 1) and the unknown mask (H x W, float 0/1)."""
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    f = cv2.transform(x, m.astype(np.float32))            # [r g b 1] -> 4 fractions, per pixel
    np.clip(f, 0.0, 1.0, out=f)
    s = cv2.transform(f, np.ones((1, 4), np.float32))
    f /= np.maximum(s, 1e-6)[..., None] if s.ndim == 2 else np.maximum(s, 1e-6)
    recon = cv2.transform(f, np.hstack([palette_cols, np.zeros((3, 0))]).astype(np.float32))
    diff = cv2.absdiff(recon, x)
    resid = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    unknown = (resid > max_residual).astype(np.float32)
    f *= (1.0 - unknown)[..., None]
    return f, unknown


def colour_cast(rgb: np.ndarray, fractions: np.ndarray, unknown: np.ndarray,
                palette_cols: np.ndarray) -> float:
    """How far the window's colours sit from any mix of the palette, on average and with sign, over the
    pixels it explains (0..255): a lighting or white-balance shift moves every pixel the same way (the
    fractions then misread the scene); noise averages out."""
    known = unknown < 0.5
    if not known.any():
        return 0.0
    recon = fractions[known] @ palette_cols.T.astype(np.float32)
    return float(np.abs((rgb[known].astype(np.float32) - recon).mean(axis=0)).max())


def pixel_areas(image_to_table: np.ndarray, u0: int, v0: int, w: int, h: int) -> np.ndarray:
    """Table area (units^2) of each pixel of a window: |det J| of image->table at the pixel centre."""
    g = image_to_table
    u = np.arange(u0, u0 + w, dtype=np.float64)[None, :]
    v = np.arange(v0, v0 + h, dtype=np.float64)[:, None]
    den = g[2, 0] * u + g[2, 1] * v + g[2, 2]
    return (np.abs(np.linalg.det(g)) / np.abs(den) ** 3).astype(np.float32)


@dataclass
class GoalFootprint:
    """The goal's exact share of each pixel in a window [v0:v1, u0:u1] of the image."""
    u0: int
    v0: int
    frac: np.ndarray          # float32 (v1 - v0) x (u1 - u0), 0..1
    areas: np.ndarray         # table area per pixel
    in_view: bool

    @property
    def u1(self) -> int:
        return self.u0 + self.frac.shape[1]

    @property
    def v1(self) -> int:
        return self.v0 + self.frac.shape[0]


_GOAL_CACHE: OrderedDict[tuple, GoalFootprint] = OrderedDict()   # LRU: moving cameras churn


def polygon_fractions(h: np.ndarray, polygon: np.ndarray, u0: int, v0: int, w: int, hgt: int,
                      ss: int) -> np.ndarray:
    """Share of each pixel of a window inside a table polygon: drawn ss times finer, area-averaged."""
    p = np.c_[polygon, np.ones(len(polygon))] @ h.T
    uv = p[:, :2] / p[:, 2:3] - (u0, v0)
    fine_uv = (uv + 0.5) * ss - 0.5
    canvas = np.zeros((hgt * ss, w * ss), np.uint8)
    pts = np.round(centre_sampled(fine_uv) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_8, shift=4)
    if ss == 1:
        return canvas.astype(np.float32) / 255.0
    small = cv2.resize(canvas.astype(np.float32), (w, hgt), interpolation=cv2.INTER_AREA)
    return small / 255.0


def goal_footprint(h: np.ndarray, shape: tuple[int, int], cache: bool = True) -> GoalFootprint:
    key = (h.tobytes(), shape)
    hit = _GOAL_CACHE.get(key) if cache else None
    if hit is not None:
        _GOAL_CACHE.move_to_end(key)
        return hit
    outline = pusht.t_outline(pusht.GOAL_POSE)
    p = np.c_[outline, np.ones(len(outline))] @ h.T
    uv = p[:, :2] / p[:, 2:3]
    hgt, wid = shape
    in_view = bool(np.all(p[:, 2] > 0) and uv.min() >= 0.5 and uv[:, 0].max() <= wid - 1.5
                   and uv[:, 1].max() <= hgt - 1.5)
    if not in_view:   # no direct estimate then: skip the raster
        return GoalFootprint(0, 0, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), False)
    u0, v0 = (np.floor(uv.min(axis=0)).astype(int) - 1).clip(0)
    u1 = int(min(math.ceil(uv[:, 0].max()) + 2, wid))
    v1 = int(min(math.ceil(uv[:, 1].max()) + 2, hgt))
    u0, v0 = int(min(u0, max(u1 - 1, 0))), int(min(v0, max(v1 - 1, 0)))
    g = np.linalg.inv(h)
    areas = pixel_areas(g, u0, v0, max(u1 - u0, 1), max(v1 - v0, 1))
    upp = float(np.sqrt(np.median(areas)))
    # Fine enough that one sample is under ~0.4 table units (8x at 96 px, 3x at 480 px for the top view).
    ss = int(np.clip(math.ceil(upp / 0.4), 2, 12))
    if (v1 - v0) * (u1 - u0) * ss * ss > 6_000_000:
        ss = max(2, int(math.sqrt(6_000_000 / max((v1 - v0) * (u1 - u0), 1))))
    frac = polygon_fractions(h, outline, u0, v0, max(u1 - u0, 1), max(v1 - v0, 1), ss)
    fp = GoalFootprint(u0, v0, frac, areas, in_view)
    if cache:
        _GOAL_CACHE[key] = fp
        while len(_GOAL_CACHE) > 8:
            _GOAL_CACHE.popitem(last=False)
    return fp


@dataclass
class DirectCoverage:
    lo: float        # T & goal if nothing hidden is T
    hi: float        # ... if everything hidden is T
    hidden: float    # share of the goal hidden (agent, unknown pixels)
    unknown: float   # share of the goal that no palette mix explains (occluder)


def direct_coverage(fp: GoalFootprint, fractions: np.ndarray, unknown: np.ndarray) -> DirectCoverage:
    """Coverage bounds from the fractions of the goal window (same window as the footprint)."""
    a = fp.areas * fp.frac
    goal = float(a.sum())
    visible = float((fp.areas * np.minimum(fractions[..., 2], fp.frac)).sum())
    agent = float((a * fractions[..., 1]).sum())
    unk = float((a * unknown).sum())
    covered_max = max(goal - visible, 0.0)
    lo = max(covered_max - agent - unk, 0.0) / goal
    hi = covered_max / goal
    return DirectCoverage(lo=lo, hi=min(hi, 1.0), hidden=(agent + unk) / goal, unknown=unk / goal)
