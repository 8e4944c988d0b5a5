"""The cameras' verdicts fused into one, erring towards UNCERTAIN.

The hole faces sideways: one view's depth along the axis rests on where the peg sits across it, which one
view cannot tell. So no camera decides alone: SUCCESS needs the head located in 3-D from two or more
calibrated views (`locate.locate_head`: the views' centrelines cut in the peg's axis, their far-end
readings agree) with metaworld's scaled distance bounded inside the window over the views' pixel errors,
and no camera that says FAILURE. A view's error of its centreline is its own where the bar's outline
(`silhouette.fit_centreline`) leaves the line less sure than the nominal pixel error (part of the bar hidden
on one side, seen in part through the mouth): so a peg off the hole's axis is located off it, or its bound
widens, and no veto on a view that sees it off the axis is needed (it also fired on honest offsets inside
the hole). FAILURE when the bound lies wholly outside the window, or when the cameras that judged all say
so (the framework's unanimous rule); UNCERTAIN otherwise.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from enpire_env.verification.fusion import fuse
from enpire_env.verification.models import CameraJudgement, FusedJudgement, VerdictState
from enpire_task_peg.simulator import SUCCESS_RADIUS
from enpire_task_peg.verification.locate import DEFAULT_LOCATE, LocateConfig, PegImage, View, locate_head

# A learned segmenter's mask edge is less sharp than a colour threshold's: its centrelines and far ends are
# trusted to twice the pixels.
LEARNED_LOCATE = DEFAULT_LOCATE.model_copy(update={'line_pixels': 1.5, 'end_pixels': 1.5})


def fuse_peg(judgements: Iterable[CameraJudgement], expected: Sequence[str] | None = None,
             views: Mapping[str, View] | None = None, box=None,
             config: LocateConfig = DEFAULT_LOCATE) -> FusedJudgement:
    """One verdict from the cameras' judgements; `views` (camera -> calibration) and the box's position (the
    reset placed and checked it) let the fusion locate the head in 3-D, without them it never says SUCCESS."""
    cams = list(judgements)
    if any(c.details.get('learned_mask') for c in cams) and config is DEFAULT_LOCATE:
        config = LEARNED_LOCATE
    voted = fuse(cams, rule='unanimous', expected=expected, min_cameras=1, success_confidence=0.0)
    failing = [c.camera for c in cams if c.state == VerdictState.FAILURE]

    def verdict(state: VerdictState, reason: str, confidence: float = 0.0, score: float = 0.0):
        return FusedJudgement(state=state, success=state == VerdictState.SUCCESS, score=score,
                              confidence=float(np.clip(confidence, 0.0, 1.0)), rule='peg_3d', reason=reason,
                              cameras=voted.cameras)

    def fallback(reason: str) -> FusedJudgement:
        """No 3-D location: the cameras' unanimous FAILURE stands, anything else is UNCERTAIN."""
        if voted.state == VerdictState.FAILURE:
            return voted
        return verdict(VerdictState.UNCERTAIN, reason)

    if views is None or box is None:
        return fallback('no_calibration: the head cannot be located in 3-D')
    observed = {}
    for c in cams:
        peg = PegImage.from_details(c.details) if c.camera in views else None
        if peg is not None:
            observed[c.camera] = (views[c.camera], peg)
    located = locate_head(observed, box, config)
    if located.reason:
        return fallback(f'not_located: {located.reason}')
    score = 1.0 if located.distance <= SUCCESS_RADIUS else SUCCESS_RADIUS / located.distance
    if located.distance_lo > SUCCESS_RADIUS:
        beyond = located.distance_lo - SUCCESS_RADIUS
        return verdict(VerdictState.FAILURE, 'outside_window', 0.6 + 10 * beyond, score)
    if located.distance_hi <= SUCCESS_RADIUS - config.margin:
        if failing:
            return verdict(VerdictState.UNCERTAIN, f'cameras_disagree: {",".join(failing)} saw failure')
        return verdict(VerdictState.SUCCESS, '', 0.6 + 10 * (SUCCESS_RADIUS - located.distance_hi), score)
    return verdict(VerdictState.UNCERTAIN, 'near_threshold', score=score)
