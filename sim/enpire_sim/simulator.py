"""What the simulated cell needs of a task's simulator (the `Task.simulator` factory's product). Pure.

The sim cell node (`enpire_sim.sim_cell_node`) is mock hardware for any task: it builds the task's
simulator with `task.load('simulator')()`, places the initial state the task samples, steps it once per
accepted command, publishes its tool and task state and judges ground truth with the task's
`success_rule`. Its cameras come one of two ways:
- a `CellSimulator` is a 2-D table scene: the node draws its `scene` through the camera rig
  (`enpire_sim.cameras`), each camera's pose and intrinsics from the rig, poses in the `table` frame;
- a `SelfRenderingSimulator` (a 3-D physics engine with its own renderer, e.g. MuJoCo) renders its cameras
  itself and says where they are: `render(camera)`, `camera_info(camera)`, `camera_pose(camera)` in its
  `frame_id` (the task's frame). The node adds sim time and the camera faults (drop, freeze, occlude,
  noise) to its frames exactly as to the rig's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from enpire_common.task import SceneObject

from enpire_env.calibration.camera_model import Intrinsics, Pose
from enpire_sim.cameras import Scene, Table, ViewState


@runtime_checkable
class CellSimulator(Protocol):
    """One simulated table. Units and frames are the task's (`Task.action`, `Task.task_state_units`)."""

    table: Table        # the plane the cameras look at, and the control rate
    scene: Scene        # what the cameras draw

    def placement_problem(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> str | None:
        """Why the cell cannot be put into this scene (None if it can): checked before `place_objects`."""
        ...

    def place_objects(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> None:
        """Put the objects and the tool where asked; the step count starts again at 0."""
        ...

    def step(self, command: Sequence[float]) -> None:
        """One control step toward `command` (a vector of the task's action space)."""
        ...

    @property
    def step_count(self) -> int: ...          # control steps since the last placement

    @property
    def tool_position(self) -> tuple[float, ...]: ...

    @property
    def tool_velocity(self) -> tuple[float, ...]: ...

    @property
    def target(self) -> tuple[float, ...]: ...   # the last command (the tool's placement until the first)

    def task_state(self) -> tuple[float, ...]:
        """The task-state vector (`Task.task_state` names its entries)."""
        ...

    def view(self) -> ViewState:
        """What the cameras draw now (the `scene`'s state)."""
        ...


@runtime_checkable
class SelfRenderingSimulator(Protocol):
    """One simulated cell in 3-D that renders its own fixed cameras. Positions are in `frame_id` (the task's
    frame, metres), objects are placed by their pose vectors (xyz for a point-like object), and the state
    can be snapshotted and restored bit for bit (k attempts continue from where the last one left)."""

    frame_id: str                      # the task's frame: camera poses, tool position, placements
    cameras: tuple[str, ...]           # the cell's fixed cameras

    def placement_problem(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> str | None:
        """Why the cell cannot be put into this scene (None if it can): checked before `place_objects`."""
        ...

    def place_objects(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> None:
        """Put the objects (3-D pose vectors) and the tool where asked; the step count starts again at 0."""
        ...

    def step(self, command: Sequence[float]) -> None:
        """One control step with `command` (a vector of the task's action space)."""
        ...

    def idle_command(self) -> tuple[float, ...]:
        """What a real-time tick without a new command applies: the command that holds the cell (for a
        displacement action a new command is applied once, never repeated)."""
        ...

    @property
    def step_count(self) -> int: ...          # control steps since the last placement

    @property
    def tool_position(self) -> tuple[float, ...]: ...

    @property
    def tool_velocity(self) -> tuple[float, ...]: ...

    @property
    def target(self) -> tuple[float, ...]: ...   # the last command applied (the idle command until the first)

    def task_state(self) -> tuple[float, ...]:
        """The task-state vector (`Task.task_state` names its entries)."""
        ...

    # Optional: `joints() -> {name: position}`, what the cell measures of itself beside the tool (e.g. a
    # gripper's opening), published in CellState.joints (the task's proprioception names them).

    def render(self, camera: str) -> np.ndarray:
        """The camera's clean frame of the current state: height x width x 3, uint8 RGB, row 0 at the top."""
        ...

    def camera_info(self, camera: str) -> Intrinsics:
        """The camera's intrinsics (fixed)."""
        ...

    def camera_pose(self, camera: str) -> Pose:
        """`frame_id` from the camera's optical frame (z forward, x right, y down); fixed cameras only."""
        ...

    def snapshot(self) -> object:
        """Everything `restore` needs to continue from now bit for bit."""
        ...

    def restore(self, snapshot: object) -> None:
        ...
