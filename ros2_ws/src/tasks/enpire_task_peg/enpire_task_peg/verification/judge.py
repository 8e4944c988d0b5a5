"""One camera's judgement of "inserted", from its colour frame, its calibration and the box's position (the
reset placed and checked it).

The peg is a rigid bar 0.22 m from its head to its far end. Inserted, its head is hidden in the box, but its
far end sticks out: the camera finds the peg's far end along the projected insertion axis (the line through
the hole's target point along +x) and reads, from the calibrated projection of the end's face, where on the
axis the end and so the head must be.
The bound on that reading is the camera's resolution along the axis (`end_pixels` pixels on the axis, in
metres at that depth). SUCCESS only when the peg lies on the axis in the image, its visible part reaches the
mouth, nothing that could hide its end (the arm, the fingers) touches that end, and the head's whole interval
lies well inside metaworld's window; FAILURE when it clearly lies outside; UNCERTAIN otherwise (peg not
found, end occluded or cut off, axis seen end-on, near the window's edge).

Beside its own verdict, a camera reports its measurement of the peg (`locate.PegImage`: the centreline and
the far end's reach, in pixels, and how sure the bar's outline leaves that centreline: `silhouette.py`) when
its far end is clearly the peg's own and the outline explains its mask; an end-on camera reports where
the peg sits across the axis when nothing touches the peg. The fusion locates the head in 3-D from those
(`fuse.fuse_peg`): one view alone must assume the peg lies on the axis, two do not.

Why the window shrinks to `success_dx` (0.056 m) along the axis: with the head inside the hole, the hole's
walls keep its y and z within 0.015 m of the axis, which costs up to 2 x 0.021 of the 0.07 radius; the rest,
sqrt(0.07^2 - 0.042^2), is what x may use.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
from pydantic import BaseModel

from enpire_env.verification.models import CameraJudgement, VerdictState
from enpire_task_peg.render import CameraPlacement
from enpire_task_peg.simulator import SUCCESS_RADIUS, TARGET_OFFSET
from enpire_task_peg.verification.colour import ColourConfig, hsv, occluder_mask, peg_mask
from enpire_task_peg.verification.locate import (
    HEAD_TO_FAR_END,
    PEG_HALF_WIDTH,
    PegImage,
    View,
    measure_peg,
)
from enpire_task_peg.verification.silhouette import (
    DEFAULT_SILHOUETTE,
    SilhouetteConfig,
    fit_centreline,
    stray,
)

MOUTH_FROM_TARGET = 0.066   # the hole's mouth (box + 0.096 in x) from the target point (box + 0.03)


class JudgeConfig(BaseModel):
    colour: ColourConfig = ColourConfig()
    end_pixels: float = 1.5         # how far (pixels along the axis) the found end may lie from the true one
    learned_end_pixels: float = 3.0  # the same for a learned segmenter's mask (measured: docs, bench)
    # A learned mask's edge strays a pixel beyond the peg's (bench/peg_detector.py: stray pixels' centres
    # 1 px from the nearest true one, p95; 0.5-1 px off the bar's outline): the silhouette fit lets a learned
    # mask's edge pixels lie this far off the outline (a colour mask's: 0.25). At 1.0 exact masks lost every
    # SUCCESS (tests/tasks/peg/test_perception_dataset.py), at 0.25 the trained one's views mostly gave no
    # centreline.
    learned_edge_pixels: float = 0.75
    min_axis_pixels_per_cm: float = 0.8   # below this the camera sees the axis end-on: it cannot judge depth
    max_off_axis_pixels: float = 1.0      # the peg's centreline at the mouth off the projected axis, beyond
    hole_clearance: float = 0.015         # how far the hole lets the peg's axis stray (opening - peg)
    max_end_off_axis_pixels: float = 8.0  # the same at its far end (a tilted grasp)
    mouth_gap_pixels: float = 2.0   # the visible peg must reach this close to the projected mouth
    success_dx: float = float(np.sqrt(SUCCESS_RADIUS ** 2 - (2 * 0.021) ** 2))
    occluder_pixels: int = 3        # pixels beyond the found end searched for the arm or the fingers
    silhouette_fit: bool = True     # the centreline from the bar's outline (silhouette.py), not the pixels'
    silhouette: SilhouetteConfig = DEFAULT_SILHOUETTE


_S_GRID = np.arange(-0.40, 0.90, 0.0005)      # far-end positions along the axis from the target, metres
_CORNERS = (-PEG_HALF_WIDTH, PEG_HALF_WIDTH)
_FACE = np.array([[0.0, dy, dz] for dy in _CORNERS for dz in _CORNERS])


def _far_end_reading(view: View, target: np.ndarray, origin_uv: np.ndarray,
                     direction: np.ndarray, t_observed: float, width: int, height: int) -> float:
    """Where along the axis (metres from the target) the peg's far end lies when the farthest peg pixel along
    the projected axis is at `t_observed`: the far end's face (a 3 cm square) on the axis, its farthest
    corner in the image predicted for every position on a 0.5 mm grid, the observed one interpolated."""
    points = target + _S_GRID[:, None, None] * np.array([1.0, 0.0, 0.0]) + _FACE[None]
    uv = view.project(points.reshape(-1, 3)).reshape(len(_S_GRID), len(_FACE), 2)
    t_pred = np.max((uv - origin_uv) @ direction, axis=1)
    good = np.isfinite(t_pred)
    s_grid, t_pred = _S_GRID[good], t_pred[good]
    if len(t_pred) < 2 or not np.all(np.diff(t_pred) > 0) or not t_pred[0] <= t_observed <= t_pred[-1]:
        return float('nan')
    return float(np.interp(t_observed, t_pred, s_grid))


DEFAULT_CONFIG = JudgeConfig()


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _end_is_clear(measured: PegImage, occluders: np.ndarray, reach: int) -> bool:
    """The measured far end is the peg's own: inside the image, no arm or finger right beyond it."""
    height, width = occluders.shape
    normal = np.array([-measured.direction[1], measured.direction[0]])
    end_uv = measured.centre + measured.t_far * measured.direction
    if not (1.0 <= end_uv[0] < width - 1.0 and 1.0 <= end_uv[1] < height - 1.0):
        return False
    for step in range(1, reach + 1):
        for side in (-2.0, -1.0, 0.0, 1.0, 2.0):
            u, v = end_uv + step * measured.direction + side * normal
            if 0 <= u < width and 0 <= v < height and occluders[int(v), int(u)]:
                return False
    return True


def judge_frame(frame: np.ndarray, placement: CameraPlacement | View, box,
                config: JudgeConfig = DEFAULT_CONFIG, stamp: float | None = None, name: str = '',
                peg: np.ndarray | None = None) -> CameraJudgement:
    """The camera's verdict on one RGB frame (row 0 at the top) given the box's position (world frame); the
    camera is a placement of the simulated cell or a calibrated `View` (then `name` names it). `peg`: a
    learned segmenter's mask of the peg in place of the colour one."""
    t0 = time.perf_counter()
    name = name or getattr(placement, 'name', '')

    def verdict(state: VerdictState, reason: str, confidence: float = 0.0, **details) -> CameraJudgement:
        return CameraJudgement(camera=name, state=state, reason=reason, confidence=confidence,
                               score=1.0 if state == VerdictState.SUCCESS else 0.0, stamp=stamp,
                               latency_ms=(time.perf_counter() - t0) * 1e3, details=details)

    if frame is None or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
        return verdict(VerdictState.UNCERTAIN, 'no_frame')
    height, width = frame.shape[:2]
    view = placement if isinstance(placement, View) else View.of_placement(placement, width, height)
    frame_hsv = hsv(frame)
    peg = peg_mask(frame_hsv, config.colour) if peg is None else np.asarray(peg, bool)
    if int(peg.sum()) < config.colour.min_peg_pixels:
        return verdict(VerdictState.UNCERTAIN, 'peg_not_found')

    target = np.asarray(box, float) + TARGET_OFFSET
    ends = view.project([target, target + [0.1, 0.0, 0.0], target + [MOUTH_FROM_TARGET, 0.0, 0.0]])
    if not np.all(np.isfinite(ends)):
        return verdict(VerdictState.UNCERTAIN, 'axis_behind_camera')
    along = ends[1] - ends[0]
    pixels_per_cm = float(np.linalg.norm(along)) / 10.0
    direction = along / np.linalg.norm(along)
    normal = np.array([-direction[1], direction[0]])
    occluders = occluder_mask(frame_hsv, config.colour)
    if pixels_per_cm < config.min_axis_pixels_per_cm:
        # End-on the view cannot judge depth; its reading of where the peg sits across the axis helps the
        # 3-D location when nothing that could hide part of the peg touches it.
        measured = measure_peg(peg, direction, reads_depth=False)
        ring = cv2.dilate(peg.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~peg
        clean = measured is not None and not (ring & occluders).any() and not _touches_border(peg)
        return verdict(VerdictState.UNCERTAIN, 'axis_end_on', pixels_per_cm=pixels_per_cm,
                       **(measured.details() if clean else {}))

    rows, cols = np.nonzero(peg)
    pixels = np.column_stack([cols + 0.5, rows + 0.5]) - ends[0]
    t, n = pixels @ direction, pixels @ normal
    far = int(np.argmax(t))
    t_far = float(t[far]) + 0.5          # the far edge of the last pixel
    t_mouth = float((ends[2] - ends[0]) @ direction)
    end_uv = ends[0] + t_far * direction

    # The end must be the peg's own end: inside the image, with no arm or finger right beyond it.
    if not (1.0 <= end_uv[0] < width - 1.0 and 1.0 <= end_uv[1] < height - 1.0):
        return verdict(VerdictState.UNCERTAIN, 'peg_cut_off')
    for step in range(1, config.occluder_pixels + 1):
        for side in (-1.0, 0.0, 1.0):
            u, v = end_uv + step * direction + side * normal
            if 0 <= u < width and 0 <= v < height and occluders[int(v), int(u)]:
                return verdict(VerdictState.UNCERTAIN, 'far_end_occluded')

    s_far, s_lo, s_hi = (_far_end_reading(view, target, ends[0], direction, t_far + shift, width, height)
                         for shift in (0.0, -config.end_pixels, config.end_pixels))
    if not np.all(np.isfinite([s_far, s_lo, s_hi])):
        return verdict(VerdictState.UNCERTAIN, 'axis_end_on')
    dx = s_far - HEAD_TO_FAR_END
    dx_lo, dx_hi = min(s_lo, s_hi) - HEAD_TO_FAR_END, max(s_lo, s_hi) - HEAD_TO_FAR_END

    # On the axis where it enters: the peg's pixels just outside the mouth straddle the projected axis line
    # (the grasp may tilt the peg, so its far end may stray further).
    near_end = np.abs(t - t[far]) <= max(2.0, 3.0 * pixels_per_cm)
    off_axis = float(abs(np.median(n[near_end])))
    at_mouth = (t >= t_mouth - 1.0) & (t <= t_mouth + 3.0 * pixels_per_cm)
    mouth_off_axis = float(abs(np.median(n[at_mouth]))) if at_mouth.sum() >= 2 else float('inf')
    reaches_mouth = float(np.min(t)) <= t_mouth + config.mouth_gap_pixels
    details = dict(dx=dx, dx_lo=dx_lo, dx_hi=dx_hi, off_axis_px=off_axis, mouth_off_axis_px=mouth_off_axis,
                   pixels_per_cm=pixels_per_cm, t_min=float(np.min(t)), t_mouth=t_mouth)
    measured = measure_peg(peg, direction)
    if measured is not None and config.silhouette_fit:
        fitted = fit_centreline(view, target, s_far, peg, occluders, ends[0], direction, pixels_per_cm,
                                target[0] + MOUTH_FROM_TARGET, config.silhouette)
        if fitted is not None:
            error = stray(fitted, measured.centre, measured.direction, [measured.t_near, measured.t_far])
            measured = PegImage(measured.centre, measured.direction, measured.t_far, measured.t_near, True,
                                error) if fitted.explains else None
            details['silhouette_misfit_px'] = fitted.misfit
    if measured is not None and _end_is_clear(measured, occluders, config.occluder_pixels):
        details.update(measured.details())
    mouth_tolerance = config.hole_clearance * 100 * pixels_per_cm + config.max_off_axis_pixels
    aligned = mouth_off_axis <= mouth_tolerance and off_axis <= config.max_end_off_axis_pixels
    if aligned and reaches_mouth and -config.success_dx <= dx_lo and dx_hi <= config.success_dx:
        margin = config.success_dx - max(abs(dx_lo), abs(dx_hi))
        return verdict(VerdictState.SUCCESS, '', confidence=float(np.clip(0.6 + 10 * margin, 0.6, 1.0)),
                       **details)
    off_by_far = off_axis > 2 * config.max_end_off_axis_pixels and mouth_off_axis > 2 * mouth_tolerance
    if dx_lo > SUCCESS_RADIUS or dx_hi < -SUCCESS_RADIUS or off_by_far:
        return verdict(VerdictState.FAILURE, 'outside_window', confidence=0.8, **details)
    return verdict(VerdictState.UNCERTAIN, 'near_threshold' if aligned else 'off_axis', **details)
