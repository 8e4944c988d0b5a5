"""Fusion never turns weak or conflicting evidence into success."""
import pytest

from enpire_env.verification import CameraJudgement, VerdictState, fuse

S, F, U = VerdictState.SUCCESS, VerdictState.FAILURE, VerdictState.UNCERTAIN


def cam(name, state, conf=0.9, score=None, stamp=10.0, reason=''):
    score = score if score is not None else (0.98 if state == S else 0.5)
    return CameraJudgement(camera=name, state=state, score=score, confidence=conf, stamp=stamp, reason=reason)


@pytest.mark.parametrize('rule', ['unanimous', 'majority', 'confidence_weighted'])
def test_all_agree(rule):
    out = fuse([cam('a', S), cam('b', S), cam('c', S)], rule=rule, now=10.1, max_age=0.5)
    assert out.success and out.state == S and out.confidence > 0.5
    out = fuse([cam('a', F), cam('b', F), cam('c', F)], rule=rule)
    assert not out.success and out.state == F


def test_unanimous_disagreement_is_uncertain():
    out = fuse([cam('a', S), cam('b', S), cam('c', F)], rule='unanimous')
    assert out.state == U and not out.success and out.reason == 'cameras_disagree'


def test_majority_and_weighted_resolve_disagreement_conservatively():
    assert fuse([cam('a', S), cam('b', S), cam('c', F)], rule='majority').success
    assert not fuse([cam('a', S), cam('b', F), cam('c', U)], rule='majority').success
    weak = fuse([cam('a', S, conf=0.3), cam('b', F, conf=0.9), cam('c', S, conf=0.3)],
                rule='confidence_weighted')
    assert not weak.success


def test_confidence_weighted_lets_confident_cameras_outvote_a_doubtful_one():
    # Two confident successes against a doubtful failure: success (majority of the evidence, not of heads).
    strong = fuse([cam('a', S, conf=0.95), cam('b', S, conf=0.9), cam('c', F, conf=0.1)],
                  rule='confidence_weighted')
    assert strong.success and strong.state == S and strong.confidence >= 0.6
    # One confident failure against one doubtful success: failure, whichever way heads are counted.
    doubt = fuse([cam('a', S, conf=0.2), cam('b', F, conf=0.9)], rule='confidence_weighted')
    assert doubt.state == F and not doubt.success
    # A single confident success beside two uncertain cameras is diluted: not enough for success.
    alone = fuse([cam('a', S, conf=0.9), cam('b', U, conf=0.0), cam('c', U, conf=0.0)],
                 rule='confidence_weighted')
    assert not alone.success


def test_missing_and_stale_cameras_are_explicit():
    out = fuse([cam('a', S, stamp=1.0)], rule='unanimous', now=10.0, max_age=0.5, expected=['a', 'b'])
    reasons = {c.camera: c.reason for c in out.cameras}
    assert reasons == {'a': 'stale_frame', 'b': 'no_frame'}
    assert out.state == U and not out.success


def test_one_camera_missing_still_decides():
    out = fuse([cam('a', S), cam('b', S)], rule='unanimous', expected=['a', 'b', 'c'])
    assert out.success and [c.reason for c in out.cameras if c.camera == 'c'] == ['no_frame']


def test_low_confidence_success_is_withheld():
    out = fuse([cam('a', S, conf=0.2)], rule='unanimous', expected=['a', 'b', 'c'])
    assert out.state == U and not out.success


def test_no_judgements_and_bad_rule():
    assert fuse([], rule='majority').state == U
    with pytest.raises(ValueError):
        fuse([cam('a', S)], rule='vibes')


def near(name, state, lower, margin, score=None):
    """A camera that saw the T near the threshold: its lower bound and the margin its resolution asks."""
    return CameraJudgement(camera=name, state=state, score=lower if score is None else score, confidence=0.8,
                           stamp=10.0, reason='' if state == S else 'near_threshold', lower_bound=lower,
                           success_margin=margin)


@pytest.mark.parametrize('rule', ['unanimous', 'majority', 'confidence_weighted'])
def test_a_lone_camera_near_the_threshold_never_decides_beside_uncertain_ones(rule):
    # The false success of a demo: top 0.954 (margin 0.003 at its resolution) said SUCCESS, oblique 0.945
    # and wrist 0.951 stayed UNCERTAIN near 0.95; the true coverage was 0.949.
    cams = [near('top', S, 0.954, 0.003), near('oblique', U, 0.945, 0.011), near('wrist', U, 0.951, 0.012)]
    out = fuse(cams, rule=rule, threshold=0.95, lone_margin_factor=1.5, success_confidence=0.0)
    assert out.state == U and not out.success
    # Both others above the threshold but undecided: the lone camera must still prove its own margin.
    cams[1] = near('oblique', U, 0.953, 0.011)
    out = fuse(cams, rule=rule, threshold=0.95, lone_margin_factor=1.5, success_confidence=0.0)
    assert out.state == U and not out.success
    if rule == 'unanimous':
        assert out.reason == 'lone_camera_near_threshold'


def test_a_lone_camera_never_decides_while_a_clear_view_leans_the_other_way():
    # A colour cast on the oblique camera: 0.971 with its margin cleared; the clean top camera, near the
    # threshold, says 0.945 (true coverage 0.948). One of them is wrong and nothing says which.
    cams = [near('top', U, 0.945, 0.008), near('oblique', S, 0.971, 0.0116), near('wrist', U, 0.95, 0.012)]
    cams[2] = cams[2].model_copy(update=dict(reason='out_of_view'))
    out = fuse(cams, threshold=0.95, lone_margin_factor=1.25)
    assert out.state == U and out.reason == 'cameras_disagree'


def test_a_lone_camera_decides_when_its_own_margin_clears_the_threshold():
    proven = [near('top', S, 0.975, 0.008), near('oblique', U, 0.951, 0.011), near('wrist', U, 0.951, 0.012)]
    assert fuse(proven, threshold=0.95, lone_margin_factor=1.5).state == S       # 0.975 >= 0.95 + 1.5 x 0.008
    # Beside blind cameras (no frame: no estimate) nothing argues against it: its own margin suffices.
    blind = [near('top', S, 0.96, 0.008), cam('oblique', U, conf=0.0, reason='no_frame')]
    assert fuse(blind, threshold=0.95, lone_margin_factor=1.5).state == S
    # Two cameras that each cleared their margins corroborate each other.
    two = [near('top', S, 0.96, 0.008), near('oblique', S, 0.962, 0.011), near('wrist', U, 0.951, 0.012)]
    assert fuse(two, threshold=0.95, lone_margin_factor=1.5).state == S
    # A camera that cannot say what its margin was (no lower bound) never decides alone.
    unknown = [cam('top', S), near('oblique', U, 0.945, 0.011)]
    assert fuse(unknown, threshold=0.95, lone_margin_factor=1.5).state == U
