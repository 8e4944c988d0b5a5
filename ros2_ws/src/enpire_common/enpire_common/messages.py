"""Vectors to and from the generic interfaces (enpire_interfaces), for every task alike.

The task (`enpire_common.task.Task`) names the entries; these helpers only move floats, unchanged, between
Python sequences and messages, so a task's own mapping (in its folder) is lossless when it uses them.
Field reads work on rclpy messages and on the classes of a rosbags typestore alike (same field names).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from enpire_common.task import SceneObject

Vector = tuple[float, ...]


def vector(values) -> Vector:
    """A message's float64[] (array.array, numpy array or list) as a tuple of Python floats."""
    return tuple(float(v) for v in values)


def floats(values: Sequence[float]) -> list[float]:
    """A sequence for a float64[] field; refuses what is not a flat sequence of numbers."""
    return [float(v) for v in values]


def command(values: Sequence[float], frame_id: str, stamp=None):
    """An `enpire_interfaces/Command` with the action vector `values` in frame `frame_id`."""
    from enpire_interfaces.msg import Command
    msg = Command(values=floats(values))
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def command_problem(msg, size: int, frame_id: str) -> str | None:
    """Why a cell refuses this Command (None when it is fine): frame, vector length, finiteness."""
    if msg.header.frame_id != frame_id:
        return f'frame_id {msg.header.frame_id!r} is not {frame_id!r}'
    values = vector(msg.values)
    if len(values) != size:
        return f'{len(values)} values, the action has {size}'
    if not all(math.isfinite(v) for v in values):
        return f'non-finite value in {values}'
    return None


def tool_position(state) -> Vector:
    """(x, y, z) of the tool pose of a CellState."""
    p = state.tool_pose.position
    return (float(p.x), float(p.y), float(p.z))


def tool_velocity(state) -> Vector:
    """(vx, vy, vz) of the tool's linear velocity of a CellState."""
    v = state.tool_velocity.linear
    return (float(v.x), float(v.y), float(v.z))


def _commands_joints(state, action_names: Sequence[str]) -> bool:
    joint_names = list(state.joints.name)
    return bool(joint_names) and joint_names == list(action_names)


def measured_action(state, action_names: Sequence[str]) -> Vector:
    """Where the cell is, in the action's coordinates: the command that holds it still (a stop).

    An action whose entries are the cell's joints (the same names, in order) is measured by the joint
    positions; any other action commands the tool position, whose first coordinates are its entries."""
    size = len(action_names)
    if _commands_joints(state, action_names):
        joints = vector(state.joints.position)
        if len(joints) != size:
            raise ValueError(f'{len(joints)} joint positions for {size} named joints')
        return joints
    if not 1 <= size <= 3:
        raise ValueError(f'an action that is not the joints commands the tool position (1 to 3 entries), '
                         f'not {size}')
    return tool_position(state)[:size]


def measured_velocity(state, action_names: Sequence[str]) -> Vector:
    """The rate of `measured_action`: joint velocities (zeros when the cell gives none), else the tool's."""
    size = len(action_names)
    if _commands_joints(state, action_names):
        velocities = vector(state.joints.velocity)
        return velocities if len(velocities) == size else (0.0,) * size
    return tool_velocity(state)[:size]


def set_tool(state, position: Sequence[float], velocity: Sequence[float] = ()) -> None:
    """Fill a CellState's tool pose (identity orientation) and linear velocity from up to 3 coordinates."""
    for target, values in ((state.tool_pose.position, position), (state.tool_velocity.linear, velocity)):
        if len(values) > 3:
            raise ValueError(f'a tool position or velocity has at most 3 coordinates, got {len(values)}')
        for axis, value in zip('xyz', values, strict=False):
            setattr(target, axis, float(value))
    state.tool_pose.orientation.w = 1.0


def object_poses(objects: Sequence[SceneObject]) -> list:
    """`enpire_interfaces/ObjectPose` messages of a scene."""
    from enpire_interfaces.msg import ObjectPose
    return [ObjectPose(name=o.name, pose=floats(o.pose)) for o in objects]


def scene_objects(msgs) -> tuple[SceneObject, ...]:
    """A scene from `ObjectPose` messages."""
    return tuple(SceneObject(str(m.name), vector(m.pose)) for m in msgs)
