"""What the simulated cell needs of a task's simulator (the `Task.simulator` factory's product). Pure.

The sim cell node (`enpire_sim.sim_cell_node`) is mock hardware for any task: it builds the task's
simulator with `task.load('simulator')()`, places the initial state the task samples, steps it once per
accepted command, publishes its tool and task state, judges ground truth with the task's
`success_rule`, and renders its `scene` through the camera rig (`enpire_sim.cameras`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from enpire_common.task import SceneObject

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
