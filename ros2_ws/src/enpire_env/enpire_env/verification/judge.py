"""The per-camera judge protocol: one camera's frame in, a `JudgedFrame` out.

A task brings its judge (`Task.verifier.judge`, a factory `(config, detector, segmenter) -> Judge`); the
framework asks it camera by camera and fuses the answers (fusion.py). Every judge starts with the same
checks (`check_frame`): no image, no table mapping (a table task) or no camera calibration (a 3-D task), a
stale or a blank frame are UNCERTAIN, never a guess.

A frame carries what a judge may need beside the image: its table-to-image homography (a task on the table
plane), its camera's calibrated model (intrinsics and pose in the task's frame: a 3-D task locates objects
from several views with it) and the scene as the reset placed it (`layout`: object name -> its pose vector,
e.g. where the box with the hole stands).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from enpire_env.calibration.camera_model import CameraModel
from enpire_env.verification import preprocess
from enpire_env.verification.models import CameraJudgement, VerdictState


@dataclass
class Frame:
    """One camera frame: RGB uint8 HxWx3, its table->image homography (3x3) and its stamp (seconds); for a
    3-D task its camera's model and the placed layout."""
    image: np.ndarray | None
    table_to_image: np.ndarray | None
    stamp: float | None = None
    camera: CameraModel | None = None
    layout: Mapping[str, tuple[float, ...]] | None = None


@dataclass
class JudgedFrame:
    """A camera's judgement and its masks (made only when asked for, e.g. for evidence)."""
    judgement: CameraJudgement
    _masks: dict[str, np.ndarray] = field(default_factory=dict)
    _make_masks: Callable[[], dict[str, np.ndarray]] | None = None

    @property
    def masks(self) -> dict[str, np.ndarray]:
        if self._make_masks is not None:
            self._masks = {**self._make_masks(), **self._masks}
            self._make_masks = None
        return self._masks

    @masks.setter
    def masks(self, value: dict[str, np.ndarray]) -> None:
        self._masks, self._make_masks = value, None


class Judge(Protocol):
    """A task's per-camera judge, built once per verifier from the task's settings and perception backend."""

    # The task's success threshold on the score (fusion asks a camera deciding alone to clear it by its
    # own margin); None when the task's score has no threshold.
    threshold: float | None
    # What the judge maps the image with (optional, default 'homography'): 'camera' for a 3-D task's judge,
    # whose frames then carry their camera's calibrated model and the placed layout instead.

    def __call__(self, camera: str, frame: Frame, now: float | None = None,
                 max_age: float | None = None) -> JudgedFrame: ...


def uncertain(camera: str, reason: str, stamp: float | None, t0: float, **fields) -> JudgedFrame:
    """An UNCERTAIN judgement with its reason; `t0` (perf_counter) is when judging started."""
    j = CameraJudgement(camera=camera, state=VerdictState.UNCERTAIN, reason=reason, stamp=stamp,
                        latency_ms=(time.perf_counter() - t0) * 1e3, **fields)
    return JudgedFrame(j)


def valid_homography(h) -> bool:
    if h is None:
        return False
    h = np.asarray(h, dtype=np.float64)
    return h.shape == (3, 3) and bool(np.all(np.isfinite(h))) and abs(np.linalg.det(h)) > 1e-12


def check_frame(camera: str, frame: Frame, now: float | None, max_age: float, t0: float,
                needs: str = 'homography') -> JudgedFrame | None:
    """The UNCERTAIN verdict on a frame nothing can be judged from, else None. `needs`: what the judge
    maps the image with, 'homography' (a table task) or 'camera' (its calibrated model: a 3-D task)."""
    image = frame.image
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        return uncertain(camera, 'no_frame', frame.stamp, t0)
    if needs == 'homography' and not valid_homography(frame.table_to_image):
        return uncertain(camera, 'no_homography', frame.stamp, t0)
    model = frame.camera
    if needs == 'camera' and (model is None or not model.valid()
                              or (model.width, model.height) != (image.shape[1], image.shape[0])):
        return uncertain(camera, 'no_calibration', frame.stamp, t0)
    if now is not None and frame.stamp is not None and now - frame.stamp > max_age:
        return uncertain(camera, 'stale_frame', frame.stamp, t0)
    if preprocess.is_blank(image):
        return uncertain(camera, 'no_frame', frame.stamp, t0)
    return None
