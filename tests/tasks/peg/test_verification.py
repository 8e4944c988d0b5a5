"""Each camera judges "inserted" alone, the fusion errs towards UNCERTAIN: success inside the window,
never success just outside it (the window's edge), UNCERTAIN when a camera cannot see."""
import numpy as np
import pytest
from enpire_task_peg.render import CAMERA_NAMES, CAMERAS, CellCameras, camera
from enpire_task_peg.simulator import BOX, PEG_HEAD, PegSimulator, obj_to_target, sample_layout
from enpire_task_peg.verification.fuse import fuse_peg
from enpire_task_peg.verification.judge import judge_frame
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

from enpire_env.verification.models import CameraJudgement, VerdictState

S, F, U = VerdictState.SUCCESS, VerdictState.FAILURE, VerdictState.UNCERTAIN


@pytest.fixture(scope='module')
def world():
    import ctypes.util
    if ctypes.util.find_library('EGL') is None:
        pytest.skip('libEGL is absent (scripts/setup.sh installs libegl1 and Mesa): MuJoCo cannot render')
    sim = PegSimulator()
    obs = sim.reset(sample_layout(1))
    expert = SawyerPegInsertionSideV3Policy()
    for _ in range(200):
        obs, info = sim.step(expert.get_action(obs))
        if info['success']:
            break
    for _ in range(12):     # the expert pushes on, deeper in
        obs, info = sim.step(expert.get_action(obs))
    inserted = sim.snapshot()
    # pull the peg back out along +x, a state every step: through the window's middle and its outer edge
    pulled = []
    for _ in range(60):
        sim.step([0.3, 0.0, 0.0, 0.6])
        pulled.append(sim.snapshot())
    cams = CellCameras(sim.model, 96, 96)
    yield sim, cams, inserted, pulled
    cams.close()
    sim.close()


def _judge(sim, cams, snapshot):
    sim.restore(snapshot)
    state = sim.task_state()
    judged = {c.name: judge_frame(cams.rgb(sim.data, c.name), c, state[BOX]) for c in CAMERAS}
    return judged, obj_to_target(state[PEG_HEAD], state[BOX])


def test_inserted_is_judged_success_by_two_cameras_and_fused_success(world):
    sim, cams, inserted, pulled = world
    # the first pulled states are still well inside the window (the expert had pushed deep)
    clear = [s for s in [inserted, *pulled] if 0.0 < _judge(sim, cams, s)[1] <= 0.05]
    assert clear, 'no clear success among the states'
    fused = [fuse_peg(_judge(sim, cams, s)[0].values(), expected=CAMERA_NAMES) for s in clear]
    assert sum(f.state == S for f in fused) >= 0.5 * len(fused), [f.reason for f in fused]


def test_never_success_outside_the_window_incl_its_edge(world):
    sim, cams, _, pulled = world
    outside = 0
    for snapshot in pulled:
        judged, distance = _judge(sim, cams, snapshot)
        if distance > 0.07:
            outside += 1
            reasons = {k: j.reason for k, j in judged.items()}
            assert all(j.state != S for j in judged.values()), (distance, reasons)
            assert fuse_peg(judged.values(), expected=CAMERA_NAMES).state != S
    assert outside >= 5, 'the pull-back never left the window: the edge was not tested'


def test_a_camera_that_cannot_see_says_uncertain(world):
    sim, cams, inserted, _ = world
    sim.restore(inserted)
    box = sim.task_state()[BOX]
    frame = cams.rgb(sim.data, 'mouth_left')
    grey = np.full_like(frame, 110)
    assert judge_frame(grey, camera('mouth_left'), box).reason == 'peg_not_found'
    assert judge_frame(None, camera('mouth_left'), box).reason == 'no_frame'
    covered = frame.copy()
    covered[:, 40:] = (200, 30, 30)     # the red arm across the peg's far end
    assert judge_frame(covered, camera('mouth_left'), box).state == U
    assert judge_frame(cams.rgb(sim.data, 'behind_arm'), camera('behind_arm'), box).state == U


def _cam(name, state, lo=-0.01, hi=0.01):
    return CameraJudgement(camera=name, state=state, confidence=0.9, score=1.0 if state == S else 0.0,
                           details={'dx': (lo + hi) / 2, 'dx_lo': lo, 'dx_hi': hi})


def test_fusion_needs_two_agreeing_successes_and_no_failure():
    names = list(CAMERA_NAMES)
    assert fuse_peg([_cam('a', S), _cam('b', S), _cam('c', U)], expected=['a', 'b', 'c']).state == S
    assert fuse_peg([_cam('a', S), _cam('c', U)], expected=['a', 'b', 'c']).state == U   # one dropped
    assert fuse_peg([_cam('a', S), _cam('b', S), _cam('c', F)]).state == U               # disagreement
    disagree = fuse_peg([_cam('a', S, -0.03, -0.02), _cam('b', S, 0.0, 0.01)])
    assert disagree.state == U and disagree.cameras[0].reason == 'readings_disagree'
    assert fuse_peg([], expected=names).state == U
