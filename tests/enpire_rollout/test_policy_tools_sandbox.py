"""`policy_tools.locate_block` called by a policy INSIDE the sandbox, on frames the simulator rendered."""
from __future__ import annotations

import os

import numpy as np
import pytest
from enpire_task_pusht.geometry import angle_diff
from enpire_task_pusht.render import CameraSpec, RenderState, render

from enpire_rollout.policy_contract import Observation
from enpire_rollout.policy_runtime import trial_context
from enpire_rollout.sandbox import PolicyRunner, SandboxLimits

# The policy reports what it located over two steps (an action is only (x, y)): (x, y), then (theta, 0).
LOCATOR = '''
from enpire_task_pusht.policy_tools import locate_block


class Policy:
    def reset(self, context):
        self.pose = None

    def act(self, observation):
        if observation.step == 0:
            self.pose = locate_block(observation)
            if self.pose is None:
                raise RuntimeError('no T located')
            return (self.pose[0], self.pose[1])
        return (self.pose[2], 0.0)

    def on_attempt_failed(self, report):
        pass
'''
POSES = [(150.0, 330.0, 0.6), (300.0, 200.0, -2.5), (256.0, 256.0, 3.0), (380.0, 140.0, -0.4)]
SIZE = 96
# Workspace units (512 across the table): 6 units is about 1.1 image pixels of the 96x96 top view.
POSITION_TOL = 6.0
THETA_TOL = 0.1


def observation(camera: str, image: np.ndarray, h: np.ndarray, step: int) -> Observation:
    return Observation(step=step, attempt=1, time_s=0.1 * step, agent_position=np.array([60.0, 450.0]),
                       agent_velocity=np.zeros(2), frames={camera: image}, table_to_image={camera: h})


@pytest.mark.parametrize('kind', ['top', 'oblique'])
def test_locate_block_inside_the_sandbox_on_simulated_frames(tmp_path, kind):
    policy = tmp_path / 'locator.py'
    policy.write_text(LOCATOR)
    spec = CameraSpec(name=kind, kind=kind, width=SIZE, height=SIZE)
    context = trial_context('pusht', attempts=1, steps_per_attempt=2, control_hz=10.0, cameras=[kind],
                            seed=0)
    runner = PolicyRunner(SandboxLimits(), scratch_dir=tmp_path / 'scratch')
    try:
        started = runner.start(policy, context)
        assert started.ok, started.reason
        for pose in POSES:
            image, h = render(RenderState(block_pose=pose, agent_xy=(60.0, 450.0)), spec)
            assert image.shape == (SIZE, SIZE, 3)
            position = runner.act(observation(kind, image, h, 0))
            assert position.ok and position.action is not None, position.reason
            heading = runner.act(observation(kind, image, h, 1))
            assert heading.ok and heading.action is not None, heading.reason
            x, y = position.action
            theta = heading.action[0]
            assert abs(x - pose[0]) < POSITION_TOL and abs(y - pose[1]) < POSITION_TOL, (kind, pose, x, y)
            assert abs(angle_diff(theta, pose[2])) < THETA_TOL, (kind, pose, theta)
        assert runner.missed_deadlines == 0
        if runner.hardening.get('uid') is not None:       # as root: it really ran as a uid of its own
            assert runner.hardening['uid'] not in (0, os.getuid())
    finally:
        runner.close()


def test_locate_block_inside_the_sandbox_reports_an_empty_table(tmp_path):
    policy = tmp_path / 'locator.py'
    policy.write_text(LOCATOR)
    spec = CameraSpec(name='top', kind='top', width=SIZE, height=SIZE)
    context = trial_context('pusht', attempts=1, steps_per_attempt=1, control_hz=10.0, cameras=['top'],
                            seed=0)
    _, h = render(RenderState(block_pose=POSES[0], agent_xy=(60.0, 450.0)), spec)
    blank = np.full((SIZE, SIZE, 3), 255, np.uint8)
    with PolicyRunner(SandboxLimits(), scratch_dir=tmp_path / 'scratch') as runner:
        assert runner.start(policy, context).ok
        result = runner.act(observation('top', blank, h, 0))
        assert not result.ok and 'no T located' in result.reason
        assert runner.alive                # a policy exception ends the attempt, not the sandbox
