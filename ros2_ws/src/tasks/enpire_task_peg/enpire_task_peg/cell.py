"""The peg cell as the sim_cell node runs it (`Task.simulator`): metaworld's physics
(`simulator.PegSimulator`) with the cell's own cameras (`render.CellCameras`), as
`enpire_sim.simulator.SelfRenderingSimulator` asks.

No rclpy here. Frame `world` (metaworld's, metres). A placement is metaworld's own reset at the layout of
peg and box, the hand started at the placed tool position (metaworld's `hand_init_pos`; the task's
`HAND_START` is metaworld's own, so a sampled initial state is exactly metaworld's reset). The command is
metaworld's action: a displacement, applied once; a real-time tick without a new command holds the hand
(zero displacement, the gripper as last commanded). The episode has no 500-step cap here: k attempts
continue from where the previous one left the arm.

The cameras' EGL context is made on the first render (an idle cell makes none) and released after each
frame: a composed cell's executor may call the next render from another thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
from enpire_common.task import SceneObject

from enpire_env.calibration.camera_model import Intrinsics, Pose
from enpire_task_peg.render import CAMERA_NAMES, CAMERAS, CellCameras
from enpire_task_peg.simulator import Layout, PegSimulator, Snapshot, layout_ranges

FRAME_ID = 'world'
CELL_MAX_STEPS = 2**31 - 1
OPEN_GRIPPER = -1.0              # metaworld's reset leaves the gripper open
PLACEMENT_Z_SLACK = 0.01         # metres a placed object's height may differ from its range


class PegCell:
    """One simulated peg cell (enpire_sim.simulator.SelfRenderingSimulator)."""

    frame_id = FRAME_ID
    cameras = CAMERA_NAMES

    def __init__(self, width: int = 96, height: int = 96, max_steps: int = CELL_MAX_STEPS):
        self.physics = PegSimulator(max_steps=max_steps)
        self.width, self.height = int(width), int(height)
        self._placements = {c.name: c for c in CAMERAS}
        self._renderer: CellCameras | None = None
        self._render_lock = threading.Lock()
        self._target: tuple[float, ...] = (0.0, 0.0, 0.0, OPEN_GRIPPER)
        self._velocity = (0.0, 0.0, 0.0)

    # -- placement -----------------------------------------------------------------------------------
    def placement_problem(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> str | None:
        poses = {o.name: tuple(o.pose) for o in objects}
        if set(poses) != {'peg', 'box'} or any(len(p) != 3 for p in poses.values()):
            return 'the scene is a peg and a box, each an xyz position'
        if len(tool) != 3 or not np.all(np.isfinite(tool)):
            return 'the tool (the hand) is an xyz position'
        env = self.physics.env
        if np.any(np.asarray(tool) < env.mocap_low) or np.any(np.asarray(tool) > env.mocap_high):
            return (f'hand {tuple(round(float(v), 3) for v in tool)} outside its reach '
                    f'{tuple(env.mocap_low)}..{tuple(env.mocap_high)}')
        layout = Layout(poses['peg'], poses['box'])
        problem = layout.problem()
        if problem:
            return problem
        low, high = layout_ranges('wide')
        slack = np.array([0.0, 0.0, PLACEMENT_Z_SLACK] * 2)
        vec = layout.rand_vec()
        if np.any(vec < low - slack) or np.any(vec > high + slack):
            return (f'layout {np.round(vec, 3).tolist()} outside the cell\'s table region '
                    f'{np.round(low, 3).tolist()}..{np.round(high, 3).tolist()} (the wide distribution)')
        return None

    def place_objects(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> None:
        problem = self.placement_problem(objects, tool)
        if problem:
            raise ValueError(problem)
        poses = {o.name: tuple(float(v) for v in o.pose) for o in objects}
        self.physics.env.hand_init_pos = np.array(tool, dtype=np.float64)
        self.physics.reset(Layout(poses['peg'], poses['box']))
        self._target = (0.0, 0.0, 0.0, OPEN_GRIPPER)
        self._velocity = (0.0, 0.0, 0.0)

    # -- stepping ------------------------------------------------------------------------------------
    def step(self, command: Sequence[float]) -> None:
        before = self.physics.env.get_endeff_pos().copy()
        self.physics.step(command)
        self._target = tuple(float(v) for v in command)
        moved = self.physics.env.get_endeff_pos() - before
        self._velocity = tuple(float(v) for v in moved / self.physics.dt)

    def idle_command(self) -> tuple[float, ...]:
        return (0.0, 0.0, 0.0, self._target[3])

    @property
    def step_count(self) -> int:
        return self.physics.steps

    @property
    def tool_position(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.physics.env.get_endeff_pos())

    @property
    def tool_velocity(self) -> tuple[float, ...]:
        return self._velocity

    @property
    def target(self) -> tuple[float, ...]:
        return self._target

    def task_state(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.physics.task_state())

    def joints(self) -> dict[str, float]:
        """What the arm measures of itself beside the hand: the gripper's opening (metaworld's finger
        distance / 0.1 in [0, 1]), named as the task's proprioception names it."""
        return {'gripper_open': float(self.physics.task_state()[3])}

    # -- cameras -------------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        if camera not in self._placements:
            raise KeyError(f'no camera {camera!r} in the peg cell; cameras: {", ".join(CAMERA_NAMES)}')
        with self._render_lock:
            if self._renderer is None:
                self._renderer = CellCameras(self.physics.model, self.width, self.height)
            try:
                return self._renderer.rgb(self.physics.data, camera)
            finally:
                _release_gl_context()

    def camera_info(self, camera: str) -> Intrinsics:
        k = self._placements[camera].intrinsics(self.width, self.height)
        return Intrinsics.from_matrix(self.width, self.height, k)

    def camera_pose(self, camera: str) -> Pose:
        placement = self._placements[camera]
        return Pose(placement.rotation(), np.asarray(placement.position, dtype=np.float64))

    # -- snapshots -----------------------------------------------------------------------------------
    def snapshot(self) -> tuple[Snapshot, tuple, tuple, np.ndarray]:
        return (self.physics.snapshot(), self._target, self._velocity,
                np.copy(self.physics.env.hand_init_pos))

    def restore(self, snapshot) -> None:
        physics, self._target, self._velocity, hand_init = snapshot
        self.physics.env.hand_init_pos = np.copy(hand_init)
        self.physics.restore(physics)

    def close(self) -> None:
        with self._render_lock:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
        self.physics.close()


def _release_gl_context() -> None:
    """Leave no EGL context current on this thread, so the next render may come from another one."""
    if os.environ.get('MUJOCO_GL', '').lower() != 'egl':
        return
    from mujoco import egl
    egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE,
                           egl.EGL.EGL_NO_CONTEXT)
