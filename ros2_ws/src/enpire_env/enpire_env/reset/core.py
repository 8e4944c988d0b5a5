"""Auto-reset core (pure, no rclpy): goal validation, target selection, fusing the cameras' block
estimates, comparison with the target within a tolerance, and the place/settle/verify/retry loop.

A reset succeeds only when the cameras (at least `min_cameras` of them, not uncertain, with frames taken
after the placement) see the block within the tolerance of the target; a reset that cannot be verified
is a failed reset.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from enpire_task_pusht.distributions import DISTRIBUTIONS, InitialState, sample_initial_state
from enpire_task_pusht.geometry import angle_diff
from pydantic import BaseModel, ConfigDict, Field

from enpire_env.request_checks import count_problem, name_problem
from enpire_env.reset.routine import PlacementOutcome, ResetRoutine

Pose = tuple[float, float, float]
ERROR_NAMES = ('position_px', 'angle_rad')   # ResetCell.Result.errors, in this order


class ResetConfig(BaseModel):
    """config/reset.yaml (`reset:` mapping)."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    tasks: tuple[str, ...] = ('pusht',)
    position_tolerance_px: float = Field(5.0, gt=0.0, description='block origin, workspace pixels')
    angle_tolerance_deg: float = Field(5.0, gt=0.0, le=180.0)
    max_tries_limit: int = Field(10, ge=1, le=1000, description='goals asking for more tries are refused')
    min_cameras: int = Field(1, ge=1, description='cameras that must see the block after the placement')
    pose_cameras: tuple[str, ...] = Field(
        (), description='cameras whose pose estimates the reset trusts (empty: all); a far, foreshortened '
                        'view measures the T too coarsely to check a 5 px tolerance')
    settle_time_s: float = Field(0.0, ge=0.0, le=60.0, description='wait after the placement before looking')
    frame_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description='wait for frames taken after placement')
    service_timeout_s: float = Field(10.0, gt=0.0, le=120.0)
    save_evidence: bool = True
    routine: str = Field('mock_placement', description="'mock_placement' or 'package.module:Factory'")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ResetConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping')
        return cls.model_validate(data.get('reset', data))


@dataclass(frozen=True)
class CameraEstimate:
    """One camera's view of the block, as the verify service reports it."""

    camera: str
    usable: bool            # not uncertain
    pose: Pose
    fresh: bool = True      # frame taken after the placement
    reason: str = ''


@dataclass(frozen=True)
class Observation:
    """What one verify call returned (or why it failed)."""

    estimates: tuple[CameraEstimate, ...] = ()
    evidence_path: str = ''
    error: str = ''


@dataclass
class ResetOutcome:
    success: bool
    tries_used: int
    target: InitialState | None
    achieved: Pose | None = None
    position_error: float = math.nan
    angle_error: float = math.nan   # radians, absolute
    evidence_path: str = ''
    failure_reason: str = ''
    attempts: list[str] = field(default_factory=list)

    @property
    def errors(self) -> tuple[float, float]:
        """The result's error vector, named by ERROR_NAMES."""
        return (self.position_error, self.angle_error)


def validate_goal(task: str, distribution: str, max_tries: int, config: ResetConfig) -> str:
    """'' when the goal is acceptable, else a clear reason (nothing is done for a refused goal)."""
    return (name_problem(task, config.tasks, 'task')
            or name_problem(distribution, DISTRIBUTIONS, 'distribution')
            or count_problem(max_tries, 'max_tries', 1, config.max_tries_limit))


def pick_target(seed: int, distribution: str) -> InitialState:
    """The target state: a pure function of (seed, distribution)."""
    return sample_initial_state(int(seed), distribution)


def fuse_block_estimates(estimates, min_cameras: int = 1,
                         pose_cameras: tuple[str, ...] = ()) -> tuple[Pose | None, list[str], str]:
    """Median of the usable, fresh, finite camera estimates: (pose or None, cameras used, reason if None)."""
    trusted = [e for e in estimates if not pose_cameras or e.camera in pose_cameras]
    used = [e for e in trusted if e.usable and e.fresh and _finite_pose(e.pose)]
    if len(used) < min_cameras:
        seen = ', '.join(f'{e.camera}: {_why_unused(e) if e in trusted else "not a pose camera"}'
                         for e in estimates) or 'no cameras answered'
        why = f'{len(used)} of {min_cameras} required cameras saw the block after placement: {seen}'
        return None, [], why
    x = statistics.median(e.pose[0] for e in used)
    y = statistics.median(e.pose[1] for e in used)
    ref = used[0].pose[2]
    theta = ref + statistics.median(angle_diff(e.pose[2], ref) for e in used)
    theta = angle_diff(theta, 0.0)
    return (float(x), float(y), float(theta)), [e.camera for e in used], ''


def _why_unused(e: CameraEstimate) -> str:
    if not e.usable:
        return e.reason or 'uncertain'
    if not e.fresh:
        return 'frame older than the placement'
    if not e.pose:
        return 'no estimate'
    if not _finite_pose(e.pose):
        return 'non-finite estimate'
    return 'ok'


def _finite_pose(pose) -> bool:
    return len(pose) == 3 and all(math.isfinite(v) for v in pose)


def pose_errors(target: Pose, achieved: Pose) -> tuple[float, float]:
    """(position error in px, absolute angle error in radians); the T has no symmetry."""
    return (math.dist(target[:2], achieved[:2]), abs(angle_diff(achieved[2], target[2])))


def within_tolerance(position_error: float, angle_error: float, config: ResetConfig) -> bool:
    return (position_error <= config.position_tolerance_px
            and math.degrees(angle_error) <= config.angle_tolerance_deg)


def run_reset(target: InitialState, max_tries: int, routine: ResetRoutine,
              observe: Callable[[PlacementOutcome], Observation], config: ResetConfig,
              on_phase: Callable[[str, int], None] = lambda phase, attempt: None,
              cancelled: Callable[[], bool] = lambda: False) -> ResetOutcome:
    """Place, settle, verify; retry up to max_tries. `observe` settles and verifies one placement."""
    outcome = ResetOutcome(False, 0, target)
    for attempt in range(1, max_tries + 1):
        if cancelled():
            outcome.failure_reason = 'canceled'
            return outcome
        outcome.tries_used = attempt
        if attempt > 1:
            on_phase('retrying', attempt)
        on_phase('placing', attempt)
        try:
            placement = routine.place(target, attempt)
        except Exception as exc:  # a plug-in routine must not take the node down
            placement = PlacementOutcome(False, f'{type(exc).__name__}: {exc}')
        if not placement.ok:
            outcome.failure_reason = f'try {attempt}: placement failed: {placement.message}'
            outcome.attempts.append(outcome.failure_reason)
            continue
        if cancelled():
            outcome.failure_reason = 'canceled'
            return outcome
        on_phase('settling', attempt)
        try:
            observation = observe(placement)   # settles (waits for fresh frames), then verifies
        except Exception as exc:
            observation = Observation(error=f'{type(exc).__name__}: {exc}')
        on_phase('verifying', attempt)
        outcome.evidence_path = observation.evidence_path or outcome.evidence_path
        if observation.error:
            outcome.failure_reason = f'try {attempt}: could not verify: {observation.error}'
            outcome.attempts.append(outcome.failure_reason)
            continue
        achieved, cameras, why = fuse_block_estimates(observation.estimates, config.min_cameras,
                                                      config.pose_cameras)
        if achieved is None:
            outcome.failure_reason = f'try {attempt}: could not verify: {why}'
            outcome.attempts.append(outcome.failure_reason)
            continue
        pos_err, ang_err = pose_errors(target.block, achieved)
        outcome.achieved, outcome.position_error, outcome.angle_error = achieved, pos_err, ang_err
        if within_tolerance(pos_err, ang_err, config):
            outcome.success = True
            outcome.failure_reason = ''
            outcome.attempts.append(f'try {attempt}: ok ({pos_err:.1f} px, {math.degrees(ang_err):.1f} deg, '
                                    f'cameras {cameras})')
            return outcome
        outcome.failure_reason = (
            f'try {attempt}: block seen at ({achieved[0]:.1f}, {achieved[1]:.1f}, '
            f'{math.degrees(achieved[2]):.1f} deg), {pos_err:.1f} px / {math.degrees(ang_err):.1f} deg '
            f'from the target (tolerance {config.position_tolerance_px:g} px / '
            f'{config.angle_tolerance_deg:g} deg)')
        outcome.attempts.append(outcome.failure_reason)
    return outcome
