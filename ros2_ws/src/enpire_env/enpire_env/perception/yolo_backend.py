"""The trained YOLO detector as a verification Detector (boxes of the task's scene objects).

    det = YoloDetector('~/.cache/enpire/perception/yolo/weights/best.pt', labels=config.labels)
    boxes = det.detect(rgb)     # at most one Box per label, padded, in the Box convention of models.py

A missing weights file raises FileNotFoundError, an unreadable one ValueError, when the detector is built
(node start-up), with the command that makes one; there is no fallback to another detector.
Weights are loaded from a local file only (ultralytics offline, see offline_guard).

Boxes are padded by `pad_fraction` of their size (at least `pad_px` pixels) before they are handed to
a segmenter: the 'yolo' backend fills them with the classical colour segmentation, which keeps only
the object's colour inside the box, so a generous box costs nothing while a tight one would clip it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from enpire_env.perception import offline_guard
from enpire_env.verification.models import Box


class YoloDetector:
    def __init__(self, weights: str | Path, labels: tuple[str, ...] = (), conf: float = 0.25,
                 imgsz: int | None = None, pad_fraction: float = 0.1, pad_px: int = 2,
                 threads: int | None = 2):
        """`labels`: the task's scene objects; weights that know other classes are refused (() : any)."""
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f'YOLO weights not found: {path}. Train them with `enpire perception train` (or '
                '`python -m enpire_env.perception.train`), then give the file as the verify node\'s '
                '`yolo_weights` parameter (or in ENPIRE_YOLO_WEIGHTS).')
        offline_guard.import_ultralytics(threads=threads)
        from ultralytics import YOLO
        try:
            self.model = YOLO(str(path), task='detect')
        except Exception as exc:        # a truncated or foreign file: say which, never fall back
            raise ValueError(f'YOLO weights {path} could not be loaded ({type(exc).__name__}: {exc}); '
                             'train them with `enpire perception train`') from exc
        names = self.model.names
        self.labels = {int(k): v for k, v in (names.items() if isinstance(names, dict) else enumerate(names))}
        unknown = set(self.labels.values()) - set(labels)
        if labels and unknown:
            raise ValueError(f'{path}: classes {sorted(unknown)} are not the verifier\'s labels {labels}')
        # The training image size is stored with the weights; use it unless told otherwise.
        self.weights, self.conf = path, conf
        self.imgsz = int(imgsz or self.model.overrides.get('imgsz') or 160)
        self.pad_fraction, self.pad_px = pad_fraction, pad_px

    def raw(self, image: np.ndarray):
        """Ultralytics' Results for an RGB uint8 image (it expects BGR arrays, as cv2 reads them)."""
        bgr = np.ascontiguousarray(image[..., ::-1])
        return self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, device='cpu', verbose=False,
                                  max_det=30)[0]

    def detect(self, image: np.ndarray) -> list[Box]:
        res = self.raw(image)
        height, width = image.shape[:2]
        best: dict[str, tuple[float, np.ndarray]] = {}
        if res.boxes is not None and len(res.boxes):
            xyxy = res.boxes.xyxy.cpu().numpy()
            conf = res.boxes.conf.cpu().numpy()
            cls = res.boxes.cls.cpu().numpy().astype(int)
            for b, c, k in zip(xyxy, conf, cls, strict=True):
                label = self.labels.get(int(k))
                if label is not None and (label not in best or c > best[label][0]):
                    best[label] = (float(c), b)
        boxes = []
        for label in dict.fromkeys(self.labels.values()):
            if label not in best:
                continue
            score, (x0, y0, x1, y1) = best[label]
            pad_x = max(self.pad_px, self.pad_fraction * (x1 - x0))
            pad_y = max(self.pad_px, self.pad_fraction * (y1 - y0))
            # ultralytics' xyxy: 0 is the left edge of pixel 0; Box: x0 inclusive, x1 exclusive pixels
            bx0, by0 = max(0, math.floor(x0 - pad_x)), max(0, math.floor(y0 - pad_y))
            bx1, by1 = min(width, math.ceil(x1 + pad_x)), min(height, math.ceil(y1 + pad_y))
            if bx1 > bx0 and by1 > by0:
                boxes.append(Box(label=label, x0=bx0, y0=by0, x1=bx1, y1=by1, score=score))
        return boxes
