"""Classical OpenCV backend: HSV colour ranges, connected components, masks inside the boxes."""
from __future__ import annotations

import cv2
import numpy as np

from enpire_env.verification.config import HsvRange, VerifyConfig
from enpire_env.verification.models import Box


def in_range(hsv: np.ndarray, rng: HsvRange) -> np.ndarray:
    lo, hi = rng.lo, rng.hi
    if lo[0] <= hi[0]:
        return cv2.inRange(hsv, np.array(lo, np.uint8), np.array(hi, np.uint8))
    # Hue range that wraps around red.
    a = cv2.inRange(hsv, np.array(lo, np.uint8), np.array((179, hi[1], hi[2]), np.uint8))
    b = cv2.inRange(hsv, np.array((0, lo[1], lo[2]), np.uint8), np.array(hi, np.uint8))
    return cv2.bitwise_or(a, b)


class ClassicalBackend:
    """Detector and Segmenter in one: both steps share the colour masks of the last image."""

    def __init__(self, config: VerifyConfig):
        if not config.colours:
            raise ValueError('the classical backend needs the colour range of each scene object '
                             '(`colours` in the task\'s verifier settings)')
        self.colours = config.colours
        self.min_pixels = config.min_blob_pixels
        # The last image itself, not its id: holding it keeps a freed array's id from being reused.
        self._cache_image: np.ndarray | None = None
        self._cache: dict[str, tuple[np.ndarray, list[Box]]] = {}

    # Boxes are found on a view of at most this many pixels a side (every k-th pixel), then scaled back
    # and grown by k: finding objects needs no full resolution, and it keeps 480 px frames fast.
    max_side = 160

    def _analyse(self, image: np.ndarray) -> dict[str, tuple[np.ndarray, list[Box]]]:
        if image is self._cache_image:
            return self._cache
        k = max(1, -(-max(image.shape[:2]) // self.max_side))
        small = np.ascontiguousarray(image[::k, ::k]) if k > 1 else image
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        result = {}
        hgt, wid = image.shape[:2]
        for label, rng in self.colours.items():
            mask = in_range(hsv, rng)
            boxes = self._boxes(label, mask)
            if k > 1:
                boxes = [b.model_copy(update=dict(x0=max(b.x0 * k - k, 0), y0=max(b.y0 * k - k, 0),
                                                  x1=min(b.x1 * k + k, wid), y1=min(b.y1 * k + k, hgt)))
                         for b in boxes]
            result[label] = (mask, boxes)
        self._cache_image, self._cache = image, result
        return result

    def _boxes(self, label: str, mask: np.ndarray) -> list[Box]:
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return []
        areas = stats[1:, cv2.CC_STAT_AREA]
        biggest = int(areas.max())
        if biggest < self.min_pixels:
            return []
        # Keep the pieces of one object (an occluder can cut it in two), drop speckle.
        keep = [i + 1 for i, a in enumerate(areas) if a >= max(self.min_pixels // 2, 0.08 * biggest)]
        x0 = min(int(stats[i, cv2.CC_STAT_LEFT]) for i in keep)
        y0 = min(int(stats[i, cv2.CC_STAT_TOP]) for i in keep)
        x1 = max(int(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]) for i in keep)
        y1 = max(int(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT]) for i in keep)
        score = float(sum(int(areas[i - 1]) for i in keep) / max(1, int(areas.sum())))
        return [Box(label=label, x0=x0, y0=y0, x1=x1, y1=y1, score=score)]

    def detect(self, image: np.ndarray) -> list[Box]:
        return [b for _, boxes in self._analyse(image).values() for b in boxes]

    def segment(self, image: np.ndarray, boxes: list[Box]) -> dict[str, np.ndarray]:
        colour = self._analyse(image)
        masks = {}
        for box in boxes:
            full = colour[box.label][0] if box.label in colour else None
            if full is None:
                continue
            if full.shape != image.shape[:2]:   # found on a subsampled view: back to full size
                full = cv2.resize(full, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
            mask = np.zeros(full.shape, np.float32)
            roi = full[box.y0:box.y1, box.x0:box.x1]
            mask[box.y0:box.y1, box.x0:box.x1] = roi.astype(np.float32) / 255.0
            masks[box.label] = mask
        return masks


def make_classical(config: VerifyConfig):
    """The 'classical' backend: one object is both Detector and Segmenter."""
    backend = ClassicalBackend(config)
    return backend, backend
