"""Piece `perception`: how the policy turns camera frames into the T's pose.

Variants:
    raw  the latest `policy_tools.locate_block` answer (the last one seen when the T is not found)
    ema  exponential smoothing of the pose while the agent is away from the T (the scene is then
         static, so averaging removes per-frame noise); raw while pushing
Parameters:
    ema_alpha  weight of the newest measurement in `ema`
"""
PARAMS = {
    'ema_alpha': (0.5, 0.15, 1.0, 'float', 'weight of the newest pose measurement (ema)'),
}

VARIANTS = {
    'raw': r'''
def perceive(policy, obs, agent):
    est = policy_tools.locate_block(obs)
    if est is not None:
        policy.pose = tuple(float(v) for v in est)
    return policy.pose
''',
    'ema': r'''
def perceive(policy, obs, agent):
    est = policy_tools.locate_block(obs)
    if est is None:
        return policy.pose
    est = tuple(float(v) for v in est)
    old = policy.pose
    if old is None or policy.mode in ('push',) or math.hypot(est[0] - old[0], est[1] - old[1]) > 6.0:
        policy.pose = est
        return est
    a = PARAMS['ema_alpha']
    th = old[2] + a * wrap(est[2] - old[2])
    policy.pose = (old[0] + a * (est[0] - old[0]), old[1] + a * (est[1] - old[1]), th)
    return policy.pose
''',
}
