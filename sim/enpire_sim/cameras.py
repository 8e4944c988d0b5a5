"""Simulated cameras of a table-top cell: viewpoints, table-to-image homographies, rendering, faults.

Pure (no rclpy) and task-free: a task's renderer gives the `Scene` (the table, the floor colour, the
static polygons in drawing order and the moving polygons of a state), and each camera draws it
directly in its own image coordinates: the table-plane polygons are mapped through
the camera's homography and filled with `cv2.fillPoly` on a canvas `CameraSpec.supersample` times finer
(default 8), then area-averaged down (`cv2.INTER_AREA`), as a real sensor integrates light over each
pixel: interior pixels have one colour, edge pixels are mixes of the colours that share them (the
sub-pixel position of an edge is in the image). `supersample: 1` draws each pixel in one colour. Only
the pixels near the moving polygons and (wrist view) the fine static ones are redrawn finely per frame;
the wrist view's other static polygons stay one sample per pixel.

Image coordinates follow OpenCV: integer (u, v) is the centre of pixel column u, row v. For a frame,
`[u v 1]^T ~ H [x y 1]^T` maps a table point (x, y in task units of the square `Table`, x right, y down)
into the image.

Cameras (`DEFAULT_CAMERAS`, or `load_cameras(path)` from `sim/config/cameras.yaml`):
    top      fixed, top-down, the whole table
    oblique  fixed pinhole camera looking down at the table centre at an elevation angle; its
             intrinsics are fitted so the whole table is in view (`CameraSpec.intrinsics`)
    wrist    moves with the tool: centred on it, `half_width` table units to each side, rotated by
             yaw = yaw_rate * t (t = step / control rate) or, with yaw_mode 'motion', along the tool's
             velocity when it moves; H changes every frame
Faults (`CameraFaults`, per camera): gaussian noise, a square occluder (colour `OCCLUDER`) covering a
fraction of the image, dropout (probability of no frame), gain/bias per channel, and stale (the camera
keeps delivering the frame it had when the fault was switched on; `CameraRig` implements that).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, NamedTuple, Protocol

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from enpire_env import raster
from enpire_env.calibration.camera_model import Intrinsics, Pose

Colour = tuple[int, int, int]
OCCLUDER: Colour = (30, 30, 30)   # the occlusion fault's patch

_SHIFT = 4                   # fillPoly fixed-point bits: vertices at 1/16 px
_SCALE = float(1 << _SHIFT)


@dataclass(frozen=True)
class Table:
    """The plane every camera looks at: a square of `size` task units (x right, y down, z into the
    table), and the control rate that turns a state's step into the time a moving camera yaws by."""

    size: float
    control_hz: float

    def corners(self) -> np.ndarray:
        return np.array([(0.0, 0.0), (self.size, 0.0), (self.size, self.size), (0.0, self.size)])


class Layer(NamedTuple):
    """Polygons (table units, each (N, 2)) filled in one colour; `fine`: centre-sampled on the fine
    canvas, where its area matters (a static layer with `fine` is redrawn finely in a moving view)."""

    polygons: tuple[np.ndarray, ...]
    colour: Colour
    fine: bool = False


class ViewState(Protocol):
    """What a camera needs of a state: where the tool is, how it moves, and the step (time)."""

    agent_xy: tuple[float, float]
    agent_velocity: tuple[float, float]
    step: int


@dataclass(frozen=True, eq=False)
class Scene:
    """What a task draws: the floor beyond the table, static layers in drawing order, and the moving
    layers of a state (drawn above them, in order). Compared and hashed by identity (render caches)."""

    table: Table
    floor: Colour
    static: tuple[Layer, ...]
    moving: Callable[[ViewState], tuple[Layer, ...]]


class CameraSpec(BaseModel):
    """One camera: its name, kind of viewpoint, resolution and publishing rate."""

    model_config = ConfigDict(frozen=True, extra='forbid')

    name: str
    kind: Literal['top', 'oblique', 'wrist']
    width: int = Field(96, ge=16, le=1920)
    height: int = Field(96, ge=16, le=1920)
    rate_hz: float = Field(10.0, gt=0.0)
    supersample: int = Field(8, ge=1, le=16)   # area sampling: draw this much finer, then average down
    # oblique: camera on a sphere around the table centre
    elevation_deg: float = Field(55.0, gt=5.0, le=89.0)
    azimuth_deg: float = 90.0           # 90: the camera stands on the +y side (bottom of the top view)
    distance: float = Field(700.0, gt=100.0)    # table units; top and wrist: the height of the pinhole
    margin: float = Field(0.04, ge=0.0, lt=0.4)   # free border around the table, fraction of the image
    # wrist
    half_width: float = Field(128.0, gt=10.0)      # table units from the image centre to its edge
    yaw_rate: float = 0.5                          # rad/s of sim time
    yaw_mode: Literal['rate', 'motion'] = 'rate'

    def intrinsics(self, table: Table) -> np.ndarray | None:
        """K of the oblique pinhole camera over `table` (None for the orthographic top and wrist views)."""
        return _oblique_model(self, table)[0] if self.kind == 'oblique' else None


UnitFraction = Annotated[float, Field(ge=0.0, le=1.0)]
Gain = Annotated[float, Field(ge=0.0, le=10.0)]
Bias = Annotated[float, Field(ge=-255.0, le=255.0)]


class CameraFaults(BaseModel):
    """Fault knobs of one camera; all off by default. Bounded and finite: a fault set at run time (the
    sim's `camera_faults` parameter) must never break the renderer."""

    model_config = ConfigDict(frozen=True, extra='forbid', allow_inf_nan=False)

    noise_std: float = Field(0.0, ge=0.0, le=255.0)       # gaussian, intensity units
    occlusion: float = Field(0.0, ge=0.0, le=1.0)         # fraction of the image covered
    occlusion_center: tuple[UnitFraction, UnitFraction] = (0.5, 0.5)   # patch centre, fractions of w, h
    dropout: float = Field(0.0, ge=0.0, le=1.0)           # probability a frame is not delivered
    gain: tuple[Gain, Gain, Gain] = (1.0, 1.0, 1.0)       # colour/lighting shift: rgb * gain + bias
    bias: tuple[Bias, Bias, Bias] = (0.0, 0.0, 0.0)
    stale: bool = False                                   # keep delivering the frame of the switch-on

    @property
    def any(self) -> bool:
        return self != _NO_FAULTS


_NO_FAULTS = CameraFaults()


DEFAULT_CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec(name='top', kind='top'),
    CameraSpec(name='oblique', kind='oblique'),
    CameraSpec(name='wrist', kind='wrist'),
)


def load_cameras(path: str | Path) -> tuple[tuple[CameraSpec, ...], dict[str, CameraFaults]]:
    """Cameras and their faults from YAML: `cameras: [{name, kind, width, ..., faults: {...}}]`."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    specs, faults = [], {}
    for entry in data.get('cameras', []):
        entry = dict(entry)
        fault = entry.pop('faults', None)
        spec = CameraSpec(**entry)
        specs.append(spec)
        if fault:
            faults[spec.name] = CameraFaults(**fault)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'duplicate camera names in {path}: {names}')
    return tuple(specs), faults


# -- homographies ---------------------------------------------------------------------------------------
def table_to_image(spec: CameraSpec, table: Table, state: ViewState | None = None) -> np.ndarray:
    """3x3 homography from table points to this camera's image for the frame showing `state`."""
    if spec.kind == 'top':
        return _top_homography(spec.width, spec.height, table.size)
    if spec.kind == 'oblique':
        return _oblique_model(spec, table)[1]
    if state is None:
        raise ValueError('the wrist camera moves: its homography needs the state of the frame')
    return _wrist_homography(spec, table, state)


def _top_homography(width: int, height: int, size: float) -> np.ndarray:
    sx, sy = width / size, height / size
    return np.array([[sx, 0.0, -0.5], [0.0, sy, -0.5], [0.0, 0.0, 1.0]])


def _wrist_yaw(spec: CameraSpec, table: Table, state: ViewState) -> float:
    vx, vy = state.agent_velocity
    if spec.yaw_mode == 'motion' and math.hypot(vx, vy) > 1.0:
        # image 'up' (-v) along the direction of motion
        return math.atan2(vy, vx) + math.pi / 2
    return spec.yaw_rate * state.step / table.control_hz


def _wrist_homography(spec: CameraSpec, table: Table, state: ViewState) -> np.ndarray:
    yaw = _wrist_yaw(spec, table, state)
    scale = spec.width / (2.0 * spec.half_width)
    c, s = math.cos(-yaw) * scale, math.sin(-yaw) * scale
    ax, ay = state.agent_xy
    cu, cv = spec.width / 2.0 - 0.5, spec.height / 2.0 - 0.5
    # u = R(-yaw) * scale * (p - agent) + centre
    return np.array([[c, -s, cu - c * ax + s * ay], [s, c, cv - s * ax - c * ay], [0.0, 0.0, 1.0]])


_OBLIQUE_CACHE: dict[tuple[CameraSpec, Table], tuple[np.ndarray, np.ndarray]] = {}


def pinhole(spec: CameraSpec, table: Table, table_pixel_m: float, state: ViewState | None = None
            ) -> tuple[Intrinsics, Pose]:
    """The camera as a pinhole (its CameraInfo) and its pose `table_from_optical` in metres
    (`table_pixel_m`: metres per table unit).

    Every view draws the table plane only, so the top and wrist views, orthographic by construction,
    are exactly a pinhole camera `distance` above the table looking straight down: H derived from this
    model equals `table_to_image` (tested)."""
    if spec.kind == 'oblique':
        k, _ = _oblique_model(spec, table)
        rot, centre = _oblique_geometry(spec, table)
        pose = Pose(rot.T, centre * table_pixel_m)
    else:
        if spec.kind == 'top':
            scale = np.array([spec.width, spec.height]) / table.size
            yaw, above = 0.0, np.array([table.size / 2, table.size / 2])
        else:
            if state is None:
                raise ValueError('the wrist camera moves: its pose needs the state of the frame')
            scale = np.full(2, spec.width / (2.0 * spec.half_width))
            yaw, above = _wrist_yaw(spec, table, state), np.asarray(state.agent_xy, dtype=float)
        centre_px = np.array([spec.width, spec.height]) / 2.0 - 0.5
        if spec.kind == 'top':   # the top view's H maps the table centre to the image centre too
            centre_px = scale * above - 0.5
        f = scale * spec.distance
        k = np.array([[f[0], 0.0, centre_px[0]], [0.0, f[1], centre_px[1]], [0.0, 0.0, 1.0]])
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])   # optical z = table z (down)
        pose = Pose(rot, np.array([above[0], above[1], -spec.distance]) * table_pixel_m)
    return Intrinsics.from_matrix(spec.width, spec.height, k), pose


def _oblique_geometry(spec: CameraSpec, table: Table) -> tuple[np.ndarray, np.ndarray]:
    """(optical_from_table rotation, camera centre in table units) of the oblique camera."""
    el, az = math.radians(spec.elevation_deg), math.radians(spec.azimuth_deg)
    target = np.array([table.size / 2, table.size / 2, 0.0])
    centre = target + spec.distance * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az),
                                                -math.sin(el)])
    forward = (target - centre) / np.linalg.norm(target - centre)
    up = np.array([0.0, 0.0, -1.0])
    up_img = up - forward * (up @ forward)
    down = -up_img / np.linalg.norm(up_img)
    right = np.cross(down, forward)  # x = y cross z for a right-handed optical frame
    return np.stack([right, down, forward]), centre


def _oblique_model(spec: CameraSpec, table: Table) -> tuple[np.ndarray, np.ndarray]:
    """(K, H) of a pinhole camera above the table. Table frame: x right, y down, z into the table."""
    cached = _OBLIQUE_CACHE.get((spec, table))
    if cached is not None:
        return cached
    rot, centre = _oblique_geometry(spec, table)
    extr = np.column_stack([rot[:, 0], rot[:, 1], -rot @ centre])  # [r1 r2 t] for points with z = 0
    corners = np.column_stack([table.corners(), np.ones(4)]) @ extr.T
    norm = corners[:, :2] / corners[:, 2:3]
    lo, hi = norm.min(axis=0), norm.max(axis=0)
    avail = np.array([spec.width, spec.height]) * (1.0 - 2.0 * spec.margin)
    focal = float(np.min(avail / (hi - lo)))
    principal = np.array([spec.width, spec.height]) / 2.0 - 0.5 - focal * (lo + hi) / 2.0
    k = np.array([[focal, 0.0, principal[0]], [0.0, focal, principal[1]], [0.0, 0.0, 1.0]])
    h = k @ extr
    h = h / h[2, 2]
    _OBLIQUE_CACHE[(spec, table)] = (k, h)
    return k, h


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Table points (N, 2) to image points (N, 2) through H."""
    pts = np.asarray(points, dtype=float) @ h[:, :2].T + h[:, 2]
    return pts[:, :2] / pts[:, 2:3]


def unproject(h: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Image points (N, 2) back to the table plane (inverse of `project`)."""
    return project(np.linalg.inv(h), pixels)


# -- drawing --------------------------------------------------------------------------------------------
def _fill(img: np.ndarray, h: np.ndarray, polygons, colour, centre_sampled: bool = False) -> None:
    pts = [project(h, p) for p in polygons]
    if centre_sampled:
        pts = [raster.centre_sampled(p) for p in pts]
    pts = [np.round(p * _SCALE).astype(np.int32) for p in pts]
    cv2.fillPoly(img, pts, colour, lineType=cv2.LINE_8, shift=_SHIFT)


_STATIC_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _fine(h: np.ndarray, ss: int) -> np.ndarray:
    """The homography onto the ss-times finer canvas (pixel centres at integers on both canvases)."""
    off = (ss - 1) / 2.0
    return np.array([[ss, 0.0, off], [0.0, ss, off], [0.0, 0.0, 1.0]]) @ h


def _draw_static(img: np.ndarray, h: np.ndarray, scene: Scene, fine: bool = False) -> None:
    img[:] = np.array(scene.floor, np.uint8)
    for layer in scene.static:
        _fill(img, h, layer.polygons, layer.colour, fine and layer.fine)


def _static_layer(spec: CameraSpec, h: np.ndarray, scene: Scene) -> tuple[np.ndarray | None, np.ndarray]:
    """The floor and static layers: (fine canvas, area-averaged image) for the fixed cameras (cached).

    The wrist camera's H changes every frame: its layer is drawn at one sample per pixel (no fine
    canvas); `draw` redraws finely only the part around the fine static layers and the moving ones."""
    ss = spec.supersample
    key = (scene, spec.width, spec.height, ss, h.tobytes())
    layers = _STATIC_CACHE.get(key)
    if layers is not None:
        return layers
    if spec.kind == 'wrist' or ss == 1:
        coarse = np.empty((spec.height, spec.width, 3), np.uint8)
        _draw_static(coarse, h, scene)
        layers = (None, coarse)
    else:
        fine = np.empty((spec.height * ss, spec.width * ss, 3), np.uint8)
        _draw_static(fine, _fine(h, ss), scene, fine=True)
        layers = (fine, cv2.resize(fine, (spec.width, spec.height), interpolation=cv2.INTER_AREA))
    if spec.kind != 'wrist':
        if len(_STATIC_CACHE) > 64:
            _STATIC_CACHE.clear()
        _STATIC_CACHE[key] = layers
    return layers


def _bbox(spec: CameraSpec, uv: np.ndarray) -> tuple[int, int, int, int] | None:
    u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 1
    u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 2
    u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, spec.width), min(v1, spec.height)
    return None if (u1 <= u0 or v1 <= v0) else (int(u0), int(v0), int(u1), int(v1))


def draw(state: ViewState, spec: CameraSpec, scene: Scene, h: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """The clean frame (no faults) of `scene` in `state`, and its homography."""
    if h is None:
        h = table_to_image(spec, scene.table, state)
    fine, coarse = _static_layer(spec, h, scene)
    ss = spec.supersample
    img = coarse.copy()
    moving = scene.moving(state)
    if ss == 1:
        for layer in moving:
            _fill(img, h, layer.polygons, layer.colour)
        return img, h
    # Only the pixels the moving polygons (and, for the moving wrist view, the fine static ones) touch
    # are redrawn finely and area-averaged down; each window is drawn whole, so where windows overlap
    # they agree.
    in_motion = fine is None
    if in_motion:
        detail = [p for layer in scene.static if layer.fine for p in layer.polygons]
        windows = [_bbox(spec, project(h, p)) for layer in moving for p in layer.polygons]
        windows += [_bbox(spec, project(h, p)) for p in detail]
    else:
        windows = [_bbox(spec, project(h, np.vstack([p for layer in moving for p in layer.polygons])))]
    for box in _merged([w for w in windows if w is not None]):
        u0, v0, u1, v1 = box
        hc = np.array([[1.0, 0.0, -u0 * ss], [0.0, 1.0, -v0 * ss], [0.0, 0.0, 1.0]]) @ _fine(h, ss)
        if in_motion:
            crop = np.empty(((v1 - v0) * ss, (u1 - u0) * ss, 3), np.uint8)
            _draw_static(crop, hc, scene, fine=True)
        else:
            crop = fine[v0 * ss:v1 * ss, u0 * ss:u1 * ss].copy()
        for layer in moving:
            _fill(crop, hc, layer.polygons, layer.colour, True)
        img[v0:v1, u0:u1] = cv2.resize(crop, (u1 - u0, v1 - v0), interpolation=cv2.INTER_AREA)
    return img, h


def _merged(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes with overlapping ones joined (their union box), so no pixel is drawn twice."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def apply_faults(img: np.ndarray, faults: CameraFaults, rng: np.random.Generator) -> np.ndarray | None:
    """Noise, occlusion, colour shift and dropout (None) on a clean frame. Stale is `CameraRig`'s job."""
    if faults.dropout > 0.0 and rng.random() < faults.dropout:
        return None
    if faults.occlusion > 0.0:
        hgt, wid = img.shape[:2]
        side_w = int(round(math.sqrt(faults.occlusion) * wid))
        side_h = int(round(math.sqrt(faults.occlusion) * hgt))
        u0 = int(round(faults.occlusion_center[0] * wid - side_w / 2))
        v0 = int(round(faults.occlusion_center[1] * hgt - side_h / 2))
        u0, v0 = min(max(u0, 0), wid - side_w), min(max(v0, 0), hgt - side_h)
        img[v0:v0 + side_h, u0:u0 + side_w] = OCCLUDER
    shifted = faults.gain != (1.0, 1.0, 1.0) or faults.bias != (0.0, 0.0, 0.0)
    if shifted or faults.noise_std > 0.0:
        out = img.astype(np.float32)
        if shifted:
            out = out * np.asarray(faults.gain, np.float32) + np.asarray(faults.bias, np.float32)
        if faults.noise_std > 0.0:
            out += rng.normal(0.0, faults.noise_std, size=out.shape).astype(np.float32)
        img = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return img


def render(state: ViewState, spec: CameraSpec, scene: Scene, faults: CameraFaults | None = None,
           rng: np.random.Generator | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """(rgb uint8 HxWx3 or None when dropped out, table_to_image H) for one camera and state."""
    img, h = draw(state, spec, scene)
    if faults is not None and faults.any:
        img = apply_faults(img, faults, rng if rng is not None else np.random.default_rng())
    return img, h


@dataclass
class Frame:
    """One delivered frame. `state_step` is the step whose state the image shows (older when stale);
    `table_to_image` is None for a self-rendered 3-D camera (no table plane)."""

    camera: str
    image: np.ndarray
    table_to_image: np.ndarray | None
    state_step: int


class FaultyCameras:
    """The fault knobs of a set of cameras: `deliver` turns a camera's clean frame into what it delivers
    (noise, occlusion, colour shift, dropout: None; stale: the frame of the switch-on, again)."""

    def __init__(self, names: Sequence[str], faults: dict[str, CameraFaults] | None = None, seed: int = 0):
        self.names = tuple(names)
        self.faults = dict(faults or {})
        self.rng = np.random.default_rng(seed)
        self._frozen: dict[str, Frame] = {}

    def set_faults(self, camera: str, faults: CameraFaults) -> None:
        if camera not in self.names:
            raise KeyError(f'no camera {camera!r}')
        self.faults[camera] = faults
        if not faults.stale:
            self._frozen.pop(camera, None)

    def deliver(self, camera: str, step: int, clean: Callable[[], tuple[np.ndarray, np.ndarray | None]]
                ) -> Frame | None:
        """The camera's frame of `step`; `clean()` draws it (not called for a frozen camera)."""
        faults = self.faults.get(camera, _NO_FAULTS)
        if faults.stale and camera in self._frozen:
            return self._frozen[camera]
        img, h = clean()
        if faults.any:
            img = apply_faults(img, faults, self.rng)
        frame = None if img is None else Frame(camera, img, h, step)
        if faults.stale and frame is not None:
            self._frozen[camera] = frame
        return frame


@dataclass
class CameraRig:
    """The cameras of one cell with their faults; `capture` gives each camera's frame (or None)."""

    specs: tuple[CameraSpec, ...] = DEFAULT_CAMERAS
    faults: dict[str, CameraFaults] = field(default_factory=dict)
    seed: int = 0
    scene: Scene | None = None     # what the cameras see (the task's renderer)

    def __post_init__(self):
        if self.scene is None:
            raise ValueError("a camera rig needs the task's scene to draw")
        self._cameras = FaultyCameras([s.name for s in self.specs], self.faults, self.seed)

    @property
    def names(self) -> tuple[str, ...]:
        return self._cameras.names

    def set_faults(self, camera: str, faults: CameraFaults) -> None:
        self._cameras.set_faults(camera, faults)

    def capture(self, state: ViewState, cameras: Sequence[str] | None = None) -> dict[str, Frame | None]:
        return {spec.name: self._cameras.deliver(spec.name, state.step,
                                                 lambda spec=spec: draw(state, spec, self.scene))
                for spec in self.specs if cameras is None or spec.name in cameras}


class RenderedRig:
    """The fixed cameras of a self-rendering simulator (`enpire_sim.simulator.SelfRenderingSimulator`)
    with the same fault knobs as `CameraRig`: the simulator draws, the faults are applied here."""

    def __init__(self, sim, faults: dict[str, CameraFaults] | None = None, seed: int = 0):
        self.sim = sim
        self._cameras = FaultyCameras(sim.cameras, faults, seed)
        self._clean: dict[str, tuple[object, np.ndarray]] = {}   # camera -> (state key, its clean frame)

    @property
    def names(self) -> tuple[str, ...]:
        return self._cameras.names

    def set_faults(self, camera: str, faults: CameraFaults) -> None:
        self._cameras.set_faults(camera, faults)

    def capture(self, step: int, cameras: Sequence[str] | None = None, key: object = None
                ) -> dict[str, Frame | None]:
        """The cameras' frames of the simulator's current state (`step` is its step count). A camera already
        rendered for the same `key` (a state that has not changed since: a lockstep cell re-sending its
        frames while it idles) is not rendered again."""
        return {name: self._cameras.deliver(name, step, lambda name=name: (self._render(name, key), None))
                for name in self.names if cameras is None or name in cameras}

    def _render(self, camera: str, key: object) -> np.ndarray:
        cached = self._clean.get(camera)
        if key is None or cached is None or cached[0] != key:
            cached = (key, self.sim.render(camera))
            self._clean[camera] = cached
        return cached[1].copy()     # faults draw into the frame they are given
