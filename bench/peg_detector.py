"""Peg insertion: the trained YOLO-seg detector against MuJoCo's segmentation on held-out rendered frames, the
classical colour mask beside it.

States from `enpire_task_peg.verification.states` with a seed the training never used; every camera renders
each at 96 px. Per frame, the peg's mask from the `yolo_seg` backend (the union of its peg instances) and
from the colour judge's HSV range are compared with the exact mask of MuJoCo's segmentation render:
mask IoU (frames where the peg is visible: >= 3 pixels), detection recall (a peg found where one is
visible) and false detections (a peg found where none is), inference latency. Also ultralytics' own box and
mask mAP on the same kind of held-out set (`enpire_env.perception.train.evaluate`). Prints one JSON line.

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

import numpy as np  # noqa: E402
from enpire_task_peg.render import CellCameras  # noqa: E402
from enpire_task_peg.task import TASK  # noqa: E402
from enpire_task_peg.verification.colour import ColourConfig, hsv, peg_mask  # noqa: E402
from enpire_task_peg.verification.states import states  # noqa: E402

from enpire_env.perception import train  # noqa: E402
from enpire_env.verification import load_config, make_backend  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


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
    ious, colour_ious, latencies = [], [], []
    visible = found = absent = false_found = 0
    for snapshot, _ in snapshots:
        sim.restore(snapshot)
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
                colour_ious.append(iou(peg_mask(hsv(image), ColourConfig()), truth))
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
        'peg_detection_recall': round(found / max(visible, 1), 4),
        'false_peg_detections': false_found, 'peg_absent_frames': absent,
        'p95_latency_ms': round(float(np.percentile(latencies, 95)), 2),
        'map_held_out': held_out.get('per_class'), 'mask_map_held_out': held_out.get('per_class_masks'),
        'wall_s': round(time.perf_counter() - t0, 1)}))


if __name__ == '__main__':
    main()
