"""The peg task's verifier as the framework runs it (`Task.verifier`): a judge per camera that takes the
frame's calibrated camera model and the placed box from the frame (`enpire_env.verification.Frame`), and a
fusion that locates the peg's head in 3-D from the cameras' models. No calibration, no placed box: the judge
says UNCERTAIN ('no_calibration', 'no_layout') and the fusion never says SUCCESS. No rclpy here."""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from enpire_env.verification.classical import ClassicalBackend
from enpire_env.verification.judge import CameraModel, Frame, JudgedFrame, check_frame, uncertain
from enpire_env.verification.models import CameraJudgement, FusedJudgement
from enpire_task_peg.verification.colour import hsv, occluder_mask, peg_mask, wood_mask
from enpire_task_peg.verification.fuse import fuse_peg
from enpire_task_peg.verification.judge import DEFAULT_CONFIG, JudgeConfig, judge_frame
from enpire_task_peg.verification.locate import View


def placed_box(layout: Mapping[str, Sequence[float]] | None):
    """The box's position from the placed layout (None when the layout does not hold a 3-D one)."""
    box = (layout or {}).get('box')
    return None if box is None or len(box) < 3 else tuple(float(v) for v in box[:3])


class PegJudge:
    """`Task.verifier.judge`: (settings, detector, segmenter) -> the per-camera judge. With the classical
    backend the judge reads its own colour ranges (verification/colour.py); with a learned one (the
    `yolo_seg` backend, trained on the cell's frames) the peg's mask is the segmenter's, the far end's
    reading is trusted to `learned_end_pixels` and the silhouette fit lets the mask's edge stray by
    `learned_edge_pixels` (a learned mask's edge is less sharp than a colour's)."""

    threshold = None    # the fusion decides from the 3-D location, not from a lone camera's score
    needs = 'camera'    # frames come with their camera's calibrated model, not a table homography

    def __init__(self, settings, detector=None, segmenter=None, judge: JudgeConfig = DEFAULT_CONFIG):
        self.settings, self.judge = settings, judge
        self.learned = segmenter is not None and not isinstance(segmenter, ClassicalBackend)
        self.detector, self.segmenter = detector, segmenter
        if self.learned:
            silhouette = judge.silhouette.model_copy(update={'edge_pixels': judge.learned_edge_pixels})
            self.judge = judge.model_copy(update={'end_pixels': judge.learned_end_pixels,
                                                  'silhouette': silhouette})

    def learned_peg(self, image) -> np.ndarray:
        """The learned segmenter's peg mask (empty when the detector finds no peg)."""
        masks = self.segmenter.segment(image, [b for b in self.detector.detect(image) if b.label == 'peg'])
        return masks['peg'] > 0.5 if 'peg' in masks else np.zeros(image.shape[:2], bool)

    def __call__(self, camera: str, frame: Frame, now: float | None = None,
                 max_age: float | None = None) -> JudgedFrame:
        t0 = time.perf_counter()
        max_age = self.settings.max_age_s if max_age is None else max_age
        unjudgeable = check_frame(camera, frame, now, max_age, t0, needs='camera')
        if unjudgeable is not None:
            return unjudgeable
        box = placed_box(frame.layout)
        if box is None:
            return uncertain(camera, 'no_layout', frame.stamp, t0)
        image = frame.image
        peg = self.learned_peg(image) if self.learned else None
        judgement = judge_frame(image, View.of_model(frame.camera), box, self.judge, stamp=frame.stamp,
                                name=camera, peg=peg)
        if self.learned:    # the fusion then allows a learned mask's wider pixel errors (fuse.LEARNED_LOCATE)
            judgement.details['learned_mask'] = 1.0

        def masks():
            frame_hsv = hsv(image)
            colour = self.judge.colour
            return {'peg': peg_mask(frame_hsv, colour) if peg is None else peg,
                    'box': wood_mask(frame_hsv, colour), 'occluders': occluder_mask(frame_hsv, colour)}
        return JudgedFrame(judgement, _make_masks=masks)


def fuse_cameras(judgements: Iterable[CameraJudgement], expected: Sequence[str] | None = None,
                 cameras: Mapping[str, CameraModel] | None = None,
                 layout: Mapping[str, Sequence[float]] | None = None) -> FusedJudgement:
    """`Task.verifier.fusion`: `fuse_peg` over the calibrated cameras' views and the placed box."""
    views = {name: View.of_model(model) for name, model in (cameras or {}).items() if model.valid()}
    return fuse_peg(judgements, expected=expected, views=views or None, box=placed_box(layout))
