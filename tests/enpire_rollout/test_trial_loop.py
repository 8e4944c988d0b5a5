"""The one trial loop on a small point cell in this process (the ROS and simulator cells: the graph tests
and tests/enpire_agents/regimes/test_sandboxed_trial.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from enpire_rollout.policy_contract import Observation
from enpire_rollout.sandbox import StepResult
from enpire_rollout.trial_loop import TrialAborted, TrialPlan, Verdict, run_trial
from enpire_rollout.trial_outcome import TrialOutcome

GOAL = (50.0, 50.0)


class PointCell:
    """A tool that goes where it is commanded, at most `max_step` per command; success within 1 of GOAL."""

    def __init__(self, start=(0.0, 0.0), max_step=100.0, reset_error: str = ''):
        self.start, self.max_step, self.reset_error = start, max_step, reset_error
        self.tool = np.array(start, dtype=float)
        self.events, self.commands, self.verifies, self.feedback_phases = [], [], [], []
        self.resets = self.holds = self.settles = 0
        self.cancelled = ''

    def reset(self):
        self.resets += 1
        if self.reset_error:
            raise TrialAborted(self.reset_error)
        self.tool = np.array(self.start, dtype=float)
        return {'tries': 1}

    def stop_reason(self):
        return self.cancelled

    def begin_attempt(self, attempt):
        return tuple(self.tool)

    def observe(self, step, attempt):
        return Observation(step=step, attempt=attempt, time_s=0.0, agent_position=self.tool.copy(),
                           agent_velocity=np.zeros(2), frames={}, table_to_image={})

    def command(self, values):
        self.commands.append(tuple(values))
        delta = np.asarray(values, dtype=float) - self.tool
        norm = float(np.hypot(*delta))
        self.tool = self.tool + (delta if norm <= self.max_step else delta * self.max_step / norm)

    def hold(self):
        self.holds += 1
        self.command(tuple(self.tool))

    def verify(self, attempt, final):
        distance = math.dist(self.tool, GOAL)
        self.verifies.append((attempt, final))
        return Verdict(success=distance < 1.0, score=1.0 / (1.0 + distance),
                       reason='' if distance < 1.0 else f'{distance:.0f} from the goal', evidence_path='ev')

    def settle(self):
        self.settles += 1

    def event(self, name, attempt=0, score=0.0, **detail):
        self.events.append((name, attempt, detail))

    def feedback(self, phase, attempt=0, step=0, score=0.0):
        self.feedback_phases.append(phase)


class ScriptedPolicy:
    """`act(observation, reports)` of a script, in this process; `fail_at`: (attempt, step) -> failure."""

    def __init__(self, act, fail_at=None, dies=False):
        self._act, self.fail_at, self.dies = act, dict(fail_at or {}), dies
        self.alive, self.missed_deadlines = True, 0
        self.reports, self.restarts, self.closed = [], 0, False

    def act(self, observation):
        kind = self.fail_at.get((observation.attempt, observation.step))
        if kind == 'deadline':
            self.missed_deadlines += 1
            return StepResult(ok=True, held=True, kind='deadline')
        if kind:
            self.alive = not self.dies
            return StepResult(ok=False, kind=kind, reason=f'policy {kind}')
        return StepResult(ok=True, action=self._act(observation, self.reports))

    def on_attempt_failed(self, report):
        self.reports.append(report)
        return StepResult(ok=True)

    def restart(self, reports):
        self.restarts += 1
        self.alive, self.reports = True, list(reports)
        return StepResult(ok=True)

    def close(self):
        self.closed = True


def _run(cell, policy, clock=None, wall=None, **plan):
    plan = TrialPlan(**{'attempts': 3, 'steps_per_attempt': 4, 'time_budget_s': 100.0} | plan)
    extra = {k: v for k, v in (('clock', clock), ('wall', wall)) if v is not None}
    outcome = TrialOutcome(seed=7, attempts=plan.attempts)
    return run_trial(cell, policy, lambda: StepResult(ok=True), plan, outcome, goal={'seed': 7}, **extra)


def _toward_goal_after_a_report(observation, reports):
    """Half way to the goal per attempt it was told about; holds still before."""
    if not reports:
        return tuple(observation.agent_position)
    return tuple(np.asarray(observation.agent_position) + (np.asarray(GOAL) - observation.agent_position) / 2
                 if len(reports) < 2 else GOAL)


def test_attempts_continue_where_the_last_left_the_cell():
    cell = PointCell(max_step=20.0)
    policy = ScriptedPolicy(lambda obs, reports: GOAL if reports else (5.0, 0.0))
    out = _run(cell, policy, steps_per_attempt=3)
    assert cell.resets == 1 and out.attempts_used == 3
    # attempt 1 ends at (5, 0); attempt 2 goes on from there, 20 per step: 67 to go takes 4 steps
    assert cell.commands[:3] == [(5.0, 0.0)] * 3
    assert out.attempt_successes == [False, False, True] and out.first_success == 3
    assert [r.attempt for r in policy.reports] == [1, 2] and policy.reports[1].previous[0].attempt == 1
    assert out.steps == 9 and out.failure_reason == '' and policy.closed
    names = [e[0] for e in cell.events]
    assert names == ['started', 'reset_done'] + ['attempt_started', 'attempt_verified'] * 3 + ['finished']
    assert cell.holds == 1 and cell.settles == 1    # the trial's last command is a stop


def test_verify_every_n_steps_ends_an_attempt_early_on_success():
    cell = PointCell()
    out = _run(cell, ScriptedPolicy(lambda obs, reports: GOAL), steps_per_attempt=10, verify_every_n_steps=2)
    assert out.first_success == 1 and out.steps == 2 and out.attempt_reasons == ['success']
    assert cell.verifies == [(1, False)]            # an early verdict, not the attempt's final one
    slow = PointCell()
    out = _run(slow, ScriptedPolicy(lambda obs, reports: GOAL), steps_per_attempt=10)
    assert out.steps == 10 and out.first_success == 1 and slow.verifies == [(1, True)]


def test_a_failed_policy_holds_the_cell_is_judged_and_restarts_with_the_reports():
    cell = PointCell()
    policy = ScriptedPolicy(lambda obs, reports: (10.0, 10.0) if not reports else GOAL,
                            fail_at={(1, 1): 'exception'}, dies=True)
    out = _run(cell, policy)
    first, second = out.attempt_reasons
    assert first.startswith('policy exception; verifier: ') and second == 'success'
    assert cell.commands[:2] == [(10.0, 10.0), (10.0, 10.0)]   # the step, then the hold
    assert policy.restarts == 1 and [r.attempt for r in policy.reports] == [1]
    assert out.steps == 2 + 4 and out.first_success == 2


def test_a_missed_deadline_keeps_the_last_command():
    cell = PointCell()
    policy = ScriptedPolicy(lambda obs, reports: (obs.step + 1.0, 0.0), fail_at={(1, 2): 'deadline'})
    out = _run(cell, policy, attempts=1)
    assert cell.commands[:4] == [(1.0, 0.0), (2.0, 0.0), (2.0, 0.0), (4.0, 0.0)]
    assert out.missed_deadlines == 1 and out.attempt_successes == [False]


def test_the_time_budget_holds_the_cell_and_ends_the_trial():
    now = [0.0]

    def clock():
        now[0] += 1.0      # every look at the clock is a second later
        return now[0]

    cell = PointCell()
    out = _run(cell, ScriptedPolicy(_toward_goal_after_a_report), clock=clock, time_budget_s=8.0)
    assert out.failure_reason == 'time budget of 8.0 s exhausted'
    assert 1 <= out.attempts_used <= 3 and len(out.attempt_scores) == out.attempts_used - 1
    assert out.ran and not out.success and cell.holds == 1 and cell.settles == 1
    assert cell.events[-1][0] == 'aborted'


def test_the_budget_counts_cell_time_and_the_phase_timings_wall_time():
    # A lockstep cell: 0.1 s of cell time per command, while the wall clock runs 10 s per look (a slow
    # policy on a loaded machine). 12 steps are 1.2 s of cell time: a 2 s budget is not spent.
    cell = PointCell()
    cell_time, wall_time = [0.0], [0.0]
    commands = cell.command

    def command(values):
        cell_time[0] += 0.1
        commands(values)
    cell.command = command

    def wall():
        wall_time[0] += 10.0
        return wall_time[0]
    out = _run(cell, ScriptedPolicy(lambda obs, reports: (1.0, 1.0)), clock=lambda: cell_time[0], wall=wall,
               time_budget_s=2.0)
    assert out.failure_reason == '' and out.attempts_used == 3 and out.steps == 12
    assert out.reset_s == 10.0 and out.verify_s == 30.0 and out.execute_s > 10.0
    # The same steps against a 0.95 s budget: spent after 10 commands (1 s of cell time), whatever the wall.
    short = PointCell()
    cell_time[0] = 0.0
    short_commands = short.command

    def command_short(values):
        cell_time[0] += 0.1
        short_commands(values)
    short.command = command_short
    out = _run(short, ScriptedPolicy(lambda obs, reports: (1.0, 1.0)), clock=lambda: cell_time[0], wall=wall,
               time_budget_s=0.95)
    assert out.failure_reason.startswith('time budget of') and out.attempts_used == 3
    assert len(short.commands) == 10 + 1 and short.holds == 1     # 10 steps, then the hold


def test_a_cancel_and_a_failed_reset_end_the_trial_with_the_reason():
    cell = PointCell()
    cell.cancelled = 'cancelled'
    out = _run(cell, ScriptedPolicy(lambda obs, reports: GOAL))
    assert out.failure_reason == 'cancelled' and out.attempts_used == 1 and cell.holds == 1
    unplaced = PointCell(reset_error='reset failed: no reset action server')
    policy = ScriptedPolicy(lambda obs, reports: GOAL)
    out = _run(unplaced, policy)
    assert out.failure_reason == 'reset failed: no reset action server' and not out.ran
    assert unplaced.commands == [] and unplaced.settles == 0 and policy.closed


def test_a_crash_leaves_the_cell_holding_and_is_the_reason():
    class Broken(PointCell):
        def verify(self, attempt, final):
            raise KeyError('camera')

    cell, heard = Broken(), []
    plan = TrialPlan(attempts=2, steps_per_attempt=2, time_budget_s=100.0)
    out = run_trial(cell, ScriptedPolicy(lambda obs, reports: GOAL), lambda: StepResult(ok=True), plan,
                    TrialOutcome(), on_crash=heard.append)
    assert out.failure_reason == "internal error: KeyError: 'camera'" and isinstance(heard[0], KeyError)
    assert cell.holds == 1 and cell.events[-1][0] == 'aborted'


def test_a_policy_that_never_starts_is_judged_each_attempt():
    cell = PointCell()
    plan = TrialPlan(attempts=2, steps_per_attempt=3, time_budget_s=100.0)
    policy = ScriptedPolicy(lambda obs, reports: GOAL)
    policy.alive = False
    policy.restart = lambda reports: StepResult(ok=False, reason='refused by the static check')
    out = run_trial(cell, policy, lambda: StepResult(ok=False, reason='refused by the static check'), plan,
                    TrialOutcome())
    assert out.steps == 0 and len(out.attempt_reasons) == 2
    assert all(r.startswith('refused by the static check; verifier: ') for r in out.attempt_reasons)


@pytest.mark.parametrize('field', ['attempt_scores', 'attempt_successes', 'attempt_reasons'])
def test_one_entry_per_verified_attempt(field):
    out = _run(PointCell(), ScriptedPolicy(_toward_goal_after_a_report))
    assert len(getattr(out, field)) == out.attempts_used == 3


def test_a_missed_deadline_sends_the_last_command_or_the_actions_own_stop():
    """An absolute action holds by sending its last target again; a displacement action says its stop
    (its last displacement sent again would keep moving the tool while the policy is late)."""
    misses = {(1, 1): 'deadline', (1, 2): 'deadline'}
    step_of = (lambda obs, reports: (1.0, 2.0))
    cell = PointCell()
    _run(cell, ScriptedPolicy(step_of, fail_at=misses), attempts=1, steps_per_attempt=4)
    assert cell.commands[:4] == [(1.0, 2.0)] * 4
    cell = PointCell()
    _run(cell, ScriptedPolicy(step_of, fail_at=misses), attempts=1, steps_per_attempt=4,
         on_missed_deadline=lambda last: (0.0, last[1]))
    assert cell.commands[:4] == [(1.0, 2.0), (0.0, 2.0), (0.0, 2.0), (1.0, 2.0)]
