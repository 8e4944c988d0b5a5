"""How the offline backend reads a Push-T result: failure modes, the moves that answer each, the start.

`diagnose(summary)` turns a result's failure reasons and scores into failure modes, most pressing first
(T dragged / no progress -> approach; angle off -> rotation weight and rotation stage; position off ->
translation weight; near misses -> finishing stage, dither, failure feedback; exceptions or deadlines ->
cheaper contact sampling); `PLAYBOOK` orders the structural moves and names the parameters to mutate
for each mode.
"""
from __future__ import annotations

# failure mode -> (structural moves in order, parameters to mutate)
PLAYBOOK: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    'drag': ([('approach', 'graph'), ('selection', 'staged')],
             ['clear_margin', 'standoff', 'switch_cos', 'push_max', 'travel_cost', 'waypoint_tol']),
    'angle': ([('selection', 'staged'), ('dither', 'cyclic'), ('fine', 'strokes')],
              ['angle_scale', 'stage_deg', 'dither_deg', 'fine_cov', 'push_gain']),
    'position': ([('dither', 'cyclic'), ('fine', 'strokes')],
                 ['angle_scale', 'push_gain', 'push_min', 'dither_px', 'fine_gain']),
    'near': ([('dither', 'cyclic'), ('feedback', 'escalate'), ('fine', 'strokes'), ('perception', 'ema')],
             ['dither_cov', 'dither_px', 'dither_deg', 'dither_period', 'near_miss', 'fine_cov', 'push_min']),
    'slow': ([('approach', 'graph'), ('fine', 'none')],
             ['push_max', 'push_gain', 'travel_cost', 'hysteresis', 'switch_cos', 'retreat_steps']),
    'crash': ([], ['samples_per_edge']),
}
START_ISSUE = 'drag'      # the failure mode assumed before any result (an empty policy drags nothing)
START_TEXT = 'start: pose-error pusher (twist-cosine contact choice, straight approach, no finishing stage)'


def diagnose(summary) -> list[str]:
    """Failure modes behind a result (a `TrialSummary`, or None before any), most pressing first."""
    if summary is None:
        return [START_ISSUE]
    text = ' '.join(summary.failure_reasons).lower()
    out = []
    if any(w in text for w in ('exception', 'deadline', 'error', 'crash')):
        out.append('crash')
    dragged = ('no progress', 'fell', 'far from', 'stuck', 'wall')
    if summary.mean_score < 0.6 or any(w in text for w in dragged):
        out.append('drag')
    if 'angle' in text:
        out.append('angle')
    if 'position' in text:
        out.append('position')
    if any(w in text for w in ('close', 'near', 'not over')) or summary.mean_score >= 0.85:
        out.append('near')
    rate1 = summary.successes_at_1 / max(1, summary.trials)
    ratek = summary.successes_at_k / max(1, summary.trials)
    if ratek - rate1 > 0.1:
        out.append('slow')
    return out or ['near']
