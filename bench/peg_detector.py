"""Peg insertion: the trained YOLO-seg detector against MuJoCo's segmentation on held-out rendered frames, the
classical colour mask beside it.

States from `enpire_task_peg.verification.states` with a seed the training never used; every camera renders
each at 96 px. Per frame, the peg's mask from the `yolo_seg` backend (the union of its peg instances) and
from the colour judge's HSV range are compared with the exact mask of MuJoCo's segmentation render:
mask IoU (frames where the peg is visible: >= 3 pixels), detection recall (a peg found where one is
visible) and false detections (a peg found where none is), inference latency; and what the judge reads: the
far end's reach along the projected insertion axis (the farthest mask pixel, `judge.judge_frame`), learned
minus true in pixels, in the cameras that see the axis side-on (`JudgeConfig.min_axis_pixels_per_cm`); how
far the learned mask strays beyond the true one (each extra pixel's distance to the nearest true pixel: what
the silhouette fit's `edge_pixels` must allow) and its area over the true one's.
Also ultralytics' own box and mask mAP on the same kind of held-out set
(`enpire_env.perception.train.evaluate`). Prints one JSON line.

    python bench/peg_detector.py --weights W [--states 200] [--seed 77]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

from enpire_env.perception import offline_guard  # noqa: E402

offline_guard.import_ultralytics(threads=2)     # torch before any EGL context (see offline_guard)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from enpire_task_peg.render import CellCameras, camera  # noqa: E402
from enpire_task_peg.simulator import BOX, TARGET_OFFSET  # noqa: E402
from enpire_task_peg.task import TASK  # noqa: E402
from enpire_task_peg.verification.colour import ColourConfig, hsv, peg_mask  # noqa: E402
from enpire_task_peg.verification.judge import DEFAULT_CONFIG  # noqa: E402
from enpire_task_peg.verification.locate import View  # noqa: E402
from enpire_task_peg.verification.states import states  # noqa: E402

from enpire_env.perception import train  # noqa: E402
from enpire_env.verification import load_config, make_backend  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def far_reach(mask: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> float:
    """The far edge of a mask's farthest pixel along the projected axis, as the judge measures it."""
    rows, cols = np.nonzero(mask)
    return float(np.max((np.column_stack([cols + 0.5, rows + 0.5]) - origin) @ direction)) + 0.5


def axis_in_image(view: View, box) -> tuple[np.ndarray, np.ndarray] | None:
    """(origin, unit direction) of the insertion axis in the image; None when the view sees it end-on."""
    target = np.asarray(box, float) + TARGET_OFFSET
    ends = view.project([target, target + [0.1, 0.0, 0.0]])
    along = ends[1] - ends[0]
    if not np.all(np.isfinite(ends)) or np.linalg.norm(along) / 10.0 < DEFAULT_CONFIG.min_axis_pixels_per_cm:
        return None
    return ends[0], along / np.linalg.norm(along)


def stats(errors: list[float]) -> dict:
    e = np.abs(np.asarray(errors, float))
    if not len(e):
        return {}
    return {'n': len(e), 'median_abs_px': round(float(np.median(e)), 3),
            'p95_abs_px': round(float(np.percentile(e, 95)), 3), 'max_abs_px': round(float(e.max()), 3),
            'mean_signed_px': round(float(np.mean(errors)), 3),
            'within_1_5_px': round(float(np.mean(e <= 1.5)), 4),
            'within_3_px': round(float(np.mean(e <= 3.0)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True)
    parser.add_argument('--states', type=int, default=200)
    parser.add_argument('--seed', type=int, default=77)
    parser.add_argument('--map-images', type=int, default=300, help='frames of the mAP held-out set')
    args = parser.parse_args()
    t0 = time.perf_counter()
    model, _ = make_backend('yolo_seg', load_config(TASK), yolo_weights=args.weights)
    sim, snapshots = states(args.states, args.seed)
    cams = CellCameras(sim.model, 96, 96)
    views = {name: View.of_placement(camera(name), 96, 96) for name in cams.names}
    ious, colour_ious, latencies, far_errors, colour_far_errors = [], [], [], [], []
    stray, areas = [], []
    visible = found = absent = false_found = 0
    for snapshot, _ in snapshots:
        sim.restore(snapshot)
        box = sim.task_state()[BOX]
        for name in cams.names:
            image = cams.rgb(sim.data, name)
            truth = cams.segmentation(sim.data, name)['peg']
            t1 = time.perf_counter()
            boxes = [b for b in model.detect(image) if b.label == 'peg']
            learned = model.segment(image, boxes).get('peg', np.zeros(truth.shape, np.float32)) > 0.5
            latencies.append((time.perf_counter() - t1) * 1e3)
            if truth.sum() >= 3:
                visible += 1
                found += bool(boxes)
                ious.append(iou(learned, truth))
                if learned.any():
                    distance = cv2.distanceTransform((~truth).astype(np.uint8), cv2.DIST_L2, 5)
                    stray.extend(distance[learned & ~truth].tolist())
                    areas.append(learned.sum() / truth.sum())
                colour = peg_mask(hsv(image), ColourConfig())
                colour_ious.append(iou(colour, truth))
                axis = axis_in_image(views[name], box)
                if axis is not None:
                    reach = far_reach(truth, *axis)
                    if learned.any():
                        far_errors.append(far_reach(learned, *axis) - reach)
                    if colour.any():
                        colour_far_errors.append(far_reach(colour, *axis) - reach)
            else:
                absent += 1
                false_found += bool(boxes)
    cams.close()
    sim.close()
    with tempfile.TemporaryDirectory() as out:
        held_out = train.evaluate(args.weights, images=args.map_images, seed=args.seed + 1, sizes=(96,),
                                  out=out, task=TASK.name)
    print(json.dumps({
        'frames': visible + absent, 'peg_visible_frames': visible,
        'peg_mask_iou_mean': round(float(np.mean(ious)), 4),
        'peg_mask_iou_median': round(float(np.median(ious)), 4),
        'peg_mask_iou_p10': round(float(np.percentile(ious, 10)), 4),
        'colour_mask_iou_mean': round(float(np.mean(colour_ious)), 4),
        'far_end_error': stats(far_errors), 'colour_far_end_error': stats(colour_far_errors),
        'stray_pixels': {'n': len(stray), **{f'p{q}_px': round(float(np.percentile(stray, q)), 3)
                                              for q in (50, 95, 99)}} if stray else {},
        'peg_area_ratio_median': round(float(np.median(areas)), 4) if areas else None,
        'peg_detection_recall': round(found / max(visible, 1), 4),
        'false_peg_detections': false_found, 'peg_absent_frames': absent,
        'p95_latency_ms': round(float(np.percentile(latencies, 95)), 2),
        'map_held_out': held_out.get('per_class'), 'mask_map_held_out': held_out.get('per_class_masks'),
        'wall_s': round(time.perf_counter() - t0, 1)}))


if __name__ == '__main__':
    main()
