"""A YOLO dataset of the simulated Push-T cell's camera frames, labelled from the simulator's ground truth.

For random table states (random starts, in and out of distribution, and poses near the goal, where the
verdict is decided), every camera of the cell renders a frame (`enpire_task_pusht.render.render`), some with
camera faults (noise, colour cast, a square occluder). The labels are not drawn by anyone: the T outline,
the agent disc (the simulator's 32-gon) and the goal T are projected through the frame's table->image
homography H, and what is visible of each is computed exactly with shapely (clipped to the image, minus
what is drawn above it -- draw order goal, T, agent -- minus the occluder patch). From that:

    images/{train,val}/*.png         the frames (RGB as rendered, PNG)
    labels/{train,val}/*.txt         YOLO boxes: `class cx cy w h`, normalised, of the visible part
    seg/labels/{train,val}/*.txt     YOLO-seg polygons of the same visible parts (seg/images -> ../images)
    data.yaml, seg/data.yaml         ultralytics dataset files (classes block, agent, goal)
    card.json                        the dataset card: how it was made, counts per camera/class/fault

A visible region made of several pieces (an occluder cutting the T) gets one box around all pieces and
one polygon joining the pieces with zero-width bridges (as ultralytics' own converters do); holes are
not represented in the polygons. Objects with less than `min_visible_px` square pixels visible get no
label. Pixel convention: integer (u, v) is the centre of a pixel (as in enpire_task_pusht.render), so pixel
(u, v) spans [u - 0.5, u + 0.5] and the image spans [-0.5, W - 0.5].

Pure module (no rclpy, no torch). `write_dataset` is Push-T's `Task.verifier.dataset`, what the generic
detector training (`enpire_env.perception.train`) renders its frames with.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely.geometry as sg
from shapely.ops import unary_union

from enpire_task_pusht import geometry as pusht
from enpire_task_pusht import render as cameras
from enpire_task_pusht.distributions import sample_initial_state
from enpire_task_pusht.verification.config import LABELS

CLASSES = LABELS                              # the verifier's labels, in class-id order
CARD_VERSION = 1
_DISC = np.stack([np.cos(np.linspace(0, 2 * np.pi, 32, endpoint=False)),
                  np.sin(np.linspace(0, 2 * np.pi, 32, endpoint=False))], axis=1) * pusht.AGENT_RADIUS


@dataclass(frozen=True)
class TableState:
    block_pose: tuple[float, float, float]
    agent_xy: tuple[float, float]
    step: int
    kind: str                                  # 'random' or 'near_goal'


@dataclass(frozen=True)
class ObjectLabel:
    label: str
    box: tuple[float, float, float, float]     # x0, y0, x1, y1 in continuous pixel coordinates
    polygon: np.ndarray                        # (k, 2) continuous pixel coordinates
    visible_px: float                          # visible area, square pixels


# -- states ---------------------------------------------------------------------------------------------
def _agent_clear_of(block_pose, rng: np.random.Generator, near: bool) -> tuple[float, float]:
    """An agent position outside the T (physically possible), often touching it (as after a push)."""
    poly = pusht.t_polygon(block_pose)
    for _ in range(200):
        if near:
            cx, cy = pusht.origin_to_centroid(block_pose)
            ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(35, 110)
            xy = (cx + r * np.cos(ang), cy + r * np.sin(ang))
        else:
            xy = tuple(rng.uniform(30, 482, size=2))
        if poly.distance(sg.Point(xy)) >= pusht.AGENT_RADIUS + 0.5 and all(20 <= v <= 492 for v in xy):
            return float(xy[0]), float(xy[1])
    return (30.0, 30.0)


def sample_states(n: int, seed: int) -> list[TableState]:
    """Half random starts (one in five out of distribution), half poses scattered around the goal."""
    rng = np.random.default_rng(seed)
    states = []
    goal = np.array(pusht.GOAL_POSE)
    for i in range(n):
        if i % 2 == 0:
            dist = 'out_of_distribution' if i % 10 == 8 else 'in_distribution'
            block = sample_initial_state(int(rng.integers(0, 2**31)), dist).block
            agent = _agent_clear_of(block, rng, near=rng.random() < 0.5)
            kind = 'random'
        else:
            scale = rng.uniform(0.0, 1.0) ** 1.5
            block = tuple(float(v) for v in goal + rng.normal(0, [25.0 * scale, 25.0 * scale, 0.3 * scale]))
            agent = _agent_clear_of(block, rng, near=rng.random() < 0.7)
            kind = 'near_goal'
        states.append(TableState(tuple(float(v) for v in block), agent, int(rng.integers(0, 300)), kind))
    return states


def random_faults(rng: np.random.Generator, spec, block_uv: tuple[float, float] | None):
    """One random fault (noise, colour cast, occluder or a mix); the occluder lands on the T half the time."""
    kind = rng.choice(['noise', 'colour', 'occlusion', 'mix'])
    kw: dict = {}
    if kind in ('noise', 'mix'):
        kw['noise_std'] = float(rng.uniform(2.0, 14.0))
    if kind in ('colour', 'mix'):
        kw['gain'] = tuple(float(g) for g in rng.uniform(0.8, 1.15, size=3))
        kw['bias'] = tuple(float(b) for b in rng.uniform(-20.0, 20.0, size=3))
    if kind in ('occlusion', 'mix'):
        kw['occlusion'] = float(rng.uniform(0.03, 0.25))
        if block_uv is not None and rng.random() < 0.5:
            centre = (block_uv[0] / spec.width + rng.normal(0, 0.08),
                      block_uv[1] / spec.height + rng.normal(0, 0.08))
        else:
            centre = tuple(rng.uniform(0.0, 1.0, size=2))
        kw['occlusion_center'] = tuple(float(np.clip(c, 0.0, 1.0)) for c in centre)
    return str(kind), cameras.CameraFaults(**kw)


# -- labels ---------------------------------------------------------------------------------------------
def occluder_rect(faults, width: int, height: int) -> sg.Polygon | None:
    """The occluder patch in continuous pixel coordinates (the same arithmetic as cameras.apply_faults)."""
    if faults is None or faults.occlusion <= 0.0:
        return None
    side_w = int(round(math.sqrt(faults.occlusion) * width))
    side_h = int(round(math.sqrt(faults.occlusion) * height))
    u0 = int(round(faults.occlusion_center[0] * width - side_w / 2))
    v0 = int(round(faults.occlusion_center[1] * height - side_h / 2))
    u0, v0 = min(max(u0, 0), width - side_w), min(max(v0, 0), height - side_h)
    return sg.box(u0 - 0.5, v0 - 0.5, u0 + side_w - 0.5, v0 + side_h - 0.5)


def _project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float) @ h[:, :2].T + h[:, 2]
    return pts[:, :2] / pts[:, 2:3]


def _valid(poly: sg.Polygon) -> sg.base.BaseGeometry:
    return poly if poly.is_valid else poly.buffer(0)


def _pieces(geom) -> list[sg.Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, sg.Polygon):
        return [geom]
    return [g for g in getattr(geom, 'geoms', []) if isinstance(g, sg.Polygon) and not g.is_empty]


def _joined_polygon(geom) -> np.ndarray:
    """Exterior rings of the pieces joined by zero-width bridges into one ring (YOLO-seg: one per object)."""
    rings = [np.asarray(p.exterior.coords)[:-1] for p in sorted(_pieces(geom), key=lambda p: -p.area)]
    out = rings[0]
    for ring in rings[1:]:
        # Bridge from the closest vertex of what we have to the closest vertex of the next ring, and back.
        d = np.linalg.norm(out[:, None, :] - ring[None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        ring = np.roll(ring, -j, axis=0)
        out = np.vstack([out[:i + 1], ring, ring[:1], out[i:]])
    return out


def frame_labels(h: np.ndarray, width: int, height: int, block_pose, agent_xy, faults=None,
                 min_visible_px: float = 3.0) -> list[ObjectLabel]:
    """Ground-truth labels of one frame: the visible part of each object, through the homography H."""
    image = sg.box(-0.5, -0.5, width - 0.5, height - 0.5)
    block = _valid(sg.Polygon(_project(h, pusht.t_outline(block_pose))))
    agent = _valid(sg.Polygon(_project(h, _DISC + np.asarray(agent_xy, dtype=float))))
    goal = _valid(sg.Polygon(_project(h, pusht.t_outline(pusht.GOAL_POSE))))
    occ = occluder_rect(faults, width, height)
    above = {'agent': [], 'block': [agent], 'goal': [block, agent]}
    labels = []
    for name, geom in (('block', block), ('agent', agent), ('goal', goal)):
        vis = geom.intersection(image)
        cover = above[name] + ([occ] if occ is not None else [])
        if cover and not vis.is_empty:
            vis = vis.difference(unary_union(cover))
        pieces = [p for p in _pieces(vis) if p.area > 0.05]
        area = float(sum(p.area for p in pieces))
        if area < min_visible_px:
            continue
        vis = unary_union(pieces)
        x0, y0, x1, y1 = vis.bounds
        labels.append(ObjectLabel(name, (x0, y0, x1, y1), _joined_polygon(vis), area))
    return labels


def yolo_box_line(lab: ObjectLabel, width: int, height: int) -> str:
    x0, y0, x1, y1 = lab.box
    # continuous pixel coordinates -> [0, 1] image fractions (the image spans [-0.5, W - 0.5])
    fx0, fx1 = np.clip([(x0 + 0.5) / width, (x1 + 0.5) / width], 0.0, 1.0)
    fy0, fy1 = np.clip([(y0 + 0.5) / height, (y1 + 0.5) / height], 0.0, 1.0)
    cls = CLASSES.index(lab.label)
    return f'{cls} {(fx0 + fx1) / 2:.6f} {(fy0 + fy1) / 2:.6f} {fx1 - fx0:.6f} {fy1 - fy0:.6f}'


def yolo_seg_line(lab: ObjectLabel, width: int, height: int) -> str:
    poly = lab.polygon.copy()
    poly[:, 0] = np.clip((poly[:, 0] + 0.5) / width, 0.0, 1.0)
    poly[:, 1] = np.clip((poly[:, 1] + 0.5) / height, 0.0, 1.0)
    return f'{CLASSES.index(lab.label)} ' + ' '.join(f'{v:.6f}' for v in poly.reshape(-1))


def parse_box_line(line: str, width: int, height: int) -> tuple[str, tuple[float, float, float, float]]:
    """Inverse of `yolo_box_line`: (label, (x0, y0, x1, y1) in continuous pixel coordinates)."""
    cls, cx, cy, w, h = line.split()
    cx, cy, w, h = (float(v) for v in (cx, cy, w, h))
    return CLASSES[int(cls)], ((cx - w / 2) * width - 0.5, (cy - h / 2) * height - 0.5,
                               (cx + w / 2) * width - 0.5, (cy + h / 2) * height - 0.5)


# -- rendering and writing ------------------------------------------------------------------------------
def render_labelled(state: TableState, spec, faults, rng: np.random.Generator):
    """(rgb or None, H, labels) of one camera for one state."""
    rs = cameras.RenderState(block_pose=state.block_pose, agent_xy=state.agent_xy, step=state.step)
    img, h = cameras.render(rs, spec, faults, rng)
    if img is None:
        return None, h, []
    return img, h, frame_labels(h, spec.width, spec.height, state.block_pose, state.agent_xy, faults)


def camera_specs(sizes=(96, 128, 160), specs=None) -> dict[int, tuple]:
    """Per image size, the cell's cameras at that resolution (default: render.DEFAULT_CAMERAS)."""
    base = specs or cameras.DEFAULT_CAMERAS
    return {s: tuple(c.model_copy(update=dict(width=s, height=s)) for c in base) for s in sizes}


def _data_yaml(root: Path, splits) -> str:
    lines = [f'path: {root.resolve()}']
    lines += [f'{split}: images/{split}' for split in splits]
    if 'train' not in splits:                  # a held-out set: ultralytics wants both keys
        lines.append('train: images/val')
    lines.append('names:')
    lines += [f'  {i}: {name}' for i, name in enumerate(CLASSES)]
    return '\n'.join(lines) + '\n'


def write_dataset(out: str | Path, n_images: int = 600, seed: int = 0, sizes=(96, 128, 160),
                  fault_fraction: float = 0.3, val_fraction: float = 0.15, specs=None) -> dict:
    """Render about `n_images` frames (every camera for n_images / n_cameras states) and write the dataset.

    Returns the dataset card (also written to card.json). Splits are by state: the cameras of one state
    are all in train or all in val.
    """
    t0 = time.perf_counter()
    out = Path(out)
    by_size = camera_specs(sizes, specs)
    n_cams = len(next(iter(by_size.values())))
    n_states = max(1, math.ceil(n_images / n_cams))
    states = sample_states(n_states, seed)
    rng = np.random.default_rng(seed + 7919)
    n_val = int(round(n_states * val_fraction)) if val_fraction < 1.0 else n_states
    splits = ['val'] if n_val == n_states else ['train', 'val']
    for split in splits:
        for sub in ('images', 'labels', 'seg/labels'):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
    seg_images = out / 'seg' / 'images'
    if not seg_images.exists():
        seg_images.symlink_to('../images', target_is_directory=True)
    counts: dict = {'frames': 0, 'per_split': {}, 'per_camera': {}, 'per_class': {c: 0 for c in CLASSES},
                    'per_fault': {}, 'per_size': {}, 'per_state_kind': {}}
    for k, state in enumerate(states):
        split = 'val' if k >= n_states - n_val else 'train'
        size = int(rng.choice(list(by_size)))
        for spec in by_size[size]:
            faults, fault_kind = None, 'none'
            if rng.random() < fault_fraction:
                h = cameras.table_to_image(spec, cameras.RenderState(state.block_pose, state.agent_xy,
                                                                    step=state.step))
                c = pusht.origin_to_centroid(state.block_pose)
                u, v = _project(h, np.array([c]))[0]
                fault_kind, faults = random_faults(rng, spec, (u, v))
            img, _, labels = render_labelled(state, spec, faults, rng)
            if img is None:
                continue
            name = f'{k:06d}_{spec.name}'
            cv2.imwrite(str(out / 'images' / split / f'{name}.png'), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            (out / 'labels' / split / f'{name}.txt').write_text(
                ''.join(yolo_box_line(lab, spec.width, spec.height) + '\n' for lab in labels))
            (out / 'seg' / 'labels' / split / f'{name}.txt').write_text(
                ''.join(yolo_seg_line(lab, spec.width, spec.height) + '\n' for lab in labels))
            counts['frames'] += 1
            for key, val in (('per_split', split), ('per_camera', spec.name), ('per_fault', fault_kind),
                             ('per_size', str(size)), ('per_state_kind', state.kind)):
                counts[key][val] = counts[key].get(val, 0) + 1
            for lab in labels:
                counts['per_class'][lab.label] += 1
    (out / 'data.yaml').write_text(_data_yaml(out, splits))
    (out / 'seg' / 'data.yaml').write_text(_data_yaml(out / 'seg', splits))
    card = dict(
        card_version=CARD_VERSION, kind='enpire Push-T cell frames, labelled from simulator ground truth',
        classes=list(CLASSES), seed=seed, states=n_states, val_states=n_val, sizes=list(sizes),
        cameras=[s.model_dump() for s in next(iter(by_size.values()))], fault_fraction=fault_fraction,
        labelling=('T outline, agent 32-gon and goal T projected through each frame\'s table->image '
                   'homography; visible part = clipped to the image, minus objects drawn above '
                   '(goal < T < agent) and the occluder patch; boxes = bounds of the visible part, '
                   'polygons = its exterior rings joined; no label under 3 px^2 visible'),
        state_sampling='half random starts (sample_initial_state, 1 in 5 out of distribution), half '
                       'poses scattered around GOAL_POSE; agent outside the T, often touching it',
        faults='none, or one of noise (std 2-14), colour cast (gain 0.8-1.15, bias +-20), occluder '
               '(3-25% of the image, on the T half the time), or a mix; dropout frames are not written',
        counts=counts, seconds=round(time.perf_counter() - t0, 2))
    (out / 'card.json').write_text(json.dumps(card, indent=2) + '\n')
    return card
