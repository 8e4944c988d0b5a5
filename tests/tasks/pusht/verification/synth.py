"""Synthetic camera frames for the verifier's tests: the Push-T scene drawn through a homography.

Independent of the simulator on purpose, so the verifier's core is tested against geometry it does not
share code with (beyond pusht.py's T outline).
"""
from __future__ import annotations

import cv2
import numpy as np
from enpire_task_pusht import geometry as pusht

TABLE = (255, 255, 255)
BLOCK = (119, 136, 153)   # LightSlateGray
AGENT = (65, 105, 225)    # RoyalBlue
GOAL = (144, 238, 144)    # LightGreen


def top_homography(size: int) -> np.ndarray:
    s = size / pusht.WORKSPACE_SIZE
    return np.array([[s, 0, 0], [0, s, 0], [0, 0, 1.0]])


def oblique_homography(size: int) -> np.ndarray:
    """A camera looking at the table from one side: the far edge shrinks."""
    src = np.float32([[0, 0], [512, 0], [512, 512], [0, 512]])
    dst = np.float32([[0.2, 0.1], [0.8, 0.1], [1.0, 0.95], [0.0, 0.95]]) * size
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def _project(points: np.ndarray, h: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ h.T
    return p[:, :2] / p[:, 2:3]


SUPERSAMPLE = 4


def _fill(img, points, h, colour):
    # Drawn on a 4x canvas without anti-aliasing, then area-averaged: unbiased edges (LINE_AA dilates).
    # Pixel centres sit at integer image coordinates (OpenCV's convention, as in warpPerspective).
    pts = (_project(points, h) + 0.5) * SUPERSAMPLE - 0.5
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, shift=4)


def render(block_pose, h: np.ndarray, size: int, agent_xy=(60.0, 60.0), agent_on_top: bool = True,
           noise: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    img = np.full((size * SUPERSAMPLE, size * SUPERSAMPLE, 3), TABLE, np.uint8)
    _fill(img, pusht.t_outline(pusht.GOAL_POSE), h, GOAL)
    ang = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    disc = np.c_[np.cos(ang), np.sin(ang)] * pusht.AGENT_RADIUS + np.asarray(agent_xy)
    if not agent_on_top:
        _fill(img, disc, h, AGENT)
    _fill(img, pusht.t_outline(block_pose), h, BLOCK)
    if agent_on_top:
        _fill(img, disc, h, AGENT)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if noise > 0:
        rng = rng or np.random.default_rng(0)
        img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
    return img
