"""What a sandboxed Push-T policy may use besides numpy and the standard maths modules.

- the Push-T task geometry (GOAL_POSE, WORKSPACE_SIZE, coverage(), t_outline(), ...), re-exported
  from `enpire_task_pusht.geometry`;
- `locate_block(observation, camera=None)`: the T's pose (x, y, theta) on the table as the cameras see
  it, through the task's perception (`enpire_task_pusht.verification.locate`), or None.

Everything here is imported before the sandbox locks down, so a policy can call it freely.
"""
from __future__ import annotations

import numpy as np

from enpire_task_pusht.geometry import (  # noqa: F401  (re-exported for policies)
    AGENT_RADIUS,
    CONTROL_HZ,
    GOAL_POSE,
    SUCCESS_COVERAGE,
    T_CENTROID_LOCAL,
    T_OUTLINE_LOCAL,
    WORKSPACE_SIZE,
    angle_diff,
    centroid_to_origin,
    coverage,
    is_success,
    origin_to_centroid,
    rotation,
    t_outline,
    to_world,
)

try:  # the perception core; a missing or broken core makes locate_block answer None
    from enpire_task_pusht.verification.locate import locate_block as _core_locate_block
except Exception:  # pragma: no cover - depends on the EN package being complete
    _core_locate_block = None

__all__ = [
    'AGENT_RADIUS', 'CONTROL_HZ', 'GOAL_POSE', 'SUCCESS_COVERAGE', 'T_CENTROID_LOCAL', 'T_OUTLINE_LOCAL',
    'WORKSPACE_SIZE', 'angle_diff', 'centroid_to_origin', 'coverage', 'is_success', 'origin_to_centroid',
    'rotation', 't_outline', 'to_world', 'locate_block', 'camera_order',
]


def camera_order(observation) -> list[str]:
    """Cameras with a frame, freshest first (then by name, for determinism)."""
    ages = getattr(observation, 'frame_age_s', {}) or {}
    names = [c for c in observation.frames if c in observation.table_to_image]
    return sorted(names, key=lambda c: (ages.get(c, 0.0), c))


def _as_tuple(pose) -> tuple[float, float, float] | None:
    if pose is None:
        return None
    if hasattr(pose, 'as_tuple'):
        pose = pose.as_tuple()
    elif hasattr(pose, 'x') and hasattr(pose, 'theta'):
        pose = (pose.x, pose.y, pose.theta)
    values = tuple(float(v) for v in pose[:3])
    return values if all(np.isfinite(values)) else None


def locate_block(observation, camera: str | None = None) -> tuple[float, float, float] | None:
    """The T's pose (x, y, theta) in workspace pixels from one camera, or the best one; None if not seen."""
    if _core_locate_block is None:
        return None
    cameras = [camera] if camera is not None else camera_order(observation)
    for name in cameras:
        frame = observation.frames.get(name)
        homography = observation.table_to_image.get(name)
        if frame is None or homography is None:
            continue
        try:
            pose = _as_tuple(_core_locate_block(frame, np.asarray(homography, dtype=float).reshape(3, 3)))
        except Exception:
            pose = None
        if pose is not None:
            return pose
    return None
