"""How the offline backend reads a peg-insertion result: failure modes, the moves that answer each, the start.

`diagnose(summary)` turns a result's failure reasons and scores into failure modes, most pressing first:
the peg never grasped (approach from above), dropped (a settled grasp, a lift clear of the table before
crossing), held off the hole's axis or short of the mouth (alignment), jammed at the mouth (search around
the axis), attempts that only succeed late (back off and retry between attempts), policy errors.
`PLAYBOOK` orders the structural moves and names the parameters to mutate for each mode. Reasons come from
the cell's verifier or, in local evaluation, from the harness; the score (the task's, 1 at success) is the
fallback when a reason names none of them.
"""
from __future__ import annotations

# failure mode -> (structural moves in order, parameters to mutate)
PLAYBOOK: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    'grasp': ([('approach', 'hover'), ('grasp', 'settle')],
              ['hover', 'grasp_dz', 'reach_tol', 'close_steps', 'gain']),
    'drop': ([('grasp', 'settle'), ('transport', 'lift_first')],
             ['close_steps', 'grasp_dz', 'empty_grip', 'carry_z', 'gain']),
    'align': ([('transport', 'lift_first'), ('insert', 'search')],
              ['standoff', 'align_tol', 'gain', 'carry_z']),
    'jam': ([('insert', 'search'), ('feedback', 'retry')],
            ['depth', 'search_r', 'stall_steps', 'backoff', 'standoff']),
    'slow': ([('feedback', 'retry'), ('insert', 'search')],
             ['backoff', 'search_r', 'gain', 'depth']),
    'crash': ([], ['gain']),
}
# While no rollout succeeds, the offline backend takes a mode's moves together (a peg that is never carried
# says nothing about the insertion: one move at a time would spend a round per piece of the pick).
COMBINE_MOVES_WHILE_FAILING = True
START_ISSUE = 'grasp'     # the failure mode assumed before any result (the empty policy never moves)
START_TEXT = 'start: naive pick and insert (straight moves, timed grasp, push to the mouth, no retry)'


# A failed rollout's best score (the task's: the window's radius over the head's distance to the target) below
# this: the head never came near the box (a peg on the table scores ~0.25), so the peg was never carried.
FAR_SCORE = 0.4
# The verdicts' reasons that say the head was located near the box but not judged in (the cell's cameras).
NEAR_REASONS = ('near_threshold', 'cameras_disagree', 'off the hole axis', 'short of', 'not aligned')


def diagnose(summary) -> list[str]:
    """Failure modes behind a result (a `TrialSummary`, or None before any), most pressing first.

    The reasons name the mode where they can (the in-process harness names it from the simulator's truth;
    a cell's cameras only say how far the head was and whether they could see it), so each failed rollout's
    best score says the rest: far from the box (or not seen) -> the peg was never carried (grasp, drop);
    near it -> alignment and the insertion."""
    if summary is None:
        return [START_ISSUE]
    text = ' '.join(summary.failure_reasons).lower()
    failed = [r for r in summary.rollouts if not r.success]
    far = sum(r.best_score < FAR_SCORE for r in failed)
    out = []
    if any(w in text for w in ('exception', 'deadline', 'error', 'crash', 'invalid')):
        out.append('crash')
    if 'never grasped' in text or 'not grasped' in text or summary.mean_score < 0.2 \
            or (far and 'dropped' not in text):
        out.append('grasp')
    if 'dropped' in text or 'lost' in text or far:
        out.append('drop')
    if any(w in text for w in NEAR_REASONS) or len(failed) > far:
        out.append('align')
    if 'jammed' in text or 'not in' in text or 'near' in text or summary.mean_score >= 0.8:
        out.append('jam')
    rate1 = summary.successes_at_1 / max(1, summary.trials)
    ratek = summary.successes_at_k / max(1, summary.trials)
    if ratek - rate1 > 0.1 or ratek < 1.0:
        out.append('slow')
    return out or ['jam']
