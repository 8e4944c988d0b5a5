"""How the trial server reads a cell's state for a task (enpire_rollout.state_reading), per action kind."""
from __future__ import annotations

import numpy as np
import pytest
from enpire_common import task_registry

from enpire_interfaces.msg import CellState
from enpire_rollout.state_reading import StateReading


def state(tool=(0.0, 0.0, 0.0), commanded=(), joints=None) -> CellState:
    msg = CellState(commanded=[float(v) for v in commanded])
    msg.tool_pose.position.x, msg.tool_pose.position.y, msg.tool_pose.position.z = tool
    msg.tool_velocity.linear.x = 0.5
    if joints:
        msg.joints.name, msg.joints.position = list(joints), [float(v) for v in joints.values()]
    return msg


def test_an_absolute_action_holds_at_the_measured_position_and_reads_no_proprioception_it_cannot_give():
    reading = StateReading(task_registry.get('pusht'))
    s = state(tool=(120.0, 340.0, 0.0), commanded=(200.0, 300.0))
    assert reading.hold(s) == (120.0, 340.0)
    assert reading.position(s).tolist() == [120.0, 340.0]
    assert reading.velocity(s).tolist() == [0.5, 0.0]
    # agent_x, agent_y, agent_vx, agent_vy: the state has no velocity entries by those names
    assert reading.proprioception(s).shape == (0,)


def test_a_displacement_action_holds_still_with_the_gripper_as_last_commanded():
    reading = StateReading(task_registry.get('peg_insertion'))
    s = state(tool=(0.1, 0.6, 0.2), commanded=(0.4, -0.2, 0.1, 0.6), joints={'gripper_open': 0.35})
    assert reading.hold(s) == (0.0, 0.0, 0.0, 0.6)
    assert reading.hold(state(commanded=())) == (0.0, 0.0, 0.0, -1.0)     # nothing commanded yet: open
    assert reading.position(s) == pytest.approx([0.1, 0.6, 0.2])
    assert reading.proprioception(s) == pytest.approx([0.1, 0.6, 0.2, 0.35])
    assert reading.proprioception(state(tool=(0.1, 0.6, 0.2))).shape == (0,)   # no gripper reported


def test_the_located_scene_is_split_into_the_tasks_objects_or_left_empty():
    peg = StateReading(task_registry.get('peg_insertion'))
    scene = peg.scene(3, 'metaworld', [0.0, 0.6, 0.02, 0.3, 0.65, 0.0])
    assert list(scene) == ['peg', 'box']
    assert np.allclose(scene['box'], [0.3, 0.65, 0.0])
    assert peg.scene(3, 'metaworld', [0.0, 0.6]) == {}        # not the scene's shape
    assert peg.scene(3, 'metaworld', []) == {}                # nothing located
