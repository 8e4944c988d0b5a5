"""Cameras: homographies agree with what is drawn, moving wrist view, YAML config, every fault knob."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from enpire_task_pusht.geometry import GOAL_POSE, origin_to_centroid
from enpire_task_pusht.render import (
    DEFAULT_CAMERAS,
    PALETTE,
    TABLE,
    CameraFaults,
    CameraRig,
    RenderState,
    load_cameras,
    project,
    render,
    table_to_image,
    unproject,
)

CONFIG = Path(__file__).resolve().parents[3] / 'sim/config/cameras.yaml'
STATE = RenderState(block_pose=(150.0, 330.0, 0.6), agent_xy=(330.0, 150.0), agent_velocity=(5.0, 0.0),
                    step=7)


def _spec(name, size):
    spec = next(s for s in DEFAULT_CAMERAS if s.name == name)
    return spec.model_copy(update={'width': size, 'height': size})


def _colour_at(img, h, point):
    u, v = np.rint(project(h, np.array([point]))[0]).astype(int)
    return tuple(int(c) for c in img[v, u])


def _mask(img, colour):
    return np.all(img == np.array(colour, np.uint8), axis=2)


@pytest.mark.parametrize('size', [96, 480])
@pytest.mark.parametrize('name', ['top', 'oblique', 'wrist'])
def test_known_table_points_show_their_colour(name, size):
    spec = _spec(name, size)
    img, h = render(STATE, spec)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert _colour_at(img, h, STATE.agent_xy) == PALETTE['agent']
    if name != 'wrist':  # the wrist view sees only the agent's surroundings
        assert _colour_at(img, h, origin_to_centroid(STATE.block_pose)) == PALETTE['block']
        assert _colour_at(img, h, origin_to_centroid(GOAL_POSE)) == PALETTE['goal']
        assert _colour_at(img, h, (450.0, 450.0)) == PALETTE['background']
    assert _colour_at(img, h, (STATE.agent_xy[0] + 40, STATE.agent_xy[1] - 40)) == PALETTE['background']


@pytest.mark.parametrize('name', ['top', 'oblique', 'wrist'])
def test_t_mask_centroid_maps_back_to_the_t_centroid_at_480(name):
    spec = _spec(name, 480)
    if name == 'wrist':  # a wider wrist view, so the whole T is in it
        spec = spec.model_copy(update={'half_width': 256.0})
    state = RenderState(block_pose=(300.0, 260.0, -0.9), agent_xy=(250.0, 200.0), step=3) if name == 'wrist' \
        else STATE
    img, h = render(state, spec)
    mask = _mask(img, PALETTE['block'])
    vs, us = np.nonzero(mask)
    truth = np.array(origin_to_centroid(state.block_pose))
    # Centroid of the mask's pixels on the table plane, each weighted by the table area it covers
    # (|det| of the inverse homography's Jacobian, proportional to 1 / w^3): exact for any homography ...
    pixels = np.column_stack([us, vs]).astype(float)
    w = np.column_stack([pixels, np.ones(len(pixels))]) @ np.linalg.inv(h)[2]
    on_table = np.average(unproject(h, pixels), axis=0, weights=np.abs(w) ** -3)
    assert np.linalg.norm(on_table - truth) < 1.0
    # ... and the image-moment centroid mapped back (what a fast verifier does; perspective skews it a bit).
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    image_centroid = unproject(h, np.array([[m['m10'] / m['m00'], m['m01'] / m['m00']]]))[0]
    assert np.linalg.norm(image_centroid - truth) < (2.0 if name != 'oblique' else 4.0)


def test_fixed_cameras_have_a_fixed_homography_and_the_wrist_one_follows_the_agent():
    for name in ('top', 'oblique'):
        spec = _spec(name, 96)
        assert np.array_equal(table_to_image(spec, STATE), table_to_image(spec))
    wrist = _spec('wrist', 96)
    later = RenderState(STATE.block_pose, (200.0, 220.0), step=STATE.step + 5)
    h0, h1 = table_to_image(wrist, STATE), table_to_image(wrist, later)
    assert not np.allclose(h0, h1)
    centre = (96 / 2 - 0.5, 96 / 2 - 0.5)
    for state, h in ((STATE, h0), (later, h1)):
        assert project(h, np.array([state.agent_xy]))[0] == pytest.approx(centre)
    with pytest.raises(ValueError):
        table_to_image(wrist)


def test_oblique_is_a_perspective_view_with_intrinsics():
    spec = _spec('oblique', 96)
    h = table_to_image(spec)
    assert abs(h[2, 0]) + abs(h[2, 1]) > 1e-6  # not affine
    corners = np.array([[0.0, 512.0], [512.0, 512.0], [0.0, 0.0], [512.0, 0.0]])
    near, far = project(h, corners).reshape(2, 2, 2)
    assert np.ptp(far[:, 0]) < np.ptp(near[:, 0])  # the far edge of the table looks shorter
    assert spec.intrinsics(TABLE).shape == (3, 3) and _spec('top', 96).intrinsics(TABLE) is None


def test_cameras_load_from_yaml_with_faults(tmp_path):
    specs, faults = load_cameras(CONFIG)
    assert [s.name for s in specs] == ['top', 'oblique', 'wrist'] and not faults
    assert {s.kind for s in specs} == {'top', 'oblique', 'wrist'}
    custom = tmp_path / 'cams.yaml'
    custom.write_text('cameras:\n  - {name: a, kind: top, width: 480, height: 320, faults: {noise_std: 3}}\n')
    specs, faults = load_cameras(custom)
    assert (specs[0].width, specs[0].height) == (480, 320) and faults['a'].noise_std == 3
    img, _ = render(STATE, specs[0])
    assert img.shape == (320, 480, 3)
    custom.write_text('cameras:\n  - {name: a, kind: fisheye}\n')
    with pytest.raises(ValueError):
        load_cameras(custom)


# -- faults --------------------------------------------------------------------------------------------
def _clean(name='top', size=96):
    return render(STATE, _spec(name, size))[0]


def test_noise_fault():
    rng = np.random.default_rng(0)
    noisy, _ = render(STATE, _spec('top', 96), CameraFaults(noise_std=8.0), rng)
    diff = noisy.astype(float) - _clean().astype(float)
    interior = diff[_clean()[..., 0] == 144]  # goal pixels: far from 0 and 255, so no clipping
    assert 6.5 < interior.std() < 9.5 and abs(interior.mean()) < 1.0


def test_occlusion_fault_covers_the_requested_fraction():
    img, _ = render(STATE, _spec('top', 96), CameraFaults(occlusion=0.25, occlusion_center=(0.2, 0.8)))
    covered = _mask(img, PALETTE['occluder']).mean()
    assert covered == pytest.approx(0.25, abs=0.02)
    assert _mask(img[:48, 48:], PALETTE['occluder']).sum() == 0  # the patch is where it was put


def test_dropout_fault():
    rng = np.random.default_rng(1)
    assert render(STATE, _spec('top', 96), CameraFaults(dropout=1.0), rng)[0] is None
    delivered = sum(render(STATE, _spec('top', 96), CameraFaults(dropout=0.5), rng)[0] is not None
                    for _ in range(200))
    assert 70 < delivered < 130


def test_colour_shift_fault():
    img, _ = render(STATE, _spec('top', 96), CameraFaults(gain=(0.5, 1.0, 1.0), bias=(0.0, -40.0, 10.0)))
    bg = _mask(_clean(), PALETTE['background'])
    assert tuple(img[bg][0]) == (128, 215, 255)


def test_stale_fault_freezes_the_frame_until_switched_off():
    rig = CameraRig(seed=0)
    moved = RenderState(STATE.block_pose, (260.0, 400.0), step=STATE.step + 1)
    rig.set_faults('top', CameraFaults(stale=True))
    first = rig.capture(STATE)
    second = rig.capture(moved)
    assert second['top'] is first['top'] and second['top'].state_step == STATE.step
    assert second['oblique'].state_step == moved.step  # only the faulty camera is stale
    rig.set_faults('top', CameraFaults())
    assert rig.capture(moved)['top'].state_step == moved.step
    with pytest.raises(KeyError):
        rig.set_faults('nope', CameraFaults())


def test_three_camera_render_is_fast():
    import time

    states = [RenderState((200.0 + i, 250.0, 0.01 * i), (100.0, 100.0 + i), step=i) for i in range(300)]
    # CPU time of this process: on shared cores the wall clock mostly measures the other processes.
    start = time.process_time()
    for state in states:
        for spec in DEFAULT_CAMERAS:
            render(state, spec)
    per_frame_ms = (time.process_time() - start) / len(states) * 1e3
    assert per_frame_ms < 5.0, per_frame_ms  # ~2-3 ms (8x area sampling) on a quiet machine; loose for CI
