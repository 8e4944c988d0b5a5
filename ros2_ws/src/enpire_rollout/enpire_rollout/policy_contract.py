"""The policy contract: what a policy written by an agent (or a person) must look like.

A policy is a Python source file defining a class `Policy`:

    class Policy:
        def reset(self, context: TrialContext) -> None: ...           # once per trial, before attempt 1
        def act(self, observation: Observation) -> Sequence[float]: ...  # every control step
        def on_attempt_failed(self, report: AttemptReport) -> None: ...  # between attempts

`act` returns the task's action: one finite number per entry of the task's action space, in its units
and frame (`context.action_names`, `context.action_units`, `context.action_frame`; the task's
`ActionSpec`). The command goes through the safety node, which clamps it to the cell's limits. Attempt
k+1 continues from where attempt k left the cell (no reset): `on_attempt_failed` tells the policy what
went wrong.

The policy runs in a sandbox process: it may import only the allowed modules (a small standard set, this
module among them, plus the task's own perception and motion tools), has a deadline per step, and sees
what a real cell offers: camera frames with their table mappings, proprioception and time, and the scene
as the cell's verified reset located it (an estimate from its cameras, not ground truth). Ground truth is
never part of an observation except in the named debug mode, which benchmarks and the demo do not use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrialContext:
    task: str
    attempts: int                 # k: how many attempts this rollout allows
    steps_per_attempt: int
    control_hz: float
    cameras: list[str]
    seed: int                     # the trial's seed, for a policy that wants reproducible randomness
    # The task's action and observation spec (the framework fills them from the task).
    action_names: tuple[str, ...] = ()
    action_units: tuple[str, ...] = ()
    action_frame: str = ''
    proprioception: tuple[str, ...] = ()
    proprioception_units: tuple[str, ...] = ()

    @property
    def action_size(self) -> int:
        return len(self.action_names)


@dataclass
class Observation:
    step: int                     # control step within the attempt
    attempt: int                  # 1-based
    time_s: float                 # seconds since the attempt started (cell clock)
    agent_position: np.ndarray    # the tool's position in the task frame (table: (2,) px; arm: (3,) m)
    agent_velocity: np.ndarray    # its velocity, same units per second
    frames: dict[str, np.ndarray]          # camera -> HxWx3 uint8 RGB
    table_to_image: dict[str, np.ndarray]  # camera -> 3x3 homography of the table plane into that image
    frame_age_s: dict[str, float] = field(default_factory=dict)
    # The values named by `context.proprioception` (in its units), for a task that has more than a position.
    proprioception: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # object -> pose vector in the task frame, as the reset's cameras located it before attempt 1 (not
    # updated while the policy moves things; empty when the cell has no located scene).
    scene: dict[str, np.ndarray] = field(default_factory=dict)
    debug_ground_truth: dict | None = None  # only in debug mode: the task state and score


@dataclass
class AttemptReport:
    attempt: int
    score: float                  # the verifier's fused score (the task's score)
    success: bool
    reason: str                   # the verifier's reason, or the sandbox's (deadline, exception, ...)
    steps: int
    previous: list[AttemptReport] = field(default_factory=list)
