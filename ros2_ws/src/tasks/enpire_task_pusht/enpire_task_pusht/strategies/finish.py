"""Piece `finish`: the last few percent of coverage, where perception error matters most.

`fine` variants:
    none     one continuous push per contact until it stops helping
    strokes  above fine_cov (estimated coverage) pushes become short strokes of fine_gain x the
             predicted best stroke, each followed by a retreat so the camera sees the T unoccluded
`dither` variants:
    none     aim at the goal
    cyclic   above dither_cov aim at goals jittered around the true goal (dither_px, dither_deg,
             changed every dither_period steps): with a biased pose estimate this sweeps the T through
             nearby poses, one of which crosses the success bar
Parameters: fine_cov, fine_gain, fine_min, fine_lead, dither_cov, dither_px, dither_deg, dither_period.
"""
PARAMS = {
    'fine_cov': (0.8, 0.5, 0.97, 'float', 'strokes: estimated coverage where short strokes start'),
    'fine_gain': (0.8, 0.3, 1.5, 'float', 'strokes: stroke length / predicted best stroke'),
    'fine_min': (1.0, 0.3, 4.0, 'float', 'strokes: shortest stroke (px)'),
    'fine_lead': (4.0, 1.0, 10.0, 'float', 'strokes: max lead of the target into the T (px)'),
    'dither_cov': (0.93, 0.8, 0.99, 'float', 'cyclic: estimated coverage where dithering starts'),
    'dither_px': (1.5, 0.3, 4.0, 'float', 'cyclic: position jitter amplitude (px)'),
    'dither_deg': (1.5, 0.3, 4.0, 'float', 'cyclic: angle jitter amplitude (deg)'),
    'dither_period': (6, 2, 20, 'int', 'cyclic: steps per jitter target'),
}

FINE = {
    'none': r'''
def fine_active(policy, cov):
    return False
''',
    'strokes': r'''
def fine_active(policy, cov):
    return cov > PARAMS['fine_cov'] * policy.fine_scale
''',
}

DITHER = {
    'none': r'''
def goal_for(policy, cov):
    return GOAL
''',
    'cyclic': r'''
def goal_for(policy, cov):
    if cov <= PARAMS['dither_cov']:
        return GOAL
    k = (policy.t // int(PARAMS['dither_period'])) % 7
    if k == 0:
        return GOAL
    a = k * 2.0 * math.pi * 3.0 / 7.0
    amp = policy.dither_scale
    px = amp * PARAMS['dither_px']
    return (GOAL[0] + px * math.cos(a), GOAL[1] + px * math.sin(a),
            GOAL[2] + amp * math.radians(PARAMS['dither_deg']) * math.cos(2.0 * a + 1.0))
''',
}
