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
START_ISSUE = 'grasp'     # the failure mode assumed before any result (the empty policy never moves)
START_TEXT = 'start: naive pick and insert (straight moves, timed grasp, push to the mouth, no retry)'


def diagnose(summary) -> list[str]:
    """Failure modes behind a result (a `TrialSummary`, or None before any), most pressing first."""
    if summary is None:
        return [START_ISSUE]
    text = ' '.join(summary.failure_reasons).lower()
    out = []
    if any(w in text for w in ('exception', 'deadline', 'error', 'crash', 'invalid')):
        out.append('crash')
    if 'never grasped' in text or 'not grasped' in text or summary.mean_score < 0.2:
        out.append('grasp')
    if 'dropped' in text or 'lost' in text:
        out.append('drop')
    if 'off the hole axis' in text or 'short of' in text or 'not aligned' in text:
        out.append('align')
    if 'jammed' in text or 'not in' in text or 'near' in text or summary.mean_score >= 0.8:
        out.append('jam')
    rate1 = summary.successes_at_1 / max(1, summary.trials)
    ratek = summary.successes_at_k / max(1, summary.trials)
    if ratek - rate1 > 0.1 or ratek < 1.0:
        out.append('slow')
    return out or ['jam']
