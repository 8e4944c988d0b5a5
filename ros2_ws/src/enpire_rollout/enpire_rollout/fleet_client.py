"""Run many trials over several cells in parallel through their run_trial actions.

    from enpire_rollout.fleet_client import FleetClient, TrialRequest
    fleet = FleetClient(node, cells=['cell_0', 'cell_1'])          # node: an rclpy node being spun
    outcomes = fleet.run_trials([TrialRequest(task=task, policy_path='p.py', seed=s, attempts=2)
                                 for s in range(8)],
                                progress=lambda outcome, done, total: print(done, total))
    fleet.report()   # per cell reset/executing/verifying/idle seconds and MRU

The node must be spun by an executor in another thread (e.g. a MultiThreadedExecutor in a daemon
thread); outcomes come back in the order of the requests. Several threads (the agents of a team) may
call `run_trials` at once: their batches share the cells through one scheduler, so no cell idles while
another agent's batch waits, and the report covers the client's whole life.

With a `FleetClock` (`clock=`), every trial is also placed on the fleet's time: the calling thread's time
when it asked, its cell's free time, its cell-time duration; the caller is at its batch's latest finish
afterwards (`enpire_rollout.scheduler.FleetClock`). The waits for the graph (a server to appear, a goal
to be answered) and `trial_timeout_s` are wall-clock limits on this process, not cell time.

`close()` ends the client's runs while its node still spins: it cancels the trials on the cells (their
goals), drops the ones not started and returns once every `run_trials` call has (within `cancel_timeout_s`
per trial). `destroy()` then, once no executor spins the node and before its context shuts down, destroys
the action clients: rclpy's executor dies adding a client destroyed under it to its wait set ("action
client pointer is invalid"), and a client left to the garbage collector has its handles freed whenever
a collection runs, after the context has shut down, a fini that can deadlock in Fast DDS with the
interpreter lock held (a process that hangs and ignores SIGTERM).
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from enpire_common import names
from enpire_common.action_client import ActionClient

from enpire_interfaces.action import RunTrial
from enpire_rollout.scheduler import Budget, FleetClock, Scheduler, TrialRequest, cell_time_s
from enpire_rollout.trial_outcome import TrialOutcome

__all__ = ['FleetClient', 'FleetClock', 'TrialRequest', 'TrialOutcome', 'Budget']


class FleetClient:
    def __init__(self, node, cells: list[str], budget: Budget | None = None, server_timeout_s: float = 30.0,
                 trial_timeout_s: float = 3600.0, max_refusals: int = 3, refusal_rest_s: float = 20.0,
                 goal_answer_timeout_s: float = 60.0, clock: FleetClock | None = None,
                 cancel_timeout_s: float = 10.0):
        self.node = node
        self.cells = [c.strip('/') for c in cells]
        self.budget = budget
        self.clock = clock
        self.server_timeout_s = server_timeout_s
        # many cells on one loaded machine answer a goal late: generous, and the cell is only rested after
        self.goal_answer_timeout_s = goal_answer_timeout_s
        self.trial_timeout_s = trial_timeout_s
        # on close: how long a trial on a cell may take to answer its goal, and then its cancel, each
        self.cancel_timeout_s = cancel_timeout_s
        # A cell that refuses a goal (still busy with a trial whose goal answer was lost, no server) rests
        # and the trial is tried on another cell, so one stuck cell cannot turn a batch into failures.
        self.max_refusals, self.refusal_rest_s = max_refusals, refusal_rest_s
        self.clients = {c: ActionClient(node, RunTrial, names.cell_name(c, names.RUN_TRIAL))
                        for c in self.cells}
        self.scheduler: Scheduler | None = None    # one for the client's life: concurrent batches share it
        self._calls_lock = threading.Lock()
        self._active_calls = 0
        self._calls_done = threading.Condition(self._calls_lock)
        self._closing = threading.Event()
        self._waiters: set[threading.Event] = set()    # woken by close()

    def _scheduler(self) -> Scheduler:
        with self._calls_lock:
            if self.scheduler is None:
                self.scheduler = Scheduler(self.cells, self.budget, clock=self.clock)
            return self.scheduler

    @contextlib.contextmanager
    def holding(self, cell: str, timeout_s: float = 600.0):
        """Keep `cell` free of this client's trials meanwhile (an agent resetting it by hand); TimeoutError
        when a trial keeps it busy for `timeout_s`."""
        scheduler = self._scheduler()
        if not scheduler.hold(cell.strip('/'), timeout_s):
            raise TimeoutError(f'{cell} stayed busy with trials for {timeout_s:.0f} s')
        try:
            yield
        finally:
            scheduler.release(cell.strip('/'))

    def run_trials(self, requests: list[TrialRequest],
                   progress: Callable[[TrialOutcome, int, int], None] | None = None,
                   stop: Callable[[], bool] | None = None) -> list[TrialOutcome]:
        """Run the requests on the free cells; `stop()` true drops the ones not yet started (their
        outcomes say so); trials already on a cell run to their end."""
        scheduler = self._scheduler()
        with self._calls_lock:
            if self._closing.is_set():
                raise RuntimeError('the fleet client is closed')
            scheduler.t_end = None
            self._active_calls += 1
        try:
            return self._run_batch(scheduler, requests, progress, stop)
        finally:
            with self._calls_lock:
                self._active_calls -= 1
                if self._active_calls == 0:
                    scheduler.finish()
                    self._calls_done.notify_all()

    def close(self, timeout_s: float = 60.0) -> bool:
        """Cancel the trials on the cells, drop the ones not started and wait up to `timeout_s` for every
        `run_trials` call to return (the node must still spin: the cancels and their answers go through
        it). True when every call returned in time. Later calls of `run_trials` raise."""
        self._closing.set()
        with self._calls_lock:
            waiters = list(self._waiters)
        for event in waiters:
            event.set()
        deadline = time.monotonic() + timeout_s
        with self._calls_lock:
            while self._active_calls and self._calls_done.wait(max(0.0, deadline - time.monotonic())):
                pass
            return self._active_calls == 0

    def destroy(self) -> None:
        """Destroy the action clients: after `close()`, once no executor spins the node, before its context
        shuts down (see the module's docstring)."""
        self._closing.set()
        for client in self.clients.values():
            client.destroy()
        self.clients = {}

    def _run_batch(self, scheduler: Scheduler, requests: list[TrialRequest],
                   progress: Callable[[TrialOutcome, int, int], None] | None,
                   stop: Callable[[], bool] | None) -> list[TrialOutcome]:
        ready_s = self.clock.now() if self.clock is not None else None    # the caller's time: the idea exists

        def next_cell() -> tuple[str | None, str]:
            while True:
                if stop is not None and stop():
                    return None, 'not started: the caller stopped'
                if self._closing.is_set():
                    return None, 'not started: the fleet client closed'
                cell = scheduler.acquire(timeout=0.25, ready_s=ready_s)
                if cell is not None:
                    return cell, ''
                if scheduler.budget_left():
                    return None, scheduler.budget_left()

        outcomes: list[TrialOutcome | None] = [None] * len(requests)
        lock = threading.Lock()
        done = [0]
        next_index = [0]
        finishes: list[float] = []

        def worker():
            while True:
                with lock:
                    if next_index[0] >= len(requests):
                        return
                    index = next_index[0]
                    next_index[0] += 1
                for refusals in range(self.max_refusals + 1):
                    cell, why_not = next_cell()
                    if cell is None:
                        outcome = _outcome(requests[index], '', failure_reason=why_not)
                        break
                    outcome = None
                    try:
                        outcome = self.run_one(cell, requests[index])
                    finally:   # the cell goes back to the pool even if the call raised
                        if outcome is not None and outcome.refused:
                            scheduler.refused(cell, self.refusal_rest_s)
                        else:
                            if outcome is not None and self.clock is not None:
                                finish = self.clock.place(cell, ready_s or 0.0, cell_time_s(outcome))
                                with lock:
                                    finishes.append(finish)
                            scheduler.release(cell, outcome)
                    if not outcome.refused or refusals == self.max_refusals:
                        break
                    self.node.get_logger().warning(
                        f'{outcome.failure_reason}: the trial goes to another cell '
                        f'({refusals + 1}/{self.max_refusals}); {cell} rests {self.refusal_rest_s:.0f} s')
                with lock:
                    outcomes[index] = outcome
                    done[0] += 1
                    count = done[0]
                if progress is not None:
                    try:
                        progress(outcome, count, len(requests))
                    except Exception as exc:  # noqa: BLE001 - a caller's callback never stops the fleet
                        self.node.get_logger().warning(f'progress callback failed: {exc!r}')

        threads = [threading.Thread(target=worker, name=f'fleet-worker-{i}', daemon=True)
                   for i in range(min(len(self.cells), len(requests)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.clock is not None and finishes:
            self.clock.waited(max(finishes))
        return [o for o in outcomes if o is not None]

    def run_one(self, cell: str, request: TrialRequest) -> TrialOutcome:
        t0 = time.monotonic()
        outcome = _outcome(request, cell)
        client = self.clients[cell]
        try:
            sha = request.sha256()
        except OSError as exc:
            outcome.failure_reason = f'policy file unreadable: {exc}'
            return outcome
        if not self._wait_for_server(client):
            outcome.failure_reason, outcome.refused = (
                ('not started: the fleet client closed', False) if self._closing.is_set()
                else (f'no run_trial server on {cell}', True))
            return outcome
        goal = RunTrial.Goal(trial_id=request.trial_id, task=request.task, policy_path=request.policy_path,
                             policy_sha256=sha, seed=request.seed, distribution=request.distribution,
                             attempts=request.attempts, steps_per_attempt=request.steps_per_attempt,
                             time_budget_s=request.time_budget_s, record=request.record)
        sent = client.send_goal_async(goal)
        handle = self._wait(sent, self.goal_answer_timeout_s)
        if handle is None and self._closing.is_set():   # closed while the goal was on its way: cancelled
            handle = self._wait(sent, self.cancel_timeout_s, on_close=False)
            if handle is None or not handle.accepted:
                outcome.failure_reason = 'not started: the fleet client closed'
                return outcome
        if handle is None or not handle.accepted:
            outcome.refused = True
            outcome.failure_reason = (f'goal rejected by {cell}' if handle is not None else
                                      f'no answer from {cell} to the goal within '
                                      f'{self.goal_answer_timeout_s:.0f} s (wall clock)')
            return outcome
        outcome.accepted = True
        result = handle.get_result_async()
        wrapped = self._wait(result, self.trial_timeout_s)
        if wrapped is None:
            handle.cancel_goal_async()
            if self._closing.is_set():     # the cell ends the trial (its bag closed) and answers
                wrapped = self._wait(result, self.cancel_timeout_s, on_close=False)
        outcome.wall_s = time.monotonic() - t0
        if wrapped is None:
            outcome.failure_reason = ('cancelled: the fleet client closed' if self._closing.is_set() else
                                      f'no result within {self.trial_timeout_s:.0f} s (wall clock)')
            return outcome
        r = wrapped.result
        # The result names the success, not its attempt: a trial ends at its first success, so it was the
        # last attempt begun.
        begun = max(r.attempts_used, len(r.attempt_scores))
        outcome.attempts_used = r.attempts_used
        outcome.attempt_successes = [r.success and i + 1 == begun for i in range(begun)]
        outcome.attempt_scores = [float(s) for s in r.attempt_scores]
        outcome.attempt_reasons = list(r.attempt_reasons)
        outcome.reset_s, outcome.execute_s, outcome.verify_s = r.reset_s, r.execute_s, r.verify_s
        outcome.cell_time_s = r.cell_time_s
        outcome.bag_path, outcome.failure_reason = r.bag_path, r.failure_reason
        return outcome

    def _wait(self, future, timeout: float, on_close: bool = True):
        """The future's result, or None after `timeout` s (or at once when the client closes, unless
        `on_close` is False)."""
        event = threading.Event()
        if on_close:
            with self._calls_lock:
                self._waiters.add(event)
            if self._closing.is_set():
                event.set()
        try:
            if not future.done():
                future.add_done_callback(lambda _: event.set())
                event.wait(timeout)
        finally:
            with self._calls_lock:
                self._waiters.discard(event)
        return future.result() if future.done() else None

    def _wait_for_server(self, client) -> bool:
        """rclpy's wait_for_server, ended at once by close()."""
        deadline = time.monotonic() + self.server_timeout_s
        while not client.server_is_ready():
            if self._closing.wait(0.25) or time.monotonic() >= deadline:
                return False
        return True

    def report(self) -> dict:
        return self.scheduler.report() if self.scheduler else {}


def _outcome(request: TrialRequest, cell: str, failure_reason: str = '') -> TrialOutcome:
    return TrialOutcome(seed=request.seed, task=request.task, distribution=request.distribution,
                        attempts=request.attempts, tag=request.tag, cell=cell, failure_reason=failure_reason)
