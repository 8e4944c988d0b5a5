"""Peg insertion (Meta-World peg-insert-side-v3) as the task contract describes it.

Frame "world": metaworld's world frame, metres (x to the robot's left, y away from its base, z up). The
action is metaworld's: a hand displacement per step (1 unit = 1 cm) and a gripper effort, each in [-1, 1].
The task-state vector is the hand, the gripper opening, the peg's grasp point and head, and the box; the
success rule is metaworld's own window around the hole's target point.

Fields the framework cannot carry yet resolve to `framework_gaps` (they refuse with the reason); the parts
that work today are under `extras`.
"""
from __future__ import annotations

from enpire_common.task import ActionSpec, ObservationSpec, ResetSpec, Task, VerifierSpec

from enpire_task_peg.render import CAMERA_NAMES
from enpire_task_peg.simulator import CONTROL_HZ, DISTRIBUTIONS, EPISODE_STEPS, TASK_STATE, TASK_STATE_UNITS

TASK = Task(
    name='peg_insertion',
    title='Peg insertion: pick up a peg and insert it sideways into the hole of a box (Meta-World, MuJoCo)',
    action=ActionSpec(names=('hand_dx', 'hand_dy', 'hand_dz', 'gripper'), units=('cm', 'cm', 'cm', '1'),
                      low=(-1.0, -1.0, -1.0, -1.0), high=(1.0, 1.0, 1.0, 1.0), frame='world'),
    observation=ObservationSpec(cameras=CAMERA_NAMES,
                                proprioception=('hand_x', 'hand_y', 'hand_z', 'gripper_open'),
                                proprioception_units=('m', 'm', 'm', '1'), image_size=(96, 96)),
    task_state=TASK_STATE,
    task_state_units=TASK_STATE_UNITS,
    distributions=DISTRIBUTIONS,
    control_hz=CONTROL_HZ,
    episode_steps=EPISODE_STEPS,
    sample_initial_state='enpire_task_peg.distributions:sample_initial_state',
    success_rule='enpire_task_peg.simulator:success_rule',
    # The reset locates peg and box from every calibrated view at once (reset.py), the verifier's fusion
    # locates the peg's head in 3-D from the cameras' models and the placed box (verification/verifier.py).
    reset=ResetSpec(placement='mock_placement',
                    estimator='enpire_task_peg.reset:reset_estimator', multi_view=True,
                    tolerances={'peg_position_m': 0.01, 'box_position_m': 0.01},
                    errors='enpire_task_peg.reset:reset_errors'),
    verifier=VerifierSpec(judge='enpire_task_peg.verification.verifier:PegJudge',
                          fusion='enpire_task_peg.verification.verifier:fuse_cameras',
                          config='enpire_task_peg.paths:verification_config_path',
                          dataset='enpire_task_peg.perception.dataset:write_dataset',
                          fusion_rule='unanimous', min_cameras=2, success_confidence=0.5),
    safety_limits='enpire_task_peg.paths:safety_limits_path',
    command_filter='enpire_task_peg.safety:command_rule',
    policy_imports=frozenset({'enpire_task_peg.policy_tools'}),
    empty_policy='enpire_task_peg.empty_policy:EMPTY_POLICY',
    prompt='enpire_task_peg.prompt:PROMPT',
    strategies='enpire_task_peg.strategies:LIBRARY',
    simulator='enpire_task_peg.cell:PegCell',
    in_process='enpire_task_peg.in_process:InProcessHarness',
    config_dir='enpire_task_peg.paths:config_dir',
    extras={'physics': 'enpire_task_peg.simulator:PegSimulator',          # metaworld's physics, pure
            'cameras': 'enpire_task_peg.render:CellCameras',              # the cell's cameras on that physics
            'camera_judge': 'enpire_task_peg.verification.judge:judge_frame',
            'fusion': 'enpire_task_peg.verification.fuse:fuse_peg',
            'tool_limits': 'enpire_task_peg.safety:ToolLimits',
            'limit_command': 'enpire_task_peg.safety:limit_command',
            'cell_parameters': 'enpire_task_peg.cell_nodes:node_parameters'},   # beside the bringup file's
)
