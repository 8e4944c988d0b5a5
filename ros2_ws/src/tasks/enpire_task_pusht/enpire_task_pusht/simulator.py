"""The simulated Push-T cell: gym-pusht's bodies, walls and PD control in plain pymunk, without gym or
pygame, and its cameras' scene (`render.SCENE`). `PushTSim` is the task's `simulator` (the
`enpire_sim.simulator.CellSimulator` the generic sim cell node drives).

Built to be step-for-step identical to gym-pusht 0.1.8 (`gym_pusht/envs/pusht.py`): the same space
settings (no gravity, damping 0, default solver iterations), the same shapes added in the same order
(walls, agent, T), the same PD law evaluated with the same float operations in the same order, 10
substeps of 0.01 s per action. Given the same placement and actions, positions and angles come out
bit-for-bit equal (tests/tasks/pusht/test_parity.py). What is left out has no effect on the dynamics:
gym-pusht's contact-counting post-solve callback and its drawing. Notes that matter for parity:

- gym-pusht's bodies set `body.friction = 1`, which pymunk ignores (friction lives on shapes), so
  all shapes keep pymunk's default friction 0. We do the same, on purpose.
- Damping 0 means pymunk multiplies the T's velocity by 0**dt = 0 every substep: the T moves only
  while pushed (quasi-static Push-T).
- gym-pusht's `reset_to_state` sets the T's position before its angle; pymunk rotates about the
  centre of gravity, so the T's origin ends up elsewhere than asked. `place(...,
  gym_legacy_order=True)` replicates that; the default puts the T exactly at the requested pose,
  which is what a gantry (the mock-hardware placement service) does.

The hot loop calls Chipmunk through pymunk's cffi handle (`pymunk._chipmunk_cffi.lib`) instead of the
`Body`/`Space` properties: the same C functions, without building a `Vec2d` per access. That and the
analytic coverage below are where the speed over gym-pusht comes from (bench/sim_speed.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pymunk
from enpire_common.task import SceneObject
from pymunk._chipmunk_cffi import lib as _cp

from enpire_task_pusht.distributions import placement_problem
from enpire_task_pusht.geometry import (
    AGENT_RADIUS,
    BAR_LOCAL,
    EPISODE_STEPS,
    GOAL_POSE,
    LENGTH,
    PHYSICS_DT,
    SCALE,
    STEM_LOCAL,
    SUCCESS_COVERAGE,
)
from enpire_task_pusht.render import SCENE, TABLE, RenderState

KP = 100.0
KV = 20.0
SUBSTEPS = 10  # int(1 / (dt * control_hz)) in gym-pusht
# gym-pusht's layout before `_set_state`: agent at (256, 400), T at (256, 300) angle 0.
_SETUP_AGENT = (256, 400)
_SETUP_BLOCK = (256, 300)
_WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
_WALL_RADIUS = 2

__all__ = ['PushTSim', 'coverage_fast', 'KP', 'KV', 'SUBSTEPS', 'EPISODE_STEPS', 'SUCCESS_COVERAGE']


def _build_space() -> tuple[pymunk.Space, pymunk.Body, pymunk.Body]:
    """A fresh space exactly as gym-pusht's `_setup` leaves it (it builds a new one on every reset)."""
    space = pymunk.Space()
    space.gravity = 0, 0
    space.damping = 0.0
    space.add(*[pymunk.Segment(space.static_body, a, b, _WALL_RADIUS) for a, b in _WALLS])

    agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
    agent.position = _SETUP_AGENT
    space.add(agent, pymunk.Circle(agent, AGENT_RADIUS))

    mass = 1
    bar = [tuple(map(float, v)) for v in BAR_LOCAL]
    stem = [tuple(map(float, v)) for v in STEM_LOCAL]
    # gym-pusht computes both inertia terms from the bar (a quirk kept for identical dynamics).
    inertia = pymunk.moment_for_poly(mass, vertices=bar) + pymunk.moment_for_poly(mass, vertices=bar)
    block = pymunk.Body(mass, inertia)
    shape_bar, shape_stem = pymunk.Poly(block, bar), pymunk.Poly(block, stem)
    block.center_of_gravity = (shape_bar.center_of_gravity + shape_stem.center_of_gravity) / 2
    block.angle = 0
    block.position = _SETUP_BLOCK
    space.add(block, shape_bar, shape_stem)
    return space, agent, block


class PushTSim:
    """One Push-T table. Units: workspace pixels (512x512), radians, seconds; 10 Hz control steps.

    As a `CellSimulator`: the scene is one object, `block` (the T's origin x, y, theta); the tool is
    the agent (x, y); a command is the agent's target (x, y); the task state is the T's origin pose."""

    table = TABLE
    scene = SCENE

    def __init__(self, block_pose=(256.0, 300.0, 0.0), agent_xy=(256.0, 400.0)):
        self.place(block_pose, agent_xy)

    # -- placement -----------------------------------------------------------------------------------
    def place(self, block_pose, agent_xy, *, gym_legacy_order: bool = False) -> None:
        """Rebuild the table with the T at `block_pose` (origin x, y, theta) and the agent at `agent_xy`.

        As gym-pusht's `_set_state`: a fresh space, then one physics substep so placement takes effect.
        With `gym_legacy_order` the position is set before the angle, exactly like gym-pusht's
        `reset_to_state` (the T's origin then moves; read `block_pose` for where it really is).
        """
        bx, by, theta = (float(v) for v in block_pose)
        ax, ay = (float(v) for v in agent_xy)
        values = (bx, by, theta, ax, ay)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'placement must be finite, got block={tuple(block_pose)} '
                             f'agent={tuple(agent_xy)}')
        self._space, self._agent, self._block = _build_space()
        self._space_ptr = self._space._space
        self._agent_ptr, self._block_ptr = self._agent._body, self._block._body
        self._agent.position = (ax, ay)
        if gym_legacy_order:
            self._block.position = (bx, by)
            self._block.angle = theta
        else:
            self._block.angle = theta
            self._block.position = (bx, by)
        _cp.cpSpaceStep(self._space_ptr, PHYSICS_DT)
        self._step = 0
        self._target = (ax, ay)
        self._coverage_step = -1
        self._coverage = 0.0

    def placement_problem(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> str | None:
        """Why the cell cannot be put into this scene (None if it can)."""
        names = [o.name for o in objects]
        if names != ['block']:
            return f'the Push-T scene is one object named block, got {names[:8]}'
        if len(objects[0].pose) != 3 or len(tool) != 2:
            return 'the block pose is (x, y, theta) and the agent (x, y)'
        return placement_problem(objects[0].pose, tuple(tool))

    def place_objects(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> None:
        """Put the scene in place exactly (as a gantry would); `placement_problem` must be None first."""
        self.place(objects[0].pose, tool)

    def place_gym_state(self, state) -> None:
        """Place from gym-pusht's reset_to_state vector [agent_x, agent_y, block_x, block_y, angle]."""
        self.place(state[2:5], state[0:2], gym_legacy_order=True)

    # -- dynamics ------------------------------------------------------------------------------------
    def step(self, target_xy) -> None:
        """One 10 Hz control step: the agent tracks `target_xy` with gym-pusht's PD law for 10 substeps."""
        tx, ty = float(target_xy[0]), float(target_xy[1])
        self._target = (tx, ty)
        agent, space = self._agent_ptr, self._space_ptr
        get_p, get_v, set_v = _cp.cpBodyGetPosition, _cp.cpBodyGetVelocity, _cp.cpBodySetVelocity
        space_step = _cp.cpSpaceStep
        dt = PHYSICS_DT
        for _ in range(SUBSTEPS):
            p = get_p(agent)
            v = get_v(agent)
            # Same operations and order as gym-pusht: a = kp*(act - pos) + kv*(0 - vel); vel += a*dt.
            ax = KP * (tx - p.x) + KV * (0 - v.x)
            ay = KP * (ty - p.y) + KV * (0 - v.y)
            set_v(agent, (v.x + ax * dt, v.y + ay * dt))
            space_step(space, dt)
        self._step += 1

    # -- state ---------------------------------------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Control steps since the last placement."""
        return self._step

    @property
    def block_pose(self) -> tuple[float, float, float]:
        """T origin (x, y) and angle, unwrapped, as gym-pusht's `block.position` / `block.angle`."""
        p = _cp.cpBodyGetPosition(self._block_ptr)
        return (p.x, p.y, _cp.cpBodyGetAngle(self._block_ptr))

    @property
    def agent_position(self) -> tuple[float, float]:
        p = _cp.cpBodyGetPosition(self._agent_ptr)
        return (p.x, p.y)

    @property
    def agent_velocity(self) -> tuple[float, float]:
        v = _cp.cpBodyGetVelocity(self._agent_ptr)
        return (v.x, v.y)

    @property
    def target(self) -> tuple[float, float]:
        """The last commanded target (the agent's placement position until the first step)."""
        return self._target

    @property
    def tool_position(self) -> tuple[float, float]:
        return self.agent_position

    @property
    def tool_velocity(self) -> tuple[float, float]:
        return self.agent_velocity

    def task_state(self) -> tuple[float, float, float]:
        """The task-state vector: the T's origin pose (x, y, theta)."""
        return self.block_pose

    def view(self) -> RenderState:
        """What the cameras draw now."""
        return RenderState.from_sim(self)

    def state_vector(self) -> list[float]:
        """gym-pusht's state observation: [agent_x, agent_y, block_x, block_y, angle mod 2pi]."""
        ax, ay = self.agent_position
        bx, by, theta = self.block_pose
        return [ax, ay, bx, by, theta % (2 * math.pi)]

    def coverage(self) -> float:
        """area(goal & T) / area(goal), computed once per step."""
        if self._coverage_step != self._step:
            self._coverage = coverage_fast(self.block_pose)
            self._coverage_step = self._step
        return self._coverage

    def is_success(self) -> bool:
        return self.coverage() > SUCCESS_COVERAGE


# -- coverage -----------------------------------------------------------------------------------------
# The T is two boxes with disjoint interiors, so area(goal & T) is the sum over the four (goal box,
# T box) pairs of convex-polygon intersection areas: exact geometry, the same quantity gym-pusht asks
# shapely for, at a fraction of the cost. Pairs whose bounding circles are apart are skipped.
_BOXES_LOCAL = [[tuple(map(float, v)) for v in BAR_LOCAL], [tuple(map(float, v)) for v in STEM_LOCAL]]
_BOX_CENTRES = [(0.0, SCALE / 2), (0.0, SCALE + (LENGTH - 1) * SCALE / 2)]
_BOX_RADII = [math.hypot(LENGTH * SCALE / 2, SCALE / 2), math.hypot(SCALE / 2, (LENGTH - 1) * SCALE / 2)]
_GOAL_AREA = LENGTH * SCALE * SCALE + SCALE * (LENGTH - 1) * SCALE


def _transform(points, pose):
    x, y, theta = pose
    c, s = math.cos(theta), math.sin(theta)
    return [(c * px - s * py + x, s * px + c * py + y) for px, py in points]


def _half_planes(polygon):
    """Edges of a convex polygon as (a, b, c): inside where a*x + b*y <= c, whatever the winding."""
    n = len(polygon)
    cx = sum(p[0] for p in polygon) / n
    cy = sum(p[1] for p in polygon) / n
    planes = []
    for i in range(n):
        (x0, y0), (x1, y1) = polygon[i], polygon[(i + 1) % n]
        a, b = y1 - y0, x0 - x1
        c = a * x0 + b * y0
        if a * cx + b * cy > c:
            a, b, c = -a, -b, -c
        planes.append((a, b, c))
    return planes


_GOAL_BOXES = [_transform(box, GOAL_POSE) for box in _BOXES_LOCAL]
_GOAL_PLANES = [_half_planes(box) for box in _GOAL_BOXES]
_GOAL_CENTRES = _transform(_BOX_CENTRES, GOAL_POSE)


def _clipped_area(subject, planes) -> float:
    poly = subject
    for a, b, c in planes:
        if not poly:
            return 0.0
        out = []
        prev = poly[-1]
        prev_d = a * prev[0] + b * prev[1] - c
        for cur in poly:
            cur_d = a * cur[0] + b * cur[1] - c
            if cur_d <= 0.0:
                if prev_d > 0.0:
                    t = prev_d / (prev_d - cur_d)
                    out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
                out.append(cur)
            elif prev_d <= 0.0:
                t = prev_d / (prev_d - cur_d)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            prev, prev_d = cur, cur_d
        poly = out
    if len(poly) < 3:
        return 0.0
    area = 0.0
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        area += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return abs(area) * 0.5


def coverage_fast(block_pose) -> float:
    """area(goal & T) / area(goal) for a T origin pose, without shapely (agrees with it to ~1e-12)."""
    centres = _transform(_BOX_CENTRES, block_pose)
    total = 0.0
    boxes = None
    for i, (cx, cy) in enumerate(centres):
        for j, (gx, gy) in enumerate(_GOAL_CENTRES):
            if (cx - gx) ** 2 + (cy - gy) ** 2 >= (_BOX_RADII[i] + _BOX_RADII[j]) ** 2:
                continue
            if boxes is None:
                boxes = [_transform(box, block_pose) for box in _BOXES_LOCAL]
            total += _clipped_area(boxes[i], _GOAL_PLANES[j])
    return total / _GOAL_AREA
