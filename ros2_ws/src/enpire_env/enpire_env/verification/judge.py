"""One camera's judgement of Push-T: detect, segment, map the T mask to the table, fit its pose, decide.

Conservative by design: a camera only says SUCCESS when the fitted coverage clears the threshold by a
margin its resolution can back, the mask looks like a whole T, and the mask's own coverage agrees.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from enpire_env.tasks import pusht
from enpire_env.verification import fit, geometry, preprocess
from enpire_env.verification.backends import Detector, Segmenter
from enpire_env.verification.config import VerifyConfig
from enpire_env.verification.models import Box, CameraJudgement, Pose2D, VerdictState


@dataclass
class Frame:
    """One camera frame: RGB uint8 HxWx3, its table->image homography (3x3) and its stamp (seconds)."""
    image: np.ndarray | None
    table_to_image: np.ndarray | None
    stamp: float | None = None


@dataclass
class JudgedFrame:
    judgement: CameraJudgement
    masks: dict[str, np.ndarray] = field(default_factory=dict)


def _uncertain(camera: str, reason: str, stamp, t0: float, **extra) -> JudgedFrame:
    j = CameraJudgement(camera=camera, state=VerdictState.UNCERTAIN, reason=reason, stamp=stamp,
                        latency_ms=(time.perf_counter() - t0) * 1e3, **extra)
    return JudgedFrame(j)


def _valid_homography(h) -> bool:
    if h is None:
        return False
    h = np.asarray(h, dtype=np.float64)
    return h.shape == (3, 3) and bool(np.all(np.isfinite(h))) and abs(np.linalg.det(h)) > 1e-12


def judge_frame(camera: str, frame: Frame, config: VerifyConfig, detector: Detector, segmenter: Segmenter,
                now: float | None = None, max_age: float | None = None) -> JudgedFrame:
    t0 = time.perf_counter()
    jc = config.judge
    max_age = jc.max_age_s if max_age is None else max_age
    image = frame.image
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        return _uncertain(camera, 'no_frame', frame.stamp, t0)
    if not _valid_homography(frame.table_to_image):
        return _uncertain(camera, 'no_homography', frame.stamp, t0)
    if now is not None and frame.stamp is not None and now - frame.stamp > max_age:
        return _uncertain(camera, 'stale_frame', frame.stamp, t0)
    if preprocess.is_blank(image):
        return _uncertain(camera, 'no_frame', frame.stamp, t0)

    noise = preprocess.noise_sigma(image)
    if noise > jc.max_noise:
        return _uncertain(camera, 'noisy_frame', frame.stamp, t0, noise=noise)
    work = preprocess.denoise(image, noise)
    if jc.white_balance:
        work = preprocess.white_balance(work)

    boxes = detector.detect(work)
    block_boxes = [b for b in boxes if b.label == 'block']
    if not block_boxes:
        return _uncertain(camera, 'block_not_found', frame.stamp, t0, noise=noise, boxes=boxes)
    masks = segmenter.segment(work, boxes)
    image_to_table = np.linalg.inv(np.asarray(frame.table_to_image, dtype=np.float64))
    points, weights = geometry.table_points(masks['block'], image_to_table)
    if weights.sum() < 0.1 * pusht.T_AREA:
        out = _uncertain(camera, 'block_not_found', frame.stamp, t0, noise=noise, boxes=boxes)
        out.masks = masks
        return out

    pose, _axis_ratio = geometry.pose_from_moments(points, weights)
    box = block_boxes[0]
    h = np.asarray(frame.table_to_image, dtype=np.float64)
    upp = geometry.units_per_pixel(image_to_table, (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
    thr = jc.success_coverage
    binary = (masks['block'] > 0.5).astype(np.uint8)
    if abs(pusht.coverage(pose) - thr) < jc.refine_band:
        # Only a pose near the threshold needs the (costlier) outline fit.
        pose, drawn, (x0, y0) = fit.refine_pose(binary, h, pose, upp)
    else:
        ys, xs = np.nonzero(binary)
        x0, y0 = max(int(xs.min()) - 4, 0), max(int(ys.min()) - 4, 0)
        shape = (min(int(ys.max()) + 5, binary.shape[0]) - y0, min(int(xs.max()) + 5, binary.shape[1]) - x0)
        drawn = fit.draw_polygon(shape, h, pusht.t_outline(pose), x0, y0)
    window = binary[y0:y0 + drawn.shape[0], x0:x0 + drawn.shape[1]]
    n_mask, n_drawn = int(binary.sum()), max(int(drawn.sum()), 1)
    inter = int(np.count_nonzero(window & drawn))
    # Everything compared in pixels drawn the same way, so edge rasterisation cancels out.
    area_ratio = n_mask / n_drawn
    fit_ratio = inter / max(n_mask + n_drawn - inter, 1)           # IoU of mask and fitted T
    goal = _goal_raster(h, binary.shape)
    n_goal = max(int(goal.sum()), 1)
    in_goal = int(np.count_nonzero(binary & goal))
    # Scaled by the fitted/mask pixel ratio so a camera whose edges rasterise thinner or thicker than
    # fillPoly (anti-aliasing, blur) is not read as a coverage difference.
    direct = in_goal / n_goal * min(n_drawn / max(n_mask, 1), 1.1)
    score = pusht.coverage(pose)
    success_margin = jc.success_margin + jc.success_margin_per_unit * upp
    failure_margin = jc.failure_margin + jc.failure_margin_per_unit * upp
    out_of_view = _touches_border(binary)

    # Each quality factor in [0, 1]; the weakest one names the reason when the camera holds back.
    factors = {
        'occluded': 1.0 - max(0.0, 1.0 - area_ratio) / (1.0 - jc.min_area_ratio),
        'extra_pixels': 1.0 - max(0.0, area_ratio - 1.0) / (jc.max_area_ratio - 1.0),
        'shape_mismatch': 1.0 - (1.0 - fit_ratio) / (1.0 - jc.min_fit_ratio),
        'estimates_disagree': 1.0 - abs(score - direct) / (jc.max_direct_gap + jc.direct_gap_per_unit * upp),
        'noisy_frame': 1.0 - noise / jc.max_noise,
        'out_of_view': 0.0 if out_of_view else 1.0,
    }
    quality = min(factors.values())
    weakest = min(factors, key=factors.get)
    if weakest == 'occluded' and _agent_overlaps(boxes, box):
        weakest = 'agent_occludes'
    margin = abs(score - thr) / max(success_margin if score > thr else failure_margin, 1e-9)
    closeness = float(np.clip(margin - 1.0, 0.0, 1.0))   # 0 at the margin, 1 at twice the margin
    confidence = float(np.clip(quality, 0.0, 1.0) * (0.6 + 0.4 * closeness))

    if quality <= 0.0:
        # A hidden part of the T can only add coverage it could hold; if even that cannot reach the
        # threshold, the trial failed whatever the occluder hides.
        upper = (in_goal + max(0, n_drawn - n_mask)) / n_goal
        if weakest in ('occluded', 'agent_occludes', 'out_of_view') and upper < thr - failure_margin:
            state, reason, confidence = VerdictState.FAILURE, weakest, 0.7
        else:
            state, reason = VerdictState.UNCERTAIN, weakest
    elif score >= thr + success_margin and direct >= thr - jc.max_direct_gap:
        state, reason = VerdictState.SUCCESS, ''
    elif score <= thr - failure_margin:
        state, reason = VerdictState.FAILURE, 'below_threshold'
    else:
        state, reason = VerdictState.UNCERTAIN, 'near_threshold'
    if state == VerdictState.SUCCESS and quality < jc.min_success_quality:
        state, reason = VerdictState.UNCERTAIN, 'low_confidence'

    judgement = CameraJudgement(
        camera=camera, state=state, score=float(score), confidence=confidence, reason=reason,
        block_pose=Pose2D(x=pose[0], y=pose[1], theta=pose[2]), stamp=frame.stamp,
        latency_ms=(time.perf_counter() - t0) * 1e3, direct_score=direct, area_ratio=area_ratio,
        fit_ratio=fit_ratio, noise=noise, units_per_pixel=upp, boxes=boxes)
    return JudgedFrame(judgement, masks)


_GOAL_CACHE: dict[tuple, np.ndarray] = {}


def _goal_raster(h: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The goal T drawn in the image (cached: fixed cameras keep their homography)."""
    key = (h.tobytes(), shape)
    raster = _GOAL_CACHE.get(key)
    if raster is None:
        raster = fit.draw_polygon(shape, h, pusht.t_outline(pusht.GOAL_POSE))
        if len(_GOAL_CACHE) > 32:
            _GOAL_CACHE.clear()
        _GOAL_CACHE[key] = raster
    return raster


def _touches_border(mask: np.ndarray) -> bool:
    """A T cut by the image edge cannot be fitted: part of it is out of view."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _agent_overlaps(boxes: list[Box], block: Box, pad: int = 2) -> bool:
    for b in boxes:
        if b.label == 'agent' and not (b.x1 + pad < block.x0 or block.x1 + pad < b.x0
                                       or b.y1 + pad < block.y0 or block.y1 + pad < b.y0):
            return True
    return False
