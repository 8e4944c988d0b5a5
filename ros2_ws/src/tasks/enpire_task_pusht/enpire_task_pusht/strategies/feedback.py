"""Piece `feedback`: what the policy does with `on_attempt_failed` (the next attempt continues from
where this one stopped, so the policy can change how it finishes).

Variants:
    none      forget the plan, keep the parameters
    escalate  a near miss (score >= near_miss) widens the dither (x1.5 per failure, at most 3x) and
              starts fine strokes earlier; a far miss (block far off) resets them
Parameters:
    near_miss  reported score counted as a near miss
"""
PARAMS = {
    'near_miss': (0.8, 0.5, 0.95, 'float', 'escalate: score counted as a near miss'),
}

VARIANTS = {
    'none': r'''
def feedback(policy, report):
    pass
''',
    'escalate': r'''
def feedback(policy, report):
    if report.score >= PARAMS['near_miss']:
        policy.dither_scale = min(3.0, policy.dither_scale * 1.5)
        policy.fine_scale = max(0.7, policy.fine_scale * 0.95)
    else:
        policy.dither_scale = 1.0
        policy.fine_scale = 1.0
''',
}
