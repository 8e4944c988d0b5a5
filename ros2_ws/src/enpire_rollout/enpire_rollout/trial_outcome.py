"""One trial's outcome, wherever it ran: a cell's `run_trial` action, the fleet client, local evaluation.

A trial is one rollout from one seeded start: up to `attempts` in-context attempts with no reset between
them. pass@k reads `succeeded_within(k)`: the first success came at attempt <= k (not best-of-k sampling).
A trial that could not run (the cell refused the goal, the reset failed) carries its `failure_reason`
and no attempt; one that ended inside an attempt (budget spent, cancelled) carries both.
"""
from __future__ import annotations

from pydantic import BaseModel, Field


class TrialOutcome(BaseModel):
    seed: int = 0
    task: str = ''
    distribution: str = 'in_distribution'
    attempts: int = 1                      # k the trial allowed
    tag: str = ''                          # the caller's free text (e.g. a hypothesis id)
    attempts_used: int = 0                 # attempts begun (one cut short by the budget has no verdict)
    attempt_scores: list[float] = Field(default_factory=list)      # the verdict's score of each attempt
    attempt_successes: list[bool] = Field(default_factory=list)    # one per attempt begun
    attempt_reasons: list[str] = Field(default_factory=list)
    steps: int = 0                         # policy steps over all attempts
    missed_deadlines: int = 0              # act() calls past the step deadline (the command was held)
    failure_reason: str = ''               # '' on a completed trial (success or not)
    reset_s: float = 0.0
    execute_s: float = 0.0
    verify_s: float = 0.0
    cell_time_s: float = 0.0               # the trial on the cell's clock (sim time on a simulated cell)
    wall_s: float = 0.0                    # the caller's wall time for the whole trial
    cell: str = ''
    bag_path: str = ''                     # the trial's rosbag2 folder, when it was recorded
    accepted: bool = False                 # the cell took the goal
    refused: bool = False                  # the cell never took the goal (no server, rejected): not a trial

    @property
    def first_success(self) -> int | None:
        """1-based attempt of the first success, None when none succeeded."""
        for index, ok in enumerate(self.attempt_successes, start=1):
            if ok:
                return index
        return None

    @property
    def success(self) -> bool:
        return self.first_success is not None

    def succeeded_within(self, k: int) -> bool:
        first = self.first_success
        return first is not None and first <= k

    @property
    def best_score(self) -> float:
        return max(self.attempt_scores, default=0.0)

    @property
    def ran(self) -> bool:
        """The policy ran: a trial the cell could not start says nothing of the policy, one that ended
        inside an attempt (budget spent, cancelled, the sandbox gone) did start."""
        return bool(self.attempt_scores or self.attempt_successes or not self.failure_reason)


__all__ = ['TrialOutcome']
