"""Reset core (no ROS), for any task: validation through the registry, fusing camera estimates with the
task's rule, its named tolerances, retries. A toy task (a point on a line) stands in for a real one."""
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from enpire_common.task import SceneObject
from pydantic import ValidationError

from enpire_env.reset import (
    CameraEstimate,
    Observation,
    PlacementOutcome,
    ResetConfig,
    ResetRoutine,
    TaskReset,
    fuse_estimates,
    load_routine_factory,
    run_reset,
    target_state,
    validate_goal,
)

CONFIG = Path(__file__).resolve().parents[3] / 'ros2_ws/src/enpire_env/config/reset.yaml'
CFG = ResetConfig()


@dataclass(frozen=True)
class PointStart:
    seed: int | None
    distribution: str | None
    x: float

    def scene(self):
        return (SceneObject('point', (self.x, 0.0)),)

    def tool(self):
        return (0.0,)


TOY = TaskReset(name='toy', distributions=('near',), state_size=2,
                sample=lambda seed, dist: PointStart(seed, dist, 10.0 + seed),
                fuse=lambda states: (max(s[0] for s in states), max(s[1] for s in states)),
                errors=lambda target, achieved: {'offset': abs(achieved[0] - target[0])},
                tolerances={'offset': 2.0}, placement='mock_placement')


def test_shipped_yaml_loads_and_leaves_tolerances_and_routine_to_the_task():
    config = ResetConfig.from_yaml(CONFIG)
    assert config.tolerances == {} and config.routine == ''


def test_bad_config_refused(tmp_path):
    (tmp_path / 'r.yaml').write_text('reset:\n  max_tries_limit: 0\n')
    with pytest.raises(ValidationError):
        ResetConfig.from_yaml(tmp_path / 'r.yaml')


@pytest.mark.parametrize('task,needle', [('fold_laundry', "unknown task 'fold_laundry'; known tasks: "),
                                         ('', 'a task name is a non-empty string')])
def test_an_unknown_task_is_refused_with_the_known_tasks(task, needle):
    assert needle in validate_goal(task, 'in_distribution', 3, CFG)


def test_the_target_is_the_tasks_sample_and_its_state_the_scenes_poses():
    assert TOY.target(3, 'near') == TOY.target(3, 'near') and TOY.target(3, 'near').x == 13.0
    assert target_state(TOY.target(3, 'near')) == (13.0, 0.0)


def est(camera, pose, usable=True, fresh=True):
    return CameraEstimate(camera, usable, pose, fresh, '' if usable else 'occluded')


def test_fusion_takes_the_usable_fresh_whole_estimates_and_the_tasks_rule():
    state, used, _ = fuse_estimates([
        est('a', (1.0, 5.0)), est('b', (3.0, 1.0)), est('c', (50.0, 50.0), usable=False),
        est('d', (60.0, 60.0), fresh=False), est('e', (math.nan, 1.0)), est('f', (70.0,))], TOY.fuse, 2)
    assert used == ['a', 'b'] and state == (3.0, 5.0)


def test_fusion_reports_why_nothing_was_usable():
    estimates = [est('top', (1.0, 1.0), usable=False), est('side', (1.0, 1.0), fresh=False), est('wrist', ())]
    state, used, why = fuse_estimates(estimates, TOY.fuse, 2, min_cameras=1)
    assert state is None and used == []
    assert 'top: occluded' in why and 'side: frame older than the placement' in why
    assert 'wrist: no estimate' in why


def test_only_trusted_pose_cameras_decide_the_achieved_state():
    estimates = [est('top', (1.0, 0.0)), est('oblique', (9.0, 0.0))]
    assert fuse_estimates(estimates, TOY.fuse, 2, 1, ('top',))[:2] == ((1.0, 0.0), ['top'])
    state, used, why = fuse_estimates([est('oblique', (9.0, 0.0))], TOY.fuse, 2, 1, ('top',))
    assert state is None and used == [] and '0 of 1' in why and 'not a pose camera' in why


class Scripted:
    """A routine whose placements land at scripted offsets (the real-cell hook, in miniature)."""

    name = 'scripted'

    def __init__(self, fails=()):
        self.calls = []
        self.fails = set(fails)

    def place(self, target, attempt):
        self.calls.append(attempt)
        if attempt in self.fails:
            return PlacementOutcome(False, 'gripper jammed')
        return PlacementOutcome(True, 'ok', stamp=float(attempt))


def observer(offsets, seed=3):
    """Cameras see the target shifted by offsets[attempt-1] (None: cameras uncertain)."""
    x, y = target_state(TOY.target(seed, 'near'))

    def observe(placement):
        off = offsets[int(placement.stamp) - 1]
        if off is None:
            return Observation((est('top', (x, y), usable=False),), '/ev/x')
        return Observation((est('top', (x + off, y)), est('side', (x + off, y))), f'/ev/{placement.stamp}')
    return observe


def test_run_reset_retries_until_within_the_tasks_tolerance():
    phases = []
    routine = Scripted(fails={2})
    assert isinstance(routine, ResetRoutine)
    outcome = run_reset(TOY.target(3, 'near'), 5, routine, observer([5.0, None, None, 1.5]), CFG, TOY,
                        on_phase=lambda p, a: phases.append((p, a)))
    assert outcome.success and outcome.tries_used == 4 and outcome.failure_reason == ''
    assert outcome.errors == {'offset': 1.5} and outcome.achieved == (14.5, 0.0)
    assert outcome.evidence_path == '/ev/4.0' and routine.calls == [1, 2, 3, 4]
    assert phases[:3] == [('placing', 1), ('settling', 1), ('verifying', 1)]
    assert ('retrying', 2) in phases and 'placement failed: gripper jammed' in outcome.attempts[1]
    assert 'could not verify' in outcome.attempts[2]
    assert 'offset 5' in outcome.attempts[0] and 'beyond the tolerance: offset 2' in outcome.attempts[0]


def test_run_reset_fails_when_never_verified_and_its_errors_stay_unmeasured():
    outcome = run_reset(TOY.target(3, 'near'), 2, Scripted(), observer([None, None]), CFG, TOY)
    assert not outcome.success and outcome.tries_used == 2 and 'could not verify' in outcome.failure_reason
    assert outcome.achieved is None and math.isnan(outcome.errors['offset'])


def test_an_error_the_rule_does_not_give_is_never_within_tolerance():
    silent = TaskReset(**{**TOY.__dict__, 'errors': lambda target, achieved: {}})
    outcome = run_reset(silent.target(3, 'near'), 1, Scripted(), observer([0.0]), CFG, silent)
    assert not outcome.success and 'beyond the tolerance: offset 2' in outcome.failure_reason


def test_run_reset_cancel_before_anything():
    routine = Scripted()
    outcome = run_reset(TOY.target(1, 'near'), 3, routine, observer([None] * 3, seed=1), CFG, TOY,
                        cancelled=lambda: True)
    assert outcome.failure_reason == 'canceled' and routine.calls == []


def test_load_routine_factory():
    builtins = {'mock_placement': object}
    assert load_routine_factory('mock_placement', builtins) is object
    assert load_routine_factory('math:sqrt', builtins) is math.sqrt
    for bad in ('nope', 'no_such_module_x:f', 'math:no_such_attr', 'math:pi'):
        with pytest.raises(ValueError):
            load_routine_factory(bad, builtins)


def test_a_multi_view_task_compares_the_located_scene_not_per_camera_estimates():
    """A 3-D task (ResetSpec.multi_view): the verify service located the scene from all views at once; the
    per-camera estimates are not fused (the toy's fuse would say 99), and an unlocated or malformed scene
    is a failed try with the reason."""
    from dataclasses import replace
    located = replace(TOY, multi_view=True, fuse=lambda states: (99.0, 99.0))
    x, y = target_state(located.target(3, 'near'))
    scenes = [(None, 'box: seen by 1 calibrated view(s) (mouth_left), need 2'), ((x, y, 1.0), ''),
              ((x + 5.0, y), ''), ((x + 1.0, y), '')]

    def observe(placement):
        scene, problem = scenes[int(placement.stamp) - 1]
        return Observation((est('top', (99.0, 99.0)),), '', scene=scene, scene_problem=problem)
    outcome = run_reset(located.target(3, 'near'), 4, Scripted(), observe, CFG, located)
    assert outcome.success and outcome.tries_used == 4 and outcome.achieved == (x + 1.0, y)
    assert 'not located from the views: box: seen by 1' in outcome.attempts[0]
    assert 'has 3 values, not 2' in outcome.attempts[1]
    assert 'beyond the tolerance: offset 2' in outcome.attempts[2]
