"""The peg cell's command limits for a displacement action, pure (the safety node's filter bounds absolute
commands; this one bounds where a displacement takes the hand). Every command leaving here keeps the hand
in the workspace box, moves it at most `max_displacement` per axis and step, and keeps the gripper in range.
The box bounds the commanded tool target; the measured hand, which lags its target when it presses on
something (metaworld's weld, a real arm's compliant controller), is bounded by the box grown by `hand_margin`.
`command_rule(limits_file)` is the task's `command_filter`: the safety node applies it to every command
(enpire_env.safety.filter.CommandRule), with the hand's measured position from the cell's state.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from enpire_task_peg.distributions import HAND_START

ACTION_SCALE = 0.01   # metaworld: one action unit moves the hand's target 1 cm


class ToolLimits(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    max_displacement: float
    gripper_low: float = -1.0
    gripper_high: float = 1.0
    hand_margin: float = 0.0     # metres: how far beyond the box the measured hand may lag its target

    @model_validator(mode='after')
    def _consistent(self) -> ToolLimits:
        values = [*self.workspace_low, *self.workspace_high, self.max_displacement, self.gripper_low,
                  self.gripper_high]
        if not all(np.isfinite(values)):
            raise ValueError('tool limits must be finite')
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError('every workspace_low must be below its workspace_high')
        if not 0.0 <= self.hand_margin <= 0.02:
            raise ValueError('hand_margin must be in [0, 0.02] m')
        if not 0 < self.max_displacement <= ACTION_SCALE:
            raise ValueError(f'max_displacement must be in (0, {ACTION_SCALE}] m')
        if not -1.0 <= self.gripper_low < self.gripper_high <= 1.0:
            raise ValueError('gripper limits must satisfy -1 <= low < high <= 1')
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> ToolLimits:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if 'tool_limits' not in data:
            raise ValueError(f'{path}: no tool_limits section')
        return cls.model_validate(data['tool_limits'])


def limit_command(action, hand, limits: ToolLimits) -> tuple[np.ndarray, str]:
    """The command that may reach the cell for `action` with the hand at `hand` (metres), and '' or why it
    was changed. A malformed action (wrong size, not finite) becomes a stop: zero displacement, gripper 0."""
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    hand = np.asarray(hand, dtype=np.float64)
    if action.shape != (4,) or not np.all(np.isfinite(action)):
        return np.zeros(4), 'malformed action: stopped'
    reasons = []
    step = np.clip(action[:3], -1.0, 1.0) * ACTION_SCALE
    step = np.clip(step, -limits.max_displacement, limits.max_displacement)
    # Per axis, the step may only shrink towards zero, never grow or change sign: inside the box it stops
    # at the wall, outside it may only come back in (never further out), and a still command stays still
    # (a filter that moved the hand by itself to correct a position would move it where nobody asked).
    low, high = np.asarray(limits.workspace_low), np.asarray(limits.workspace_high)
    step = np.clip(step, np.minimum(0.0, low - hand), np.maximum(0.0, high - hand))
    out_step = np.clip(step / ACTION_SCALE, -1.0, 1.0)
    if not np.allclose(out_step, action[:3]):
        reasons.append('displacement limited to the workspace and speed')
    gripper = float(np.clip(action[3], limits.gripper_low, limits.gripper_high))
    if gripper != action[3]:
        reasons.append('gripper clamped')
    return np.array([*out_step, gripper]), '; '.join(reasons)


REST_OFFSET_M = 0.01    # a placed hand rests this close to metaworld's target (the weld's offset, ~5 mm)
OPEN_GRIPPER = -1.0     # metaworld's reset opens the gripper: the stop before any command keeps it so


class DisplacementRule:
    """The safety node's rule for the peg's action (enpire_env.safety.filter.CommandRule): `limit_command`,
    and a stop that does not move the hand and keeps the gripper as last commanded.

    metaworld moves a mocap target by each displacement and the hand follows it through a weld, so a hand
    blocked (by the box, the table, a jammed peg) lets the target run ahead of it; bounding the measured
    hand alone would let repeated pushes carry the target out of the box. So the rule also tracks that
    target: where the cell's last placement put it (metaworld's reset puts it on the hand: `placed`), moved
    by every command the rule let through; both the hand and the target stay in the box. Before any
    placement is seen the target is taken where the hand is."""

    def __init__(self, limits: ToolLimits):
        self.limits = limits
        margin = limits.hand_margin
        self.hand_limits = limits.model_copy(update={
            'workspace_low': tuple(v - margin for v in limits.workspace_low),
            'workspace_high': tuple(v + margin for v in limits.workspace_high)})
        self.target: np.ndarray | None = None

    def placed(self, tool) -> None:
        """The cell reports a fresh placement (nothing commanded since): the target is where the hand is,
        or exactly the task's tool start when the hand rests within the weld's offset of it (metaworld's
        reset puts the target there and the hand settles ~5 mm away: anchoring on the hand would bound the
        real target 5 mm short, below the peg's grasp height)."""
        tool = np.asarray(tool, dtype=np.float64).reshape(-1)
        if tool.shape == (3,) and np.all(np.isfinite(tool)):
            start = np.asarray(HAND_START, dtype=np.float64)
            self.target = start if np.max(np.abs(tool - start)) <= REST_OFFSET_M else tool.copy()

    def limit(self, command, tool) -> tuple[tuple[float, ...], str]:
        if len(tool) != 3:
            return self.stop(None), f'the hand position has 3 coordinates, got {len(tool)}: stopped'
        hand = np.asarray(tool, dtype=np.float64)
        if self.target is None:
            target, hand_limits = hand, self.limits
        else:
            # The target is tracked: it keeps the box, and the hand may lag it by the margin (a hand resting
            # 1 mm under the floor while its target sits on it must not stop the target reaching the floor).
            target, hand_limits = self.target, self.hand_limits
        out, reason = limit_command(command, hand, hand_limits)
        # The second bound only shrinks each step towards zero, so the hand's bound still holds.
        out, target_reason = limit_command(out, target, self.limits)
        if target_reason and not reason:
            reason = 'displacement limited: the commanded target, ahead of the blocked hand, stays in the box'
        self.target = target + out[:3] * ACTION_SCALE
        return tuple(float(v) for v in out), reason

    def stop(self, last) -> tuple[float, ...]:
        known = last is not None and len(last) == 4 and np.isfinite(last[3])
        gripper = float(last[3]) if known else OPEN_GRIPPER
        return 0.0, 0.0, 0.0, float(np.clip(gripper, self.limits.gripper_low, self.limits.gripper_high))


def command_rule(limits_file: str | Path) -> DisplacementRule:
    """The task's `command_filter`: its `tool_limits` from the safety-limits YAML the safety node uses."""
    return DisplacementRule(ToolLimits.from_yaml(limits_file))
