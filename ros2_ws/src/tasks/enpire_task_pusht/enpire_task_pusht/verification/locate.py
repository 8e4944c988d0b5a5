"""A fast perception tool for policies: where is the T on the table in this image?"""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from enpire_env.verification.classical import in_range
from enpire_env.verification.config import HsvRange
from enpire_env.verification.geometry import table_points
from enpire_task_pusht import geometry as pusht
from enpire_task_pusht.verification.config import DEFAULT_COLOURS
from enpire_task_pusht.verification.moments import pose_from_moments


class Pose2D(BaseModel):
    """The T's body-origin pose on the table (workspace units), as enpire_task_pusht.geometry defines it."""
    model_config = ConfigDict(frozen=True)
    x: float
    y: float
    theta: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.theta)


def locate_block(image: np.ndarray, table_to_image, colour: HsvRange | None = None,
                 min_area_ratio: float = 0.3) -> Pose2D | None:
    """The T's body-origin pose (workspace units) seen in an RGB image, or None if no T is visible.

    No quality checks beyond a minimum visible area: use the verifier to judge, this to act.
    About 0.2 ms at 96x96, 2 ms at 480x480.
    """
    if image is None or table_to_image is None:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    mask = in_range(hsv, colour or DEFAULT_COLOURS['block'])
    g = np.linalg.inv(np.asarray(table_to_image, dtype=np.float64).reshape(3, 3))
    points, weights = table_points(mask.astype(np.float32) / 255.0, g)
    if weights.sum() < min_area_ratio * pusht.T_AREA:
        return None
    pose, _ = pose_from_moments(points, weights)
    return Pose2D(x=pose[0], y=pose[1], theta=pose[2])
