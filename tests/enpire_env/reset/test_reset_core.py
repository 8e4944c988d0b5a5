"""Reset core (no ROS): validation, target choice, fusing camera estimates, tolerance, retries."""
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from enpire_env.reset import (
    CameraEstimate,
    Observation,
    PlacementOutcome,
    ResetConfig,
    ResetRoutine,
    fuse_block_estimates,
    load_routine_factory,
    pick_target,
    pose_errors,
    run_reset,
    validate_goal,
)

CONFIG = Path(__file__).resolve().parents[3] / 'ros2_ws/src/enpire_env/config/reset.yaml'
CFG = ResetConfig()


def test_shipped_yaml_loads():
    config = ResetConfig.from_yaml(CONFIG)
    assert config.position_tolerance_px == 5.0 and config.angle_tolerance_deg == 5.0
    assert config.routine == 'mock_placement'


def test_bad_config_refused(tmp_path):
    (tmp_path / 'r.yaml').write_text('reset:\n  angle_tolerance_deg: -1\n')
    with pytest.raises(ValidationError):
        ResetConfig.from_yaml(tmp_path / 'r.yaml')


@pytest.mark.parametrize('task,dist,tries,needle', [
    ('fold_laundry', 'in_distribution', 3, 'unknown task'),
    ('pusht', 'sideways', 3, 'unknown distribution'),
    ('pusht', 'in_distribution', 0, 'max_tries must be an integer in 1..'),
    ('pusht', 'in_distribution', -4, 'max_tries must be'),
    ('pusht', 'in_distribution', 2**31 - 1, 'max_tries must be'),
])
def test_validate_goal_reasons(task, dist, tries, needle):
    assert needle in validate_goal(task, dist, tries, CFG)


def test_validate_goal_ok_and_target_deterministic():
    assert validate_goal('pusht', 'out_of_distribution', 3, CFG) == ''
    assert pick_target(7, 'in_distribution') == pick_target(7, 'in_distribution')
    assert pick_target(7, 'in_distribution') != pick_target(8, 'in_distribution')


def est(camera, pose, usable=True, fresh=True):
    return CameraEstimate(camera, usable, pose, fresh, '' if usable else 'occluded')


def test_fuse_uses_median_of_usable_fresh_cameras_and_wraps_angles():
    pose, used, _ = fuse_block_estimates([
        est('a', (100.0, 200.0, math.pi - 0.01)), est('b', (102.0, 201.0, -math.pi + 0.01)),
        est('c', (500.0, 500.0, 0.0), usable=False), est('d', (101.0, 199.0, math.pi - 0.02)),
        est('e', (0.0, 0.0, 0.0), fresh=False), est('f', (math.nan, 1.0, 0.0))])
    assert used == ['a', 'b', 'd']
    assert pose[:2] == (101.0, 200.0)
    assert abs(abs(pose[2]) - (math.pi - 0.01)) < 1e-9   # near pi, not near 0


def test_fuse_reports_why_nothing_was_usable():
    pose, used, why = fuse_block_estimates([est('top', (1.0, 1.0, 0.0), usable=False),
                                            est('side', (1.0, 1.0, 0.0), fresh=False)], min_cameras=1)
    assert pose is None and 'top: occluded' in why and 'side: frame older than the placement' in why


def test_pose_errors_wrap():
    pos, ang = pose_errors((0.0, 0.0, math.pi - 0.05), (3.0, 4.0, -math.pi + 0.05))
    assert pos == pytest.approx(5.0) and ang == pytest.approx(0.1)


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


def observer(offsets):
    """Cameras see the target block shifted by offsets[attempt-1] (None: cameras uncertain)."""
    target = pick_target(3, 'in_distribution').block

    def observe(placement):
        off = offsets[int(placement.stamp) - 1]
        if off is None:
            return Observation((est('top', target, usable=False),), '/ev/x')
        pose = (target[0] + off[0], target[1] + off[1], target[2] + off[2])
        return Observation((est('top', pose), est('side', pose)), f'/ev/{placement.stamp}')
    return observe


def test_run_reset_retries_until_within_tolerance():
    target = pick_target(3, 'in_distribution')
    phases = []
    routine = Scripted(fails={2})
    assert isinstance(routine, ResetRoutine)
    offsets = [(20.0, 0.0, 0.0), None, None, (1.0, 1.0, math.radians(2))]
    outcome = run_reset(target, 5, routine, observer(offsets), CFG,
                        on_phase=lambda p, a: phases.append((p, a)))
    assert outcome.success and outcome.tries_used == 4 and outcome.failure_reason == ''
    assert outcome.position_error == pytest.approx(math.sqrt(2)) and outcome.evidence_path == '/ev/4.0'
    assert routine.calls == [1, 2, 3, 4]
    assert phases[:3] == [('placing', 1), ('settling', 1), ('verifying', 1)]
    assert ('retrying', 2) in phases and 'placement failed: gripper jammed' in outcome.attempts[1]
    assert 'could not verify' in outcome.attempts[2]


def test_run_reset_fails_when_never_verified():
    target = pick_target(3, 'in_distribution')
    outcome = run_reset(target, 2, Scripted(), observer([None, None]), CFG)
    assert not outcome.success and outcome.tries_used == 2 and 'could not verify' in outcome.failure_reason
    assert outcome.achieved is None


def test_run_reset_out_of_tolerance_reports_errors():
    target = pick_target(3, 'in_distribution')
    outcome = run_reset(target, 1, Scripted(), observer([(0.0, 0.0, math.radians(9))]), CFG)
    assert not outcome.success and 'tolerance 5 px / 5 deg' in outcome.failure_reason
    assert math.degrees(outcome.angle_error) == pytest.approx(9.0)


def test_run_reset_cancel_before_anything():
    routine = Scripted()
    outcome = run_reset(pick_target(1, 'in_distribution'), 3, routine, observer([None] * 3), CFG,
                        cancelled=lambda: True)
    assert outcome.failure_reason == 'canceled' and routine.calls == []


def test_load_routine_factory():
    builtins = {'mock_placement': object}
    assert load_routine_factory('mock_placement', builtins) is object
    assert load_routine_factory('math:sqrt', builtins) is math.sqrt
    for bad in ('nope', 'no_such_module_x:f', 'math:no_such_attr', 'math:pi'):
        with pytest.raises(ValueError):
            load_routine_factory(bad, builtins)


def test_only_trusted_pose_cameras_decide_the_achieved_pose():
    estimates = [est('top', (100.0, 100.0, 0.0)), est('oblique', (130.0, 80.0, 0.5))]
    pose, used, _ = fuse_block_estimates(estimates, 1, ('top',))
    assert used == ['top'] and pose == (100.0, 100.0, 0.0)
    pose, used, why = fuse_block_estimates([est('oblique', (130.0, 80.0, 0.5))], 1, ('top',))
    assert pose is None and used == [] and '0 of 1' in why
