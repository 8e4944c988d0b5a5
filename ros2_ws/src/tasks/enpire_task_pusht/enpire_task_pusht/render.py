"""What the simulated Push-T cell's cameras see: the table, walls, goal, T and agent as an
`enpire_sim.cameras.Scene`, and the camera functions bound to the Push-T table. Pure (no rclpy).

The table is gym-pusht's 512x512 px workspace (`geometry`, x right, y down as gym-pusht draws it);
the wrist camera's yaw is timed by the 10 Hz control rate. Everything generic (camera specs, faults,
homographies, the supersampled drawing, the camera rig) is `enpire_sim.cameras`; this module binds it
to the Push-T scene, so `render(state, spec)` draws a Push-T frame.

Palette (RGB, uint8) -- the one place these are defined; a verifier segments by them:
    background  (255, 255, 255)  the table surface (white, as gym-pusht)
    goal        (144, 238, 144)  LightGreen, the goal region, filled
    block       (119, 136, 153)  LightSlateGray, the T
    agent       ( 65, 105, 225)  RoyalBlue, the agent disc (radius 15)
    wall        (211, 211, 211)  LightGray, the walls at 5 and 506
    outside     ( 64,  64,  64)  floor beyond the table (seen by oblique and wrist cameras)
    occluder    ( 30,  30,  30)  the occlusion fault's patch
Draw order: table, walls, goal, T, agent (the agent is above the T).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enpire_sim import cameras
from enpire_sim.cameras import (
    DEFAULT_CAMERAS,
    CameraFaults,
    CameraSpec,
    Frame,
    Layer,
    Scene,
    Table,
    apply_faults,
    load_cameras,
    project,
    unproject,
)
from enpire_task_pusht.geometry import (
    AGENT_RADIUS,
    CONTROL_HZ,
    GOAL_POSE,
    T_OUTLINE_LOCAL,
    WORKSPACE_SIZE,
    to_world,
)

__all__ = ['DEFAULT_CAMERAS', 'PALETTE', 'SCENE', 'TABLE', 'CameraFaults', 'CameraRig', 'CameraSpec', 'Frame',
           'RenderState', 'apply_faults', 'draw', 'load_cameras', 'pinhole', 'project', 'render',
           'table_to_image', 'unproject']

PALETTE: dict[str, tuple[int, int, int]] = {
    'background': (255, 255, 255),
    'goal': (144, 238, 144),
    'block': (119, 136, 153),
    'agent': (65, 105, 225),
    'wall': (211, 211, 211),
    'outside': (64, 64, 64),
    'occluder': cameras.OCCLUDER,
}

TABLE = Table(size=WORKSPACE_SIZE, control_hz=float(CONTROL_HZ))

_DISC = np.stack([np.cos(np.linspace(0, 2 * np.pi, 32, endpoint=False)),
                  np.sin(np.linspace(0, 2 * np.pi, 32, endpoint=False))], axis=1) * AGENT_RADIUS
_GOAL_OUTLINE = to_world(T_OUTLINE_LOCAL, GOAL_POSE)   # one polygon: no seam when centre-sampled
# Walls as thin quads around gym-pusht's wall segments (radius 2).
_WALL_QUADS = tuple(np.array(q, dtype=float) for q in (
    [(3, 3), (508, 3), (508, 7), (3, 7)], [(3, 504), (508, 504), (508, 508), (3, 508)],
    [(3, 3), (7, 3), (7, 508), (3, 508)], [(504, 3), (508, 3), (508, 508), (504, 508)]))


@dataclass(frozen=True)
class RenderState:
    """What a camera sees: the T's origin pose, the agent, and the step (time of moving cameras)."""

    block_pose: tuple[float, float, float]
    agent_xy: tuple[float, float]
    agent_velocity: tuple[float, float] = (0.0, 0.0)
    step: int = 0

    @classmethod
    def from_sim(cls, sim) -> RenderState:
        return cls(sim.block_pose, sim.agent_position, sim.agent_velocity, sim.step_count)


def _moving(state: RenderState) -> tuple[Layer, ...]:
    return (Layer((to_world(T_OUTLINE_LOCAL, state.block_pose),), PALETTE['block']),
            Layer((_DISC + np.asarray(state.agent_xy, dtype=float),), PALETTE['agent']))


SCENE = Scene(
    table=TABLE,
    floor=PALETTE['outside'],
    static=(Layer((TABLE.corners(),), PALETTE['background']),
            Layer(_WALL_QUADS, PALETTE['wall']),
            Layer((_GOAL_OUTLINE,), PALETTE['goal'], fine=True)),   # the goal's area matters
    moving=_moving,
)


def table_to_image(spec: CameraSpec, state: RenderState | None = None) -> np.ndarray:
    return cameras.table_to_image(spec, TABLE, state)


def pinhole(spec: CameraSpec, table_pixel_m: float, state: RenderState | None = None):
    return cameras.pinhole(spec, TABLE, table_pixel_m, state)


def draw(state: RenderState, spec: CameraSpec, h: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    return cameras.draw(state, spec, SCENE, h)


def render(state: RenderState, spec: CameraSpec, faults: CameraFaults | None = None,
           rng: np.random.Generator | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    return cameras.render(state, spec, SCENE, faults, rng)


@dataclass
class CameraRig(cameras.CameraRig):
    """The camera rig of a Push-T cell."""

    scene: Scene | None = SCENE
