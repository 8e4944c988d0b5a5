"""A view's centreline of the peg fitted as the projection of the bar's 3-D shape, not the pixels' principal
axis.

The principal axis of the visible pixels is biased wherever part of the bar is hidden on one side (a finger
across it, its end seen in part through the mouth): by centimetres once located in 3-D. Hiding only ever
removes peg pixels, never adds them, so the bar's true outline holds every peg pixel; and where nothing can
hide it (beyond the box's mouth, away from the arm and the fingers) it shows peg. The fit moves the bar's
outline (the 0.24 x 0.03 x 0.03 m bar on the hole's axis, its far end where the view read it, projected
through the calibration) across and around the projected axis, and keeps the placements that leave the
fewest peg pixels outside it plus the fewest pixels inside its visible part that show neither peg nor
anything that could hide it. The centreline is the projected axis of the middle of the best placements;
their spread at the line's ends is the view's own error of it. Pure numpy + OpenCV, no rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel

from enpire_task_peg.verification.locate import PEG_HALF_WIDTH, View

PEG_LENGTH = 0.24           # the bar's full length (its head 0.02 inside its near end)


class SilhouetteConfig(BaseModel):
    max_offset_cm: float = 4.0      # how far across the projected axis the bar is searched (centimetres)
    max_angle_deg: float = 12.0     # how far it may turn in the image
    edge_pixels: float = 0.25       # a mask's edge pixel may lie this far off the outline (tilt, roll)
    mouth_clear_m: float = 0.005    # the visible part starts this far beyond the mouth's plane
    slack: float = 1.0              # placements this many pixels worse than the best count as fitting too
    end_margin_m: float = 0.02      # how far the ends' reading may be off along the bar (metres)
    # The best placement may leave this many pixels unexplained (plus the fraction of the peg's pixels); more
    # and something the colours do not know hides the bar (a grey cable): the view gives no centreline.
    max_misfit_pixels: float = 3.0
    max_misfit_fraction: float = 0.02


DEFAULT_SILHOUETTE = SilhouetteConfig()


@dataclass(frozen=True)
class FittedLine:
    centre: np.ndarray      # the middle of the fitting placements' lines
    direction: np.ndarray
    points: np.ndarray      # every fitting placement's line: a point on it and its direction (n x 2 each)
    directions: np.ndarray
    misfit: float           # the best placement's count of pixels it does not explain
    max_misfit: float       # beyond which the outline does not explain the view

    @property
    def explains(self) -> bool:
        return self.misfit <= self.max_misfit


def _outline(view: View, near_x: float, far_x: float, target: np.ndarray) -> np.ndarray | None:
    """The convex outline (pixels) of the bar on the hole's axis between near_x and far_x (world x)."""
    sides = (-PEG_HALF_WIDTH, PEG_HALF_WIDTH)
    corners = np.array([[x, target[1] + dy, target[2] + dz]
                        for x in (near_x, far_x) for dy in sides for dz in sides])
    uv = view.project(corners)
    if not np.all(np.isfinite(uv)):
        return None
    return cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2).astype(float)


def _half_planes(polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals and offsets of a convex polygon's edges: inside iff normals @ p <= offsets."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    keep = np.linalg.norm(edges, axis=1) > 1e-9
    polygon, edges = polygon[keep], edges[keep]
    normals = np.column_stack([edges[:, 1], -edges[:, 0]]) / np.linalg.norm(edges, axis=1)[:, None]
    centre = polygon.mean(axis=0)
    flip = (normals @ centre) - np.sum(normals * polygon, axis=1) > 0
    normals[flip] *= -1
    return normals, np.sum(normals * polygon, axis=1)


def _counts_outside(points: np.ndarray, planes, pivot, normal, angles, offsets, grow: float) -> np.ndarray:
    """For every placement (angle a, offset c: the outline turned by a about `pivot`, moved c along
    `normal`), how many points lie outside the outline grown by `grow` pixels (shrunk when negative)."""
    normals, limits = planes
    out = np.zeros((len(angles), len(offsets)))
    if len(points) == 0:
        return out
    rel = points - pivot
    for i, a in enumerate(angles):
        c, s = np.cos(a), np.sin(a)
        turned = np.column_stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]]) + pivot
        shift = np.array([c * normal[0] + s * normal[1], -s * normal[0] + c * normal[1]])
        # a point p is inside the placed outline iff R(-a)(p - pivot - c n) + pivot is inside the outline
        base = turned @ normals.T - limits - grow                  # (points, edges)
        along = normals @ shift                                     # (edges,)
        outside = base[None] - np.asarray(offsets)[:, None, None] * along[None, None] > 0
        out[i] = np.count_nonzero(outside.any(axis=2), axis=1)
    return out


def _outside_by(points: np.ndarray, planes, pivot, normal, angle: float, offset: float, grow: float
                ) -> np.ndarray:
    """How far (pixels, about) each point lies outside one placement's outline grown by `grow`; negative:
    inside, by that much."""
    normals, limits = planes
    if len(points) == 0:
        return np.zeros(0)
    c, s = np.cos(angle), np.sin(angle)
    q = points - pivot - offset * normal
    q = np.column_stack([c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1]]) + pivot
    return np.max(q @ normals.T - limits - grow, axis=1)


def fit_centreline(view: View, target: np.ndarray, s_far: float, peg: np.ndarray, hiders: np.ndarray,
                   axis_uv: np.ndarray, direction: np.ndarray, pixels_per_cm: float, mouth_x: float,
                   config: SilhouetteConfig = DEFAULT_SILHOUETTE) -> FittedLine | None:
    """The view's centreline of the bar from its peg mask and the mask of what may hide it (`hiders`: the
    arm, the fingers), given where along the hole's axis the view read the far end (`s_far`, metres from
    the target), the projected axis (a point and its direction, pixels) and the mouth's plane (world x).
    None when the bar's outline cannot be projected."""
    target = np.asarray(target, float)
    far_x = target[0] + s_far
    # The ends' reading rests on the bar lying on the hole's axis: off it, they move along the line. Only the
    # bar's long sides place it across the line: the outline that must hold every peg pixel reaches past both
    # ends, the part that must show peg stops short of them.
    e = config.end_margin_m
    whole = _outline(view, far_x - PEG_LENGTH - e, far_x + e, target)
    near_x = max(far_x - PEG_LENGTH + e, mouth_x + config.mouth_clear_m)
    visible = _outline(view, near_x, far_x - e, target) if far_x - e > near_x else None
    if whole is None:
        return None
    normal = np.array([-direction[1], direction[0]])
    rows, cols = np.nonzero(peg)
    pegs = np.column_stack([cols + 0.5, rows + 0.5])
    t_pegs = (pegs - axis_uv) @ direction
    pivot = axis_uv + float(np.mean(t_pegs)) * direction
    span = config.max_offset_cm * pixels_per_cm + 2.0
    # the pixels a placement's visible part may cover that show neither peg nor what could hide it
    candidates = np.zeros((0, 2))
    if visible is not None:
        reach = float(np.max(np.linalg.norm(visible - pivot, axis=1))) + span
        height, width = peg.shape
        u0, u1 = max(0, int(pivot[0] - reach)), min(width, int(pivot[0] + reach) + 1)
        v0, v1 = max(0, int(pivot[1] - reach)), min(height, int(pivot[1] + reach) + 1)
        free = ~(peg[v0:v1, u0:u1] | hiders[v0:v1, u0:u1])
        rr, cc = np.nonzero(free)
        candidates = np.column_stack([cc + u0 + 0.5, rr + v0 + 0.5])
        # only those near the axis band can ever fall inside
        near = np.abs((candidates - axis_uv) @ normal) <= span + np.max(np.abs((visible - axis_uv) @ normal))
        candidates = candidates[near]
    planes_whole = _half_planes(whole)
    planes_visible = _half_planes(visible) if visible is not None and len(candidates) else None

    def score(angles, offsets, pegs=pegs, candidates=candidates, fixed=0.0):
        misses = _counts_outside(pegs, planes_whole, pivot, normal, angles, offsets, config.edge_pixels)
        if planes_visible is not None:
            inside = len(candidates) - _counts_outside(candidates, planes_visible, pivot, normal, angles,
                                                       offsets, -config.edge_pixels)
            misses = misses + inside
        return misses + fixed

    # Coarse: every placement over the whole search, on at most ~1500 points of each kind (a fine image
    # has thousands); fine: around the best, on every point near its outline (the others stay in or out).
    max_angle = np.radians(config.max_angle_deg)
    step = max(1.0, span / 20)
    angles, offsets = np.linspace(-max_angle, max_angle, 13), np.arange(-span, span + 1e-9, step)
    stride_p, stride_c = 1 + len(pegs) // 1500, 1 + len(candidates) // 1500
    scores = score(angles, offsets, pegs[::stride_p], candidates[::stride_c])
    i, j = np.unravel_index(np.argmin(scores), scores.shape)
    angle_step = angles[1] - angles[0]
    fine_angles = angles[i] + np.linspace(-angle_step, angle_step, 9)
    fine_offsets = offsets[j] + np.arange(-1.5 * step, 1.5 * step + 1e-9, step / 8)
    reach = float(np.max(np.linalg.norm(np.vstack([pegs, candidates]) - pivot, axis=1)))
    margin = 1.5 * step + angle_step * reach + 1.0
    d_pegs = _outside_by(pegs, planes_whole, pivot, normal, angles[i], offsets[j], config.edge_pixels)
    fixed = float(np.count_nonzero(d_pegs > margin))
    band_pegs = pegs[np.abs(d_pegs) <= margin]
    band_candidates = candidates
    if planes_visible is not None:
        d_cand = _outside_by(candidates, planes_visible, pivot, normal, angles[i], offsets[j],
                             -config.edge_pixels)
        fixed += float(np.count_nonzero(d_cand < -margin))
        band_candidates = candidates[np.abs(d_cand) <= margin]
    scores = score(fine_angles, fine_offsets, band_pegs, band_candidates, fixed)
    best = float(scores.min())
    fit = np.argwhere(scores <= best + config.slack)
    a_fit, c_fit = fine_angles[fit[:, 0]], fine_offsets[fit[:, 1]]
    a_mid, c_mid = float(np.mean(a_fit)), float(np.mean(c_fit))
    centre = pivot + c_mid * normal
    line_direction = np.array([[np.cos(a_mid), -np.sin(a_mid)], [np.sin(a_mid), np.cos(a_mid)]]) @ direction
    points = pivot + c_fit[:, None] * normal
    directions = np.column_stack([np.cos(a_fit) * direction[0] - np.sin(a_fit) * direction[1],
                                  np.sin(a_fit) * direction[0] + np.cos(a_fit) * direction[1]])
    return FittedLine(centre, line_direction, points, directions, best,
                      config.max_misfit_pixels + config.max_misfit_fraction * len(pegs))


def stray(fitted: FittedLine, centre, direction, t_ends) -> float:
    """How far the fitting placements' lines lie from a line (centre, direction) at its points t_ends: the
    view's error of that line, by the bar's outline."""
    ends = np.asarray(centre, float) + np.outer(t_ends, direction)           # (2, 2)
    rel = ends[None] - fitted.points[:, None]                                 # (n, 2, 2)
    across = fitted.directions[:, None, 0] * rel[..., 1] - fitted.directions[:, None, 1] * rel[..., 0]
    return float(np.max(np.abs(across)))
