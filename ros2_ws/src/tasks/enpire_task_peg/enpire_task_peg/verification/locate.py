"""The peg's head located in 3-D from two or more calibrated views, and metaworld's distance bounded.

Each camera measures the peg in its image alone (`PegImage`: the centreline of its visible pixels and how
far its far end reaches along it). The centreline and the camera's centre span a plane that holds the peg's
axis; two views from different sides cut their planes in that axis. Along it each view reads the far end
where the projection of the end's face (a 3 cm square) reaches the observed extreme. The peg is rigid: the
head lies `HEAD_TO_FAR_END` before the far end's face, hidden in the hole or not.

Every reading carries its pixel error: the centreline's two ends may each lie `line_pixels` off the
observed line (or the view's own error of it, when the bar's outline leaves it less sure:
`silhouette.fit_centreline`), the far end `end_pixels`. The distance is bounded over all those corners,
and the far end's readings of the views must overlap (else a view's end is hidden or cut: no verdict).
No rclpy here.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from enpire_task_peg.simulator import SUCCESS_SCALE, TARGET_OFFSET

HEAD_TO_FAR_END = 0.22      # the peg geom's half-length 0.12 beyond its centre, the head site 0.1 before it
PEG_HALF_WIDTH = 0.015


class LocateConfig(BaseModel):
    line_pixels: float = 0.75       # how far each end of a view's centreline may lie off the true one
    end_pixels: float = 0.75        # how far the far end's extreme may lie from the true one (along the line)
    min_plane_angle_deg: float = 20.0   # views whose planes meet at a smaller angle do not fix the axis
    max_axis_tilt_deg: float = 25.0     # an axis further from the hole's (+x) is not a peg being inserted
    margin: float = 0.0             # asked of the upper bound below the window's radius


DEFAULT_LOCATE = LocateConfig()


@dataclass(frozen=True)
class View:
    """A calibrated camera: K (3x3), its centre and world-from-camera rotation of the optical frame (x right,
    y down, z forward), as CameraInfo and tf give them."""

    k: np.ndarray
    position: np.ndarray
    rotation: np.ndarray

    @classmethod
    def from_camera_info(cls, info: dict) -> View:
        return cls(np.asarray(info['k'], float).reshape(3, 3), np.asarray(info['position'], float),
                   np.asarray(info['rotation'], float))

    @classmethod
    def of_model(cls, model) -> View:
        """From the framework's calibrated camera (`enpire_env.verification.CameraModel`)."""
        return cls(np.asarray(model.k, float), np.asarray(model.position, float),
                   np.asarray(model.rotation, float))

    @classmethod
    def of_placement(cls, placement, width: int, height: int) -> View:
        """From a camera mounted in the simulated cell (`render.CameraPlacement`) at an image size."""
        return cls(placement.intrinsics(width, height), np.asarray(placement.position, float),
                   placement.rotation())

    def ray(self, uv) -> np.ndarray:
        """World direction of the ray through pixel coordinates uv (pixel centres at .5)."""
        return self.rotation @ np.linalg.solve(self.k, [uv[0], uv[1], 1.0])

    def project(self, points) -> np.ndarray:
        points = np.asarray(points, float)
        in_camera = (points - self.position) @ self.rotation
        uvw = in_camera @ self.k.T
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = uvw[..., :2] / uvw[..., 2:3]
        uv[in_camera[..., 2] <= 0] = np.nan
        return uv


@dataclass(frozen=True)
class PegImage:
    """What one view measured of the peg: a point on its centreline and the unit direction along it (pixels,
    pointing away from the hole), how far along it the far end reaches from that point, and where along it
    the visible peg starts (t_near < 0 < t_far)."""

    centre: np.ndarray
    direction: np.ndarray
    t_far: float
    t_near: float
    reads_depth: bool = True    # False: the view sees the axis end-on, its far end says little along it
    line_error: float = 0.0     # the view's own error of its centreline at the visible ends (pixels)

    def details(self) -> dict[str, float]:
        return {'line_u': float(self.centre[0]), 'line_v': float(self.centre[1]),
                'line_du': float(self.direction[0]), 'line_dv': float(self.direction[1]),
                't_far': self.t_far, 't_near': self.t_near, 'reads_depth': float(self.reads_depth),
                'line_error_px': self.line_error}

    @classmethod
    def from_details(cls, details: dict) -> PegImage | None:
        keys = ('line_u', 'line_v', 'line_du', 'line_dv', 't_far', 't_near', 'reads_depth')
        if any(details.get(k) is None for k in keys):
            return None
        return cls(np.array([details['line_u'], details['line_v']]),
                   np.array([details['line_du'], details['line_dv']]), details['t_far'], details['t_near'],
                   bool(details['reads_depth']), float(details.get('line_error_px') or 0.0))


@dataclass(frozen=True)
class Located:
    """The head's position (nominal) and metaworld's scaled distance bounded over the views' pixel errors;
    `reason` says why there is no bound ('' when there is one)."""

    head: np.ndarray | None = None
    distance: float = float('nan')
    distance_lo: float = float('nan')
    distance_hi: float = float('nan')
    reason: str = ''


END_ON_SPAN = 10.0      # pixels either side of an end-on view's centre that span its line


def _plane(view: View, peg: PegImage, shift_far: float, shift_near: float):
    normal_2d = np.array([-peg.direction[1], peg.direction[0]])
    if peg.reads_depth:
        far = peg.centre + peg.t_far * peg.direction + shift_far * normal_2d
        near = peg.centre + peg.t_near * peg.direction + shift_near * normal_2d
    else:   # end-on, the pixels' centre is the reading, the direction the calibration's: the line only moves
        far = peg.centre + END_ON_SPAN * peg.direction + shift_far * normal_2d
        near = peg.centre - END_ON_SPAN * peg.direction + shift_far * normal_2d
    normal = np.cross(view.ray(far), view.ray(near))
    normal /= np.linalg.norm(normal)
    return normal, float(normal @ view.position)


def _axis(planes, target: np.ndarray):
    """The line the planes share: its direction (towards +x) and its point level with the target along it."""
    normals = np.array([n for n, _ in planes])
    offsets = np.array([o for _, o in planes])
    direction = np.linalg.svd(normals)[2][-1]
    direction = direction if direction[0] >= 0 else -direction
    a = np.vstack([normals, direction])
    b = np.concatenate([offsets, [direction @ target]])
    point = np.linalg.lstsq(a, b, rcond=None)[0]
    return point, direction


# Far-end positions along the axis from `point`, metres: 5 mm apart (a projection is smooth over 5 mm at the
# cameras' distances: linear interpolation between them errs by far less than a pixel).
_S_GRID = np.arange(-0.25, 0.70, 0.005)


def measure_peg(peg: np.ndarray, axis_direction, reads_depth: bool = True) -> PegImage | None:
    """A view's measurement of the peg from its mask: the centreline of its pixels (their principal axis,
    pointed along the hole's projected axis `axis_direction`) and the extremes along it (the outer edges of
    the last pixels); a view that sees the axis end-on (`reads_depth` False) takes the projected axis's
    direction through the pixels' centre. None with fewer than three pixels."""
    rows, cols = np.nonzero(peg)
    pixels = np.column_stack([cols + 0.5, rows + 0.5])
    if len(pixels) < 3:
        return None
    if reads_depth:
        centre, direction = _principal_axis(pixels, axis_direction)
    else:
        centre = pixels.mean(axis=0)
        direction = np.asarray(axis_direction, float) / np.linalg.norm(axis_direction)
    t = (pixels - centre) @ direction
    return PegImage(centre, direction, float(t.max()) + 0.5, float(t.min()) - 0.5, reads_depth)


def measure_along(peg: np.ndarray, centre, direction, line_error: float = 0.0) -> PegImage:
    """A view's measurement of the peg along a centreline found otherwise (the bar's outline fitted to the
    mask: `silhouette.fit_centreline`): the extremes of its pixels along it."""
    rows, cols = np.nonzero(peg)
    t = (np.column_stack([cols + 0.5, rows + 0.5]) - centre) @ direction
    return PegImage(np.asarray(centre, float), np.asarray(direction, float), float(t.max()) + 0.5,
                    float(t.min()) - 0.5, True, float(line_error))


def _principal_axis(pixels: np.ndarray, towards) -> tuple[np.ndarray, np.ndarray]:
    centre = pixels.mean(axis=0)
    direction = np.linalg.eigh(np.cov((pixels - centre).T))[1][:, -1]
    return centre, direction if direction @ np.asarray(towards, float) >= 0 else -direction


def _far_end(view: View, peg: PegImage, point: np.ndarray, direction: np.ndarray, t_values) -> np.ndarray:
    """Where along the axis the far end's face reaches each observed extreme in t_values (NaN outside)."""
    side = np.cross(direction, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    up = np.cross(side, direction)
    face = np.array([a * side + b * up for a in (-PEG_HALF_WIDTH, PEG_HALF_WIDTH)
                     for b in (-PEG_HALF_WIDTH, PEG_HALF_WIDTH)])
    corners = point + _S_GRID[:, None, None] * direction + face[None]
    uv = view.project(corners)
    t_pred = np.max((uv - peg.centre) @ peg.direction, axis=1)
    good = np.isfinite(t_pred)
    s_grid, t_pred = _S_GRID[good], t_pred[good]
    if len(t_pred) < 2 or not np.all(np.diff(t_pred) > 0):
        return np.full(len(t_values), np.nan)
    return np.array([np.interp(t, t_pred, s_grid) if t_pred[0] <= t <= t_pred[-1] else np.nan
                     for t in t_values])


def scaled_distance(head: np.ndarray, box) -> float:
    return float(np.linalg.norm((head - (np.asarray(box, float) + TARGET_OFFSET)) * SUCCESS_SCALE))


def locate_head(observed: dict[str, tuple[View, PegImage]], box, config: LocateConfig = DEFAULT_LOCATE
                ) -> Located:
    """The head from two or more views that each measured the peg (a dict camera -> (view, measurement))."""
    depth = [name for name, (_, peg) in observed.items() if peg.reads_depth]
    if len(observed) < 2 or not depth:
        return Located(reason=f'{len(observed)} view(s) measured the peg ({len(depth)} along the axis), '
                              'need 2 (1)')
    target = np.asarray(box, float) + TARGET_OFFSET
    views = list(observed.values())
    nominal = [_plane(view, peg, 0.0, 0.0) for view, peg in views]
    angle = max(np.degrees(np.arccos(min(1.0, abs(float(a[0] @ b[0])))))
                for a, b in itertools.combinations(nominal, 2))
    if angle < config.min_plane_angle_deg:
        return Located(reason=f'the views\' planes meet at {angle:.0f} deg: they do not fix the axis')

    def bounds(shifts):
        """The far end's interval on the line through the views' shifted centrelines, and the distance at
        its two ends (or why there is none)."""
        planes = [_plane(view, peg, *shift) for (view, peg), shift in zip(views, shifts, strict=True)]
        point, direction = _axis(planes, target)
        if np.degrees(np.arccos(min(1.0, direction[0]))) > config.max_axis_tilt_deg:
            return 'axis_tilted'
        readings = [_far_end(view, peg, point, direction,
                             (peg.t_far, peg.t_far - config.end_pixels, peg.t_far + config.end_pixels))
                    for view, peg in views if peg.reads_depth]
        if any(not np.all(np.isfinite(r)) for r in readings):
            return 'far_end_unread'
        # The views' readings must overlap (else one view's end is hidden or cut short); the truth may lie in
        # any of them, so the bound spans them all.
        if max(min(r[1], r[2]) for r in readings) > min(max(r[1], r[2]) for r in readings):
            return 'far_end_readings_disagree'
        low = min(min(r[1], r[2]) for r in readings)
        high = max(max(r[1], r[2]) for r in readings)
        s_mid = float(np.mean([r[0] for r in readings]))
        # the scaled distance is convex along the line: its largest value on [low, high] is at an end, its
        # smallest where the line passes closest to the target (scaled), clamped to the interval
        base = (point - HEAD_TO_FAR_END * direction - target) * SUCCESS_SCALE
        along = direction * SUCCESS_SCALE
        closest = float(np.clip(-(base @ along) / (along @ along), low, high))
        near = float(np.linalg.norm(base + closest * along))
        far = max(float(np.linalg.norm(base + s * along)) for s in (low, high))
        return point + (s_mid - HEAD_TO_FAR_END) * direction, near, far

    nominal_shifts = [(0.0, 0.0)] * len(views)
    found = bounds(nominal_shifts)
    if isinstance(found, str):
        return Located(reason=found)
    head, lo0, hi0 = found
    lo, hi = lo0, hi0
    # Each view's centreline moved to the corners of its error, one view at a time; the views' errors are
    # independent, so their worst effects add up (the distance is smooth in them at this scale).
    for i, (_, peg) in enumerate(views):
        e = max(config.line_pixels, peg.line_error)
        moved = []
        for shift in ((-e, -e), (-e, e), (e, -e), (e, e)):
            shifts = list(nominal_shifts)
            shifts[i] = shift
            found = bounds(shifts)
            if isinstance(found, str):
                return Located(reason=found)
            moved.append(found)
        lo -= max(0.0, lo0 - min(m[1] for m in moved))
        hi += max(0.0, max(m[2] for m in moved) - hi0)
    return Located(head=head, distance=scaled_distance(head, box), distance_lo=float(max(lo, 0.0)),
                   distance_hi=float(hi))
