"""Two simulated cells served in parallel through FleetClient: both used, every trial complete, MRU."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from enpire_interfaces.action import RunTrial
from enpire_rollout.fleet_client import FleetClient, TrialRequest
from enpire_rollout.trial_bag import bag_custom_data
from tests.graph_harness import NodeProcesses, RosTestNode, start_cell_nodes

pytestmark = pytest.mark.graph
CELLS = ['cell_0', 'cell_1']

QUICK = '''
import numpy as np


class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        x, y = observation.agent_position
        return (float(np.clip(x + 5.0, 20, 490)), float(y))

    def on_attempt_failed(self, report):
        pass
'''


# Every attempt runs its steps out and every frame is recorded (the bringup file's run settings thin both)
SERVER = {'hang_timeout_s': 1.0, 'verify_every_n_steps': 0}
RECORDER = {'record_camera_period_s': 0.0}


@pytest.fixture
def fleet_cells(tmp_path):
    procs = NodeProcesses(tmp_path / 'logs')
    ros = None
    try:
        for cell in CELLS:
            start_cell_nodes(procs, cell, bag_dir=tmp_path / 'bags' / cell,
                             parameters={'trial_server': SERVER, 'recorder': RECORDER})
        ros = RosTestNode('fleet_test_client')
        yield procs, ros, tmp_path
    finally:
        if ros is not None:
            ros.close()
        procs.stop_all()


def test_two_cells_in_parallel_through_the_fleet_client(fleet_cells):
    procs, ros, tmp = fleet_cells
    policy = tmp / 'quick.py'
    policy.write_text(QUICK)
    requests = [TrialRequest(task='pusht', policy_path=str(policy), seed=seed, attempts=1,
                             steps_per_attempt=20, tag=f'req{seed}') for seed in range(4)]
    fleet = FleetClient(ros.node, cells=CELLS, server_timeout_s=45.0, trial_timeout_s=90.0)
    for cell, client in fleet.clients.items():       # startup of 10 nodes is not part of the fleet's time
        assert client.wait_for_server(timeout_sec=45), f'run_trial of {cell} never appeared'
        ros.wait_taking_goals(client, RunTrial.Goal(task='pusht', attempts=0))    # refused: invalid
    progress = []
    t0 = time.monotonic()
    outcomes = fleet.run_trials(requests,
                                progress=lambda o, done, total: progress.append((o.cell, done, total)))
    wall = time.monotonic() - t0
    logs = {c: procs.log(f'{c}.trial_server')[-2000:] for c in CELLS}

    assert [o.tag for o in outcomes] == [r.tag for r in requests]      # in the order of the requests
    assert [o.seed for o in outcomes] == [r.seed for r in requests]
    assert len(progress) == 4 and sorted(d for _, d, _ in progress) == [1, 2, 3, 4]
    assert {o.cell for o in outcomes} == set(CELLS), [o.cell for o in outcomes]
    for o in outcomes:
        assert o.accepted and o.failure_reason == '', (o.cell, o.failure_reason, logs)
        assert o.attempts_used >= 1 and len(o.attempt_scores) == len(o.attempt_successes) == o.attempts_used
        assert o.attempt_successes[:-1] == [False] * (o.attempts_used - 1)   # it ends at its first success
        assert Path(o.bag_path).is_dir() and (Path(o.bag_path) / 'metadata.yaml').exists(), o.bag_path
        assert Path(o.bag_path).is_relative_to(tmp / 'bags' / o.cell)
        assert bag_custom_data(o.bag_path)['enpire.status'] == 'finished'
        # a failed attempt may only be the policy's own failure judged by the verifier, not the sandbox's
        assert not any('; verifier:' in r for r in o.attempt_reasons), o.attempt_reasons
        assert o.reset_s > 0 and o.execute_s > 0 and o.verify_s > 0 and o.wall_s > 0
        # on the cell's clock: its 20 steps at 10 Hz, and the few steps of the hold after them
        assert 1.9 <= o.cell_time_s <= 4.0, o.cell_time_s

    report = fleet.report()
    assert set(report['cells']) == set(CELLS) and report['trials_started'] == 4
    assert 0 < report['wall_s'] <= wall + 1.0
    assert 0.0 < report['mru'] <= 1.0
    for cell, acc in report['cells'].items():
        mine = [o for o in outcomes if o.cell == cell]
        assert acc['trials'] == len(mine) >= 1
        assert acc['reset_s'] == pytest.approx(sum(o.reset_s for o in mine))
        assert acc['executing_s'] == pytest.approx(sum(o.execute_s for o in mine))
        assert acc['verifying_s'] == pytest.approx(sum(o.verify_s for o in mine))
        busy = acc['reset_s'] + acc['executing_s'] + acc['verifying_s']
        assert busy <= report['wall_s'] + 1e-6, (cell, acc, report['wall_s'])
        assert busy + acc['idle_s'] == pytest.approx(report['wall_s'])
        assert 0.0 < acc['mru'] <= 1.0
        assert acc['mru'] == pytest.approx(acc['executing_s'] / report['wall_s'])
