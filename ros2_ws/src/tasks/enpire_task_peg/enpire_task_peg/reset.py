"""The peg cell's reset check: peg and box located in 3-D from two or more calibrated views, and their
errors from the layout in metres. Pure (numpy + OpenCV), no rclpy.

The centroid of an object's colour mask is a poor ray to triangulate (the box's faces show unevenly, the
arm hides part of the peg: several centimetres off), so each object is located by fitting its known shape
to every view at once: a candidate position is projected into each calibrated view as the silhouette its
coloured faces make there, and the position is the one whose silhouettes overlap the views' colour masks
best (the sum of their intersection-over-union), searched coarse to fine over the table. Shapes: the peg
is a 0.24 x 0.03 x 0.03 m bar along x; the box a 0.2 x 0.2 x 0.2 m wooden cuboid standing on its origin
whose +x face is the red face around the hole (metaworld's meshes). Located only when two or more views
each see the object and agree with the fit (`min_view_iou`): else no estimate, so the reset fails rather
than passing a layout it did not see.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from pydantic import BaseModel

from enpire_task_peg.verification.colour import ColourConfig, hsv, peg_mask, wood_mask
from enpire_task_peg.verification.locate import View

PEG_HALF = np.array([0.12, 0.015, 0.015])       # the peg bar's half extents (world axes, lying along x)
BOX_HALF = np.array([0.1, 0.1, 0.1])            # the box's half extents, its centre 0.1 above its origin
BOX_CENTRE = np.array([0.0, 0.0, 0.1])
RED_FACE = (0.09, 0.0, 0.19)                    # the +x face's red part: |y| <= 0.09, 0 <= z <= 0.19
LAYOUT = ('peg_x', 'peg_y', 'peg_z', 'box_x', 'box_y', 'box_z')
ERRORS = ('peg_position_m', 'box_position_m')


class LocateLayoutConfig(BaseModel):
    colour: ColourConfig = ColourConfig()
    region_low: tuple[float, float] = (-0.55, 0.25)   # where on the table (x, y) objects are searched
    region_high: tuple[float, float] = (0.35, 0.95)
    peg_z: float = 0.02                 # the peg's centre resting on the table
    box_z: float = 0.0                  # the box's origin on the table
    z_search: float = 0.01              # the final refinement also searches z this far either side
    min_pixels: int = 12                # fewer pixels of an object's colour: the view does not see it
    min_view_iou: float = 0.5           # a view that sees the object must agree this well with the fit
    # Views that agree less than this (the arm in front of the object) are left out of a second fit when
    # enough others agree well: a half-hidden silhouette pulls the sum of overlaps off by millimetres.
    refit_iou: float = 0.75
    min_views: int = 2


DEFAULT_LOCATE_LAYOUT = LocateLayoutConfig()

_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))


def _fixed_point(uv: np.ndarray) -> np.ndarray:
    """Pixel coordinates (centres at .5) as OpenCV's fill takes them: integer at the centre, 3 fractional
    bits (sub-pixel edges)."""
    return np.round((uv - 0.5) * 8).astype(np.int32)


def _cuboid_silhouette(view: View, centre: np.ndarray, half: np.ndarray, shape: tuple[int, int]
                       ) -> np.ndarray | None:
    corners = centre + _SIGNS * half
    uv = view.project(corners)
    if not np.all(np.isfinite(uv)):
        return None
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(_fixed_point(uv))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=3)
    return mask


def peg_silhouette(view: View, position, shape: tuple[int, int]) -> np.ndarray | None:
    return _cuboid_silhouette(view, np.asarray(position, float), PEG_HALF, shape)


def box_wood_silhouette(view: View, position, shape: tuple[int, int]) -> np.ndarray | None:
    """Where the box's wood shows: its silhouette without the red face, when the view sees that face."""
    origin = np.asarray(position, float)
    mask = _cuboid_silhouette(view, origin + BOX_CENTRE, BOX_HALF, shape)
    if mask is None:
        return None
    face_x = origin[0] + BOX_HALF[0]
    if view.position[0] > face_x:
        y, z0, z1 = RED_FACE
        face = origin + np.array([[BOX_HALF[0], -y, z0], [BOX_HALF[0], y, z0], [BOX_HALF[0], y, z1],
                                  [BOX_HALF[0], -y, z1]])
        uv = view.project(face)
        if np.all(np.isfinite(uv)):
            cv2.fillConvexPoly(mask, _fixed_point(uv), 0, lineType=cv2.LINE_8, shift=3)
    return mask


def _iou(predicted: np.ndarray | None, observed: np.ndarray) -> float:
    if predicted is None:
        return 0.0
    p = predicted.astype(bool)
    union = int((p | observed).sum())
    return int((p & observed).sum()) / union if union else 0.0


def _fit(silhouette, masks: Mapping[str, tuple[View, np.ndarray]], z: float, config: LocateLayoutConfig
         ) -> tuple[np.ndarray, dict[str, float]]:
    """The position (x, y, z) whose silhouettes overlap the views' masks best, coarse to fine."""
    def score(p) -> float:
        return sum(_iou(silhouette(view, p, mask.shape), mask) for view, mask in masks.values())

    low, high = np.array(config.region_low), np.array(config.region_high)
    xs, ys = np.arange(low[0], high[0] + 1e-9, 0.02), np.arange(low[1], high[1] + 1e-9, 0.02)
    best = max(((x, y, z) for x in xs for y in ys), key=score)
    for step, span in ((0.005, 0.02), (0.001, 0.005)):
        offsets = np.arange(-span, span + 1e-9, step)
        best = max(((best[0] + dx, best[1] + dy, z) for dx in offsets for dy in offsets), key=score)
    z_offsets = np.arange(-config.z_search, config.z_search + 1e-9, 0.0025)
    best = max(((best[0] + dx, best[1] + dy, z + dz) for dx in (-0.001, 0.0, 0.001)
                for dy in (-0.001, 0.0, 0.001) for dz in z_offsets), key=score)
    for step in (0.0005,):
        offsets = np.array([-step, 0.0, step])
        best = max(((best[0] + dx, best[1] + dy, best[2] + dz) for dx in offsets for dy in offsets
                    for dz in offsets), key=score)
    position = np.array(best, float)
    return position, {name: _iou(silhouette(view, position, mask.shape), mask)
                      for name, (view, mask) in masks.items()}


def locate_layout(images: Mapping[str, np.ndarray], views: Mapping[str, View],
                  config: LocateLayoutConfig = DEFAULT_LOCATE_LAYOUT
                  ) -> tuple[tuple[float, ...] | None, str, dict[str, float]]:
    """(peg xyz + box xyz, '', per-view agreement) from the cameras' RGB frames and calibrations, or
    (None, why not, ...) when fewer than `min_views` calibrated views see and agree on each object."""
    calibrated = {name: image for name, image in images.items() if name in views and image is not None}
    found: list[float] = []
    agreement: dict[str, float] = {}
    for obj, colour_mask, silhouette, z in (('peg', peg_mask, peg_silhouette, config.peg_z),
                                            ('box', wood_mask, box_wood_silhouette, config.box_z)):
        masks = {}
        for name, image in calibrated.items():
            mask = colour_mask(hsv(image), config.colour)
            if int(mask.sum()) >= config.min_pixels:
                masks[name] = (views[name], mask)
        if len(masks) < config.min_views:
            return None, (f'{obj}: seen by {len(masks)} calibrated view(s) ({", ".join(masks) or "none"}), '
                          f'need {config.min_views}'), agreement
        position, ious = _fit(silhouette, masks, z, config)
        clear = {name: masks[name] for name, iou in ious.items() if iou >= config.refit_iou}
        if config.min_views <= len(clear) < len(masks):
            position, clear_ious = _fit(silhouette, clear, z, config)
            ious = {name: _iou(silhouette(view, position, mask.shape), mask)
                    for name, (view, mask) in masks.items()}
        agreement.update({f'{obj}_iou_{name}': iou for name, iou in ious.items()})
        agreeing = [name for name, iou in ious.items() if iou >= config.min_view_iou]
        if len(agreeing) < config.min_views:
            shown = ', '.join(f'{name} {iou:.2f}' for name, iou in ious.items())
            return None, (f'{obj}: only {len(agreeing)} view(s) agree with the fit (IoU {shown}; need '
                          f'{config.min_views} at {config.min_view_iou})'), agreement
        found.extend(float(v) for v in position)
    return tuple(found), '', agreement


def reset_errors(target: Sequence[float], achieved: Sequence[float]) -> dict[str, float]:
    """Euclidean position errors of peg and box, metres (the layout: peg xyz, box xyz)."""
    t, a = np.asarray(target, float), np.asarray(achieved, float)
    return {'peg_position_m': float(np.linalg.norm(a[:3] - t[:3])),
            'box_position_m': float(np.linalg.norm(a[3:6] - t[3:6]))}


def reset_estimator(images: Mapping[str, np.ndarray], cameras: Mapping
                    ) -> tuple[tuple[float, ...] | None, str]:
    """`ResetSpec.estimator` (multi-view): the layout from the frames and the framework's camera models
    (`enpire_env.verification.CameraModel`), or (None, why not)."""
    views = {name: View.of_model(model) for name, model in cameras.items()}
    state, why, _ = locate_layout(images, views)
    return state, why
