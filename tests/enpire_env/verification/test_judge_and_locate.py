"""Per-camera judgement and locate_block on frames drawn independently of the simulator."""
import numpy as np
import pytest

from enpire_env.tasks import pusht
from enpire_env.verification import Frame, VerdictState, Verifier, locate_block
from tests.enpire_env.verification import synth

SIZE = 240


@pytest.fixture(scope='module')
def verifier():
    return Verifier()


@pytest.mark.parametrize('hom', [synth.top_homography, synth.oblique_homography])
def test_goal_pose_is_success_and_far_pose_failure(verifier, hom):
    h = hom(SIZE)
    at_goal = verifier.judge('c', Frame(synth.render(pusht.GOAL_POSE, h, SIZE), h, 1.0)).judgement
    assert at_goal.state == VerdictState.SUCCESS and at_goal.score > 0.97
    far = verifier.judge('c', Frame(synth.render((150, 350, 2.0), h, SIZE), h, 1.0)).judgement
    assert far.state == VerdictState.FAILURE and far.score < 0.2
    assert far.block_pose is not None
    assert abs(far.block_pose.x - 150) < 3 and abs(far.block_pose.y - 350) < 3
    assert abs(pusht.angle_diff(far.block_pose.theta, 2.0)) < 0.05   # heading resolved, not mod pi


def test_missing_blank_and_stale_frames_are_uncertain(verifier):
    h = synth.top_homography(SIZE)
    assert verifier.judge('c', None).judgement.reason == 'no_frame'
    black = np.zeros((SIZE, SIZE, 3), np.uint8)
    assert verifier.judge('c', Frame(black, h, 0.0)).judgement.reason == 'no_frame'
    img = synth.render(pusht.GOAL_POSE, h, SIZE)
    stale = verifier.judge('c', Frame(img, h, 0.0), now=10.0, max_age=0.5).judgement
    assert stale.state == VerdictState.UNCERTAIN and stale.reason == 'stale_frame'
    no_t = synth.render((-500, -500, 0.0), h, SIZE)
    assert verifier.judge('c', Frame(no_t, h, 0.0)).judgement.reason == 'block_not_found'


def test_occluded_t_at_goal_is_not_success(verifier):
    h = synth.top_homography(SIZE)
    img = synth.render(pusht.GOAL_POSE, h, SIZE)
    img[SIZE // 2:SIZE // 2 + 25, :] = 30     # a dark bar across the T
    j = verifier.judge('c', Frame(img, h, 0.0)).judgement
    assert j.state == VerdictState.UNCERTAIN
    assert j.reason in ('occluded', 'shape_mismatch', 'estimates_disagree')


def test_near_threshold_is_never_claimed(verifier):
    h = synth.top_homography(SIZE)
    rng = np.random.default_rng(3)
    for _ in range(40):
        pose = tuple(np.array(pusht.GOAL_POSE) + rng.normal(0, [5, 5, 0.05]))
        true = pusht.coverage(pose)
        j = verifier.judge('c', Frame(synth.render(pose, h, SIZE), h, 0.0)).judgement
        if j.state == VerdictState.SUCCESS:
            assert true > 0.945, (pose, true, j)


def test_noisy_and_colour_shifted_frames_still_judge(verifier):
    h = synth.top_homography(SIZE)
    noisy = synth.render((150, 350, 2.0), h, SIZE, noise=8.0)
    assert verifier.judge('c', Frame(noisy, h, 0.0)).judgement.state != VerdictState.SUCCESS
    shifted = (synth.render((150, 350, 2.0), h, SIZE).astype(np.float32) * (0.9, 0.95, 1.0)).astype(np.uint8)
    j = verifier.judge('c', Frame(shifted, h, 0.0)).judgement
    assert j.state == VerdictState.FAILURE


@pytest.mark.parametrize('size', [96, 480])
def test_locate_block_is_accurate_and_fast(size):
    import time
    h = synth.oblique_homography(size)
    pose = (300.0, 200.0, -2.5)
    img = synth.render(pose, h, size)
    t0 = time.perf_counter()
    found = locate_block(img, h)
    ms = (time.perf_counter() - t0) * 1e3
    assert found is not None
    tol = 6.0 if size == 96 else 2.0
    assert abs(found.x - pose[0]) < tol and abs(found.y - pose[1]) < tol
    assert abs(pusht.angle_diff(found.theta, pose[2])) < 0.1
    assert ms < 50
    assert locate_block(np.full((size, size, 3), 255, np.uint8), h) is None
