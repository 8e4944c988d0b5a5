"""The cameras' verdicts fused into one, erring towards UNCERTAIN: the framework's unanimous rule with at
least two cameras that say SUCCESS (no camera decides alone: the hole faces sideways, one view's depth along
the axis is one reading), and their readings of the head's position must agree within their bounds."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from enpire_env.verification.fusion import fuse
from enpire_env.verification.models import CameraJudgement, FusedJudgement, VerdictState

MIN_SUCCESS_CAMERAS = 2


def fuse_peg(judgements: Iterable[CameraJudgement], expected: Sequence[str] | None = None,
             success_confidence: float = 0.5) -> FusedJudgement:
    cams = list(judgements)
    ok = [c for c in cams if c.state == VerdictState.SUCCESS]
    if ok:
        low = max(c.details['dx_lo'] for c in ok)
        high = min(c.details['dx_hi'] for c in ok)
        if low > high:      # two cameras read the head at places their bounds cannot both hold
            cams = [c.model_copy(update=dict(state=VerdictState.UNCERTAIN, reason='readings_disagree'))
                    if c.state == VerdictState.SUCCESS else c for c in cams]
            ok = []
    fused = fuse(cams, rule='unanimous', expected=expected, min_cameras=1,
                 success_confidence=success_confidence)
    if fused.state == VerdictState.SUCCESS and len(ok) < MIN_SUCCESS_CAMERAS:
        reason = f'{len(ok)} camera(s) saw success, need {MIN_SUCCESS_CAMERAS}'
        return fused.model_copy(update=dict(state=VerdictState.UNCERTAIN, success=False, reason=reason))
    return fused
