"""Fuse per-camera judgements into one binary reward with a confidence.

Never success on weak evidence: missing and stale cameras become explicit UNCERTAIN entries, cameras
that disagree never add up to SUCCESS under 'unanimous', and every rule also needs enough confidence.
Precision first: one camera alone never decides while another saw the scene but stayed UNCERTAIN (near the
task's threshold), unless its own lower bound clears the threshold by `lone_margin_factor` times the
margin its resolution asks of it (`lone_proven`), and never while a camera with a clear view
(uncertain, 'near_threshold') estimates below the threshold. That is what made false successes: one
camera just above the threshold beside two cameras uncertain near it, the truth just below; one camera
with a colour cast well above it beside a clean one just below.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from enpire_env.verification.models import CameraJudgement, FusedJudgement, VerdictState

RULES = ('unanimous', 'majority', 'confidence_weighted')


def _checked(judgements: Iterable[CameraJudgement], expected: Sequence[str] | None, now: float | None,
             max_age: float | None) -> list[CameraJudgement]:
    out: list[CameraJudgement] = []
    seen = set()
    for j in judgements:
        seen.add(j.camera)
        if (now is not None and max_age is not None and j.state != VerdictState.UNCERTAIN
                and (j.stamp is None or now - j.stamp > max_age)):
            j = j.model_copy(update=dict(state=VerdictState.UNCERTAIN, confidence=0.0,
                                         reason='stale_frame' if j.stamp is not None else 'no_stamp'))
        out.append(j)
    for cam in expected or ():
        if cam not in seen:
            out.append(CameraJudgement(camera=cam, state=VerdictState.UNCERTAIN, reason='no_frame'))
    return out


def lone_proven(camera: CameraJudgement, threshold: float | None, factor: float) -> bool:
    """Whether a camera's own evidence clears the threshold by `factor` x its resolution margin."""
    if threshold is None:
        return True
    if camera.lower_bound is None or camera.success_margin is None:
        return False
    return camera.lower_bound >= threshold + factor * camera.success_margin


def _saw_the_object(camera: CameraJudgement) -> bool:
    """An UNCERTAIN camera that had an estimate: near the threshold, or too unsure to say which side."""
    return camera.state == VerdictState.UNCERTAIN and camera.lower_bound is not None


def fuse(judgements: Iterable[CameraJudgement], rule: str = 'unanimous', now: float | None = None,
         max_age: float | None = None, expected: Sequence[str] | None = None, min_cameras: int = 1,
         success_confidence: float = 0.6, threshold: float | None = None,
         lone_margin_factor: float = 1.0) -> FusedJudgement:
    """One verdict from many. `expected` cameras with no judgement count as missing ('no_frame').
    With the task's `threshold`, a lone SUCCESS beside cameras uncertain near it must be proven alone."""
    if rule not in RULES:
        raise ValueError(f'unknown fusion rule {rule!r}; known: {RULES}')
    cams = _checked(judgements, expected, now, max_age)
    n = len(cams)
    ok = [c for c in cams if c.state == VerdictState.SUCCESS]
    bad = [c for c in cams if c.state == VerdictState.FAILURE]
    usable = ok + bad
    score = (float(np.average([c.score for c in usable], weights=[max(c.confidence, 1e-3) for c in usable]))
             if usable else 0.0)

    def result(state: VerdictState, confidence: float, reason: str) -> FusedJudgement:
        if state == VerdictState.SUCCESS and confidence < success_confidence:
            state, reason = VerdictState.UNCERTAIN, 'low_confidence'
        if state == VerdictState.SUCCESS and len(ok) == 1:
            others = [c for c in cams if c is not ok[0] and _saw_the_object(c)]
            if threshold is not None and any(c.reason == 'near_threshold' and c.score < threshold
                                             for c in others):
                # A camera with a clear view leans the other way: one of the two is wrong (a colour
                # cast, a bad mapping), and nothing says which.
                state, reason = VerdictState.UNCERTAIN, 'cameras_disagree'
            elif others and not lone_proven(ok[0], threshold, lone_margin_factor):
                state, reason = VerdictState.UNCERTAIN, 'lone_camera_near_threshold'
        return FusedJudgement(state=state, success=state == VerdictState.SUCCESS, score=score,
                              confidence=float(np.clip(confidence, 0.0, 1.0)), rule=rule, reason=reason,
                              cameras=cams)

    if n == 0 or not usable:
        reasons = sorted({c.reason for c in cams if c.reason})
        return result(VerdictState.UNCERTAIN, 0.0, 'no_usable_camera' + (f": {','.join(reasons)}" if reasons
                                                                          else ''))
    if len(usable) < min_cameras:
        return result(VerdictState.UNCERTAIN, 0.0, f'only {len(usable)} usable camera(s), need {min_cameras}')
    coverage = 0.75 + 0.25 * len(usable) / n   # fewer usable cameras, somewhat less confidence

    def mean_conf(group):
        return float(np.mean([c.confidence for c in group])) if group else 0.0

    if rule == 'unanimous':
        if ok and bad:
            return result(VerdictState.UNCERTAIN, 0.0, 'cameras_disagree')
        state = VerdictState.SUCCESS if ok else VerdictState.FAILURE
        return result(state, mean_conf(usable) * coverage, '' if ok else 'below_threshold')
    if rule == 'majority':
        if len(ok) > n / 2 and len(ok) > len(bad):
            return result(VerdictState.SUCCESS, mean_conf(ok) * np.sqrt(len(ok) / n), '')
        if len(bad) > n / 2:
            return result(VerdictState.FAILURE, mean_conf(bad) * np.sqrt(len(bad) / n), 'below_threshold')
        if len(bad) >= len(ok):
            # No majority for either, but success cannot be claimed: failure with low confidence.
            return result(VerdictState.FAILURE, mean_conf(bad) * len(bad) / n, 'no_majority')
        return result(VerdictState.UNCERTAIN, 0.0, 'no_majority')
    # confidence_weighted: signed vote, uncertain cameras dilute it through the denominator.
    total = sum(max(c.confidence, 0.0) for c in cams) + 0.5 * sum(1 for c in cams if c.state ==
                                                                     VerdictState.UNCERTAIN)
    vote = (sum(c.confidence for c in ok) - sum(c.confidence for c in bad)) / max(total, 1e-9)
    if vote >= 0.5:
        return result(VerdictState.SUCCESS, vote, '')
    if vote <= -0.5:
        return result(VerdictState.FAILURE, -vote, 'below_threshold')
    if vote <= 0.0:
        return result(VerdictState.FAILURE, max(-vote, 0.0), 'weak_evidence')
    return result(VerdictState.UNCERTAIN, 0.0, 'weak_evidence')
