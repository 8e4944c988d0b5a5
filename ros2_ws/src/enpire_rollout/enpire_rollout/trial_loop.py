"""The one trial loop (no rclpy): reset, then k in-context attempts of a policy, each ended by a verdict.

The trial server runs it with the ROS graph behind its `TrialCell` (reset action, cell state, camera
frames, the verify service, the bag); local evaluation runs it with a simulated cell in this process.

- One reset per trial: attempt k+1 starts where attempt k left the cell.
- Each step: the policy's observation and action (a missed deadline keeps the last command), the command.
  Every `verify_every_n_steps` steps (0: never) a successful verdict ends the attempt early; otherwise the
  attempt ends after `steps_per_attempt` steps, or when the policy fails (raised, hung, refused, gone):
  then the cell is held, the verifier still judges, and the next attempt restarts the policy with the
  reports of the failed attempts. The verdict is the only judge of success.
- The time budget runs on the cell's clock (`clock`: sim time on a simulated cell, so a lockstep cell
  spends 0.1 s of it per 10 Hz step however long the policy or the machine takes) from the trial's start;
  spent, the cell is held and the trial ends with the reason (as a cancel does).
- The outcome's reset_s / execute_s / verify_s are wall seconds (`wall`): how long the cell was occupied,
  as the team's robot-utilization figures count it.
- Events: started, reset_done, attempt_started, attempt_verified, finished | aborted.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from enpire_rollout.policy_contract import AttemptReport, Observation
from enpire_rollout.scrub import scrub
from enpire_rollout.trial_outcome import TrialOutcome

if TYPE_CHECKING:
    from enpire_rollout.sandbox import StepResult


class TrialAborted(Exception):
    """The trial cannot go on (cancelled, budget spent, reset failed, cell not responding): str is why."""


@dataclass(frozen=True)
class TrialPlan:
    attempts: int
    steps_per_attempt: int
    time_budget_s: float
    verify_every_n_steps: int = 0          # 0: verify at the attempts' ends only
    feedback_every_n_steps: int = 5
    # What a missed deadline sends, from the last command: None sends it again (an absolute target holds
    # there); a displacement action gives its stop (sent again, a displacement would keep moving the tool).
    on_missed_deadline: Callable[[Sequence[float]], Sequence[float]] | None = None


@dataclass(frozen=True)
class Verdict:
    success: bool
    score: float
    reason: str = ''
    evidence_path: str = ''


class TrialCell(Protocol):
    """The cell side of a trial; every method may raise `TrialAborted`."""

    def reset(self) -> dict: ...                        # the placement, checked; -> reset_done's detail
    def stop_reason(self) -> str: ...                   # why the trial must stop now (cancelled), '' if not
    def begin_attempt(self, attempt: int) -> Sequence[float]: ...   # -> the command that holds the cell
    def observe(self, step: int, attempt: int) -> Observation: ...  # step: 0-based within the attempt
    def command(self, values: Sequence[float]) -> None: ...
    def hold(self) -> None: ...                         # stop where the tool is now
    def verify(self, attempt: int, final: bool) -> Verdict: ...    # final: the attempt's last verdict
    def settle(self) -> None: ...                       # after the trial's last command
    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None: ...
    def feedback(self, phase: str, attempt: int = 0, step: int = 0, score: float = 0.0) -> None: ...


class TrialPolicy(Protocol):
    """A policy being run (`enpire_rollout.sandbox.PolicyRunner`, or one in this process)."""

    alive: bool
    missed_deadlines: int

    def act(self, observation: Observation) -> StepResult: ...
    def on_attempt_failed(self, report: AttemptReport) -> StepResult: ...
    def restart(self, reports: list[AttemptReport]) -> StepResult: ...
    def close(self) -> None: ...


class _Trial:
    def __init__(self, cell: TrialCell, policy: TrialPolicy, plan: TrialPlan, outcome: TrialOutcome,
                 started: float, clock: Callable[[], float], wall: Callable[[], float]):
        self.cell, self.policy, self.plan, self.out = cell, policy, plan, outcome
        self.started, self.clock, self.wall = started, clock, wall
        self.held = False        # the last command was a hold: no second one at the end

    def hold(self) -> None:
        self.cell.hold()
        self.held = True

    def check(self) -> None:
        reason = self.cell.stop_reason()
        if not reason and self.clock() - self.started > self.plan.time_budget_s:
            reason = f'time budget of {self.plan.time_budget_s:.1f} s exhausted'
        if reason:
            self.hold()
            raise TrialAborted(reason)

    def reset(self) -> None:
        self.cell.feedback('resetting')
        t0 = self.wall()
        try:
            detail = self.cell.reset()
        finally:
            self.out.reset_s = self.wall() - t0
        self.cell.event('reset_done', **detail)

    def verify(self, attempt: int, final: bool) -> Verdict:
        self.cell.feedback('verifying', attempt)
        t0 = self.wall()
        try:
            return self.cell.verify(attempt, final)
        finally:
            self.out.verify_s += self.wall() - t0

    def attempts(self, start: Callable[[], StepResult]) -> None:
        out, plan, policy = self.out, self.plan, self.policy
        t_exec = self.wall()
        reports: list[AttemptReport] = []
        try:
            started = start()
            for attempt in range(1, plan.attempts + 1):
                out.attempts_used = attempt
                if attempt > 1:
                    started = (policy.on_attempt_failed(reports[-1]) if policy.alive
                               else policy.restart(reports))
                self.cell.event('attempt_started', attempt)
                if started.ok:
                    steps, policy_reason, verdict = self.steps(attempt)
                else:
                    steps, policy_reason, verdict = 0, started.reason, None
                if verdict is None:
                    verdict = self.verify(attempt, True)
                score = float(verdict.score)
                reason = verdict.reason or ('success' if verdict.success else 'failure')
                if policy_reason:
                    reason = f'{policy_reason}; verifier: {reason}'
                out.attempt_scores.append(score)
                out.attempt_successes.append(bool(verdict.success))
                out.attempt_reasons.append(scrub(reason))
                out.steps += steps
                self.cell.event('attempt_verified', attempt, score, success=verdict.success, reason=reason,
                                steps=steps, evidence=verdict.evidence_path,
                                missed_deadlines=policy.missed_deadlines)
                self.cell.feedback('verified', attempt, steps, score)
                if verdict.success:
                    return
                reports.append(AttemptReport(attempt=attempt, score=score, success=False, reason=reason,
                                             steps=steps, previous=list(reports)))
        finally:
            out.execute_s = self.wall() - t_exec - out.verify_s
            out.missed_deadlines = policy.missed_deadlines

    def steps(self, attempt: int) -> tuple[int, str, Verdict | None]:
        """One attempt's steps: (steps, the policy's failure reason or '', an early successful verdict)."""
        plan, cell = self.plan, self.cell
        last = cell.begin_attempt(attempt)
        step = 0
        for step in range(1, plan.steps_per_attempt + 1):
            self.check()
            result = self.policy.act(cell.observe(step - 1, attempt))
            if not result.ok:
                self.hold()
                return step, result.reason, None
            if result.action is not None:
                last = result.action
                cell.command(last)
            else:                       # the policy missed its deadline: the cell holds
                cell.command(last if plan.on_missed_deadline is None else plan.on_missed_deadline(last))
            self.held = False
            if step % plan.feedback_every_n_steps == 0:
                cell.feedback('executing', attempt, step)
            every = plan.verify_every_n_steps
            if every and step % every == 0 and step < plan.steps_per_attempt:
                verdict = self.verify(attempt, False)
                if verdict.success:
                    return step, '', verdict
        return step, '', None


def run_trial(cell: TrialCell, policy: TrialPolicy, start: Callable[[], StepResult], plan: TrialPlan,
              outcome: TrialOutcome, goal: dict | None = None, started: float | None = None,
              clock: Callable[[], float] = time.monotonic,
              on_crash: Callable[[Exception], None] | None = None,
              wall: Callable[[], float] = time.monotonic) -> TrialOutcome:
    """Run one trial on `cell`, filling `outcome`. `start()` starts the policy; `clock`: the cell's clock
    in seconds (the budget's); `started`: the trial's start on it (the budget's origin), default now;
    `wall`: the clock of the phase timings; `goal`: the started event's detail; `on_crash` hears of an
    unexpected exception (the trial then ends with it as its reason)."""
    trial = _Trial(cell, policy, plan, outcome, clock() if started is None else started, clock, wall)
    try:
        cell.event('started', goal=goal or {})
        trial.reset()
        trial.attempts(start)
    except TrialAborted as exc:
        outcome.failure_reason = scrub(str(exc))
    except Exception as exc:  # noqa: BLE001 - the cell is still left holding; the trial ends with the reason
        if on_crash is not None:
            on_crash(exc)
        outcome.failure_reason = scrub(f'internal error: {type(exc).__name__}: {exc}')
    finally:
        policy.close()
        if outcome.attempts_used and not trial.held:
            trial.hold()      # end of trial: the last command is a stop where the tool is
        if trial.held:
            cell.settle()
    cell.event('finished' if not outcome.failure_reason else 'aborted', outcome.attempts_used,
               outcome.best_score, success=outcome.success, failure_reason=outcome.failure_reason)
    return outcome


__all__ = ['TrialAborted', 'TrialCell', 'TrialPlan', 'TrialPolicy', 'Verdict', 'run_trial']
