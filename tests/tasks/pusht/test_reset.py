"""Push-T's reset parts through the generic reset: its goals, the fusion of T poses, its named errors."""
import math

import pytest

from enpire_env.reset import ResetConfig, load_task_reset, validate_goal

CFG = ResetConfig()
PUSHT = load_task_reset('pusht', CFG)


@pytest.mark.parametrize('dist,tries,needle', [
    ('sideways', 3, "unknown pusht distribution 'sideways'"),
    ('in_distribution', 0, 'max_tries must be an integer in 1..'),
    ('in_distribution', 2**31 - 1, 'max_tries must be'),
])
def test_push_t_goals_are_checked_against_its_distributions(dist, tries, needle):
    assert needle in validate_goal('pusht', dist, tries, CFG)


def test_a_valid_goal_and_a_deterministic_target():
    assert validate_goal('pusht', 'out_of_distribution', 3, CFG) == ''
    assert PUSHT.target(7, 'in_distribution') == PUSHT.target(7, 'in_distribution')
    assert PUSHT.target(7, 'in_distribution') != PUSHT.target(8, 'in_distribution')


def test_the_fused_pose_is_the_median_and_wraps_angles():
    pose = PUSHT.fuse([(100.0, 200.0, math.pi - 0.01), (102.0, 201.0, -math.pi + 0.01),
                       (101.0, 199.0, math.pi - 0.02)])
    assert pose[:2] == (101.0, 200.0)
    assert abs(abs(pose[2]) - (math.pi - 0.01)) < 1e-9   # near pi, not near 0


def test_errors_are_position_and_wrapped_angle_with_5_px_and_5_deg_tolerances():
    errors = PUSHT.errors((0.0, 0.0, math.pi - 0.05), (3.0, 4.0, -math.pi + 0.05))
    assert errors == {'position_px': pytest.approx(5.0), 'angle_rad': pytest.approx(0.1)}
    assert PUSHT.tolerances == {'position_px': 5.0, 'angle_rad': pytest.approx(math.radians(5.0))}


def test_the_node_yaml_overrides_a_tolerance_by_name_and_refuses_a_name_the_task_lacks():
    tighter = load_task_reset('pusht', ResetConfig(tolerances={'position_px': 3.0}))
    assert tighter.tolerances['position_px'] == 3.0
    with pytest.raises(ValueError, match="'angle_deg'"):
        load_task_reset('pusht', ResetConfig(tolerances={'angle_deg': 5.0}))
