"""Trial mode of local_eval: the trial server's loop without the graph (real sandbox, verifier core)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from enpire_common.task import SceneObject
from enpire_task_pusht import geometry as pusht

from enpire_agents import local_eval as le

HOLD = '''
class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        return (float(observation.agent_position[0]), float(observation.agent_position[1]))

    def on_attempt_failed(self, report):
        pass
'''

# Holds still in attempt 1; afterwards heads for a point that encodes the failure report it was given.
REPORTED = '''
class Policy:
    def reset(self, context):
        self.report = None

    def act(self, observation):
        if self.report is None:
            return (float(observation.agent_position[0]), float(observation.agent_position[1]))
        return (100.0 + 300.0 * self.report.score, 60.0 + 10.0 * self.report.attempt)

    def on_attempt_failed(self, report):
        self.report = report
'''

RAISES = '''
class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        if observation.attempt == 1 and observation.step == 2:
            raise RuntimeError('boom')
        return (float(observation.agent_position[0]), float(observation.agent_position[1]))

    def on_attempt_failed(self, report):
        pass
'''

ESCAPES = '''
import os


class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        return (0.0, 0.0)
'''


class Recorder(le.TrialRecorder):
    def __init__(self):
        self.events, self.states, self.commands, self.verdicts = [], [], [], []

    def event(self, name, attempt=0, score=0.0, **detail):
        self.events.append((name, attempt, score, detail))

    def state(self, cell):
        self.states.append((cell.ticks, cell.agent, tuple(cell.frames)))

    def command(self, policy_target, safe_target):
        self.commands.append((policy_target, safe_target))

    def verdict(self, verdict):
        self.verdicts.append(verdict)


class GoalCell(le.SimTrialCell):
    """A cell whose reset puts the T exactly on the goal (coverage 1), the agent well away from it."""

    def place(self, seed, distribution):
        self.place_objects((SceneObject('block', pusht.GOAL_POSE),), (80.0, 80.0))


@pytest.fixture(scope='module')
def settings():
    return le.TrialSettings.from_config('pusht')


def _goal(tmp_path, code, **kw) -> le.TrialGoal:
    path = tmp_path / 'policy.py'
    path.write_text(code)
    return le.TrialGoal(policy_path=str(path), policy_sha256=hashlib.sha256(code.encode()).hexdigest(),
                        **{'task': 'pusht', **kw})


def test_settings_are_the_bringups(settings):
    assert settings.trial.cameras == ['top', 'oblique', 'wrist'] and settings.trial.step_deadline_s == 0.1
    assert settings.verify_cameras == ('top', 'oblique', 'wrist') and settings.fusion_rule == 'unanimous'
    assert [c.name for c in settings.cameras] == ['top', 'oblique', 'wrist']
    assert settings.safety.max_step == 100.0


def test_failure_report_reaches_the_policy_between_attempts_without_reset(tmp_path, settings):
    rec = Recorder()
    goal = _goal(tmp_path, REPORTED, seed=3, attempts=2, steps_per_attempt=12)
    record = le.run_trial(goal, le.SimTrialCell(settings), rec)
    assert record.first_success is None and len(record.attempt_scores) == 2
    assert record.steps == 24  # attempts run their full length: only the verifier ends a trial early
    assert [e[0] for e in rec.events].count('reset_done') == 1  # attempt 2 goes on from where 1 left it
    # the verifier's reasons, not the sim's
    assert all(not r.startswith('timeout') for r in record.attempt_reasons)
    # attempt 1 held still; attempt 2 steers by the report: the verifier's score and the attempt number
    first, second = rec.commands[:12], rec.commands[12:24]
    assert len({c[0] for c in first}) == 1
    assert second[0][0] == pytest.approx((100.0 + 300.0 * record.attempt_scores[0], 70.0))
    # every observation carried all three cameras; commands passed the safety filter (max step 100 px)
    assert all(cams == ('top', 'oblique', 'wrist') for _, _, cams in rec.states)
    for (_, safe), (_, agent, _) in zip(rec.commands, rec.states, strict=False):
        assert np.hypot(safe[0] - agent[0], safe[1] - agent[1]) <= settings.safety.max_step + 1e-6


def test_success_is_the_verifiers_not_the_coverage(tmp_path, settings):
    from enpire_task_pusht.render import CameraFaults

    goal = _goal(tmp_path, HOLD, attempts=2, steps_per_attempt=3)
    seen = le.run_trial(goal, GoalCell(settings))
    assert seen.first_success == 1 and seen.attempt_reasons == ['success']
    blind_cell = GoalCell(settings, faults={c.name: CameraFaults(dropout=1.0) for c in settings.cameras})
    blind = le.run_trial(goal, blind_cell)
    assert blind_cell.sim.coverage() > 0.99  # the T is on the goal ...
    assert blind.first_success is None and blind.attempt_scores == [0.0, 0.0]  # ... but no camera saw it
    reasons = blind.attempt_reasons
    assert all('no_usable_camera' in r or 'no_frame' in r for r in reasons), reasons


def test_sandbox_failures_end_the_attempt_with_a_reason(tmp_path, settings):
    raised = le.run_trial(_goal(tmp_path, RAISES, attempts=2, steps_per_attempt=6), le.SimTrialCell(settings))
    first, second = raised.attempt_reasons
    assert first.startswith('policy raised: RuntimeError: boom') and '; verifier: ' in first
    assert raised.steps == 3 + 6 and '; verifier: ' not in second  # the process lives on: attempt 2 runs
    escapes = _goal(tmp_path, ESCAPES, attempts=2, steps_per_attempt=6)
    refused = le.run_trial(escapes, le.SimTrialCell(settings))
    assert refused.steps == 0
    assert all('static check' in r and 'import os' in r for r in refused.attempt_reasons)
    tampered = _goal(tmp_path, HOLD)
    tampered.policy_sha256 = '0' * 64
    assert 'policy_sha256 mismatch' in le.run_trial(tampered, le.SimTrialCell(settings)).failure_reason


def test_evaluate_in_trial_mode(settings):
    res = le.evaluate(HOLD, [0, 1], attempts=2, steps_per_attempt=4, mode='trial', task='pusht')
    assert res.n == 2 and res.pass_at(2) == 0.0 and all(r.steps == 8 for r in res.records)
    assert res.summary()['missed_deadlines'] >= 0
    with pytest.raises(ValueError, match='invalid goal'):
        le.evaluate(HOLD, [0], attempts=0, mode='trial', task='pusht')
    with pytest.raises(ValueError, match='unknown mode'):
        le.evaluate(HOLD, [0], mode='ros', task='pusht')
