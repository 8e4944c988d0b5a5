"""The verifier's entry point: frames from several cameras in, one fused verdict on a task out.

    verifier = Verifier(task_name)                   # the task's judge, settings and perception backend
    fused = verifier.verify({'top': Frame(rgb, H, stamp), ...}, now=time.time())
    fused.success  # the binary reward

The task is found in the registry (`enpire_common.task_registry`); its judge comes from
`Task.verifier.judge`, its settings from `load_config(task)` unless given.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from enpire_common.task import Task, resolve

from enpire_env.verification.backends import make_backend
from enpire_env.verification.config import VerifyConfig, load_config, task_of
from enpire_env.verification.fusion import fuse
from enpire_env.verification.judge import Frame, Judge, JudgedFrame
from enpire_env.verification.models import FusedJudgement


class Verifier:
    """Judges one task: each camera with the task's judge, then fusion."""

    def __init__(self, task: str | Task, config: VerifyConfig | None = None, backend: str | None = None,
                 **backend_options):
        self.task = task_of(task)
        self.config = config if config is not None else load_config(self.task)
        self.detector, self.segmenter = make_backend(backend or self.config.backend, self.config,
                                                     **backend_options)
        make_judge = resolve(self.task.verifier.judge)
        self.judge_frame: Judge = make_judge(self.config, self.detector, self.segmenter)

    def judge(self, camera: str, frame: Frame | None, now: float | None = None,
              max_age: float | None = None) -> JudgedFrame:
        max_age = self.config.max_age_s if max_age is None else max_age
        return self.judge_frame(camera, frame or Frame(None, None), now=now, max_age=max_age)

    def verify_frames(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
                      now: float | None = None, rule: str | None = None, max_age: float | None = None,
                      task: str | None = None) -> tuple[FusedJudgement, dict[str, JudgedFrame]]:
        """Judge each camera (missing ones count as 'no_frame') and fuse; also returns masks for evidence."""
        if task is not None and task != self.task.name:
            raise ValueError(f'this verifier judges task {self.task.name!r}, not {task!r}')
        names = list(cameras) if cameras else list(frames)
        max_age = self.config.max_age_s if max_age is None else max_age
        judged = {cam: self.judge(cam, frames.get(cam), now=now, max_age=max_age) for cam in names}
        fc = self.config.fusion
        fused = fuse([j.judgement for j in judged.values()], rule=rule or fc.rule, now=now, max_age=max_age,
                     expected=names, min_cameras=fc.min_cameras, success_confidence=fc.success_confidence,
                     threshold=self.judge_frame.threshold, lone_margin_factor=fc.lone_margin_factor)
        return fused, judged

    def verify(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
               now: float | None = None, rule: str | None = None, max_age: float | None = None,
               task: str | None = None) -> FusedJudgement:
        return self.verify_frames(frames, cameras, now, rule, max_age, task)[0]
