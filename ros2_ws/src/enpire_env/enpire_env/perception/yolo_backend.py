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
    task = 'detect'

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
            self.model = YOLO(str(path), task=self.task)
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


class YoloMasks(YoloDetector):
    """A YOLO-seg model as both the Detector and the Segmenter (the 'yolo_seg' backend): its own masks, at the
    frame's resolution. One inference per frame: the segmenter reuses the detector's result for the same
    image object. Every instance of a label counts (an arm across an object splits it in two): a label's box
    bounds all its instances, its mask is their union."""

    task = 'segment'

    def __init__(self, weights: str | Path, labels: tuple[str, ...] = (), conf: float = 0.25, **options):
        super().__init__(weights, labels, conf, **options)
        if self.model.task != 'segment':
            raise ValueError(f'{self.weights}: a detection model, not a segmentation one (no masks)')
        self._last: tuple[np.ndarray, object] | None = None

    def raw(self, image: np.ndarray):
        if self._last is None or self._last[0] is not image:
            bgr = np.ascontiguousarray(image[..., ::-1])
            result = self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, device='cpu', verbose=False,
                                        max_det=30, retina_masks=True)[0]
            self._last = (image, result)
        return self._last[1]

    def _instances(self, image: np.ndarray) -> dict[str, list[tuple[float, np.ndarray, np.ndarray]]]:
        """label -> [(confidence, xyxy, mask HxW bool)] of every instance found."""
        res = self.raw(image)
        out: dict[str, list] = {}
        if res.boxes is None or not len(res.boxes) or res.masks is None:
            return out
        masks = res.masks.data.cpu().numpy() > 0.5
        for b, c, k, m in zip(res.boxes.xyxy.cpu().numpy(), res.boxes.conf.cpu().numpy(),
                              res.boxes.cls.cpu().numpy().astype(int), masks, strict=True):
            label = self.labels.get(int(k))
            if label is not None:
                out.setdefault(label, []).append((float(c), b, m))
        return out

    def detect(self, image: np.ndarray) -> list[Box]:
        height, width = image.shape[:2]
        boxes = []
        for label, found in self._instances(image).items():
            xyxy = np.array([b for _, b, _ in found])
            x0, y0 = xyxy[:, :2].min(axis=0)
            x1, y1 = xyxy[:, 2:].max(axis=0)
            pad_x = max(self.pad_px, self.pad_fraction * (x1 - x0))
            pad_y = max(self.pad_px, self.pad_fraction * (y1 - y0))
            bx0, by0 = max(0, math.floor(x0 - pad_x)), max(0, math.floor(y0 - pad_y))
            bx1, by1 = min(width, math.ceil(x1 + pad_x)), min(height, math.ceil(y1 + pad_y))
            if bx1 > bx0 and by1 > by0:
                boxes.append(Box(label=label, x0=bx0, y0=by0, x1=bx1, y1=by1,
                                 score=max(c for c, _, _ in found)))
        return boxes

    def segment(self, image: np.ndarray, boxes: list[Box]) -> dict[str, np.ndarray]:
        found = self._instances(image)
        out = {}
        for box in boxes:
            mask = np.zeros(image.shape[:2], np.float32)
            for _, _, m in found.get(box.label, ()):
                mask[m[:image.shape[0], :image.shape[1]]] = 1.0
            inside = np.zeros_like(mask)
            inside[box.y0:box.y1, box.x0:box.x1] = 1.0
            out[box.label] = mask * inside
        return out
