"""The verifier's entry point: frames from several cameras in, one fused Push-T verdict out.

    verifier = Verifier(load_config('config/verify.yaml'))
    fused = verifier.verify({'top': Frame(rgb, H, stamp), ...}, now=time.time())
    fused.success  # the binary reward
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from enpire_env.verification.backends import make_backend
from enpire_env.verification.config import VerifyConfig
from enpire_env.verification.fusion import fuse
from enpire_env.verification.judge import Frame, JudgedFrame, judge_frame
from enpire_env.verification.models import FusedJudgement

TASKS = ('pusht',)


class Verifier:
    def __init__(self, config: VerifyConfig | None = None, backend: str | None = None, **backend_options):
        self.config = config or VerifyConfig()
        self.detector, self.segmenter = make_backend(backend or self.config.backend, self.config,
                                                     **backend_options)

    def judge(self, camera: str, frame: Frame | None, now: float | None = None,
              max_age: float | None = None) -> JudgedFrame:
        return judge_frame(camera, frame or Frame(None, None), self.config, self.detector, self.segmenter,
                           now=now, max_age=max_age)

    def verify_frames(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
                      now: float | None = None, rule: str | None = None, max_age: float | None = None,
                      task: str = 'pusht') -> tuple[FusedJudgement, dict[str, JudgedFrame]]:
        """Judge each camera (missing ones count as 'no_frame') and fuse; also returns masks for evidence."""
        if task not in TASKS:
            raise ValueError(f'unknown task {task!r}; known: {TASKS}')
        names = list(cameras) if cameras else list(frames)
        max_age = self.config.judge.max_age_s if max_age is None else max_age
        judged = {cam: self.judge(cam, frames.get(cam), now=now, max_age=max_age) for cam in names}
        fc = self.config.fusion
        fused = fuse([j.judgement for j in judged.values()], rule=rule or fc.rule, now=now, max_age=max_age,
                     expected=names, min_cameras=fc.min_cameras, success_confidence=fc.success_confidence,
                     threshold=self.config.judge.success_coverage, lone_margin_factor=fc.lone_margin_factor)
        return fused, judged

    def verify(self, frames: Mapping[str, Frame | None], cameras: Sequence[str] | None = None,
               now: float | None = None, rule: str | None = None, max_age: float | None = None,
               task: str = 'pusht') -> FusedJudgement:
        return self.verify_frames(frames, cameras, now, rule, max_age, task)[0]
