"""Fleet scheduling (pure): hand trial requests to free cells, enforce budgets, account cell time, MRU.

MRU (machine/robot utilisation) = per cell, time executing policy trials / wall-clock time, averaged over
cells. Phases per cell: reset / executing / verifying / idle (the trial server reports reset_s,
execute_s and verify_s; whatever else of a cell's wall time is idle).
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from pathlib import Path

from pydantic import BaseModel

from enpire_rollout.trial_outcome import TrialOutcome


class TrialRequest(BaseModel):
    policy_path: str
    task: str                    # a task of the registry (enpire_common.task_registry)
    seed: int = 0
    distribution: str = 'in_distribution'
    attempts: int = 1
    steps_per_attempt: int = 300
    time_budget_s: float = 0.0
    record: bool = True
    trial_id: str = ''
    policy_sha256: str = ''      # empty: computed from the file when the request is sent
    tag: str = ''                # free text for the caller (e.g. hypothesis id)

    def sha256(self) -> str:
        return self.policy_sha256 or hashlib.sha256(Path(self.policy_path).read_bytes()).hexdigest()


class Budget(BaseModel):
    max_trials: int | None = None
    max_robot_s: float | None = None     # summed wall time of trials over all cells


class CellAccount(BaseModel):
    reset: float = 0.0
    executing: float = 0.0
    verifying: float = 0.0
    trials: int = 0
    busy: bool = False
    resting_until: float = 0.0      # monotonic time before which the cell is not handed out (it refused)
    refusals: int = 0


class Scheduler:
    """Thread-safe: `acquire()` blocks for a free cell (or returns None when the budget is spent)."""

    def __init__(self, cells: list[str], budget: Budget | None = None):
        if not cells:
            raise ValueError('no cells')
        self.cells = list(cells)
        self.budget = budget or Budget()
        self.accounts = {c: CellAccount() for c in cells}
        self.trials_started = 0
        self.robot_s = 0.0
        self._cv = threading.Condition()
        self.t0 = time.monotonic()
        self.t_end: float | None = None

    def budget_left(self) -> str:
        """'' while trials may start, else why not."""
        b = self.budget
        if b.max_trials is not None and self.trials_started >= b.max_trials:
            return f'trial budget of {b.max_trials} spent'
        if b.max_robot_s is not None and self.robot_s >= b.max_robot_s:
            return f'robot-time budget of {b.max_robot_s:.0f} s spent'
        return ''

    def acquire(self, timeout: float | None = None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while True:
                if self.budget_left():
                    return None
                now = time.monotonic()
                for cell in self.cells:
                    acc = self.accounts[cell]
                    if not acc.busy and acc.resting_until <= now:
                        acc.busy = True
                        self.trials_started += 1
                        return cell
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    return None
                resting = [a.resting_until - now for a in self.accounts.values()
                           if not a.busy and a.resting_until > now]
                if resting:                          # wake when the first resting cell may be tried again
                    remaining = min(resting) if remaining is None else min(remaining, *resting)
                self._cv.wait(remaining)

    def hold(self, cell: str, timeout: float) -> bool:
        """Take one cell for something other than a trial (an agent's reset) once it is free; False if it
        stayed busy for `timeout` seconds. `release(cell)` gives it back."""
        deadline = time.monotonic() + timeout
        with self._cv:
            acc = self.accounts[cell]
            while acc.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            acc.busy = True
            return True

    def release(self, cell: str, outcome: TrialOutcome | None = None) -> None:
        with self._cv:
            acc = self.accounts[cell]
            acc.busy = False
            if outcome is not None:
                acc.reset += outcome.reset_s
                acc.executing += outcome.execute_s
                acc.verifying += outcome.verify_s
                acc.trials += 1
                self.robot_s += outcome.wall_s
            self._cv.notify_all()

    def refused(self, cell: str, rest_s: float) -> None:
        """The cell refused a trial it was handed (busy with a trial its client lost, no server): free it,
        and hand it out again only after `rest_s`, so other cells take the waiting trials meanwhile."""
        with self._cv:
            acc = self.accounts[cell]
            acc.busy = False
            acc.refusals += 1
            acc.resting_until = time.monotonic() + rest_s
            self.trials_started -= 1
            self._cv.notify_all()

    def finish(self) -> None:
        self.t_end = time.monotonic()

    def report(self) -> dict:
        wall = max(1e-9, (self.t_end or time.monotonic()) - self.t0)
        cells = {}
        for cell, acc in self.accounts.items():
            idle = max(0.0, wall - acc.reset - acc.executing - acc.verifying)
            cells[cell] = {'reset_s': acc.reset, 'executing_s': acc.executing, 'verifying_s': acc.verifying,
                           'idle_s': idle, 'trials': acc.trials, 'mru': min(1.0, acc.executing / wall)}
        mru = sum(c['mru'] for c in cells.values()) / len(cells)
        return {'wall_s': wall, 'mru': mru if math.isfinite(mru) else 0.0, 'cells': cells,
                'trials_started': self.trials_started, 'robot_s': self.robot_s}
