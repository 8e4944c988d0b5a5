"""The policy contract: what a policy written by an agent (or a person) must look like.

A policy is a Python source file defining a class `Policy`:

    class Policy:
        def reset(self, context: TrialContext) -> None: ...        # once per trial, before attempt 1
        def act(self, observation: Observation) -> tuple[float, float]: ...   # every control step
        def on_attempt_failed(self, report: AttemptReport) -> None: ...     # between attempts

`act` returns the target position of the agent on the table, in workspace pixels (0..512). The
command goes through the safety node, which clamps it to the cell's limits. Attempt k+1 continues
from where attempt k left the cell (no reset): `on_attempt_failed` tells the policy what went wrong.

The policy runs in a sandbox process (see `sandbox.py`): it may import only the modules in
ALLOWED_IMPORTS, has a deadline per step, and sees what a real cell offers: camera frames with their
table mappings, proprioception and time. Ground truth is never part of an observation except in the
named debug mode, which benchmarks and the demo do not use. `enpire_rollout.policy_tools` gives the
perception the policy may call (locate the T from the cameras) and the task geometry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALLOWED_IMPORTS = frozenset({
    'math', 'cmath', 'random', 'dataclasses', 'typing', 'collections', 'itertools', 'functools',
    'heapq', 'bisect', 'enum', 'statistics', '__future__', 'numpy', 'enpire_rollout.policy_tools',
    'enpire_rollout.policy_contract', 'enpire_rollout.learned_policy', 'enpire_rollout.policy_motion_tools',
})


@dataclass
class TrialContext:
    task: str
    attempts: int                 # k: how many attempts this rollout allows
    steps_per_attempt: int
    control_hz: float
    cameras: list[str]
    seed: int                     # the trial's seed, for a policy that wants reproducible randomness


@dataclass
class Observation:
    step: int                     # control step within the attempt
    attempt: int                  # 1-based
    time_s: float                 # seconds since the attempt started (cell clock)
    agent_position: np.ndarray    # (2,) workspace pixels
    agent_velocity: np.ndarray    # (2,)
    frames: dict[str, np.ndarray]          # camera -> HxWx3 uint8 RGB
    table_to_image: dict[str, np.ndarray]  # camera -> 3x3 homography of the table plane into that image
    frame_age_s: dict[str, float] = field(default_factory=dict)
    debug_ground_truth: dict | None = None  # only in debug mode: {'block': (x, y, theta), 'coverage': c}


@dataclass
class AttemptReport:
    attempt: int
    score: float                  # the verifier's fused score (Push-T: coverage)
    success: bool
    reason: str                   # the verifier's reason, or the sandbox's (deadline, exception, ...)
    steps: int
    previous: list[AttemptReport] = field(default_factory=list)
