"""Concurrent run_trials calls (a team's agents) share one scheduler: both cells busy at once, never one
cell twice, one report over the client's life. The cells are stood in for by `run_one` (no graph)."""
import threading

import rclpy

from enpire_rollout.fleet_client import FleetClient, TrialOutcome, TrialRequest

TASK = 'pusht'


def test_concurrent_batches_share_the_cells_and_never_double_book(tmp_path):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('fleet_sharing_probe', context=context)
    try:
        fleet = FleetClient(node, ['cell_0', 'cell_1'])
        both_busy = threading.Barrier(2, timeout=10)   # passes only if the two batches hold cells together
        lock, busy, double_booked = threading.Lock(), set(), []

        def run_one(cell, request):
            with lock:
                if cell in busy:
                    double_booked.append(cell)
                busy.add(cell)
            both_busy.wait()
            with lock:
                busy.discard(cell)
            return TrialOutcome(seed=request.seed, cell=cell, accepted=True, attempts_used=1,
                                attempt_scores=[1.0], execute_s=1.0, wall_s=1.0)

        fleet.run_one = run_one
        policy = tmp_path / 'p.py'
        policy.write_text('class Policy: pass\n')
        results = {}

        def agent(name, seed):
            request = TrialRequest(task=TASK, policy_path=str(policy), seed=seed, tag=name)
            results[name] = fleet.run_trials([request])

        threads = [threading.Thread(target=agent, args=(f'agent_{i}', i)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not double_booked
        assert {results[f'agent_{i}'][0].cell for i in range(2)} == {'cell_0', 'cell_1'}
        assert [results[f'agent_{i}'][0].seed for i in range(2)] == [0, 1]
        report = fleet.report()
        assert report['trials_started'] == 2 and all(c['trials'] == 1 for c in report['cells'].values())
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_stop_drops_the_trials_not_yet_started(tmp_path):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('fleet_stop_probe', context=context)
    try:
        fleet = FleetClient(node, ['cell_0'])
        on_cell, release, stopped = threading.Event(), threading.Event(), threading.Event()
        started = []

        def run_one(cell, request):
            started.append(request.seed)
            on_cell.set()
            release.wait(10)
            return TrialOutcome(seed=request.seed, cell=cell, accepted=True, attempts_used=1,
                                attempt_scores=[0.2], execute_s=1.0, wall_s=1.0)

        fleet.run_one = run_one
        policy = tmp_path / 'p.py'
        policy.write_text('class Policy: pass\n')
        result = []
        requests = [TrialRequest(task=TASK, policy_path=str(policy), seed=s) for s in range(3)]
        caller = threading.Thread(
            target=lambda: result.append(fleet.run_trials(requests, stop=stopped.is_set)))
        caller.start()
        assert on_cell.wait(10)
        stopped.set()
        release.set()
        caller.join(20)
        outcomes = result[0]
        assert started == [0] and [o.seed for o in outcomes] == [0, 1, 2]
        assert outcomes[0].failure_reason == '' and outcomes[0].attempt_scores == [0.2]
        assert all(o.failure_reason.startswith('not started') and not o.accepted for o in outcomes[1:])
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_refused_goal_goes_to_another_cell_and_is_not_a_trial(tmp_path):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('fleet_refusal_probe', context=context)
    try:
        fleet = FleetClient(node, ['cell_0', 'cell_1'], refusal_rest_s=5.0)
        tried = []

        def run_one(cell, request):
            tried.append(cell)
            if cell == 'cell_0':        # a cell still busy with a trial whose goal answer was lost
                return TrialOutcome(seed=request.seed, cell=cell, refused=True,
                                    failure_reason='goal rejected')
            return TrialOutcome(seed=request.seed, cell=cell, accepted=True, attempts_used=1,
                                attempt_scores=[1.0], attempt_successes=[True], execute_s=1.0, wall_s=1.0)

        fleet.run_one = run_one
        policy = tmp_path / 'p.py'
        policy.write_text('class Policy: pass\n')
        outcomes = fleet.run_trials([TrialRequest(task=TASK, policy_path=str(policy), seed=s)
                                     for s in range(3)])
        assert [o.cell for o in outcomes] == ['cell_1'] * 3 and all(o.success for o in outcomes)
        assert tried.count('cell_0') == 1                     # it rested after refusing once
        report = fleet.report()
        assert report['trials_started'] == 3 and report['cells']['cell_0']['trials'] == 0
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
