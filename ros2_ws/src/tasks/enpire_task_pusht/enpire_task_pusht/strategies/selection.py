"""Piece `selection`: pose error and contact choice (which point of the T to push, in which direction).

The block is a free body whose velocity is cleared every physics substep, pushed through frictionless
contact: a push along the inward normal d at a point r from the centre of gravity moves the block by
v = d / (m * den), w = k / (I * den) per unit push, with k = r x d and den = 1/m + k^2/I. The error is
e = (goal COM - COM, angle_scale * angle error); each contact's score is the cosine between its
motion (v, angle_scale * w) and e, minus travel_cost per px from the agent to its pre-contact point.

Variants:
    twist    one score over translation and rotation together (the default)
    staged   rotation weighted up while the angle error is large (rotate first, then translate)
Parameters:
    angle_scale  px per radian in the error metric (coverage: 1 px ~ 0.75 deg)
    travel_cost  score penalty per px of travel to the contact
    hysteresis   score bonus of the current contact (fewer switches)
    stage_deg    (staged) angle error above which rotation is weighted x3
"""
PARAMS = {
    'angle_scale': (43.0, 10.0, 200.0, 'log', 'px per radian in the pose-error metric'),
    'travel_cost': (0.002, 0.0, 0.01, 'float', 'score penalty per px of travel to a contact'),
    'hysteresis': (0.15, 0.0, 0.5, 'float', 'score bonus of the current contact'),
    'stage_deg': (20.0, 5.0, 60.0, 'float', 'staged: angle error that triggers rotate-first'),
}

_COMMON = r'''
def pose_error(pose, goal):
    com = to_world(COM[None], pose)[0]
    gcom = to_world(COM[None], goal)[0]
    eth = wrap(goal[2] - pose[2])
    return np.array([gcom[0] - com[0], gcom[1] - com[1], angle_weight(eth) * eth])


def contact_motions(pose, idx=None, eth=0.0):
    pts = C_PTS if idx is None else C_PTS[idx]
    nrm = C_NRM if idx is None else C_NRM[idx]
    rm = rot(pose[2])
    r = (pts - COM) @ rm.T
    d = -(nrm @ rm.T)
    k = r[:, 0] * d[:, 1] - r[:, 1] * d[:, 0]
    den = 1.0 / MASS + k * k / INERTIA
    return np.column_stack([d / (MASS * den)[:, None], angle_weight(eth) * k / (INERTIA * den)])


def precontact(pose, idx, gap):
    pts = to_world(C_PTS[idx], pose)
    nrm = C_NRM[idx] @ rot(pose[2]).T
    return pts + nrm * (R + gap), nrm


def select_contact(pose, goal, agent, current):
    g = pose_error(pose, goal)
    eth = wrap(goal[2] - pose[2])
    m = contact_motions(pose, None, eth)
    cos = (m @ g) / (np.linalg.norm(m, axis=1) * np.linalg.norm(g) + 1e-9)
    pre, _ = precontact(pose, np.arange(len(C_PTS)), PARAMS['standoff'])
    ok = (pre[:, 0] > LO) & (pre[:, 0] < HI) & (pre[:, 1] > LO) & (pre[:, 1] < HI)
    score = cos - PARAMS['travel_cost'] * np.linalg.norm(pre - agent, axis=1)
    if current is not None:
        score[current] += PARAMS['hysteresis']
    score[~ok] = -9.0
    i = int(np.argmax(score))
    return i, float(cos[i])
'''

VARIANTS = {
    'twist': r'''
def angle_weight(eth):
    return PARAMS['angle_scale']
''' + _COMMON,
    'staged': r'''
def angle_weight(eth):
    big = abs(eth) > math.radians(PARAMS['stage_deg'])
    return PARAMS['angle_scale'] * (3.0 if big else 1.0)
''' + _COMMON,
}
