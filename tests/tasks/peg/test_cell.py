"""The peg cell as the sim_cell node runs it: a SelfRenderingSimulator on metaworld's physics, placed in 3-D,
stepped past metaworld's 500-step cap, rendered from any thread, snapshotted bit for bit."""
import threading

import numpy as np
import pytest
from enpire_common import task_registry
from enpire_common.task import SceneObject
from enpire_task_peg.cell import PegCell
from enpire_task_peg.distributions import HAND_START, sample_initial_state
from enpire_task_peg.render import CAMERA_NAMES, camera
from enpire_task_peg.simulator import PegSimulator

from enpire_sim.simulator import CellSimulator, SelfRenderingSimulator


@pytest.fixture(scope='module')
def cell():
    sim = PegCell()
    yield sim
    sim.close()


def _place(cell, seed=3):
    initial = sample_initial_state(seed)
    cell.place_objects(initial.scene(), initial.tool())
    return initial


def test_the_task_builds_a_self_rendering_cell():
    sim = task_registry.get('peg_insertion').load('simulator')()
    try:
        assert isinstance(sim, SelfRenderingSimulator) and not isinstance(sim, CellSimulator)
        assert sim.frame_id == 'world' and sim.cameras == CAMERA_NAMES
    finally:
        sim.close()


def test_a_placement_is_metaworlds_reset_at_the_layout(cell):
    initial = _place(cell, seed=11)
    plain = PegSimulator()
    plain.reset(initial.layout)
    assert np.array_equal(np.array(cell.task_state()), plain.task_state())
    actions = np.random.default_rng(1).uniform(-1, 1, (40, 4)).astype(np.float32)
    for action in actions:
        cell.step(action.astype(np.float64))     # a Command carries doubles: float32 values survive exactly
        plain.step(action)
    assert np.array_equal(np.array(cell.task_state()), plain.task_state()) and cell.step_count == 40
    assert cell.target == tuple(float(v) for v in actions[-1])
    assert cell.idle_command() == (0.0, 0.0, 0.0, float(actions[-1][3]))
    plain.close()


@pytest.mark.parametrize('objects, tool, expected', [
    ((SceneObject('peg', (0.1, 0.6, 0.02)),), HAND_START, 'a peg and a box'),
    ((SceneObject('peg', (0.1, 0.6, 0.02)), SceneObject('box', (0.05, 0.6, 0.0))), HAND_START, 'closer than'),
    ((SceneObject('peg', (0.1, 0.6, 0.02)), SceneObject('box', (-0.3, 0.95, 0.0))), HAND_START,
     "outside the cell's table region"),
    ((SceneObject('peg', (0.1, 0.6, 0.02)), SceneObject('box', (-0.3, 0.6, 0.0))), (0.0, 0.6, 2.0),
     'outside its reach'),
    ((SceneObject('peg', (0.1, 0.6, 0.02)), SceneObject('box', (-0.3, 0.6, 0.0))), (0.0, 0.6), 'xyz'),
])
def test_a_bad_placement_is_refused_with_the_reason(cell, objects, tool, expected):
    assert expected in cell.placement_problem(objects, tool)
    with pytest.raises(ValueError, match=expected):
        cell.place_objects(objects, tool)


def test_the_hand_starts_where_the_tool_is_placed(cell):
    initial = sample_initial_state(4)
    cell.place_objects(initial.scene(), (0.05, 0.55, 0.25))
    assert np.allclose(cell.tool_position, (0.05, 0.55, 0.25), atol=0.02)
    _place(cell, 4)
    assert np.allclose(cell.tool_position, HAND_START, atol=0.02)


def test_attempts_continue_past_metaworlds_episode_cap(cell):
    _place(cell)
    for _ in range(520):
        cell.step((0.0, 0.0, 0.0, -1.0))
    assert cell.step_count == 520


def test_a_snapshot_restores_bit_for_bit(cell):
    _place(cell, seed=8)
    for _ in range(5):
        cell.step((0.3, -0.2, 0.1, 1.0))
    snap = cell.snapshot()
    actions = [(0.5, 0.1, -0.4, 1.0)] * 10
    for action in actions:
        cell.step(action)
    after = cell.task_state()
    _place(cell, seed=9)                     # another layout in between
    cell.restore(snap)
    for action in actions:
        cell.step(action)
    assert cell.task_state() == after


def test_frames_render_from_any_thread_with_the_calibration_the_cell_publishes(cell):
    _place(cell, seed=2)
    frames = {name: cell.render(name) for name in CAMERA_NAMES}
    other = {}
    thread = threading.Thread(target=lambda: other.update({n: cell.render(n) for n in CAMERA_NAMES}))
    thread.start()
    thread.join(60)
    for name in CAMERA_NAMES:
        assert frames[name].shape == (96, 96, 3) and frames[name].dtype == np.uint8 and frames[name].std() > 5
        assert np.array_equal(frames[name], other[name]), name
        # the published calibration projects a world point where render.py's camera model does
        info, pose = cell.camera_info(name), cell.camera_pose(name)
        point = np.array(cell.task_state()[7:10])              # the peg's head
        in_camera = pose.inverse().apply(point)
        uv = (info.matrix @ in_camera)[:2] / in_camera[2]
        assert np.allclose(uv, camera(name).project(point, 96, 96)[0], atol=1e-9)
