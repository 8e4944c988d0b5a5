"""Push-T's reset check: fusing the cameras' estimates of the T's origin pose and its errors from the
target (the generic reset in `enpire_env.reset` compares them with the task's tolerances). Pure."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from enpire_task_pusht.geometry import angle_diff

Pose = tuple[float, float, float]


def fuse_estimates(poses: Sequence[Sequence[float]]) -> Pose:
    """Median of the cameras' (x, y, theta) estimates; the angle's median is taken around the first
    estimate, so estimates on both sides of +-pi fuse near pi, not near 0."""
    x = statistics.median(p[0] for p in poses)
    y = statistics.median(p[1] for p in poses)
    ref = poses[0][2]
    theta = angle_diff(ref + statistics.median(angle_diff(p[2], ref) for p in poses), 0.0)
    return (float(x), float(y), float(theta))


def pose_errors(target: Sequence[float], achieved: Sequence[float]) -> dict[str, float]:
    """Position error in px and absolute angle error in radians; the T has no symmetry."""
    return {'position_px': math.dist(target[:2], achieved[:2]),
            'angle_rad': abs(angle_diff(achieved[2], target[2]))}
