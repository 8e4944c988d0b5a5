"""The dataset's labels come from the simulator's ground truth and match what the cameras drew."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from enpire_task_pusht import geometry as pusht
from enpire_task_pusht.perception import dataset as ds

cameras = pytest.importorskip('enpire_task_pusht.render')
PURE = {name: np.array(cameras.PALETTE[name], np.uint8) for name in ('block', 'agent', 'goal')}


def _pure_pixels(img, label):
    """Pixels entirely of the object's colour (area-averaged edge pixels are mixes and are left out)."""
    ys, xs = np.nonzero(np.all(img == PURE[label], axis=2))
    return xs, ys


def _states(n=12, seed=3):
    return ds.sample_states(n, seed)


def _touched(state, spec, h, label):
    """Pixels whose colour changes when the object is taken off the table (same camera pose H).

    Drawn at one sample per pixel (a pixel takes the colour at its centre), so the wrist view's partial
    fine redraw does not differ between the two pictures."""
    spec = spec.model_copy(update={'supersample': 1})
    far = {'block': dict(block_pose=(-5000.0, -5000.0, 0.0), agent_xy=state.agent_xy),
           'agent': dict(block_pose=state.block_pose, agent_xy=(-5000.0, -5000.0))}[label]
    with_it = cameras.draw(cameras.RenderState(state.block_pose, state.agent_xy, step=state.step), spec, h)[0]
    without = cameras.draw(cameras.RenderState(step=state.step, **far), spec, h)[0]
    ys, xs = np.nonzero(np.any(with_it != without, axis=2))
    return xs, ys


@pytest.mark.parametrize('size', [96, 160])
def test_boxes_are_the_drawn_objects_on_every_camera(size):
    rng = np.random.default_rng(0)
    checked = {'block': 0, 'agent': 0, 'goal': 0}
    for state in _states():
        for spec in ds.camera_specs((size,))[size]:
            img, h, labels = ds.render_labelled(state, spec, None, rng)
            by_label = {lab.label: lab for lab in labels}
            for label in ('block', 'agent'):
                xs, ys = _touched(state, spec, h, label)
                if len(xs) < 4:
                    continue
                assert label in by_label, f'{spec.name}: {label} drawn ({len(xs)} px) but not labelled'
                x0, y0, x1, y1 = by_label[label].box
                # every pixel whose centre the object covers is in the box, and the box reaches less
                # than a pixel beyond them (fillPoly takes in some pixels whose centre is just outside)
                where = (spec.name, label)
                assert x0 - 1.0 <= xs.min() <= x0 + 1.0 and x1 - 1.0 <= xs.max() <= x1 + 1.0, where
                assert y0 - 1.0 <= ys.min() <= y0 + 1.0 and y1 - 1.0 <= ys.max() <= y1 + 1.0, where
                checked[label] += 1
            xs, ys = _pure_pixels(img, 'goal')
            if len(xs):
                assert 'goal' in by_label, spec.name
                x0, y0, x1, y1 = by_label['goal'].box
                assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1, spec.name
                checked['goal'] += 1
    assert min(checked.values()) >= 10, checked


def test_polygons_match_the_rendered_masks():
    """The YOLO-seg polygon, rasterised, is the T the camera drew (one sample per pixel)."""
    rng = np.random.default_rng(1)
    ious = []
    for state in _states(8, seed=5):
        for spec in ds.camera_specs((160,))[160]:
            img, h, labels = ds.render_labelled(state, spec, None, rng)
            for lab in labels:
                if lab.label != 'block' or lab.visible_px < 60:
                    continue
                drawn = np.zeros(img.shape[:2], np.uint8)
                cv2.fillPoly(drawn, [np.round(lab.polygon * 16).astype(np.int32)], 1, shift=4)
                xs, ys = _touched(state, spec, h, 'block')
                seen = np.zeros_like(drawn)
                seen[ys, xs] = 1
                inter = np.count_nonzero(seen & drawn)
                ious.append(inter / max(np.count_nonzero(seen | drawn), 1))
    assert len(ious) >= 10 and min(ious) > 0.9, ious


def test_occluder_and_draw_order_are_subtracted():
    spec = ds.camera_specs((128,))[128][0]                     # top camera
    h = cameras.table_to_image(spec)
    pose = pusht.GOAL_POSE
    c = ds._project(h, np.array([pusht.origin_to_centroid(pose)]))[0]
    faults = cameras.CameraFaults(occlusion=0.04, occlusion_center=(c[0] / 128, c[1] / 128))
    agent = (100.0, 100.0)
    clean = {lab.label: lab for lab in ds.frame_labels(h, 128, 128, pose, agent)}
    occluded = {lab.label: lab for lab in ds.frame_labels(h, 128, 128, pose, agent, faults)}
    occ = ds.occluder_rect(faults, 128, 128)
    import shapely.geometry as sg
    t_img = sg.Polygon(ds._project(h, pusht.t_outline(pose)))
    hidden = t_img.intersection(occ).area
    assert hidden > 100
    assert occluded['block'].visible_px == pytest.approx(clean['block'].visible_px - hidden, abs=1e-6)
    # the goal lies exactly under the T: nothing of it is visible
    assert 'goal' not in clean


def test_write_dataset_layout_and_card(tmp_path):
    card = ds.write_dataset(tmp_path / 'd', n_images=30, seed=1, sizes=(96,), fault_fraction=0.5)
    root = tmp_path / 'd'
    assert card['counts']['frames'] == 30 and set(card['counts']['per_camera']) == {'top', 'oblique', 'wrist'}
    assert json.loads((root / 'card.json').read_text())['classes'] == ['block', 'agent', 'goal']
    assert 'names:' in (root / 'data.yaml').read_text()
    images = sorted((root / 'images').rglob('*.png'))
    assert len(images) == 30
    for img in images:
        split = img.parent.name
        box_lines = (root / 'labels' / split / f'{img.stem}.txt').read_text().splitlines()
        seg_lines = (root / 'seg' / 'labels' / split / f'{img.stem}.txt').read_text().splitlines()
        assert len(box_lines) == len(seg_lines)
        for b, s in zip(box_lines, seg_lines, strict=True):
            vals = [float(v) for v in b.split()[1:]]
            assert b.split()[0] == s.split()[0] and len(vals) == 4
            assert all(0.0 <= v <= 1.0 for v in vals)
            poly = np.array(s.split()[1:], float).reshape(-1, 2)
            assert len(poly) >= 3 and poly.min() >= 0.0 and poly.max() <= 1.0
    assert (root / 'seg' / 'images' / 'train').is_dir()      # the seg tree reuses the images


def test_multi_piece_polygon_is_one_ring():
    import shapely.geometry as sg
    two = sg.MultiPolygon([sg.box(0, 0, 2, 2), sg.box(5, 0, 6, 1)])
    ring = ds._joined_polygon(two)
    assert len(ring) == 4 + 4 + 2
    assert {tuple(p) for p in ring} >= {(0.0, 0.0), (6.0, 1.0)}
