"""The pieces a peg policy is composed of: one variant per slot, and the state machine that runs them.

The policy knows what a lab cell knows (`policy_tools`): the hand, the gripper opening, and peg and box where
the reset located them. It goes approach -> grasp -> transport (lift and align with the hole) -> insert ->
hold. Once the peg is held, the head's place in the hand is fixed: it is where the reset put the head, seen
from the hand at the moment of the grasp; so the hand's target for any head position is known.

Slots and variants:
    approach   direct      straight to the grasp point (the fingers may sweep the peg aside)
               hover       above the grasp point at `hover`, then straight down until the fingers reach
                           the grasp height or stop descending
    grasp      timed       close for `close_steps`, then go
               settle      close until the opening stops changing (at least `close_steps`); an empty grip
                           (opening below `empty_grip`) opens and grasps again
    transport  direct      straight to the pre-insert point (`standoff` in front of the mouth)
               lift_first  up to `carry_z`, across, then down to the pre-insert point
    insert     push        along the axis to `depth` past the mouth
               search      push; when the hand stops advancing (`stall_steps`), back off and try the next
                           point of a small spiral around the axis (`search_r`)
    feedback   none        a failed attempt changes nothing: the machine goes on where it was
               retry       a failed attempt backs the peg off the box and re-aligns with a new aim on a
                           spiral around the axis; an empty hand grasps again where it lost the peg
"""
from __future__ import annotations

# name -> (default, low, high, kind, doc); kind: float | int | log
PARAMS = {
    'gain': (25.0, 8.0, 40.0, 'float', 'action units per metre of hand error'),
    'hover': (0.10, 0.04, 0.2, 'float', 'hover: height above the grasp point before descending'),
    'grasp_dz': (0.0, -0.01, 0.02, 'float', "the hand's grasp height over the grasp point"),
    'reach_tol': (0.012, 0.004, 0.03, 'float', 'direct: the grasp height counts as reached within this'),
    'close_steps': (12, 1, 40, 'int', 'control steps the gripper closes before the hand moves on'),
    'empty_grip': (0.1, 0.02, 0.25, 'float', 'settle: opening below this is an empty grip'),
    'carry_z': (0.30, 0.22, 0.42, 'float', 'lift_first: the hand height for the crossing'),
    'standoff': (0.05, 0.015, 0.12, 'float', 'pre-insert: head this far in front of the mouth'),
    'align_tol': (0.01, 0.003, 0.03, 'float', 'pre-insert point reached within this'),
    'depth': (0.04, 0.0, 0.1, 'float', 'insert: head this far past the mouth'),
    'stall_steps': (10, 3, 30, 'int', 'search: steps without progress that count as a stall'),
    'search_r': (0.006, 0.002, 0.015, 'float', 'search/retry: spiral step around the axis'),
    'backoff': (0.04, 0.01, 0.1, 'float', 'search/retry: how far the head backs off the mouth'),
}

# Which parameters each variant reads (mutation searches only live ones).
SLOT_PARAMS = {
    'approach': {'hover': ('hover',)},
    'grasp': {'timed': ('close_steps',), 'settle': ('close_steps', 'empty_grip')},
    'transport': {'lift_first': ('carry_z',)},
    'insert': {'search': ('stall_steps', 'search_r', 'backoff')},
    'feedback': {'retry': ('search_r', 'backoff')},
}
ALWAYS_LIVE = ('gain', 'grasp_dz', 'reach_tol', 'standoff', 'align_tol', 'depth')

HEADER = '''"""Peg-insertion policy composed by the ENPIRE offline backend from its strategy library.

Pieces: {pieces}.
"""
import math

import numpy as np

from enpire_task_peg import policy_tools as pt

'''

CORE = r'''

def spiral(i):
    """The i-th aim offset (y, z) on a square spiral around the axis, in units of search_r."""
    if i <= 0:
        return np.zeros(2)
    ring = int(math.ceil((math.sqrt(i + 1) - 1) / 2))
    angle = 2 * math.pi * (i - (2 * ring - 1) ** 2) / max(1, 8 * ring)
    return ring * PARAMS['search_r'] * np.array([math.cos(angle), math.sin(angle)])


class Policy:
    def reset(self, context):
        self.phase = 'approach'
        self.stage = 0
        self.count = 0
        self.head_in_hand = None
        self.peg = None
        self.box = None
        self.aim = np.zeros(2)
        self.tries = 0
        self.last_x = None
        self.still = 0
        self.opening = []

    def on_attempt_failed(self, report):
        feedback(self, report)

    def go(self, phase):
        self.phase, self.stage, self.count, self.still, self.last_x = phase, 0, 0, 0, None
        self.opening = []

    def act(self, obs):
        hand = pt.hand(obs)
        if self.peg is None:
            self.peg, self.box = pt.located(obs, 'peg'), pt.located(obs, 'box')
            if self.peg is None or self.box is None:
                return (0.0, 0.0, 0.0, pt.GRIPPER_OPEN)
        self.grip = pt.gripper_open(obs)
        self.last_hand = hand
        goal, gripper = PHASES[self.phase](self, hand)
        move = pt.step_towards(hand, goal, PARAMS['gain'])
        return (float(move[0]), float(move[1]), float(move[2]), float(gripper))

    def grasp_goal(self):
        goal = pt.grasp_point(self.peg)
        goal[2] += PARAMS['grasp_dz']
        return goal

    def reached_grasp(self, hand, goal):
        low = max(goal[2], pt.HAND_LOW[2])
        return np.linalg.norm(hand[:2] - goal[:2]) < 0.012 and hand[2] - low < PARAMS['reach_tol']

    def pre_insert(self):
        """The hand's target that puts the head `standoff` in front of the mouth, on the aimed axis."""
        head = pt.hole_mouth(self.box) + np.array([PARAMS['standoff'], self.aim[0], self.aim[1]])
        return head - self.head_in_hand

    def inserted(self):
        head = pt.hole_mouth(self.box) + np.array([-PARAMS['depth'], self.aim[0], self.aim[1]])
        return head - self.head_in_hand


def phase_approach(policy, hand):
    goal, done = approach(policy, hand)
    if done:
        policy.go('grasp')
    return goal, pt.GRIPPER_OPEN


def phase_grasp(policy, hand):
    policy.count += 1
    if policy.count == 1:
        policy.hand_at_grasp = hand.copy()
    policy.opening.append(policy.grip if policy.grip is not None else 0.5)
    state = grasp(policy)
    if state == 'held':
        policy.head_in_hand = (policy.peg + pt.PEG_HEAD) - policy.hand_at_grasp
        policy.go('transport')
    elif state == 'empty':
        policy.go('approach')
        return policy.grasp_goal() + np.array([0.0, 0.0, 0.05]), pt.GRIPPER_OPEN
    return policy.hand_at_grasp, pt.GRIPPER_CLOSE


def phase_transport(policy, hand):
    goal, done = transport(policy, hand, policy.pre_insert())
    if done:
        policy.go('insert')
    return goal, pt.GRIPPER_CLOSE


def phase_insert(policy, hand):
    return insert(policy, hand), pt.GRIPPER_CLOSE


def phase_hold(policy, hand):
    return hand, pt.GRIPPER_CLOSE


PHASES = {'approach': phase_approach, 'grasp': phase_grasp, 'transport': phase_transport,
          'insert': phase_insert, 'hold': phase_hold}
'''

APPROACH = {
    'direct': r'''
def approach(policy, hand):
    goal = policy.grasp_goal()
    return goal, policy.reached_grasp(hand, goal)
''',
    'hover': r'''
def approach(policy, hand):
    # stage 0: above the grasp point; stage 1: down (policy.last_x holds the last height here)
    goal = policy.grasp_goal()
    if policy.stage == 0:
        above = goal + np.array([0.0, 0.0, PARAMS['hover']])
        if np.linalg.norm(hand[:2] - above[:2]) < 0.008 and abs(hand[2] - above[2]) < 0.03:
            policy.stage = 1
        return above, False
    # straight down until the fingers are at the grasp height or stop descending (they touch)
    policy.count = policy.count + 1 if policy.last_x is not None and policy.last_x - hand[2] < 0.0003 else 0
    policy.last_x = hand[2]
    low = max(goal[2], pt.HAND_LOW[2])
    return goal, hand[2] - low < 0.006 or (policy.count >= 3 and hand[2] - low < 0.02)
''',
}

GRASP = {
    'timed': r'''
def grasp(policy):
    return 'held' if policy.count >= PARAMS['close_steps'] else 'closing'
''',
    'settle': r'''
def grasp(policy):
    seen = policy.opening
    if policy.count < PARAMS['close_steps'] or len(seen) < 4:
        return 'closing'
    if max(seen[-4:]) - min(seen[-4:]) > 0.004:
        return 'closing'
    return 'empty' if seen[-1] < PARAMS['empty_grip'] else 'held'
''',
}

TRANSPORT = {
    'direct': r'''
def transport(policy, hand, pre):
    return pre, np.linalg.norm(hand - pre) < PARAMS['align_tol']
''',
    'lift_first': r'''
def transport(policy, hand, pre):
    if policy.stage == 0:
        up = np.array([hand[0], hand[1], max(PARAMS['carry_z'], pre[2])])
        if hand[2] > up[2] - 0.02:
            policy.stage = 1
        return up, False
    if policy.stage == 1:
        across = np.array([pre[0], pre[1], max(PARAMS['carry_z'], pre[2])])
        if np.linalg.norm(hand[:2] - across[:2]) < 0.01:
            policy.stage = 2
        return across, False
    return pre, np.linalg.norm(hand - pre) < PARAMS['align_tol']
''',
}

INSERT = {
    'push': r'''
def insert(policy, hand):
    return policy.inserted()
''',
    'search': r'''
def insert(policy, hand):
    target = policy.inserted()
    if policy.stage == 1:                       # backing off after a stall
        back = policy.pre_insert()
        back[0] = target[0] + PARAMS['depth'] + PARAMS['backoff']
        if abs(hand[0] - back[0]) < 0.01:
            policy.stage, policy.still, policy.last_x = 0, 0, None
        return back
    if policy.last_x is not None and policy.last_x - hand[0] < 0.0005 and hand[0] - target[0] > 0.01:
        policy.still += 1
    else:
        policy.still = 0
    policy.last_x = hand[0]
    if policy.still >= PARAMS['stall_steps']:
        policy.tries += 1
        policy.aim = spiral(policy.tries)
        policy.stage = 1
    return target
''',
}

FEEDBACK = {
    'none': r'''
def feedback(policy, report):
    pass
''',
    'retry': r'''
def feedback(policy, report):
    policy.tries += 1
    if policy.head_in_hand is None or (policy.grip is not None and policy.grip < PARAMS['empty_grip']):
        if policy.head_in_hand is not None:     # dropped: the peg lies about below where the hand is
            held = policy.hand_at_grasp - policy.peg
            policy.peg = np.array([policy.last_hand[0] - held[0], policy.last_hand[1] - held[1],
                                   policy.peg[2]])
            policy.head_in_hand = None
        policy.go('approach')                   # nothing in the hand: grasp again
        return
    policy.aim = spiral(policy.tries)
    policy.go('transport')
    policy.stage = 2                            # straight back to the pre-insert point, then in again
''',
}
