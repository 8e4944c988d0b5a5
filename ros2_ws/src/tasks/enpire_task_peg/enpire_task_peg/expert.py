"""The reference: metaworld's scripted expert (`SawyerPegInsertionSideV3Policy`) as a policy of our contract.

Its rules are metaworld's, line for line (`_desired_pos`, `_grab_effort`, `move` with p = 25, the action
cast to float32 as `Action.array` does). It reads what metaworld's observation gives it: the live peg (grasp
point) and the hole's target, so it runs in the debug mode only (`debug_ground_truth`: the task state,
never given to an agent's policy); it is the yardstick of the cell and the harness, not an agent's start.
"""

EXPERT_POLICY = '''"""metaworld's SawyerPegInsertionSideV3Policy on the debug observation."""
import numpy as np

TARGET_OFFSET = np.array([0.03, 0.0, 0.13])     # metaworld's goal: the box + this


def desired_pos(hand, peg, goal):
    pos_hole = np.array([-0.35, goal[1], 0.16])
    if np.linalg.norm(hand[:2] - peg[:2]) > 0.04:
        return peg + np.array([0.0, 0.0, 0.3])
    elif abs(hand[2] - peg[2]) > 0.025:
        return peg
    elif np.linalg.norm(peg[1:] - pos_hole[1:]) > 0.03:
        return pos_hole + np.array([0.4, 0.0, 0.0])
    else:
        return pos_hole


def grab_effort(hand, peg):
    if np.linalg.norm(hand[:2] - peg[:2]) > 0.04 or abs(hand[2] - peg[2]) > 0.15:
        return -1.0
    return 0.6


class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        truth = observation.debug_ground_truth
        if not truth:
            raise RuntimeError('the expert reads the live task state: run it in the debug mode')
        state = np.asarray(truth['task_state'], dtype=np.float64)
        hand, peg, goal = state[0:3], state[4:7], state[10:13] + TARGET_OFFSET
        delta = (desired_pos(hand, peg, goal) - hand) * 25.0
        action = np.array([*delta, grab_effort(hand, peg)], dtype=np.float32)
        return [float(v) for v in action]

    def on_attempt_failed(self, report):
        pass
'''
