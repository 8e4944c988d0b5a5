"""A YOLO-seg dataset of the peg cell's camera frames, labelled from MuJoCo's segmentation render.

States are the verification states (`verification.states`: the expert's trajectories and perturbations
around the success window, where a verdict is decided). Every camera of the cell renders each state in
RGB and in segmentation (`render.CellCameras.segmentation`: exact per-geom masks of the peg and the box);
some frames get a grey occluder patch (a lab's cable or arm), whose pixels are taken out of the masks.
Nobody draws a label:

    images/{train,val}/*.png     the frames (RGB as rendered)
    labels/{train,val}/*.txt     YOLO-seg: `class x1 y1 x2 y2 ...` normalised, one line per connected piece
                                 of an object's visible mask (a finger across the peg makes two pieces)
    data.yaml                    the ultralytics dataset file (classes peg, box)
    card.json                    how it was made, counts per split, camera, class and fault

A piece's outline is traced on the mask upsampled 4x (nearest), so the polygon follows pixel edges, not
pixel centres. Pieces under `min_piece_px` pixels get no label. Pure (no rclpy, no torch).
`write_dataset` is the task's `Task.verifier.dataset` (enpire_env.perception.train renders with it).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from enpire_task_peg.render import CellCameras  # noqa: E402
from enpire_task_peg.simulator import BOX  # noqa: E402
from enpire_task_peg.verification.states import states  # noqa: E402

CLASSES = ('peg', 'box')          # the verifier's labels (config/verify.yaml), in class-id order
CARD_VERSION = 1
UPSAMPLE = 4
# Physics is cheap beside rendering: draw the states from a pool this many times larger, i.e. from this many
# times more layouts (states() gives about 140 states a layout: 300 states would be two or three layouts).
STATE_POOL = 8
OCCLUDER_RGB = (110, 110, 115)


def occluder(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """A grey patch (x0, y0, x1, y1) of a quarter of the frame, somewhere in its middle."""
    x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
    return x0, y0, x0 + width // 2, y0 + height // 2


def piece_polygons(mask: np.ndarray, min_piece_px: int = 3) -> list[np.ndarray]:
    """Outlines (k x 2, continuous pixel coordinates: the image spans [0, W] x [0, H]) of a mask's pieces."""
    count, pieces = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = []
    for piece in range(1, count):
        one = pieces == piece
        if int(one.sum()) < min_piece_px:
            continue
        big = np.kron(one.astype(np.uint8), np.ones((UPSAMPLE, UPSAMPLE), np.uint8))
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(float)
        if len(contour) >= 3:
            out.append((contour + 0.5) / UPSAMPLE)
    return out


def seg_line(label: str, polygon: np.ndarray, width: int, height: int) -> str:
    xy = np.clip(polygon / [width, height], 0.0, 1.0)
    return f'{CLASSES.index(label)} ' + ' '.join(f'{v:.5f}' for v in xy.reshape(-1))


def polygon_mask(polygons, width: int, height: int) -> np.ndarray:
    """The pixels whose centres a set of polygons (continuous pixel coordinates) covers."""
    big = np.zeros((height * UPSAMPLE, width * UPSAMPLE), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(big, [np.round(np.asarray(polygon) * UPSAMPLE - 0.5).astype(np.int32)], 1)
    return big[UPSAMPLE // 2::UPSAMPLE, UPSAMPLE // 2::UPSAMPLE].astype(bool)


def labelled_frames(cams: CellCameras, data, rng: np.random.Generator, fault_fraction: float):
    """Per camera: (name, rgb, {label: visible mask}, fault) of the current state."""
    for name in cams.names:
        rgb = cams.rgb(data, name).copy()
        masks = cams.segmentation(data, name)
        fault = 'none'
        if rng.random() < fault_fraction:
            x0, y0, x1, y1 = occluder(rng, cams.width, cams.height)
            rgb[y0:y1, x0:x1] = OCCLUDER_RGB
            for mask in masks.values():
                mask[y0:y1, x0:x1] = False
            fault = 'occluder'
        yield name, rgb, masks, fault


def _data_yaml(root: Path, splits) -> str:
    lines = [f'path: {root.resolve()}', *(f'{split}: images/{split}' for split in splits)]
    if 'train' not in splits:               # a held-out set: ultralytics wants both keys
        lines.append('train: images/val')
    lines.append('names:')
    lines += [f'  {i}: {name}' for i, name in enumerate(CLASSES)]
    return '\n'.join(lines) + '\n'


def write_dataset(out: str | Path, n_images: int = 900, seed: int = 0, sizes=(96,),
                  fault_fraction: float = 0.2, val_fraction: float = 0.15,
                  state_pool: int = STATE_POOL) -> dict:
    """Render about `n_images` frames (every camera for n_images / 3 states) and write the dataset; returns
    its card (also card.json). Splits are by state; each state is rendered at one of `sizes`. The states are
    a random `1 / state_pool` of `verification.states`' (which come about 140 to a layout): more layouts
    for the same frames."""
    t0 = time.perf_counter()
    out = Path(out)
    wanted = max(1, math.ceil(n_images / 3))
    sim, snapshots = states(wanted * max(1, state_pool), seed)
    snapshots = snapshots[:wanted]          # states() shuffles them
    n_states = len(snapshots)
    n_val = n_states if val_fraction >= 1.0 else int(round(n_states * val_fraction))
    splits = ['val'] if n_val == n_states else ['train', 'val']
    for split in splits:
        for sub in ('images', 'labels'):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 7919)
    cameras = {size: CellCameras(sim.model, size, size) for size in sizes}
    counts: dict = {'frames': 0, 'per_split': {}, 'per_camera': {}, 'per_class': dict.fromkeys(CLASSES, 0),
                    'per_fault': {}, 'per_size': {}, 'per_state_kind': {}}
    boxes = set()
    try:
        for k, (snapshot, kind) in enumerate(snapshots):
            split = 'val' if k >= n_states - n_val else 'train'
            size = int(rng.choice(list(sizes)))
            sim.restore(snapshot)
            boxes.add(tuple(np.round(sim.task_state()[BOX], 4)))
            for name, rgb, masks, fault in labelled_frames(cameras[size], sim.data, rng, fault_fraction):
                stem = f'{k:06d}_{name}'
                cv2.imwrite(str(out / 'images' / split / f'{stem}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                lines = []
                for label in CLASSES:
                    pieces = piece_polygons(masks[label])
                    lines += [seg_line(label, p, size, size) for p in pieces]
                    counts['per_class'][label] += bool(pieces)
                (out / 'labels' / split / f'{stem}.txt').write_text(''.join(line + '\n' for line in lines))
                counts['frames'] += 1
                for key, val in (('per_split', split), ('per_camera', name), ('per_fault', fault),
                                 ('per_size', str(size)), ('per_state_kind', kind)):
                    counts[key][val] = counts[key].get(val, 0) + 1
    finally:
        for cams in cameras.values():
            cams.close()
        sim.close()
    counts['layouts'] = len(boxes)         # states of one layout share the box's position
    (out / 'data.yaml').write_text(_data_yaml(out, splits))
    card = dict(
        card_version=CARD_VERSION, kind='enpire peg cell frames, labelled from MuJoCo segmentation renders',
        classes=list(CLASSES), seed=seed, states=n_states, val_states=n_val, sizes=list(sizes),
        state_pool=state_pool,
        fault_fraction=fault_fraction,
        labelling=('per camera, MuJoCo segmentation render: geoms of the peg body and of the box body; '
                   'visible mask = minus the occluder patch; one YOLO-seg polygon per connected piece '
                   '(outline traced at 4x), no label under 3 px'),
        state_sampling='enpire_task_peg.verification.states: expert trajectories, pull-backs through the '
                       "window's edge, held in the hole under small pushes, random actions",
        faults='none, or a grey occluder over a quarter of the frame', counts=counts,
        seconds=round(time.perf_counter() - t0, 2))
    (out / 'card.json').write_text(json.dumps(card, indent=2) + '\n')
    return card
