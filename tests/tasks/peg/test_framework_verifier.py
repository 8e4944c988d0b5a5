"""The framework's verifier runs the peg task's judge and fusion through the generalised interface: each
frame carries its camera's calibrated model (`CameraModel`, as CameraInfo and /tf_static give it) and the
placed layout. Rendered frames of real simulator states: the verdicts equal the task's own path (the bench's),
without calibration or without the placed box it never says SUCCESS, and a dropped camera never makes a
false success."""
import pytest
from enpire_common.task import resolve
from enpire_task_peg.render import CAMERA_NAMES, CAMERAS, CellCameras
from enpire_task_peg.simulator import BOX, PEG_HEAD, PegSimulator, obj_to_target, sample_layout
from enpire_task_peg.task import TASK
from enpire_task_peg.verification.fuse import fuse_peg
from enpire_task_peg.verification.judge import judge_frame
from enpire_task_peg.verification.locate import View
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

from enpire_env.verification import CameraModel, Frame, Verifier, load_config
from enpire_env.verification.models import VerdictState

S, F, U = VerdictState.SUCCESS, VerdictState.FAILURE, VerdictState.UNCERTAIN


@pytest.fixture(scope='module')
def world():
    import ctypes.util
    if ctypes.util.find_library('EGL') is None:
        pytest.skip('libEGL is absent (scripts/setup.sh installs libegl1 and Mesa): MuJoCo cannot render')
    sim = PegSimulator()
    obs = sim.reset(sample_layout(2))
    expert = SawyerPegInsertionSideV3Policy()
    snapshots = [sim.snapshot()]
    for step in range(260):
        obs, info = sim.step(expert.get_action(obs))
        if step % 8 == 0 or info['success']:
            snapshots.append(sim.snapshot())
        if info['success'] and sum(1 for _ in snapshots) > 40:
            break
    for _ in range(40):     # pulled back out through the window's edge
        sim.step([0.3, 0.0, 0.0, 0.6])
        snapshots.append(sim.snapshot())
    cams = CellCameras(sim.model, 96, 96)
    verifier = Verifier(TASK, load_config(TASK, overrides={'max_age_s': 1.0}))
    yield sim, cams, snapshots, verifier
    cams.close()
    sim.close()


def frames_of(sim, cams, stamp=10.0, calibrated=True):
    return {name: Frame(cams.rgb(sim.data, name), None, stamp,
                        cams.camera_model(name) if calibrated else None) for name in cams.names}


def layout_of(sim):
    return {'peg': tuple(sim.layout.peg), 'box': tuple(sim.task_state()[BOX])}


def test_the_task_names_its_judge_and_fusion_not_a_gap():
    assert resolve(TASK.verifier.judge).__name__ == 'PegJudge'
    assert resolve(TASK.verifier.fusion).__name__ == 'fuse_cameras'
    assert TASK.reset.multi_view and resolve(TASK.reset.estimator).__name__ == 'reset_estimator'


def test_the_framework_path_gives_the_tasks_own_verdicts(world):
    """Judge and fusion through `Verifier.verify_frames` (frames with models, the placed layout) agree with
    the task's own path (judge_frame on the cell's placements, fuse_peg with its views) state for state."""
    sim, cams, snapshots, verifier = world
    views = {name: View.from_camera_info(cams.camera_info(name)) for name in cams.names}
    states = {S: 0, F: 0, U: 0}
    for snapshot in snapshots:
        sim.restore(snapshot)
        state = sim.task_state()
        frames = frames_of(sim, cams)
        fused, judged = verifier.verify_frames(frames, cameras=CAMERA_NAMES, now=10.0, layout=layout_of(sim))
        own = {c.name: judge_frame(frames[c.name].image, c, state[BOX], stamp=10.0) for c in CAMERAS}
        reference = fuse_peg(own.values(), expected=CAMERA_NAMES, views=views, box=state[BOX])
        assert fused.state == reference.state and fused.reason == reference.reason
        for name in CAMERA_NAMES:
            assert judged[name].judgement.state == own[name].state
            assert judged[name].judgement.details == own[name].details
        truth = obj_to_target(state[PEG_HEAD], state[BOX]) <= 0.07
        assert not (fused.success and not truth)
        states[fused.state] += 1
    assert states[S] >= 1 and states[F] >= 1, states   # both verdicts occur: the comparison means something


def _a_success(sim, cams, snapshots, verifier):
    for snapshot in reversed(snapshots):
        sim.restore(snapshot)
        if verifier.verify(frames_of(sim, cams), now=10.0, layout=layout_of(sim)).success:
            return snapshot
    pytest.fail('no state the framework path judges SUCCESS')


def test_without_calibration_or_placed_box_never_success(world):
    sim, cams, snapshots, verifier = world
    sim.restore(_a_success(sim, cams, snapshots, verifier))
    uncalibrated = verifier.verify_frames(frames_of(sim, cams, calibrated=False), now=10.0,
                                          layout=layout_of(sim))
    assert uncalibrated[0].state == U
    assert {j.judgement.reason for j in uncalibrated[1].values()} == {'no_calibration'}
    no_layout = verifier.verify_frames(frames_of(sim, cams), now=10.0)
    assert no_layout[0].state == U and {j.judgement.reason for j in no_layout[1].values()} == {'no_layout'}
    # a model of another image size is no calibration of this frame
    frames = frames_of(sim, cams)
    wrong = {n: Frame(f.image, None, f.stamp, CameraModel(f.camera.k, f.camera.position, f.camera.rotation,
                                                          128, 128)) for n, f in frames.items()}
    assert verifier.verify(wrong, now=10.0, layout=layout_of(sim)).state == U
    stale = verifier.verify(frames_of(sim, cams, stamp=5.0), now=10.0, layout=layout_of(sim))
    assert stale.state == U


def test_a_missing_camera_keeps_success_only_where_the_remaining_views_bound_it(world):
    """Dropped (no frame) or uncalibrated: a camera without frame or model is left out of the 3-D location;
    the verdict is SUCCESS only when the remaining views still locate the head inside the window, never a
    false success, and never SUCCESS from fewer than two views."""
    sim, cams, snapshots, verifier = world
    for snapshot in snapshots:
        sim.restore(snapshot)
        state = sim.task_state()
        truth = obj_to_target(state[PEG_HEAD], state[BOX]) <= 0.07
        full = frames_of(sim, cams)
        for name in CAMERA_NAMES:
            dropped = dict(full, **{name: None})
            fused = verifier.verify(dropped, cameras=CAMERA_NAMES, now=10.0, layout=layout_of(sim))
            assert not (fused.success and not truth)
            if fused.success:
                seen = [c for c in fused.cameras if c.details.get('t_far') is not None]
                assert len(seen) >= 2 and name not in [c.camera for c in seen]
        only_one = {n: (f if n == 'mouth_left' else None) for n, f in full.items()}
        assert not verifier.verify(only_one, cameras=CAMERA_NAMES, now=10.0, layout=layout_of(sim)).success
