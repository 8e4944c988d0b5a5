"""The classical colour detector and segmenter of the peg cell: the peg (HSV hue 45-75 on OpenCV's 0-180
scale, bright and saturated), the box's wood (hue 5-20) and what may hide the peg's end (the red arm, the
white and cyan fingers). Pure numpy + OpenCV, one frame at a time."""
from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel


class ColourConfig(BaseModel):
    peg_hue: tuple[int, int] = (45, 75)
    peg_min_saturation: int = 90
    peg_min_value: int = 60
    wood_hue: tuple[int, int] = (5, 20)
    wood_min_saturation: int = 120    # the box's wood (130-140); the table's darker wood stays <= 110
    # The arm (red), the fingers (white, cyan): things that may sit in front of the peg's far end.
    arm_red_hue: tuple[int, int] = (170, 4)     # wraps around 0
    arm_min_saturation: int = 120
    finger_cyan_hue: tuple[int, int] = (80, 100)
    white_max_saturation: int = 40
    white_min_value: int = 170
    min_peg_pixels: int = 4


def hsv(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)


def _in_hue(h: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    low, high = span
    return (h >= low) & (h <= high) if low <= high else (h >= low) | (h <= high)


def peg_mask(frame_hsv: np.ndarray, config: ColourConfig) -> np.ndarray:
    h, s, v = frame_hsv[..., 0], frame_hsv[..., 1], frame_hsv[..., 2]
    return _in_hue(h, config.peg_hue) & (s >= config.peg_min_saturation) & (v >= config.peg_min_value)


def wood_mask(frame_hsv: np.ndarray, config: ColourConfig) -> np.ndarray:
    h, s = frame_hsv[..., 0], frame_hsv[..., 1]
    return _in_hue(h, config.wood_hue) & (s >= config.wood_min_saturation)


def occluder_mask(frame_hsv: np.ndarray, config: ColourConfig) -> np.ndarray:
    """Pixels of the arm or the fingers."""
    h, s, v = frame_hsv[..., 0], frame_hsv[..., 1], frame_hsv[..., 2]
    red = _in_hue(h, config.arm_red_hue) & (s >= config.arm_min_saturation)
    cyan = _in_hue(h, config.finger_cyan_hue) & (s >= config.arm_min_saturation)
    white = (s <= config.white_max_saturation) & (v >= config.white_min_value)
    return red | cyan | white
