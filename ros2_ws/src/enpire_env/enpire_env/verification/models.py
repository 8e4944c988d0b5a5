"""Results of the verifier, as plain pydantic models (no ROS): what a camera saw, and the fused verdict."""
from __future__ import annotations

from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field


class VerdictState(IntEnum):
    # Same numbering as enpire_interfaces/CameraVerdict and FusedVerdict.
    SUCCESS = 0
    FAILURE = 1
    UNCERTAIN = 2


class Box(BaseModel):
    """Axis-aligned box of one scene object in image pixels: x0, y0 inclusive, x1, y1 exclusive."""
    model_config = ConfigDict(frozen=True)
    label: str
    x0: int
    y0: int
    x1: int
    y1: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)


class CameraJudgement(BaseModel):
    camera: str
    state: VerdictState
    score: float = 0.0             # the task's score as this camera measures it
    confidence: float = 0.0        # 0..1
    reason: str = ''               # '' when confident; else no_frame, stale_frame, near_threshold, ...
    # The task-state vector as this camera estimates it (entries named by `Task.task_state`).
    estimate: list[float] | None = None
    stamp: float | None = None     # frame time, seconds
    latency_ms: float = 0.0
    # What the decision rests on: the lower bound of the score and the margin above the task's threshold
    # this camera's resolution asks of it (fusion asks more of a camera that decides alone).
    lower_bound: float | None = None
    success_margin: float | None = None
    boxes: list[Box] = Field(default_factory=list)
    # The task judge's own numbers behind the verdict, for evidence and debugging.
    details: dict[str, float | None] = Field(default_factory=dict)


class FusedJudgement(BaseModel):
    state: VerdictState
    success: bool                  # the binary reward: true only when state is SUCCESS
    score: float
    confidence: float
    rule: str
    reason: str = ''
    cameras: list[CameraJudgement] = Field(default_factory=list)
