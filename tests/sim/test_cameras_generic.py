"""The camera rig is task-free: any task's scene on any table size, timed by its control rate."""
import math

import numpy as np
import pytest

from enpire_sim.cameras import (
    DEFAULT_CAMERAS,
    CameraRig,
    Layer,
    Scene,
    Table,
    project,
    render,
    table_to_image,
)

TABLE = Table(size=100.0, control_hz=5.0)
RED, GREY, WHITE, BLUE = (200, 0, 0), (50, 50, 50), (255, 255, 255), (0, 0, 200)


class State:
    def __init__(self, tool, step=0):
        self.agent_xy, self.agent_velocity, self.step = tool, (0.0, 0.0), step


def _square(cx, cy, half):
    return np.array([(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half),
                     (cx - half, cy + half)])


SCENE = Scene(table=TABLE, floor=GREY,
              static=(Layer((TABLE.corners(),), WHITE), Layer((_square(75.0, 75.0, 10.0),), RED, fine=True)),
              moving=lambda state: (Layer((_square(*state.agent_xy, 5.0),), BLUE),))


def _spec(name, size=64, **update):
    return next(s for s in DEFAULT_CAMERAS if s.name == name).model_copy(
        update={'width': size, 'height': size, **update})


def _colour(img, h, point):
    u, v = np.rint(project(h, np.array([point]))[0]).astype(int)
    return tuple(int(c) for c in img[v, u])


@pytest.mark.parametrize('name', ['top', 'oblique', 'wrist'])
def test_a_scene_on_another_table_size_draws_where_its_homography_says(name):
    state = State((30.0, 40.0), step=3)
    img, h = render(state, _spec(name), SCENE)
    assert _colour(img, h, (30.0, 40.0)) == BLUE
    assert _colour(img, h, (30.0, 55.0)) == WHITE
    if name != 'wrist':
        assert _colour(img, h, (75.0, 75.0)) == RED
    if name == 'top':   # the top view spans exactly the table
        corners = [(-0.5, -0.5), (63.5, -0.5), (63.5, 63.5), (-0.5, 63.5)]
        assert np.allclose(project(h, TABLE.corners()), corners)


def test_the_wrist_camera_yaws_by_the_tables_control_rate():
    spec = _spec('wrist', yaw_rate=0.5)
    h = table_to_image(spec, TABLE, State((50.0, 50.0), step=10))   # 10 steps at 5 Hz: 2 s, 1 rad
    dx = h[:2, :2] @ np.array([1.0, 0.0])
    assert math.atan2(dx[1], dx[0]) == pytest.approx(-1.0)


def test_a_rig_without_a_scene_is_refused():
    with pytest.raises(ValueError, match='scene'):
        CameraRig()
    frames = CameraRig(scene=SCENE).capture(State((50.0, 50.0)), ['top'])
    assert list(frames) == ['top'] and frames['top'].image.shape == (96, 96, 3)
