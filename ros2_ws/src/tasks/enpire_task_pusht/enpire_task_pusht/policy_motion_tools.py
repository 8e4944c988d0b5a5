"""Perception and motion tools of the Push-T cell, for policies that compose them (code as policy).

Each motion tool returns the next control step's target (x, y) in workspace pixels; a policy calls one
tool per step and returns its answer. Tools keep what they must remember between steps (the contact
being pushed) in a `memory` dict the policy owns and passes in (clear it to start over).

    from enpire_task_pusht import policy_motion_tools as mt

    pose = mt.locate(observation)                     # T origin (x, y, theta) from the cameras, or None
    err = mt.pose_error(pose)                         # (dx, dy, dtheta): goal minus current, of the T's COM
    target = mt.push_to(agent, pose, (256, 256), memory)         # translate the T's COM to a point
    target = mt.rotate(agent, pose, mt.GOAL_POSE[2], memory)      # turn the T in place toward an angle
    target = mt.push_pose(agent, pose, mt.GOAL_POSE, memory)      # both at once (twist-aligned contact)
    target = mt.go_to(agent, point, pose)             # travel to a point without touching the T
    mt.coverage_estimate(pose)                        # the task score the verifier would give that pose

How a push works: the block is pushed through frictionless contact, so pushing along the inward normal
d at a point r from the centre of gravity moves it by v ~ d and turns it by w ~ r x d. Every tool picks
the contact on the T's outline whose motion best matches the wanted motion, travels to a point just
outside that contact (around the T, never through it) and then pushes along the normal, by a stroke
proportional to the remaining error. Options (keyword arguments) are documented on each function.
"""

from __future__ import annotations

import math

import numpy as np

from enpire_task_pusht.geometry import AGENT_RADIUS, GOAL_POSE, WORKSPACE_SIZE, coverage

R = float(AGENT_RADIUS)
COM = np.array([0.0, 45.0])  # gym-pusht's centre of gravity of the T, body frame
INERTIA = 2550.0
_OUTLINE = np.array(
    [
        (-60.0, 0.0),
        (60.0, 0.0),
        (60.0, 30.0),
        (15.0, 30.0),
        (15.0, 120.0),
        (-15.0, 120.0),
        (-15.0, 30.0),
        (-60.0, 30.0),
    ]
)
_BOXES = ((np.array([0.0, 15.0]), np.array([60.0, 15.0])), (np.array([0.0, 75.0]), np.array([15.0, 45.0])))
_LO, _HI = R + 8.0, WORKSPACE_SIZE - R - 8.0


def _contacts(per_edge: int = 5):
    pts, nrm = [], []
    n = len(_OUTLINE)
    concave = {3, 6}
    for i in range(n):
        a, b = _OUTLINE[i], _OUTLINE[(i + 1) % n]
        e = b - a
        length = float(np.hypot(*e))
        u = e / length
        out = np.array([u[1], -u[0]])
        m0 = R + 1.0 if i in concave else 3.0
        m1 = R + 1.0 if (i + 1) % n in concave else 3.0
        for t in np.linspace(m0, length - m1, per_edge):
            pts.append(a + u * t)
            nrm.append(out)
    pts, nrm = np.array(pts), np.array(nrm)
    if _inside_local(pts + nrm * 0.5).mean() > 0.5:
        nrm = -nrm
    return pts, nrm


def _inside_local(p):
    x, y = p[..., 0], p[..., 1]
    return ((np.abs(x) < 60) & (y > 0) & (y < 30)) | ((np.abs(x) < 15) & (y >= 30) & (y < 120))


C_PTS, C_NRM = _contacts()


def _rot(th: float) -> np.ndarray:
    c, s = math.cos(th), math.sin(th)
    return np.array([[c, -s], [s, c]])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _to_world(pts, pose) -> np.ndarray:
    return np.asarray(pts, dtype=float) @ _rot(pose[2]).T + np.array(pose[:2], dtype=float)


def _to_local(pts, pose) -> np.ndarray:
    return (np.asarray(pts, dtype=float) - np.array(pose[:2], dtype=float)) @ _rot(pose[2])


def distance_to_t(points, pose) -> np.ndarray:
    """Distance (px) of world points to the T at `pose` (negative inside)."""
    local = _to_local(np.atleast_2d(points), pose)
    out = None
    for c, h in _BOXES:
        q = np.abs(local - c) - h
        d = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(np.max(q, axis=1), 0.0)
        out = d if out is None else np.minimum(out, d)
    return out


# ------------------------------------------------------------------------------------------ perception
def locate(observation, camera: str | None = None):
    """The T's pose (x, y, theta) from the cameras (policy_tools.locate_block), or None if not seen."""
    from enpire_task_pusht import policy_tools

    return policy_tools.locate_block(observation, camera)


def com(pose) -> np.ndarray:
    """The T's centre of gravity in world pixels."""
    return _to_world(COM[None], pose)[0]


def pose_error(pose, goal=GOAL_POSE) -> tuple[float, float, float]:
    """(dx, dy, dtheta): the goal's COM minus the T's COM (px) and the angle still to turn (rad)."""
    c, g = com(pose), com(goal)
    return (float(g[0] - c[0]), float(g[1] - c[1]), _wrap(float(goal[2]) - float(pose[2])))


def coverage_estimate(pose) -> float:
    """The verifier's score (coverage of the goal) if the T were at `pose`."""
    return float(coverage(tuple(float(v) for v in pose[:3])))


# ------------------------------------------------------------------------------------------ motion
def go_to(agent, point, pose=None, clearance: float = 4.0, orbit: float = 105.0, step_deg: float = 35.0):
    """Target toward `point`; when the straight way would touch the T at `pose`, orbit around it.

    clearance  px kept between the agent's rim and the T on the way
    orbit      radius (px) of the detour circle around the T's COM
    step_deg   how far (degrees) along the circle one step's target lies
    """
    agent = np.asarray(agent, dtype=float)
    point = np.asarray(point, dtype=float)
    if pose is None:
        return _clip(point)
    seg = agent[None] + np.linspace(0.0, 1.0, 16)[:, None] * (point - agent)[None]
    if distance_to_t(seg[1:], pose).min() > R + clearance:
        return _clip(point)
    c = com(pose)
    a_agent = math.atan2(agent[1] - c[1], agent[0] - c[0])
    a_goal = math.atan2(point[1] - c[1], point[0] - c[0])
    turn = _wrap(a_goal - a_agent)
    a = a_agent + math.copysign(min(abs(turn), math.radians(step_deg)), turn)
    radius = max(orbit, float(np.linalg.norm(agent - c)))
    return _clip(c + radius * np.array([math.cos(a), math.sin(a)]))


def push_pose(
    agent,
    pose,
    goal=GOAL_POSE,
    memory: dict | None = None,
    *,
    angle_scale: float = 43.0,
    rotation_only: bool = False,
    translation_only: bool = False,
    standoff: float = 6.0,
    arrive_tol: float = 7.0,
    gain: float = 0.5,
    stroke_min: float = 4.0,
    stroke_max: float = 30.0,
    hysteresis: float = 0.15,
    travel_cost: float = 0.002,
):
    """Target that moves the T toward `goal` (x, y, theta): the contact whose push best matches the error.

    angle_scale      px per radian when translation and rotation errors are weighed together
    standoff         gap (px) between the agent's rim and the contact before a push starts
    arrive_tol       px from the pre-contact point that count as arrived
    gain             stroke length per px of remaining error (clamped to stroke_min..stroke_max)
    hysteresis       score bonus of the contact already in use (fewer switches)
    travel_cost      score penalty per px of travel to a contact
    """
    memory = {} if memory is None else memory
    agent = np.asarray(agent, dtype=float)
    ex, ey, eth = pose_error(pose, goal)
    w = 0.0 if translation_only else angle_scale
    err = np.array([0.0 if rotation_only else ex, 0.0 if rotation_only else ey, w * eth])
    size = float(np.linalg.norm(err))
    if size < 1e-6:
        return (float(agent[0]), float(agent[1]))
    rm = _rot(pose[2])
    r = (C_PTS - COM) @ rm.T
    d = -(C_NRM @ rm.T)  # push direction (inward normal), world frame
    k = r[:, 0] * d[:, 1] - r[:, 1] * d[:, 0]
    den = 1.0 + k * k / INERTIA
    motion = np.column_stack([d / den[:, None], w * k / (INERTIA * den)])
    cos = (motion @ err) / (np.linalg.norm(motion, axis=1) * size + 1e-9)
    contact = _to_world(C_PTS, pose)
    pre = contact - d * (R + standoff)
    ok = (pre[:, 0] > _LO) & (pre[:, 0] < _HI) & (pre[:, 1] > _LO) & (pre[:, 1] < _HI)
    score = cos - travel_cost * np.linalg.norm(pre - agent, axis=1)
    current = memory.get('contact')
    if current is not None and 0 <= current < len(score):
        score[current] += hysteresis
    score[~ok] = -9.0
    i = int(np.argmax(score))
    memory['contact'] = i
    memory['alignment'] = float(cos[i])
    in_contact = memory.get('pushing') == i and float(np.linalg.norm(agent - pre[i])) < 3.0 * (R + standoff)
    if not in_contact and float(np.linalg.norm(agent - pre[i])) > arrive_tol:
        memory['pushing'] = None
        return go_to(agent, pre[i], pose)
    memory['pushing'] = i
    stroke = float(np.clip(gain * size, stroke_min, stroke_max))
    return _clip(contact[i] - d[i] * R + d[i] * stroke)


def push_to(agent, pose, point, memory: dict | None = None, **options):
    """Target that translates the T's COM toward `point` (x, y), whatever its angle (see push_pose)."""
    origin = np.asarray(point, dtype=float) - _rot(pose[2]) @ COM
    goal = (float(origin[0]), float(origin[1]), float(pose[2]))
    return push_pose(agent, pose, goal, memory, translation_only=True, **options)


def rotate(agent, pose, theta: float, memory: dict | None = None, **options):
    """Target that turns the T toward angle `theta` (rad) about its COM (see push_pose)."""
    c = com(pose)
    origin = c - _rot(theta) @ COM
    return push_pose(
        agent, pose, (float(origin[0]), float(origin[1]), float(theta)), memory, rotation_only=True, **options
    )


def _clip(p) -> tuple[float, float]:
    return (float(min(max(p[0], _LO), _HI)), float(min(max(p[1], _LO), _HI)))


__all__ = [
    'locate',
    'com',
    'pose_error',
    'coverage_estimate',
    'distance_to_t',
    'go_to',
    'push_pose',
    'push_to',
    'rotate',
    'GOAL_POSE',
    'WORKSPACE_SIZE',
]
