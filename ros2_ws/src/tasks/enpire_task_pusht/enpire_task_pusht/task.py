"""The Push-T task as the task contract (`enpire_common.task.Task`) describes it.

Frame "table": the 512x512 px workspace of gym-pusht, y down. The tool is the round pusher (radius
15 px); the task-state vector is the T's origin pose (x, y, theta), the score its coverage of the goal,
and gym-pusht's own rule turns the score into success (coverage > 0.95).
"""
from __future__ import annotations

import math
from pathlib import Path

from enpire_common.task import ActionSpec, ObservationSpec, ResetSpec, Task, VerifierSpec, config_dir_of

from enpire_task_pusht.geometry import CONTROL_HZ, EPISODE_STEPS, WORKSPACE_SIZE

TASK = Task(
    name='pusht',
    title='Push-T: push a T-shaped block onto its goal pose with a round pusher',
    action=ActionSpec(names=('target_x', 'target_y'), units=('px', 'px'), low=(0.0, 0.0),
                      high=(WORKSPACE_SIZE, WORKSPACE_SIZE), frame='table'),
    observation=ObservationSpec(cameras=('top', 'oblique', 'wrist'),
                                proprioception=('agent_x', 'agent_y', 'agent_vx', 'agent_vy'),
                                proprioception_units=('px', 'px', 'px/s', 'px/s')),
    task_state=('block_x', 'block_y', 'block_theta'),
    task_state_units=('px', 'px', 'rad'),
    distributions=('in_distribution', 'out_of_distribution'),
    control_hz=float(CONTROL_HZ),
    episode_steps=EPISODE_STEPS,
    sample_initial_state='enpire_task_pusht.distributions:sample_initial_state',
    success_rule='enpire_task_pusht.geometry:success_of_state',
    reset=ResetSpec(placement='mock_placement',
                    estimator='enpire_task_pusht.reset:fuse_estimates',
                    tolerances={'position_px': 5.0, 'angle_rad': math.radians(5.0)},
                    errors='enpire_task_pusht.reset:pose_errors'),
    verifier=VerifierSpec(judge='enpire_task_pusht.verification.judge:PushTJudge',
                          config='enpire_task_pusht.verification.config:config_path',
                          settings='enpire_task_pusht.verification.config:PushTVerifyConfig',
                          dataset='enpire_task_pusht.perception.dataset:write_dataset',
                          fusion_rule='unanimous', min_cameras=1, success_confidence=0.4,
                          lone_margin_factor=1.25),
    safety_limits='enpire_task_pusht.task:safety_limits_path',
    policy_imports=frozenset({'enpire_task_pusht.policy_tools', 'enpire_task_pusht.policy_motion_tools',
                              'enpire_task_pusht.learned_policy'}),
    empty_policy='enpire_task_pusht.empty_policy:EMPTY_POLICY',
    prompt='enpire_task_pusht.prompt:PROMPT',
    strategies='enpire_task_pusht.strategies:LIBRARY',
    simulator='enpire_task_pusht.simulator:PushTSim',
    in_process='enpire_task_pusht.in_process:InProcessHarness',
    config_dir='enpire_task_pusht.task:config_dir',
    extras={'replay': 'enpire_task_pusht.replay:PushTReplay',    # `enpire audit --replay`: the cell's physics
            'reference_replay': 'enpire_task_pusht.replay:GymPushTReplay',    # ... and gym-pusht itself
            'learning': 'enpire_task_pusht.learning:LEARNING'},   # the learning regimes' Push-T parts
)


def config_dir() -> str:
    """The task's config folder: the installed one (share/enpire_task_pusht/config), else the source's."""
    return config_dir_of('enpire_task_pusht', Path(__file__).resolve().parents[1] / 'config')


def safety_limits_path() -> str:
    return str(Path(config_dir()) / 'safety_limits.yaml')
