"""Auto-reset core (pure, no rclpy): goal validation, target selection, fusing the cameras' estimates of
the task state, comparison with the target within the task's tolerances, and the place/settle/verify/retry
loop.

Everything task-specific comes from the task (`enpire_common.task.Task`, found in the registry): the
target is `sample_initial_state(seed, distribution)`, the cameras' task-state estimates are fused by the
task's `ResetSpec.estimator`, the achieved state is compared with the target by its `ResetSpec.errors`
rule and each named error must lie within its tolerance (`ResetSpec.tolerances`, overridable by name in
config/reset.yaml). A reset succeeds only when the cameras (at least `min_cameras` of them, not
uncertain, with frames taken after the placement) see the scene within the tolerances of the target; a
reset that cannot be verified is a failed reset. A 3-D task's estimator locates the scene from every
calibrated view at once (`ResetSpec.multi_view`): the verify service runs it on frames taken after the
placement and answers the located scene (`Observation.scene`), which is compared with the target alike.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from enpire_common import task_registry
from enpire_common.cell_clock import cell_time_field, stall_timeout_field
from enpire_common.task import InitialState, Task, resolve
from pydantic import BaseModel, ConfigDict, Field

from enpire_env.request_checks import count_problem, task_problem
from enpire_env.reset.routine import PlacementOutcome, ResetRoutine

State = tuple[float, ...]


class ResetConfig(BaseModel):
    """config/reset.yaml (`reset:` mapping): the reset node's own settings, the same for every task."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    tolerances: dict[str, float] = Field(
        default_factory=dict, description="overrides of the task's tolerances by error name (empty: none)")
    max_tries_limit: int = Field(10, ge=1, le=1000, description='goals asking for more tries are refused')
    min_cameras: int = Field(1, ge=1, description='cameras that must see the scene after the placement')
    pose_cameras: tuple[str, ...] = Field(
        (), description='cameras whose estimates the reset trusts (empty: all); a far, foreshortened view '
                        'measures the scene too coarsely to check a tight tolerance')
    # On the cell's clock (sim time on a simulated cell, whose time stands still between commands in
    # lockstep: there a wait for a late frame or answer ends by the stall backstop, never early).
    settle_time_s: float = cell_time_field(0.0, 'wait after the placement before looking', le=60.0,
                                           zero_allowed=True)
    frame_timeout_s: float = cell_time_field(5.0, 'wait for frames taken after placement', le=120.0)
    service_timeout_s: float = cell_time_field(10.0, 'place_objects / verify answers', le=120.0)
    clock_stall_timeout_s: float = stall_timeout_field(30.0, "below the trial server's")
    save_evidence: bool = True
    routine: str = Field('', description="'' (the task's placement), 'mock_placement' or "
                                         "'package.module:factory'")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ResetConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping')
        return cls.model_validate(data.get('reset', data))


@dataclass(frozen=True)
class TaskReset:
    """What a reset needs of one task, resolved once: sampling, fusion, error rule and tolerances."""

    name: str
    distributions: tuple[str, ...]
    state_size: int
    sample: Callable[[int, str], InitialState]
    fuse: Callable[[Sequence[State]], State]
    errors: Callable[[State, State], Mapping[str, float]]
    tolerances: Mapping[str, float]
    placement: str
    multi_view: bool = False    # the scene comes located from all views (Observation.scene), not fused here

    @classmethod
    def of(cls, task: Task, config: ResetConfig) -> TaskReset:
        """The task's reset parts; ValueError when the config overrides a tolerance the task does not have."""
        spec = task.reset
        if spec.errors is None:
            raise ValueError(f'task {task.name!r} has no reset error rule (ResetSpec.errors)')
        unknown = sorted(set(config.tolerances) - set(spec.tolerances))
        if unknown:
            raise ValueError(f'reset tolerances {unknown} are not errors of task {task.name!r} '
                             f'(its errors: {sorted(spec.tolerances)})')
        return cls(task.name, task.distributions, len(task.task_state), task.load('sample_initial_state'),
                   resolve(spec.estimator), resolve(spec.errors), {**spec.tolerances, **config.tolerances},
                   spec.placement, spec.multi_view)

    def target(self, seed: int, distribution: str) -> InitialState:
        """The target state: a pure function of (seed, distribution)."""
        return self.sample(int(seed), distribution)


def target_state(initial: InitialState) -> State:
    """The task-state vector of a placed scene: its objects' poses, in the scene's order."""
    return tuple(float(v) for o in initial.scene() for v in o.pose)


def load_task_reset(name: str, config: ResetConfig) -> TaskReset:
    """The registry's task `name` ready for resets (UnknownTask / ValueError with a reason)."""
    return TaskReset.of(task_registry.get(name), config)


@dataclass(frozen=True)
class CameraEstimate:
    """One camera's view of the scene (its task-state estimate), as the verify service reports it."""

    camera: str
    usable: bool            # not uncertain
    pose: State
    fresh: bool = True      # frame taken after the placement
    reason: str = ''


@dataclass(frozen=True)
class Observation:
    """What one verify call returned (or why it failed)."""

    estimates: tuple[CameraEstimate, ...] = ()
    evidence_path: str = ''
    error: str = ''
    scene: State | None = None      # a multi-view task: the scene located from all views (None: not located)
    scene_problem: str = ''         # why it was not located


@dataclass
class ResetOutcome:
    success: bool
    tries_used: int
    target: InitialState | None
    achieved: State | None = None
    errors: dict[str, float] = field(default_factory=dict)   # named as the task's tolerances
    evidence_path: str = ''
    failure_reason: str = ''
    attempts: list[str] = field(default_factory=list)


def validate_goal(task: str, distribution: str, max_tries: int, config: ResetConfig) -> str:
    """'' when the goal is acceptable, else a clear reason (nothing is done for a refused goal)."""
    return (task_problem(task, distribution)
            or count_problem(max_tries, 'max_tries', 1, config.max_tries_limit))


def fuse_estimates(estimates: Sequence[CameraEstimate], fuse: Callable[[Sequence[State]], State],
                   state_size: int, min_cameras: int = 1, pose_cameras: tuple[str, ...] = ()
                   ) -> tuple[State | None, list[str], str]:
    """The task's fusion of the usable, fresh, finite estimates: (state or None, cameras used, why not)."""
    trusted = [e for e in estimates if not pose_cameras or e.camera in pose_cameras]
    used = [e for e in trusted if e.usable and e.fresh and _finite(e.pose, state_size)]
    if len(used) < min_cameras:
        seen = ', '.join(f'{e.camera}: {_why_unused(e, state_size) if e in trusted else "not a pose camera"}'
                         for e in estimates) or 'no cameras answered'
        why = f'{len(used)} of {min_cameras} required cameras saw the scene after placement: {seen}'
        return None, [], why
    return tuple(float(v) for v in fuse([e.pose for e in used])), [e.camera for e in used], ''


def located_scene(observation: Observation, size: int) -> tuple[State | None, list[str], str]:
    """A multi-view task's located scene: (state or None, cameras used, why not)."""
    scene = observation.scene
    if scene is None:
        why = observation.scene_problem or 'no answer'
        return None, [], f'the scene was not located from the views: {why}'
    if not _finite(scene, size):
        return None, [], f'the located scene has {len(scene)} values, not {size} finite ones'
    used = [e.camera for e in observation.estimates if e.fresh] or ['all calibrated views']
    return tuple(float(v) for v in scene), used, ''


def _finite(pose: State, size: int) -> bool:
    return len(pose) == size and all(math.isfinite(v) for v in pose)


def _why_unused(e: CameraEstimate, size: int) -> str:
    if not e.usable:
        return e.reason or 'uncertain'
    if not e.fresh:
        return 'frame older than the placement'
    if not e.pose:
        return 'no estimate'
    if not _finite(e.pose, size):
        return f'estimate of {len(e.pose)} values, not {size} finite ones'
    return 'ok'


def beyond_tolerance(errors: Mapping[str, float], tolerances: Mapping[str, float]) -> list[str]:
    """The names of the errors not within their tolerance (a missing or NaN error is not within it)."""
    return [name for name, tol in tolerances.items() if not errors.get(name, math.nan) <= tol]


def _shown(values: Mapping[str, float]) -> str:
    return ', '.join(f'{name} {value:.4g}' for name, value in values.items())


def run_reset(target: InitialState, max_tries: int, routine: ResetRoutine,
              observe: Callable[[PlacementOutcome], Observation], config: ResetConfig, task: TaskReset,
              on_phase: Callable[[str, int], None] = lambda phase, attempt: None,
              cancelled: Callable[[], bool] = lambda: False) -> ResetOutcome:
    """Place, settle, verify; retry up to max_tries. `observe` settles and verifies one placement."""
    outcome = ResetOutcome(False, 0, target, errors={name: math.nan for name in task.tolerances})
    wanted = target_state(target)
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
        if task.multi_view:
            achieved, cameras, why = located_scene(observation, len(wanted))
        else:
            achieved, cameras, why = fuse_estimates(observation.estimates, task.fuse, task.state_size,
                                                    config.min_cameras, config.pose_cameras)
        if achieved is None:
            outcome.failure_reason = f'try {attempt}: could not verify: {why}'
            outcome.attempts.append(outcome.failure_reason)
            continue
        errors = {name: float(value) for name, value in task.errors(wanted, achieved).items()}
        outcome.achieved, outcome.errors = achieved, errors
        beyond = beyond_tolerance(errors, task.tolerances)
        if not beyond:
            outcome.success = True
            outcome.failure_reason = ''
            outcome.attempts.append(f'try {attempt}: ok ({_shown(errors)}, cameras {cameras})')
            return outcome
        seen = ', '.join(f'{v:.4g}' for v in achieved)
        outcome.failure_reason = (
            f'try {attempt}: scene seen at ({seen}); errors {_shown(errors)}; beyond the tolerance: '
            f'{_shown({n: task.tolerances[n] for n in beyond})}')
        outcome.attempts.append(outcome.failure_reason)
    return outcome
