"""Fleet scheduling (pure): hand trial requests to free cells, enforce budgets, account cell time, MRU.

MRU (machine/robot utilisation) = per cell, time executing policy trials / wall-clock time, averaged over
cells. Phases per cell: reset / executing / verifying / idle (the trial server reports reset_s,
execute_s and verify_s; whatever else of a cell's wall time is idle).

`FleetClock`: the time a fleet of real cells would take for the trials this one ran, built from each
trial's duration on its cell's clock (sim time on a simulated cell), so cells that step as fast as the
machine allows still give a team an honest elapsed time.
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


class FleetClock:
    """Elapsed time of a fleet of real cells running the trials dispatched here, in parallel.

    Each cell is free from its last trial's finish. A trial asked for by a caller (an agent, in its own
    thread) at the caller's time `t` starts at max(t, its cell's free time) and takes its cell-time
    duration (`TrialOutcome.cell_time_s`: the trial server's measure on the cell's clock). A caller
    waiting on a batch is at the latest finish of its trials afterwards, one that has not waited yet at
    0; in the thread that made the clock (the team's own) `now()` is the latest finish any caller waited
    on: the team's elapsed time. The callers' thinking time (an LLM's answer) is not on this clock:
    report it apart. Thread-safe.
    """

    def __init__(self, cells: list[str]):
        self._free_at = {c: 0.0 for c in cells}
        self._latest = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owner = threading.get_ident()

    def now(self) -> float:
        """The calling thread's time on the fleet clock (in the owner's thread: the team's elapsed time)."""
        with self._lock:
            if threading.get_ident() == self._owner:
                return self._latest
            return getattr(self._local, 't', 0.0)

    def elapsed(self) -> float:
        """The latest finish any caller waited on."""
        with self._lock:
            return self._latest

    def free_at(self, cell: str) -> float:
        with self._lock:
            return self._free_at[cell]

    def place(self, cell: str, ready_s: float, duration_s: float) -> float:
        """A trial asked for at `ready_s` runs on `cell` for `duration_s`; returns its finish time."""
        with self._lock:
            start = max(ready_s, self._free_at[cell])
            finish = start + max(0.0, duration_s)
            self._free_at[cell] = finish
            return finish

    def waited(self, finish_s: float) -> None:
        """The calling thread waited for a trial finishing at `finish_s`."""
        with self._lock:
            mine = max(getattr(self._local, 't', 0.0), finish_s)
            self._local.t = mine
            self._latest = max(self._latest, mine)

    def report(self) -> dict:
        with self._lock:
            return {'elapsed_s': self._latest, 'cells_free_at_s': dict(self._free_at)}


def cell_time_s(outcome: TrialOutcome) -> float:
    """How long a trial held its cell on the cell's clock (the trial server's node clock: sim time on a
    simulated cell, so the same whatever this machine's load)."""
    return outcome.cell_time_s


class Scheduler:
    """Thread-safe: `acquire()` blocks for a free cell (or returns None when the budget is spent).

    With a `FleetClock`, a trial asked for at `ready_s` gets, of the free cells, the one free latest but
    by `ready_s` on that clock (the cells free earlier stay for callers that are earlier), else the one
    free earliest: the dispatch a real fleet would make, as far as the order of asking here allows."""

    def __init__(self, cells: list[str], budget: Budget | None = None, clock: FleetClock | None = None):
        if not cells:
            raise ValueError('no cells')
        if len(set(cells)) != len(cells):
            raise ValueError(f'cells repeat: {sorted(c for c in set(cells) if cells.count(c) > 1)}')
        self.cells = list(cells)
        self.clock = clock
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

    def _pick(self, free: list[str], ready_s: float | None) -> str:
        if self.clock is None:
            return free[0]
        at = {c: self.clock.free_at(c) for c in free}
        ready = [c for c in free if ready_s is not None and at[c] <= ready_s]
        return max(ready, key=at.get) if ready else min(free, key=at.get)

    def acquire(self, timeout: float | None = None, ready_s: float | None = None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while True:
                if self.budget_left():
                    return None
                now = time.monotonic()
                free = [c for c in self.cells
                        if not self.accounts[c].busy and self.accounts[c].resting_until <= now]
                if free:
                    cell = self._pick(free, ready_s)
                    self.accounts[cell].busy = True
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
