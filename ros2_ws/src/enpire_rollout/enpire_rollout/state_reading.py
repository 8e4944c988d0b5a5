"""What the trial server reads from a cell's state for a task's policy (no rclpy; CellState duck-typed).

- Position and velocity (`Observation.agent_position`): an action of joints is measured by the joints, an
  absolute tool target by the tool's first coordinates (`messages.measured_action`); a task with its own
  command rule (`Task.command_filter`: e.g. a hand displacement per step) gets the tool's full position.
- The hold: the command that keeps the cell where it is. An absolute action holds at the measured position;
  a task's command rule says its own stop (a displacement: none, the gripper as last commanded).
- Proprioception (`Observation.proprioception`, named by `Task.observation.proprioception`): a name the
  state's joints carry is that joint's position; the other names are the tool's coordinates, in order.
  Empty when the state cannot give every name (a cell that reports less than the task names).
- The scene (`Observation.scene`): the reset's located state split into the task's scene objects (their
  names and pose lengths from the task's initial state), empty when the lengths do not match.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from enpire_common import messages
from enpire_common.task import Task


class StateReading:
    """A task's view of its cell's CellState, for the trial server."""

    def __init__(self, task: Task):
        self.task = task
        self.names = task.action.names
        self.rule = None
        if task.command_filter is not None:
            self.rule = task.load('command_filter')(task.load('safety_limits')())

    def position(self, state) -> np.ndarray:
        if self.rule is not None:
            return np.array(messages.tool_position(state))
        return np.array(messages.measured_action(state, self.names))

    def velocity(self, state) -> np.ndarray:
        if self.rule is not None:
            return np.array(messages.tool_velocity(state))
        return np.array(messages.measured_velocity(state, self.names))

    def hold(self, state) -> tuple[float, ...]:
        """The command that holds the cell where `state` finds it."""
        if self.rule is not None:
            commanded = messages.vector(state.commanded)
            return tuple(float(v) for v in self.rule.stop(commanded if len(commanded) == len(self.names)
                                                          else None))
        return messages.measured_action(state, self.names)

    def proprioception(self, state) -> np.ndarray:
        wanted = self.task.observation.proprioception
        joints = dict(zip(state.joints.name, messages.vector(state.joints.position), strict=False))
        tool = iter(messages.tool_position(state))
        values = []
        for name in wanted:
            value = joints.get(name, next(tool, None))
            if value is None:
                return np.zeros(0)
            values.append(float(value))
        return np.array(values)

    def scene(self, seed: int, distribution: str, located: Sequence[float]) -> dict[str, np.ndarray]:
        """`located` (the reset's estimate of the scene, its objects' poses in a row) by object name."""
        objects = self.task.load('sample_initial_state')(int(seed), distribution).scene()
        if sum(len(o.pose) for o in objects) != len(located) or not len(located):
            return {}
        out, at = {}, 0
        for obj in objects:
            out[obj.name] = np.array(located[at:at + len(obj.pose)], dtype=float)
            at += len(obj.pose)
        return out


__all__ = ['StateReading']
