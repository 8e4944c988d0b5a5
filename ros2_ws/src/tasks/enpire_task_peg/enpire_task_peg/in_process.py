"""Peg insertion evaluated in one process (a developer's harness, `Task.in_process`): local evaluation's trial
loop (`enpire_agents.local_eval.run_in_process`) drives `PegSimulator` with no ROS graph and no rendering.

Each command passes the cell's displacement limits (`safety.limit_command` with the task's `tool_limits`),
as it would on its way to the cell; success is metaworld's own rule on the simulator's state, judged after
every step (local evaluation verifies every step and an attempt ends at its first success: a peg that
reaches the window counts, as metaworld's `info['success']` at some step); a failed attempt's reason is
classified from the simulator's truth (a developer's harness only: on the cell the cameras judge).

What the policy sees (the contract of `policy_tools`): the hand, its velocity, the gripper opening, and the
scene as the reset located it, under one of these perceptions:

- 'reset' (what a lab cell knows): peg and box where the reset placed and its cameras verified them, with
  the cameras' error drawn per trial (Gaussian, `noise_m` per horizontal axis, cut at the reset's 1 cm
  tolerance); fixed for the trial (the peg is not tracked while the arm moves it);
- 'exact_reset': the same without the error;
- 'gt': 'exact_reset' plus the simulator's live task state in `debug_ground_truth` (the debug mode: for the
  reference expert, which reads the live peg as metaworld gives it; never for an agent's policy).
'auto' is 'reset'.
"""
from __future__ import annotations

import numpy as np

from enpire_task_peg.distributions import sample_initial_state
from enpire_task_peg.paths import safety_limits_path
from enpire_task_peg.policy_tools import HOLE_MOUTH
from enpire_task_peg.safety import ToolLimits, limit_command
from enpire_task_peg.simulator import BOX, CONTROL_HZ, EPISODE_STEPS, PEG_HEAD, PegSimulator, success_rule

PERCEPTIONS = ('auto', 'reset', 'exact_reset', 'gt')
RESET_TOLERANCE_M = 0.01          # the task's reset tolerance (TASK.reset.tolerances)
GRASP_HELD = 0.12                 # gripper opening above this with the peg lifted: the peg is in the hand


def _tool_limits() -> ToolLimits:
    return ToolLimits.from_yaml(safety_limits_path())


class InProcessCell:
    """One trial's cell on the simulator: what local evaluation's trial loop asks of it (`observe` gives the
    policy contract's Observation fields, `judge` a verdict as (success, score, reason))."""

    def __init__(self, sim: PegSimulator, seed: int, distribution: str, perception: str, limits: ToolLimits,
                 rng: np.random.Generator, noise_m: float):
        self.sim, self.seed, self.distribution = sim, int(seed), distribution
        self.perception, self.limits, self.rng, self.noise_m = perception, limits, rng, float(noise_m)
        self.scene: dict[str, np.ndarray] = {}
        self.previous_hand = None
        self.lifted = False
        self.steps = 0

    def reset(self) -> dict:
        layout = sample_initial_state(self.seed, self.distribution).layout
        self.sim.reset(layout)
        self.scene = {'peg': self._located(layout.peg), 'box': self._located(layout.box)}
        self.previous_hand = self._hand()
        self.lifted = False
        return {}

    def _located(self, position) -> np.ndarray:
        position = np.array(position, dtype=float)
        if self.perception == 'reset':
            error = np.clip(self.rng.normal(0.0, self.noise_m, 2), -RESET_TOLERANCE_M, RESET_TOLERANCE_M)
            position[:2] += error
        return position

    def _hand(self) -> np.ndarray:
        return np.array(self.sim.task_state()[:3])

    def begin_attempt(self, attempt: int):
        if attempt > 1:
            self.sim.next_episode()      # no reset: the attempt continues where the last one left the arm
        return (0.0, 0.0, 0.0, 0.0)      # holding: no displacement, the gripper relaxed

    def observe(self, step: int, attempt: int) -> dict:
        state = self.sim.task_state()
        hand = state[:3]
        truth = None
        if self.perception == 'gt':
            truth = {'task_state': state.copy(), 'score': success_rule(state)[0]}
        return dict(step=step, attempt=attempt, time_s=step / CONTROL_HZ, agent_position=hand.copy(),
                    agent_velocity=(hand - self.previous_hand) * CONTROL_HZ, frames={}, table_to_image={},
                    proprioception=state[:4].copy(), scene={k: v.copy() for k, v in self.scene.items()},
                    debug_ground_truth=truth)

    def command(self, values) -> None:
        self.previous_hand = self._hand()
        if self.sim.steps >= EPISODE_STEPS:     # an attempt longer than metaworld's episode
            self.sim.next_episode()
        safe, _ = limit_command(values, self.sim.data.mocap_pos[0], self.limits)
        clipped = np.clip(np.asarray(values, dtype=float), -1.0, 1.0)
        if np.allclose(safe, clipped, rtol=0.0, atol=1e-9):
            safe = clipped       # unchanged by the limits: the policy's own numbers (bit-exact parity)
        self.sim.step(safe)
        state = self.sim.task_state()
        self.lifted = self.lifted or bool(state[6] > 0.06 and state[3] > GRASP_HELD)

    def judge(self, final: bool) -> tuple[bool, float, str]:
        """(success, score, reason) now; `final`: the attempt's end, whose failure gets its reason."""
        state = self.sim.task_state()
        score, success = success_rule(state)
        if success:
            return True, float(score), 'success'
        if not final:
            return False, float(score), ''
        return False, float(score), classify_failure(state, self.lifted)


def classify_failure(state: np.ndarray, ever_lifted: bool) -> str:
    """A verdict-like reason for a failed attempt from the simulator's truth (developer's harness only)."""
    head, box = state[PEG_HEAD], state[BOX]
    peg_z, opening = state[6], state[3]
    held = peg_z > 0.06 and opening > GRASP_HELD
    mouth = box + HOLE_MOUTH
    off_axis = np.hypot(head[1] - mouth[1], head[2] - mouth[2])
    if not held and not ever_lifted:
        return 'timeout: peg never grasped (still on the table)'
    if not held:
        return 'timeout: peg dropped after it was lifted'
    if off_axis > 0.02:
        return (f'timeout: peg held but off the hole axis by {100 * off_axis:.1f} cm '
                f'(y {100 * (head[1] - mouth[1]):+.1f}, z {100 * (head[2] - mouth[2]):+.1f} cm)')
    if head[0] > mouth[0] + 0.01:
        return f'timeout: peg aligned but short of the mouth by {100 * (head[0] - mouth[0]):.1f} cm'
    return 'timeout: peg at the mouth but not in (jammed)'


class InProcessHarness:
    """One worker's simulator and perception: `cell(seed, distribution)` a fresh trial's cell;
    `policy_tools` None (the policy imports the real `enpire_task_peg.policy_tools`); no cameras."""

    cameras = ()
    policy_tools = None

    def __init__(self, perception: str = 'auto', *, noise_m: float = 0.003):
        if perception not in PERCEPTIONS:
            raise ValueError(f'unknown perception {perception!r} (known: {", ".join(PERCEPTIONS)})')
        self.perception = 'reset' if perception == 'auto' else perception
        self.noise_m = float(noise_m)
        self.limits = _tool_limits()
        self.sim = PegSimulator()

    def cell(self, seed: int, distribution: str) -> InProcessCell:
        # the camera error of a trial depends on its seed only, whichever worker runs it
        rng = np.random.default_rng([int(seed), 7])
        return InProcessCell(self.sim, seed, distribution, self.perception, self.limits, rng, self.noise_m)


__all__ = ['InProcessHarness', 'InProcessCell', 'PERCEPTIONS', 'classify_failure']
