"""A task that is not Push-T, for the verification framework's tests: its score is the share of red in a
camera's view; its task state, that share. Only what the verifier reads of a task is filled in."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from enpire_common.task import ActionSpec, ObservationSpec, ResetSpec, Task, VerifierSpec

from enpire_env.verification import HsvRange, VerifyConfig
from enpire_env.verification.judge import Frame, JudgedFrame, check_frame
from enpire_env.verification.models import CameraJudgement, VerdictState


class RedSettings(VerifyConfig):
    labels: tuple[str, ...] = ('red',)
    colours: dict[str, HsvRange] = {'red': HsvRange(lo=(170, 100, 100), hi=(10, 255, 255))}
    threshold: float = 0.5
    margin: float = 0.1


class RedJudge:
    """SUCCESS when the red share clears the threshold by the margin, FAILURE below it by the margin."""

    def __init__(self, config: RedSettings, detector, segmenter):
        self.config, self.detector, self.segmenter = config, detector, segmenter
        self.threshold = config.threshold

    def __call__(self, camera: str, frame: Frame, now=None, max_age=None) -> JudgedFrame:
        t0 = time.perf_counter()
        max_age = self.config.max_age_s if max_age is None else max_age
        unjudgeable = check_frame(camera, frame, now, max_age, t0)
        if unjudgeable is not None:
            return unjudgeable
        boxes = self.detector.detect(frame.image)
        masks = self.segmenter.segment(frame.image, boxes)
        share = float(masks['red'].mean()) if 'red' in masks else 0.0
        c = self.config
        state = (VerdictState.SUCCESS if share >= c.threshold + c.margin else
                 VerdictState.FAILURE if share <= c.threshold - c.margin else VerdictState.UNCERTAIN)
        reason = {VerdictState.FAILURE: 'below_threshold', VerdictState.UNCERTAIN: 'near_threshold'}
        return JudgedFrame(CameraJudgement(
            camera=camera, state=state, score=share, reason=reason.get(state, ''),
            confidence=0.0 if state == VerdictState.UNCERTAIN else 0.9,
            estimate=[share], stamp=frame.stamp, lower_bound=share, success_margin=c.margin, boxes=boxes,
            details={'red_share': share}), _masks=masks)


def settings_file() -> str:
    """The task's own settings YAML (`Task.verifier.config`)."""
    return str(Path(__file__).with_name('red_task.yaml'))


def task(**verifier) -> Task:
    return Task(
        name='red', title='make the view red',
        action=ActionSpec(names=('x',), units=('m',), low=(0.0,), high=(1.0,), frame='table'),
        observation=ObservationSpec(cameras=('a', 'b'), proprioception=(), proprioception_units=()),
        task_state=('red_share',), task_state_units=('1',), distributions=('any',), control_hz=10.0,
        episode_steps=10, sample_initial_state='none:none', success_rule='none:none',
        reset=ResetSpec(placement='none:none', estimator='none:none'),
        verifier=VerifierSpec(judge='tests.enpire_env.verification.toy_task:RedJudge',
                              settings='tests.enpire_env.verification.toy_task:RedSettings',
                              config='tests.enpire_env.verification.toy_task:settings_file', **verifier),
        safety_limits='none:none', policy_imports=frozenset(), empty_policy='none:none', prompt='none:none',
        strategies='none:none', simulator='none:none')


def image(red_share: float, size: int = 40) -> np.ndarray:
    """A white image whose top `red_share` of rows are pure red."""
    img = np.full((size, size, 3), 255, np.uint8)
    img[:round(red_share * size)] = (255, 0, 0)
    return img
