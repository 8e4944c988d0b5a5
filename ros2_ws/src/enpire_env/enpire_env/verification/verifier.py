"""The verifier's entry point: frames from several cameras in, one fused verdict on a task out.

    verifier = Verifier(task_name)                   # the task's judge, settings and perception backend
    fused = verifier.verify({'top': Frame(rgb, H, stamp), ...}, now=time.time())
    fused.success  # the binary reward

The task is found in the registry (`enpire_common.task_registry`); its judge comes from
`Task.verifier.judge`, its settings from `load_config(task)` unless given. A 3-D task's frames carry their
cameras' calibrated models (`Frame.camera`), `layout` is the scene as the reset placed it, and the task's
own fusion (`VerifierSpec.fusion`) gets both; `locate_scene` runs a multi-view reset estimator
(`ResetSpec.multi_view`) on the same frames.
"""
from __future__ import annotations

import dataclasses
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
        self.fusion = resolve(self.task.verifier.fusion) if self.task.verifier.fusion else None
        self._locate = resolve(self.task.reset.estimator) if self.task.reset.multi_view else None

    def judge(self, camera: str, frame: Frame | None, now: float | None = None,
              max_age: float | None = None) -> JudgedFrame:
        max_age = self.config.max_age_s if max_age is None else max_age
        return self.judge_frame(camera, frame or Frame(None, None), now=now, max_age=max_age)

    def verify_frames(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
                      now: float | None = None, rule: str | None = None, max_age: float | None = None,
                      task: str | None = None, layout: Mapping[str, Sequence[float]] | None = None
                      ) -> tuple[FusedJudgement, dict[str, JudgedFrame]]:
        """Judge each camera (missing ones count as 'no_frame') and fuse; also returns masks for evidence.
        `layout` (the placed scene) reaches the judge on each frame and the task's own fusion."""
        if task is not None and task != self.task.name:
            raise ValueError(f'this verifier judges task {self.task.name!r}, not {task!r}')
        names = list(cameras) if cameras else list(frames)
        max_age = self.config.max_age_s if max_age is None else max_age
        if layout is not None:
            frames = {cam: None if f is None else dataclasses.replace(f, layout=layout)
                      for cam, f in frames.items()}
        judged = {cam: self.judge(cam, frames.get(cam), now=now, max_age=max_age) for cam in names}
        if self.fusion is not None:
            # A stale frame is UNCERTAIN at its judge already; the cameras' models are what located it.
            models = {cam: f.camera for cam, f in frames.items() if f is not None and f.camera is not None}
            fused = self.fusion([j.judgement for j in judged.values()], expected=names, cameras=models,
                                layout=layout)
            return fused, judged
        fc = self.config.fusion
        fused = fuse([j.judgement for j in judged.values()], rule=rule or fc.rule, now=now, max_age=max_age,
                     expected=names, min_cameras=fc.min_cameras, success_confidence=fc.success_confidence,
                     threshold=self.judge_frame.threshold, lone_margin_factor=fc.lone_margin_factor)
        return fused, judged

    def verify(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
               now: float | None = None, rule: str | None = None, max_age: float | None = None,
               task: str | None = None, layout: Mapping[str, Sequence[float]] | None = None
               ) -> FusedJudgement:
        return self.verify_frames(frames, cameras, now, rule, max_age, task, layout)[0]

    def locate_scene(self, frames: Mapping[str, Frame | None], now: float | None = None,
                     max_age: float | None = None) -> tuple[tuple[float, ...] | None, str]:
        """The scene located from every calibrated, fresh frame at once (a multi-view reset estimator), or
        (None, why not)."""
        if self._locate is None:
            return None, f'task {self.task.name!r} locates no scene from its views (ResetSpec.multi_view)'
        max_age = self.config.max_age_s if max_age is None else max_age
        usable = {cam: f for cam, f in frames.items()
                  if f is not None and f.image is not None and f.camera is not None and f.camera.valid()
                  and not (now is not None and f.stamp is not None and now - f.stamp > max_age)}
        state, why = self._locate({cam: f.image for cam, f in usable.items()},
                                  {cam: f.camera for cam, f in usable.items()})
        return (None, why or 'not located') if state is None else (tuple(float(v) for v in state), '')
