"""FleetTrialRunner bookkeeping with a stand-in fleet client (no graph)."""
import threading

import enpire_rollout.fleet_client as fleet_client
from enpire_agents.team import FleetTrialRunner
from enpire_rollout.trial_outcome import TrialOutcome


class HeldFleet:
    """A fleet client whose batches tagged 'hold' stay on the cells until released."""

    def __init__(self, node, cells):
        self.entered, self.release = threading.Event(), threading.Event()

    def run_trials(self, requests, progress=None, stop=None):
        if requests[0].tag == 'hold':
            self.entered.set()
            self.release.wait(30)
        return [TrialOutcome(seed=r.seed, cell='cell_0', attempts_used=1, attempt_scores=[0.5],
                             attempt_successes=[False], execute_s=1.0) for r in requests]


def test_accounting_does_not_wait_for_another_agents_batch(monkeypatch, tmp_path):
    monkeypatch.setattr(fleet_client, 'FleetClient', HeldFleet)
    runner = FleetTrialRunner(None, ['cell_0'], tmp_path, task='pusht')
    held = threading.Thread(target=runner.run, args=('class Policy: pass\n', [1]),
                            kwargs={'distribution': 'in_distribution', 'attempts': 1, 'steps_per_attempt': 5,
                                    'label': 'hold'}, daemon=True)
    held.start()
    assert runner.client.entered.wait(10)
    times = []
    reader = threading.Thread(target=lambda: times.append(runner.cell_times()), daemon=True)
    reader.start()
    reader.join(10)                      # a deadlock detector, not a timing: it returns at once or never
    finished_while_held = not reader.is_alive()
    runner.client.release.set()
    held.join(10)
    assert finished_while_held and times[0][0].trials == 0
    assert runner.cell_times()[0].trials == 1


def test_batches_of_different_agents_run_at_once(monkeypatch, tmp_path):
    """A team's agents share the cells: a second agent's batch reaches the fleet while the first is held."""
    monkeypatch.setattr(fleet_client, 'FleetClient', HeldFleet)
    runner = FleetTrialRunner(None, ['cell_0', 'cell_1'], tmp_path, task='pusht')
    kwargs = {'distribution': 'in_distribution', 'attempts': 1, 'steps_per_attempt': 5}
    held = threading.Thread(target=runner.run, args=('class Policy: pass\n', [1]),
                            kwargs={**kwargs, 'label': 'hold'}, daemon=True)
    held.start()
    assert runner.client.entered.wait(10)
    done = []
    other = threading.Thread(target=lambda: done.append(runner.run('class Policy:\n    pass\n', [2], **kwargs,
                                                                    label='free')), daemon=True)
    other.start()
    other.join(10)                       # a deadlock detector, not a timing: it returns at once or never
    ran_while_held = not other.is_alive()
    runner.client.release.set()
    held.join(10)
    assert ran_while_held and done[0][0].seed == 2
    assert len(list(tmp_path.glob('*.py'))) == 2 and not list(tmp_path.glob('.*.tmp'))


class RecordingFleet:
    """A fleet client whose cells record every trial and fail the first attempt."""

    def __init__(self, node, cells):
        self.requests = []

    def run_trials(self, requests, progress=None, stop=None):
        self.requests += requests
        return [TrialOutcome(seed=r.seed, cell='cell_0', accepted=True, attempts_used=2,
                             attempt_successes=[False, True], attempt_scores=[0.4, 0.97],
                             attempt_reasons=['short of goal', 'success'],
                             bag_path=f'/runs/demo/bags/cell_0/trial_{r.seed}')
                for r in requests]


def test_a_recorded_trial_keeps_its_bag_and_attempts(monkeypatch, tmp_path):
    monkeypatch.setattr(fleet_client, 'FleetClient', RecordingFleet)
    runner = FleetTrialRunner(None, ['cell_0'], tmp_path, task='pusht', record=True)
    [outcome] = runner.run('class Policy: pass\n', [3], distribution='in_distribution', attempts=8,
                           steps_per_attempt=5, label='rec')
    assert runner.client.requests[0].record and runner.client.requests[0].task == 'pusht'
    assert outcome.bag_path == '/runs/demo/bags/cell_0/trial_3'
    assert outcome.attempt_scores == [0.4, 0.97] and outcome.attempt_reasons == ['short of goal', 'success']
    assert outcome.attempt_successes == [False, True] and outcome.first_success == 2
    assert runner.cell_times()[0].trials == 1
