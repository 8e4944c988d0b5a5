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
    """Axis-aligned box in image pixels: x0, y0 inclusive, x1, y1 exclusive."""
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


class Pose2D(BaseModel):
    """The T's body-origin pose on the table (workspace units), as pusht.py defines it."""
    model_config = ConfigDict(frozen=True)
    x: float
    y: float
    theta: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.theta)


class CameraJudgement(BaseModel):
    camera: str
    state: VerdictState
    score: float = 0.0             # coverage of the goal from the fitted pose
    confidence: float = 0.0        # 0..1
    reason: str = ''               # '' when confident; else no_frame, stale_frame, block_not_found, ...
    block_pose: Pose2D | None = None
    stamp: float | None = None     # frame time, seconds
    latency_ms: float = 0.0
    # The numbers behind the verdict, for evidence and debugging.
    direct_score: float | None = None   # coverage straight from the mask (cross-check)
    area_ratio: float | None = None     # mask area on the table / T area
    fit_ratio: float | None = None      # share of mask area inside the fitted T
    pose_score: float | None = None     # coverage from the pose estimate (cross-check of direct_score)
    noise: float | None = None          # estimated pixel noise sigma (0..255)
    units_per_pixel: float | None = None
    # What the decision rests on: the lower bound of the coverage and the margin above the threshold
    # this camera's resolution at the T asks of it (fusion asks more of a camera that decides alone).
    lower_bound: float | None = None
    success_margin: float | None = None
    boxes: list[Box] = Field(default_factory=list)


class FusedJudgement(BaseModel):
    state: VerdictState
    success: bool                  # the binary reward: true only when state is SUCCESS
    score: float
    confidence: float
    rule: str
    reason: str = ''
    cameras: list[CameraJudgement] = Field(default_factory=list)
