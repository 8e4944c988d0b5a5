"""What a sandboxed peg-insertion policy may use besides numpy and the standard maths modules.

The observation (the policy contract, `enpire_rollout.policy_contract.Observation`) of this task:
- `agent_position`: the hand (its end effector) in metres, world frame; `agent_velocity` in m/s;
- `proprioception`: (hand_x, hand_y, hand_z, gripper_open), gripper_open 0 (closed) .. 1 (open);
- `scene`: {'peg': (x, y, z), 'box': (x, y, z)}, the origins of peg and box as the cell's reset located them
  from its cameras before attempt 1: an estimate (off by up to the reset's tolerance), not updated while
  the peg moves;
- `frames`: the cameras' images (the cell's three views), when the cell sends them.

Here: the parts' geometry a lab knows from its drawings (where the peg is held and where its head is, where
the hole's mouth is on the box), and small helpers. Light on purpose: every sandbox preloads it.
"""
from __future__ import annotations

import numpy as np

ACTION_SCALE = 0.01                          # metres of hand travel per action unit (1 unit = 1 cm)
PEG_GRASP = np.array([0.03, 0.0, 0.01])      # the peg's grasp point from its origin
PEG_HEAD = np.array([-0.10, 0.0, 0.0])       # the peg's head (the end that goes in first) from its origin
PEG_HALF_SIZE = np.array([0.12, 0.015, 0.015])   # the peg: a 24 x 3 x 3 cm bar along x
HOLE_MOUTH = np.array([0.096, 0.0, 0.13])    # the centre of the hole's mouth from the box's origin
HOLE_HALF_WIDTH = 0.03                       # the square hole is 6 x 6 cm
BOX_HALF_SIZE = np.array([0.1, 0.09, 0.1])   # the box around its origin (its base on the table)
INSERTION_AXIS = np.array([-1.0, 0.0, 0.0])  # the hole faces +x: the peg goes in along -x
HAND_LOW = np.array([-0.45, 0.40, 0.05])     # the cell's workspace box for the hand (its safety limits)
HAND_HIGH = np.array([0.45, 0.95, 0.45])
GRIPPER_OPEN, GRIPPER_CLOSE = -1.0, 1.0      # the action's gripper entry

__all__ = ['ACTION_SCALE', 'PEG_GRASP', 'PEG_HEAD', 'PEG_HALF_SIZE', 'HOLE_MOUTH', 'HOLE_HALF_WIDTH',
           'BOX_HALF_SIZE', 'INSERTION_AXIS', 'HAND_LOW', 'HAND_HIGH', 'GRIPPER_OPEN', 'GRIPPER_CLOSE',
           'hand', 'gripper_open', 'located', 'grasp_point', 'hole_mouth', 'step_towards']


def hand(observation) -> np.ndarray:
    """The hand's position (m)."""
    return np.asarray(observation.agent_position, dtype=float)[:3]


def gripper_open(observation) -> float | None:
    """The gripper's opening, 0 (closed) .. 1 (open); None when the observation does not carry it."""
    values = np.asarray(getattr(observation, 'proprioception', ()), dtype=float).reshape(-1)
    return float(values[3]) if values.size >= 4 and np.isfinite(values[3]) else None


def located(observation, name: str) -> np.ndarray | None:
    """An object's origin as the reset located it ('peg', 'box'), or None."""
    pose = (getattr(observation, 'scene', None) or {}).get(name)
    if pose is None:
        return None
    position = np.asarray(pose, dtype=float).reshape(-1)[:3]
    return position if position.size == 3 and np.all(np.isfinite(position)) else None


def grasp_point(peg_origin) -> np.ndarray:
    return np.asarray(peg_origin, dtype=float) + PEG_GRASP


def hole_mouth(box_origin) -> np.ndarray:
    return np.asarray(box_origin, dtype=float) + HOLE_MOUTH


def step_towards(current, goal, gain: float = 25.0) -> np.ndarray:
    """The displacement action (3 entries in [-1, 1]) that moves the hand from `current` towards `goal`:
    proportional, `gain` action units per metre of error (metaworld's scripted policies use 25)."""
    error = np.asarray(goal, dtype=float) - np.asarray(current, dtype=float)
    return np.clip(error * float(gain), -1.0, 1.0)
